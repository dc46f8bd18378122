/**
 * Register liveness before each instruction, mirroring Linux 6.18's
 * `compute_live_registers()`: a classic backward data-flow analysis over
 * the instruction graph of each function (calls fall through; the callee
 * is not entered), with per-instruction `use`/`def` sets as
 * `compute_insn_live_regs()` defines them. `states_equal()` compares only
 * the registers live at the instruction, so a dead register of an explored
 * state matches anything.
 *
 * Stack-slot liveness (the kernel's kernel/bpf/liveness.c, a call-chain
 * sensitive may-read/must-write analysis) is stack_liveness.ts.
 * @module
 */
import type { Insn } from "../isa/insn.ts";
import { formatInsn } from "../isa/disasm.ts";
import { helperProto } from "./helper_protos.ts";
import type { Env } from "./env.ts";
import { mapAddress } from "./log.ts";

/** R1–R5 as a bit set (`BPF_REGMASK_ARGS`). */
export const REGMASK_ARGS = 0x3e;
/** R0–R5: what any call defines (`ALL_CALLER_SAVED_REGS`). */
const CALLER_SAVED = 0x3f;
/** Every register (the kernel's default `use` of 0xffff). */
const ALL = 0xffff;

/** Registers an instruction reads and writes (`struct insn_live_regs`). */
interface UseDef {
  use: number;
  def: number;
}

// mirrors compute_insn_live_regs()
function useDef(insn: Insn, helperParams: (id: number) => number): UseDef {
  const src = 1 << insn.src, dst = 1 << insn.dst;
  switch (insn.kind) {
    case "ld_imm64":
      return { use: 0, def: dst };
    case "ldx":
      return { use: src, def: dst };
    case "st":
      return { use: dst, def: 0 };
    case "stx":
      return { use: dst | src, def: 0 };
    case "atomic":
      if (insn.op === "cmpxchg") return { use: 1 | dst | src, def: 1 };
      if (insn.op === "load_acq") return { use: src, def: dst };
      if (insn.op === "store_rel") return { use: dst | src, def: 0 };
      return { use: dst | src, def: insn.fetch ? src : 0 };
    case "endian":
      return { use: dst, def: dst };
    case "alu":
      if (insn.op === "mov" || insn.op === "movsx") {
        return { use: insn.source === "imm" ? 0 : src, def: dst };
      }
      return { use: insn.source === "imm" ? dst : dst | src, def: dst };
    case "ja":
    case "may_goto":
      return { use: 0, def: 0 };
    case "exit":
      return { use: 1, def: 0 };
    case "call": {
      // get_call_summary(): a helper reads only its declared arguments
      const n = insn.callee === "helper" ? helperParams(insn.imm) : -1;
      const use = n >= 0 ? ((1 << (n + 1)) - 2) : CALLER_SAVED & ~1;
      return { use, def: CALLER_SAVED };
    }
    case "jcond":
      return { use: insn.source === "imm" ? dst : dst | src, def: 0 };
    default:
      // ld_abs/ld_ind and the second half of an lddw keep the defaults
      return { use: ALL, def: 0 };
  }
}

/**
 * Mirrors `bpf_insn_successors()` within a function: the slots control
 * may reach next from slot `idx` (a call falls through).
 */
export function insnSuccessors(insn: Insn, idx: number): number[] {
  switch (insn.kind) {
    case "exit":
      return [];
    case "ja":
      return [insn.target];
    case "jcond":
    case "may_goto":
      return insn.target === idx + 1 ? [idx + 1] : [idx + 1, insn.target];
    case "ld_imm64":
      return [idx + 2];
    default:
      return [idx + 1];
  }
}

/**
 * `live_regs_before` for every slot of `insns` (bit i = Ri may be read
 * before being written on some path from the slot). `helperParams(id)`
 * gives a helper's argument count, or -1 when its prototype is unknown.
 */
