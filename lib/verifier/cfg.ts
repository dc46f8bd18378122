/**
 * The verifier's control-flow pre-pass: `check_cfg()`'s depth-first walk
 * (every slot reachable, every jump in range, no jump into the second half of
 * an `lddw`, no back-edge for an unprivileged loader) and the per-slot flags
 * it leaves for the main pass; `resolve_pseudo_ldimm64()`'s structural checks;
 * and {@link runPrePass}, which runs the whole pre-pass in `bpf_check()`'s
 * order.
 *
 * Root (bpf_capable) loaders may loop: `push_insn()` then simply does not
 * follow a back-edge, leaving bounded loops to the main pass.
 * @module
 */
import type { CallInsn, Insn } from "../isa/insn.ts";
import {
  BPF_PSEUDO_BTF_ID,
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_MAP_FD,
  BPF_PSEUDO_MAP_IDX,
  BPF_PSEUDO_MAP_IDX_VALUE,
  BPF_PSEUDO_MAP_VALUE,
} from "../isa/opcodes.ts";
import {
  type CallTraitsOf,
  helperIdCallTraits,
  InsnAux,
  isPseudoFunc,
} from "./insn_aux.ts";
import {
  addSubprogs,
  type AddSubprogsOptions,
  CfgError,
  checkFuncInfo,
  checkProgLen,
  checkSubprogs,
  ERRNO,
  findContainingSubprog,
  type SubprogLayout,
} from "./subprogs.ts";

// insn_state values of the walk, as in the kernel: a slot is DISCOVERED when
// pushed, with the FALLTHROUGH / BRANCH bit once that edge is labelled, and
// EXPLORED when all its edges are
const DISCOVERED = 0x10;
const EXPLORED = 0x20;
const FALLTHROUGH = 1;
const BRANCH = 2;
const DONE_EXPLORING = 0;
const KEEP_EXPLORING = 1;

/** Options of {@link checkCfg}. */
export interface CfgOptions {
  /** The loader has CAP_BPF: back-edges (loops) are allowed (default true). */
  readonly bpfCapable?: boolean;
  /** Classifies helper and kfunc calls (default: {@link helperIdCallTraits}). */
  readonly callTraits?: CallTraitsOf;
}

/** What {@link checkCfg} found about the program as a whole. */
export interface CfgResult {
  /** The main function (or a callee) may change packet data (`prog->aux->changes_pkt_data`). */
  readonly changesPktData: boolean;
  /** The main function (or a callee) may sleep (`prog->aux->might_sleep`). */
  readonly mightSleep: boolean;
}

function fail(insnIndex: number, errno: number, line: string): never {
  throw new CfgError(insnIndex, -errno, [line]);
}

/** One depth-first walk over the slots; mirrors env->cfg in check_cfg(). */
class CfgWalk {
  readonly state: Int32Array;
  readonly stack: Int32Array;
  top = 0;

  constructor(
    readonly insns: readonly Insn[],
    readonly layout: SubprogLayout,
    readonly aux: InsnAux,
    readonly bpfCapable: boolean,
    readonly traitsOf: CallTraitsOf,
  ) {
    this.state = new Int32Array(insns.length);
    this.stack = new Int32Array(insns.length);
  }

  start(slot: number): void {
    this.state[slot] = DISCOVERED;
    this.stack[0] = slot;
    this.top = 1;
  }

  run(): void {
    while (this.top > 0) {
      const t = this.stack[this.top - 1];
      if (this.visitInsn(t) === DONE_EXPLORING) {
        this.state[t] = EXPLORED;
        this.top--;
      }
    }
  }

  // mirrors push_insn(): label edge e from t to w
  pushInsn(t: number, w: number, e: number): number {
    const { state } = this;
    if (e === FALLTHROUGH && state[t] >= (DISCOVERED | FALLTHROUGH)) {
      return DONE_EXPLORING;
    }
    if (e === BRANCH && state[t] >= (DISCOVERED | BRANCH)) {
      return DONE_EXPLORING;
    }
    if (w < 0 || w >= this.insns.length) {
      fail(t, ERRNO.EINVAL, `jump out of range from insn ${t} to ${w}`);
    }
    if (e === BRANCH) {
      // a branch target is where states from two paths meet
      this.aux.markPrunePoint(w);
      this.aux.markJmpPoint(w);
    }
    if (state[w] === 0) {
      // tree edge
      state[t] = DISCOVERED | e;
      state[w] = DISCOVERED;
      if (this.top >= this.insns.length) {
        throw new CfgError(t, -ERRNO.E2BIG, []);
      }
      this.stack[this.top++] = w;
      return KEEP_EXPLORING;
    }
    if ((state[w] & 0xf0) === DISCOVERED) {
      // back-edge: a loop, which the main pass bounds for a privileged loader
      if (this.bpfCapable) return DONE_EXPLORING;
      fail(t, ERRNO.EINVAL, `back-edge from insn ${t} to ${w}`);
    }
    if (state[w] !== EXPLORED) {
      fail(t, ERRNO.EFAULT, "verifier bug: insn state internal bug");
    }
    // forward or cross edge
    state[t] = DISCOVERED | e;
    return DONE_EXPLORING;
  }

