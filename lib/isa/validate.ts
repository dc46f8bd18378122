/**
 * Checks that depend on the instructions alone, with the kernel verifier's
 * exact messages and in the order its passes run (bpf_check()):
 *
 * 1. bpf_prog_load()'s length check (the verifier's `checkProgLen()`);
 * 2. add_subprog_and_kfunc() and check_subprogs(): the verifier's own
 *    `addSubprogs()` / `checkSubprogs()` (lib/verifier/subprogs.ts) — call
 *    targets (`call to invalid destination`), jumps inside their subprogram
 *    (`jump out of range from insn %d to %d`), no fall-through into the next
 *    one (`last insn is not an exit or jmp`), and add_kfunc_call()'s checks
 *    that need no BTF (a negative module offset: `failed to find BTF for
 *    kernel function`, as Linux 6.18 says);
 * 3. resolve_pseudo_ldimm64(): `BPF_LDX uses reserved fields`, `lddw`
 *    shape, `unknown opcode %02x` (bpf_opcode_in_insntable()), on raw slots;
 * 4. check_cfg(): the verifier's `checkCfg()` (lib/verifier/cfg.ts) — every
 *    slot reachable (`unreachable insn %d`), no jump into an `lddw`'s second
 *    half;
 * 5. do_check(): per-instruction field checks (field_checks.ts: `BPF_ALU
 *    uses reserved fields`, `invalid shift 64`, `div by zero`, …).
 *
 * What needs register state, BTF, map fds or the program type (`R0 !read_ok`,
 * map fd lookups, kfunc BTF) belongs to the verifier, and so do the loop
 * checks of check_cfg() (a privileged load may loop; `back-edge` is for
 * unprivileged ones). check_btf_info()'s check_abnormal_return() (`LD_ABS` /
 * tail calls in subprograms without BTF) is not made here either.
 * do_check() visits instructions in execution order; `validateProgram` takes
 * them in slot order, which can name a different first culprit when a
 * program has several.
 * @module
 */
import { decodeRaw, rawInsn } from "./decode.ts";
import {
  encodingFieldError,
  opcodeInInsnTable,
  reservedFieldError,
} from "./field_checks.ts";
import { type Insn, IsaError, type RawInsn } from "./insn.ts";
import {
  BPF_ALU64,
  BPF_CALL,
  BPF_DW,
  BPF_EXIT,
  BPF_IMM,
  BPF_JEQ,
  BPF_JMP,
  BPF_JMP32,
  BPF_K,
  BPF_LD,
  BPF_LDX,
  BPF_MOV,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_MAP_FD,
  BPF_PSEUDO_MAP_IDX,
  bpfClass,
  bpfOp,
} from "./opcodes.ts";
import { checkCfg } from "../verifier/cfg.ts";
import { InsnAux } from "../verifier/insn_aux.ts";
import {
  addSubprogs,
  CfgError,
  checkProgLen,
  checkSubprogs,
  type SubprogLayout,
} from "../verifier/subprogs.ts";

export {
  constantOperandError,
  encodingFieldError,
  opcodeInInsnTable,
  reservedFieldError,
} from "./field_checks.ts";

/** A refusal: the slot it is about (-1 for the whole program) and the kernel's message. */
export interface ProgramIssue {
  /** Slot index of the refused instruction, or -1 for the whole program. */
  readonly index: number;
  /** The verifier log's message, e.g. `BPF_ALU uses reserved fields`. */
  readonly message: string;
}

const LD_IMM64 = BPF_LD | BPF_IMM | BPF_DW;

/**
 * Validates a slot-indexed program (raw slots or decoded `Insn`s) through
 * the passes listed in the module doc; the first refusal, or null.
 */
export function validateProgram(
  insns: readonly RawInsn[],
): ProgramIssue | null {
  try {
    checkProgLen(insns.length, true);
  } catch (e) {
    // bpf_prog_load() refuses a bad length with -E2BIG and logs nothing, so
    // the message is ours
    const what = insns.length === 0
      ? "program has no instructions"
      : asIssue(e).message;
    return { index: -1, message: `${what} (E2BIG)` };
  }
  const view = prePassView(insns);
  let layout: SubprogLayout;
  try {
    layout = addSubprogs(view);
    checkSubprogs(view, layout);
  } catch (e) {
    return asIssue(e);
  }
  return resolveIssue(insns) ?? cfgPassIssue(view, layout) ??
    fieldIssue(insns);
}

/**
 * check_cfg()'s reachability, through the verifier's `checkCfg()`: the slots
 * its depth-first walk from slot 0 reaches through fall-through, jump,
 * local-call and `func` edges. Expects the earlier passes to have passed
 * (targets in range, lddw pairs whole).
 */
export function cfgIssue(insns: readonly RawInsn[]): ProgramIssue | null {
  const view = prePassView(insns);
  try {
    return cfgPassIssue(view, addSubprogs(view));
  } catch (e) {
    return asIssue(e);
  }
}