export function computeLiveRegisters(
  insns: readonly Insn[],
  helperParams: (id: number) => number,
): Uint16Array {
  const n = insns.length;
  const use = new Uint16Array(n), def = new Uint16Array(n);
  const succ: number[][] = [];
  for (let i = 0; i < n; i++) {
    const ud = useDef(insns[i], helperParams);
    use[i] = ud.use;
    def[i] = ud.def;
    succ.push(insnSuccessors(insns[i], i).filter((s) => s >= 0 && s < n));
  }
  const liveIn = new Uint16Array(n);
  // iterate to the (unique) least fixed point; reverse order converges fast
  for (let changed = true; changed;) {
    changed = false;
    for (let i = n - 1; i >= 0; i--) {
      let out = 0;
      for (const s of succ[i]) out |= liveIn[s];
      const inn = (out & ~def[i]) | use[i];
      if (inn !== liveIn[i]) {
        liveIn[i] = inn;
        changed = true;
      }
    }
  }
  return liveIn;
}

const CACHE = new WeakMap<Env, Uint16Array>();

/** The live-register table of `env`'s program, computed once per load. */
export function liveRegsOf(env: Env): Uint16Array {
  let live = CACHE.get(env);
  if (!live) {
    const opts = { attachType: env.prog.expectedAttachType ?? undefined };
    live = computeLiveRegisters(env.insns, (id) => {
      const p = helperProto(env.progType, id, opts);
      if (!p) return -1;
      let k = 0;
      while (k < p.args.length && p.args[k].base !== "ARG_DONTCARE") k++;
      return k;
    });
    CACHE.set(env, live);
  }
  return live;
}

/**
 * Mirrors `compute_scc()`: the id of the strongly connected component
 * (loop) each slot belongs to, 0 outside loops, numbered as the kernel's
 * iterative Tarjan walk in slot order numbers them.
 */
export function computeScc(insns: readonly Insn[]): Uint32Array {
  const n = insns.length, NOT_ON_STACK = 0xffffffff;
  const pre = new Uint32Array(n), low = new Uint32Array(n);
  const scc = new Uint32Array(n);
  const stack: number[] = [], dfs: number[] = [];
  let nextPre = 1, nextScc = 1;
  const succ = (w: number) =>
    insnSuccessors(insns[w], w).filter((s) => s >= 0 && s < n);
  for (let i = 0; i < n; i++) {
    if (pre[i]) continue;
    dfs.length = 0;
    dfs.push(i);
    outer: while (dfs.length) {
      const w = dfs[dfs.length - 1];
      if (pre[w] === 0) {
        low[w] = pre[w] = nextPre++;
        stack.push(w);
      }
      const ss = succ(w);
      for (const s of ss) {
        if (pre[s]) low[w] = Math.min(low[w], low[s]);
        else {
          dfs.push(s);
          continue outer;
        }
      }
      if (low[w] < pre[w]) {
        dfs.pop();
        continue;
      }
      // a component counts when it has two slots or a self loop
      const assign = stack[stack.length - 1] !== w || ss.includes(w);
      let t: number;
      do {
        t = stack.pop()!;
        low[t] = NOT_ON_STACK;
        if (assign) scc[t] = nextScc;
      } while (t !== w);
      if (assign) nextScc++;
      dfs.pop();
    }
  }
  return scc;
}

const LOGGED = new WeakSet<Env>();

/**
 * The level-2 preamble of `check_subprogs()` and `compute_live_registers()`:
 * `func#N @slot` per function, then each slot's SCC, live registers and
 * disassembly. Printed once per load.
 */
export function logLiveRegs(env: Env): void {
  if (env.log.level < 2 || LOGGED.has(env)) return;
  LOGGED.add(env);
  const log = env.log;
  env.layout.subprogs.forEach((sp, i) => {
    if (sp.start < env.insns.length) log.write(`func#${i} @${sp.start}\n`);
  });
  const live = liveRegsOf(env), scc = computeScc(env.insns);
  log.write("Live regs before insn:\n");
  for (let i = 0; i < env.insns.length; i++) {
    const insn = env.insns[i];
    let regs = "";
    for (let r = 0; r < 10; r++) regs += live[i] & (1 << r) ? `${r}` : ".";
    const col = scc[i] ? `${scc[i]}`.padStart(3) + " " : "    ";
    const text = formatInsn(insn, i, { immName: mapAddress, prefix: false });
    const code = insn.code.toString(16).padStart(2, "0");
    const body = text.startsWith("BUG_") ? text : `(${code}) ${text}`;
    log.write(`${col}${`${i}`.padStart(3)}: ${regs} ${body}\n`);
    if (insn.kind === "ld_imm64") i++;
  }
}