  // mirrors visit_func_call_insn()
  visitFuncCallInsn(t: number, visitCallee: boolean): number {
    const insn = this.insns[t];
    const size = insn.kind === "ld_imm64" ? 2 : 1;
    let ret = this.pushInsn(t, t + size, FALLTHROUGH);
    if (ret) return ret;
    // the return lands here from another function: record it in the history
    this.aux.markPrunePoint(t + size);
    this.aux.markJmpPoint(t + size);
    if (visitCallee) {
      const w = t + insn.imm + 1;
      this.aux.markPrunePoint(t);
      this.mergeCalleeEffects(t, w);
      ret = this.pushInsn(t, w, BRANCH);
    }
    return ret;
  }

  // mirrors merge_callee_effects(): the DFS has finished the callee (no
  // recursion), so its marks are final when the caller collects them
  mergeCalleeEffects(t: number, w: number): void {
    const { subprogs } = this.layout;
    const caller = subprogs[findContainingSubprog(subprogs, t)];
    const callee = subprogs[findContainingSubprog(subprogs, w)];
    caller.changesPktData ||= callee.changesPktData;
    caller.mightSleep ||= callee.mightSleep;
  }

  // mirrors visit_insn()
  visitInsn(t: number): number {
    const insn = this.insns[t];
    if (isPseudoFunc(insn)) return this.visitFuncCallInsn(t, true);
    switch (insn.kind) {
      case "exit":
        return DONE_EXPLORING;
      case "call":
        this.markCallTraits(insn, t);
        return this.visitFuncCallInsn(t, insn.callee === "local");
      case "ja": {
        const ret = this.pushInsn(t, insn.target, FALLTHROUGH);
        if (ret) return ret;
        this.aux.markPrunePoint(insn.target);
        this.aux.markJmpPoint(insn.target);
        return ret;
      }
      case "jcond":
      case "may_goto": {
        this.aux.markPrunePoint(t);
        // may_goto loops converge only if a checkpoint is always taken here
        if (insn.kind === "may_goto") this.aux.markForceCheckpoint(t);
        const ret = this.pushInsn(t, t + 1, FALLTHROUGH);
        if (ret) return ret;
        return this.pushInsn(t, insn.target, BRANCH);
      }
      default:
        // every other slot (the second half of an lddw too) falls through
        return this.pushInsn(
          t,
          t + (insn.kind === "ld_imm64" ? 2 : 1),
          FALLTHROUGH,
        );
    }
  }

  // the BPF_CALL arm of visit_insn(), before the edges
  markCallTraits(insn: CallInsn, t: number): void {
    if (insn.callee !== "helper" && insn.callee !== "kfunc") return;
    const traits = this.traitsOf(insn, t);
    // an async callback's state is pushed once: prune before the call itself
    if (traits.asyncCallback) this.aux.markPrunePoint(t);
    if (traits.syncCallback) {
      // callbacks are modelled as loops back to the call: checkpoint there
      this.aux.markCallsCallback(t);
      this.aux.markForceCheckpoint(t);
      this.aux.markPrunePoint(t);
      this.aux.markJmpPoint(t);
    }
    if (insn.callee === "kfunc" && traits.iterNext) {
      this.aux.markPrunePoint(t);
      this.aux.markForceCheckpoint(t);
      this.aux.iterNextInsn[t] = 1;
    }
    const { subprogs } = this.layout;
    const sub = subprogs[findContainingSubprog(subprogs, t)];
    if (traits.mightSleep) sub.mightSleep = true;
    if (traits.changesPktData) sub.changesPktData = true;
  }
}