/** Runs the verifier's checkCfg() as a bpf_capable loader (loops allowed). */
function cfgPassIssue(
  view: readonly Insn[],
  layout: SubprogLayout,
): ProgramIssue | null {
  try {
    checkCfg(view, layout, new InsnAux(view.length));
    return null;
  } catch (e) {
    return asIssue(e);
  }
}

/** A pre-pass {@link CfgError} as an issue; anything else is rethrown. */
function asIssue(e: unknown): ProgramIssue {
  if (!(e instanceof CfgError)) throw e;
  return { index: e.insnIndex, message: e.message };
}

/**
 * The slots as the verifier's pre-pass can read them: decoded instructions.
 * The kernel runs add_subprog_and_kfunc(), check_subprogs() and (for
 * atomics) check_cfg() before it looks at the opcode (resolve_pseudo_ldimm64()
 * and do_check()), reading only the class, jump op, offsets and pseudo
 * calls, so a slot the decoder refuses stands in as a decodable one that
 * those passes read the same way. This shim exists because the decoder
 * refuses such slots before the verifier's own pre-pass ever sees them.
 */
function prePassView(slots: readonly RawInsn[]): Insn[] {
  const view: RawInsn[] = [];
  for (let i = 0; i < slots.length; i++) {
    const slot = slots[i];
    if (slot.code === LD_IMM64 && ldImm64Whole(slots, i)) {
      view.push(slot, slots[i + 1]);
      i++;
    } else {
      view.push(slot.code !== LD_IMM64 && decodes(slot) ? slot : standIn(slot));
    }
  }
  return decodeRaw(view);
}

/** The decoder's (and resolve_pseudo_ldimm64()'s) shape check of an `lddw` pair. */
function ldImm64Whole(slots: readonly RawInsn[], i: number): boolean {
  const next = slots[i + 1];
  return next !== undefined && next.code === 0 && next.dst === 0 &&
    next.src === 0 && next.off === 0;
}

/** Whether the decoder takes `slot` on its own (not an `lddw`). */
function decodes(slot: RawInsn): boolean {
  try {
    decodeRaw([slot]);
    return true;
  } catch (e) {
    if (e instanceof IsaError) return false;
    throw e;
  }
}

/**
 * A decodable slot that check_subprogs(), add_subprog_and_kfunc() and
 * check_cfg() treat as they treat `slot`: a jump other than exit / call is
 * range-checked by its `off` (`gotol`, the only one read by `imm`, always
 * decodes) and is neither `exit` nor `ja`; a broken `lddw` of a function
 * address still names its callee; anything else is a plain fall-through.
 */
function standIn(slot: RawInsn): RawInsn {
  const cls = bpfClass(slot.code);
  const op = bpfOp(slot.code);
  if (
    (cls === BPF_JMP || cls === BPF_JMP32) && op !== BPF_EXIT &&
    op !== BPF_CALL
  ) {
    return rawInsn(BPF_JMP | BPF_JEQ | BPF_K, 0, 0, slot.off, 0);
  }
  if (slot.code === LD_IMM64 && slot.src === BPF_PSEUDO_FUNC) {
    return rawInsn(BPF_JMP | BPF_CALL, 0, BPF_PSEUDO_CALL, 0, slot.imm);
  }
  return rawInsn(BPF_ALU64 | BPF_MOV | BPF_K, 0, 0, 0, 0);
}

/** mirrors the checks of resolve_pseudo_ldimm64() that need no map fd or BTF */
function resolveIssue(insns: readonly RawInsn[]): ProgramIssue | null {
  for (let i = 0; i < insns.length; i++) {
    const insn = insns[i];
    if (bpfClass(insn.code) === BPF_LDX && encodingFieldError(insn) !== null) {
      return { index: i, message: "BPF_LDX uses reserved fields" };
    }
    if (insn.code === LD_IMM64) {
      if (!ldImm64Whole(insns, i)) {
        return { index: i, message: "invalid bpf_ld_imm64 insn" };
      }
      const mapFd = insn.src === BPF_PSEUDO_MAP_FD ||
        insn.src === BPF_PSEUDO_MAP_IDX;
      if (insn.src > 6 || (mapFd && insns[i + 1].imm !== 0)) {
        return { index: i, message: "unrecognized bpf_ld_imm64 insn" };
      }
      i++;
      continue;
    }
    if (!opcodeInInsnTable(insn.code)) {
      return {
        index: i,
        message: `unknown opcode ${insn.code.toString(16).padStart(2, "0")}`,
      };
    }
  }
  return null;
}

/** do_check()'s per-instruction checks, taken in slot order */
function fieldIssue(insns: readonly RawInsn[]): ProgramIssue | null {
  for (let i = 0; i < insns.length; i++) {
    const message = reservedFieldError(insns[i]);
    if (message !== null) return { index: i, message };
    if (insns[i].code === LD_IMM64) i++;
  }
  return null;
}