/**
 * Walks the program depth-first from slot 0 (and from the exception callback,
 * which nothing calls), following fall-through, jump, call and function
 * address edges; refuses unreachable slots, jumps out of range or into an
 * `lddw`'s second half, and (unprivileged only) back-edges. Sets the prune,
 * jump and checkpoint flags in `aux` and the sleep / packet-data marks of the
 * subprograms. Mirrors check_cfg().
 */
export function checkCfg(
  insns: readonly Insn[],
  layout: SubprogLayout,
  aux: InsnAux,
  opts: CfgOptions = {},
): CfgResult {
  const walk = new CfgWalk(
    insns,
    layout,
    aux,
    opts.bpfCapable ?? true,
    opts.callTraits ?? helperIdCallTraits,
  );
  walk.start(0);
  walk.run();
  const exCb = layout.exceptionCallbackSubprog;
  const exStart = exCb ? layout.subprogs[exCb].start : 0;
  if (exStart && walk.state[exStart] !== EXPLORED) {
    walk.start(exStart);
    walk.run();
  }
  for (let i = 0; i < insns.length; i++) {
    if (walk.state[i] !== EXPLORED) {
      fail(i, ERRNO.EINVAL, `unreachable insn ${i}`);
    }
    if (insns[i].kind === "ld_imm64") {
      if (walk.state[i + 1] !== 0) {
        fail(i, ERRNO.EINVAL, `jump into the middle of ldimm64 insn ${i}`);
      }
      i++;
    }
  }
  const main = layout.subprogs[0];
  return { changesPktData: main.changesPktData, mightSleep: main.mightSleep };
}

/**
 * The checks of resolve_pseudo_ldimm64() that need no map or BTF: `ldx`
 * reserved fields, and `lddw` pseudo kinds (`src_reg`) the kernel knows, with
 * a zero second immediate for map fds. The decoder has already refused
 * unknown opcodes and malformed second halves with the kernel's wording.
 */
export function checkPseudoLdImm64(insns: readonly Insn[]): void {
  insns.forEach((insn, i) => {
    if (insn.kind === "ldx" && insn.imm !== 0) {
      fail(i, ERRNO.EINVAL, "BPF_LDX uses reserved fields");
    }
    if (insn.kind !== "ld_imm64") return;
    switch (insn.src) {
      case 0:
      case BPF_PSEUDO_BTF_ID:
      case BPF_PSEUDO_FUNC:
      case BPF_PSEUDO_MAP_VALUE:
      case BPF_PSEUDO_MAP_IDX_VALUE:
        return;
      case BPF_PSEUDO_MAP_FD:
      case BPF_PSEUDO_MAP_IDX:
        if (insn.imm2 === 0) return;
    }
    fail(i, ERRNO.EINVAL, "unrecognized bpf_ld_imm64 insn");
  });
}

/** Options of {@link runPrePass}. */
export interface PrePassOptions extends AddSubprogsOptions, CfgOptions {
  /** `insn_off` of each BTF `func_info` record, when the program has BTF. */
  readonly funcInfoInsnOffs?: readonly number[];
}

/** The pre-pass's result: what the main pass starts from. */
export interface PrePass {
  /** The subprogram table. */
  readonly layout: SubprogLayout;
  /** Per-slot flags (prune points, jump points, forced checkpoints …). */
  readonly aux: InsnAux;
  /** Program-wide marks from the walk. */
  readonly cfg: CfgResult;
}

/**
 * Everything `bpf_check()` (and `bpf_prog_load()` before it) checks before the
 * main pass, in the kernel's order: program length, add_subprog_and_kfunc(),
 * check_subprogs(), check_btf_info(), resolve_pseudo_ldimm64(), check_cfg().
 * Throws the first {@link CfgError}.
 *
 * One difference in order remains: the kernel meets unknown opcodes and a
 * malformed `lddw` in resolve_pseudo_ldimm64(), after check_subprogs(); here
 * the decoder refuses them before the pre-pass starts.
 */
export function runPrePass(
  insns: readonly Insn[],
  opts: PrePassOptions = {},
): PrePass {
  checkProgLen(insns.length, opts.bpfCapable ?? true);
  const layout = addSubprogs(insns, opts);
  checkSubprogs(insns, layout);
  checkFuncInfo(layout, opts.funcInfoInsnOffs);
  checkPseudoLdImm64(insns);
  const aux = new InsnAux(insns.length);
  const cfg = checkCfg(insns, layout, aux, opts);
  return { layout, aux, cfg };
}
