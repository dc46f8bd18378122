/**
 * Checks that depend on the instructions alone, with the kernel verifier's
 * exact messages and in the order its passes run (bpf_check()):
 *
 * 1. add_subprog_and_kfunc(): local call / `func` targets (`call to invalid destination`);
 * 2. check_subprogs(): jumps stay inside their subprogram
 *    (`jump out of range from insn %d to %d`), each subprogram ends in
 *    `exit` or a jump (`last insn is not an exit or jmp`);
 * 3. resolve_pseudo_ldimm64(): `BPF_LDX uses reserved fields`, `lddw`
 *    shape, `unknown opcode %02x` (bpf_opcode_in_insntable());
 * 4. check_cfg(): every slot reachable from slot 0 (`unreachable insn %d`),
 *    no jump into an `lddw`'s second half;
 * 5. do_check(): per-instruction field checks (`BPF_ALU uses reserved
 *    fields`, `invalid shift 64`, `div by zero`, …).
 *
 * What needs register state, BTF, map fds or the program type (`R0 !read_ok`,
 * map fd lookups, kfunc BTF) belongs to the verifier, and so do the loop
 * checks of check_cfg() (a privileged load may loop; `back-edge` is for
 * unprivileged ones).
 * do_check() visits instructions in execution order; `validateProgram` takes
 * them in slot order, which can name a different first culprit when a
 * program has several.
 * @module
 */
import type { RawInsn } from "./insn.ts";
import {
  BPF_ABS,
  BPF_ADD,
  BPF_ALU,
  BPF_ALU64,
  BPF_AND,
  BPF_ARSH,
  BPF_ATOMIC,
  BPF_B,
  BPF_CALL,
  BPF_CMPXCHG,
  BPF_DIV,
  BPF_DW,
  BPF_END,
  BPF_EXIT,
  BPF_FETCH,
  BPF_H,
  BPF_IMM,
  BPF_IND,
  BPF_JA,
  BPF_JCOND,
  BPF_JMP,
  BPF_JMP32,
  BPF_JSLE,
  BPF_K,
  BPF_LD,
  BPF_LDX,
  BPF_LOAD_ACQ,
  BPF_LSH,
  BPF_MEM,
  BPF_MEMSX,
  BPF_MOD,
  BPF_MOV,
  BPF_NEG,
  BPF_OR,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_KFUNC_CALL,
  BPF_PSEUDO_MAP_FD,
  BPF_PSEUDO_MAP_IDX,
  BPF_RSH,
  BPF_ST,
  BPF_STORE_REL,
  BPF_STX,
  BPF_TO_BE,
  BPF_TO_LE,
  BPF_W,
  BPF_X,
  BPF_XCHG,
  BPF_XOR,
  bpfClass,
  bpfMode,
  bpfOp,
  bpfSize,
  bpfSrc,
} from "./opcodes.ts";

/** A refusal: the slot it is about (-1 for the whole program) and the kernel's message. */
export interface ProgramIssue {
  /** Slot index of the refused instruction, or -1 for the whole program. */
  readonly index: number;
  /** The verifier log's message, e.g. `BPF_ALU uses reserved fields`. */
  readonly message: string;
}

/** `BPF_MAX_SUBPROGS`. */
const MAX_SUBPROGS = 256;
const LD_IMM64 = BPF_LD | BPF_IMM | BPF_DW;
const JMP_EXIT = BPF_JMP | BPF_EXIT;
const JMP_CALL = BPF_JMP | BPF_CALL;

const INSN_TABLE: readonly boolean[] = buildInsnTable();

/** The public opcode table of `bpf_opcode_in_insntable()` (kernel/bpf/core.c). */
function buildInsnTable(): boolean[] {
  const table: boolean[] = new Array(256).fill(false);
  const set = (code: number) => (table[code] = true);
  const both = (code: number) =>
    [BPF_K, BPF_X].forEach((src) => set(code | src));
  // ALU ops 0x00 … 0xc0 but NEG (K only); jump ops 0x10 … 0xd0 but CALL and EXIT
  const opsUpTo = (last: number) =>
    Array.from({ length: (last >> 4) + 1 }, (_, i) => i << 4);
  const aluOps = opsUpTo(BPF_ARSH).filter((op) => op !== BPF_NEG);
  const jmpOps = opsUpTo(BPF_JSLE).filter((op) =>
    op !== BPF_JA && op !== BPF_CALL && op !== BPF_EXIT
  );
  for (const cls of [BPF_ALU, BPF_ALU64]) {
    aluOps.forEach((op) => both(cls | op));
    set(cls | BPF_NEG);
    set(cls | BPF_END | BPF_TO_LE);
  }
  set(BPF_ALU | BPF_END | BPF_TO_BE);
  for (const cls of [BPF_JMP, BPF_JMP32]) {
    jmpOps.forEach((op) => both(cls | op));
    set(cls | BPF_JA);
  }
  [JMP_CALL, JMP_EXIT, BPF_JMP | BPF_JCOND, LD_IMM64].forEach(set);
  const allSizes = [
    BPF_STX | BPF_ATOMIC,
    BPF_STX | BPF_MEM,
    BPF_ST | BPF_MEM,
    BPF_LDX | BPF_MEM,
  ];
  // sign-extending loads and the cBPF packet loads have no DW form
  const narrow = [BPF_LDX | BPF_MEMSX, BPF_LD | BPF_ABS, BPF_LD | BPF_IND];
  for (const size of [BPF_B, BPF_H, BPF_W]) {
    [...allSizes, ...narrow].forEach((base) => set(base | size));
  }
  allSizes.forEach((base) => set(base | BPF_DW));
  return table;
}

/** `bpf_opcode_in_insntable()`: whether the kernel knows opcode `code` at all. */
export function opcodeInInsnTable(code: number): boolean {
  return INSN_TABLE[code & 0xff];
}

/**
 * The field checks do_check() makes before it reads any operand register
 * (check_alu_op(), the JMP/CALL/EXIT/ST/STX/LD branches, check_atomic(),
 * check_ld_abs(), check_ld_imm()), plus resolve_pseudo_ldimm64()'s LDX check.
 * One of them comes after an operand read in the kernel: a conditional
 * jump reads dst (check_reg_arg(), `R0 !read_ok`) before
 * `BPF_JMP/JMP32 uses reserved fields`, so a verifier calls this after that read.
 */
export function encodingFieldError(insn: RawInsn): string | null {
  switch (bpfClass(insn.code)) {
    case BPF_ALU:
    case BPF_ALU64:
      return aluFieldError(insn);
    case BPF_LDX:
      return (bpfMode(insn.code) !== BPF_MEM &&
          bpfMode(insn.code) !== BPF_MEMSX) || insn.imm !== 0
        ? "BPF_LDX uses reserved fields"
        : null;
    case BPF_STX:
      if (bpfMode(insn.code) === BPF_ATOMIC) return atomicError(insn);
      return bpfMode(insn.code) !== BPF_MEM || insn.imm !== 0
        ? "BPF_STX uses reserved fields"
        : null;
    case BPF_ST:
      return bpfMode(insn.code) !== BPF_MEM || insn.src !== 0
        ? "BPF_ST uses reserved fields"
        : null;
    case BPF_JMP:
    case BPF_JMP32:
      return jmpFieldError(insn);
    default:
      return ldFieldError(insn);
  }
}

/** mirrors check_alu_op()'s reserved-field checks */
function aluFieldError(insn: RawInsn): string | null {
  const op = bpfOp(insn.code);
  const alu64 = bpfClass(insn.code) === BPF_ALU64;
  const byReg = bpfSrc(insn.code) === BPF_X;
  if (op === BPF_NEG) {
    return byReg || insn.src !== 0 || insn.off !== 0 || insn.imm !== 0
      ? "BPF_NEG uses reserved fields"
      : null;
  }
  if (op === BPF_END) {
    const badImm = insn.imm !== 16 && insn.imm !== 32 && insn.imm !== 64;
    return insn.src !== 0 || insn.off !== 0 || badImm || (alu64 && byReg)
      ? "BPF_END uses reserved fields"
      : null;
  }
  if (op === BPF_MOV) {
    if (!byReg) {
      return insn.src !== 0 || insn.off !== 0
        ? "BPF_MOV uses reserved fields"
        : null;
    }
    if (alu64 && insn.off === 1) {
      return insn.imm !== 1 && insn.imm !== 1 << 16
        ? "addr_space_cast insn can only convert between address space 1 and 0"
        : null;
    }
    const offs = alu64 ? [0, 8, 16, 32] : [0, 8, 16];
    return !offs.includes(insn.off) || insn.imm !== 0
      ? "BPF_MOV uses reserved fields"
      : null;
  }
  if (op > BPF_END) return `invalid BPF_ALU opcode ${op.toString(16)}`;
  const badOff = (insn.off !== 0 && insn.off !== 1) ||
    (insn.off === 1 && op !== BPF_MOD && op !== BPF_DIV);
  const badOperand = byReg ? insn.imm !== 0 : insn.src !== 0;
  return badOff || badOperand ? "BPF_ALU uses reserved fields" : null;
}

/** mirrors the BPF_JMP/BPF_JMP32 branch of do_check_insn() and check_cond_jmp_op() */
function jmpFieldError(insn: RawInsn): string | null {
  const op = bpfOp(insn.code);
  const jmp32 = bpfClass(insn.code) === BPF_JMP32;
  const byReg = bpfSrc(insn.code) === BPF_X;
  if (op === BPF_CALL) {
    const bad = byReg ||
      (insn.src !== BPF_PSEUDO_KFUNC_CALL && insn.off !== 0) ||
      (insn.src !== 0 && insn.src !== BPF_PSEUDO_CALL &&
        insn.src !== BPF_PSEUDO_KFUNC_CALL) ||
      insn.dst !== 0 || jmp32;
    return bad ? "BPF_CALL uses reserved fields" : null;
  }
  if (op === BPF_JA) {
    const bad = byReg || insn.src !== 0 || insn.dst !== 0 ||
      (!jmp32 && insn.imm !== 0) || (jmp32 && insn.off !== 0);
    return bad ? "BPF_JA uses reserved fields" : null;
  }
  if (op === BPF_EXIT) {
    const bad = byReg || insn.imm !== 0 || insn.src !== 0 || insn.dst !== 0 ||
      jmp32;
    return bad ? "BPF_EXIT uses reserved fields" : null;
  }
  if (op > BPF_JCOND) return `invalid BPF_JMP/JMP32 opcode ${op.toString(16)}`;
  if (op === BPF_JCOND) {
    const bad = insn.code !== (BPF_JMP | BPF_JCOND) || insn.src !== 0 ||
      insn.dst !== 0 || insn.imm !== 0;
    return bad ? `invalid may_goto imm ${insn.imm}` : null;
  }
  return (byReg ? insn.imm !== 0 : insn.src !== 0)
    ? "BPF_JMP/JMP32 uses reserved fields"
    : null;
}

/** mirrors check_atomic() and check_atomic_rmw()'s size check */
function atomicError(insn: RawInsn): string | null {
  const base = insn.imm & ~BPF_FETCH;
  const rmw = [BPF_ADD, BPF_AND, BPF_OR, BPF_XOR].includes(base) ||
    insn.imm === BPF_XCHG ||
    insn.imm === BPF_CMPXCHG;
  if (rmw) {
    const size = bpfSize(insn.code);
    return size !== BPF_W && size !== BPF_DW
      ? "invalid atomic operand size"
      : null;
  }
  if (insn.imm === BPF_LOAD_ACQ || insn.imm === BPF_STORE_REL) return null;
  return `BPF_ATOMIC uses invalid atomic opcode ${
    (insn.imm >>> 0).toString(16).padStart(2, "0")
  }`;
}

/** mirrors check_ld_abs() (after its program-type checks) and check_ld_imm() */
function ldFieldError(insn: RawInsn): string | null {
  const mode = bpfMode(insn.code);
  if (mode === BPF_ABS || mode === BPF_IND) {
    const bad = insn.dst !== 0 || insn.off !== 0 ||
      bpfSize(insn.code) === BPF_DW ||
      (mode === BPF_ABS && insn.src !== 0);
    return bad ? "BPF_LD_[ABS|IND] uses reserved fields" : null;
  }
  if (mode !== BPF_IMM) return "invalid BPF_LD mode";
  if (bpfSize(insn.code) !== BPF_DW) return "invalid BPF_LD_IMM insn";
  return insn.off !== 0 ? "BPF_LD_IMM64 uses reserved fields" : null;
}

/**
 * check_alu_op()'s checks on a constant operand, made after the operands
 * are read: `div by zero` for a K-form (s)div/(s)mod by 0, `invalid shift N`
 * for a K-form shift outside 0 … width-1.
 */
export function constantOperandError(insn: RawInsn): string | null {
  const cls = bpfClass(insn.code);
  if ((cls !== BPF_ALU && cls !== BPF_ALU64) || bpfSrc(insn.code) !== BPF_K) {
    return null;
  }
  const op = bpfOp(insn.code);
  if ((op === BPF_DIV || op === BPF_MOD) && insn.imm === 0) {
    return "div by zero";
  }
  if (op === BPF_LSH || op === BPF_RSH || op === BPF_ARSH) {
    const width = cls === BPF_ALU64 ? 64 : 32;
    if (insn.imm < 0 || insn.imm >= width) return `invalid shift ${insn.imm}`;
  }
  return null;
}

/**
 * Every refusal of one instruction that needs no register state: the
 * encoding checks, then the constant-operand checks, in the kernel's order.
 * Null when the instruction passes them.
 */
export function reservedFieldError(insn: RawInsn): string | null {
  return encodingFieldError(insn) ?? constantOperandError(insn);
}

/**
 * Validates a slot-indexed program (raw slots or decoded `Insn`s) through
 * the passes listed in the module doc; the first refusal, or null.
 */
export function validateProgram(
  insns: readonly RawInsn[],
): ProgramIssue | null {
  if (insns.length === 0) {
    return { index: -1, message: "program has no instructions (E2BIG)" };
  }
  return subprogIssue(insns) ?? resolveIssue(insns) ?? cfgIssue(insns) ??
    fieldIssue(insns);
}

/** mirrors add_subprog_and_kfunc() (targets only) and check_subprogs() */
function subprogIssue(insns: readonly RawInsn[]): ProgramIssue | null {
  const starts = new Set<number>([0]);
  for (let i = 0; i < insns.length; i++) {
    const insn = insns[i];
    const isCall = insn.code === JMP_CALL && insn.src === BPF_PSEUDO_CALL;
    const isFunc = insn.code === LD_IMM64 && insn.src === BPF_PSEUDO_FUNC;
    if (!isCall && !isFunc) continue;
    const target = i + insn.imm + 1;
    if (target < 0 || target >= insns.length) {
      return { index: i, message: "call to invalid destination" };
    }
    if (!starts.has(target) && starts.size >= MAX_SUBPROGS) {
      return { index: i, message: "too many subprograms" };
    }
    starts.add(target);
  }
  const bounds = [...starts].sort((a, b) => a - b);
  bounds.push(insns.length);
  let sub = 0;
  for (let i = 0; i < insns.length; i++) {
    const { code } = insns[i];
    const cls = bpfClass(code);
    const op = bpfOp(code);
    if (
      (cls === BPF_JMP || cls === BPF_JMP32) && op !== BPF_EXIT &&
      op !== BPF_CALL
    ) {
      const target = i +
        (code === (BPF_JMP32 | BPF_JA) ? insns[i].imm : insns[i].off) + 1;
      if (target < bounds[sub] || target >= bounds[sub + 1]) {
        return {
          index: i,
          message: `jump out of range from insn ${i} to ${target}`,
        };
      }
    }
    if (i === bounds[sub + 1] - 1) {
      if (
        code !== JMP_EXIT && code !== (BPF_JMP32 | BPF_JA) &&
        code !== (BPF_JMP | BPF_JA)
      ) {
        return { index: i, message: "last insn is not an exit or jmp" };
      }
      sub++;
    }
  }
  return null;
}

/** mirrors the checks of resolve_pseudo_ldimm64() that need no map fd or BTF */
function resolveIssue(insns: readonly RawInsn[]): ProgramIssue | null {
  for (let i = 0; i < insns.length; i++) {
    const insn = insns[i];
    if (bpfClass(insn.code) === BPF_LDX && encodingFieldError(insn) !== null) {
      return { index: i, message: "BPF_LDX uses reserved fields" };
    }
    if (insn.code === LD_IMM64) {
      const next = insns[i + 1];
      if (
        next === undefined || next.code !== 0 || next.dst !== 0 ||
        next.src !== 0 || next.off !== 0
      ) {
        return { index: i, message: "invalid bpf_ld_imm64 insn" };
      }
      const mapFd = insn.src === BPF_PSEUDO_MAP_FD ||
        insn.src === BPF_PSEUDO_MAP_IDX;
      if (insn.src > 6 || (mapFd && next.imm !== 0)) {
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

/**
 * check_cfg()'s reachability: the slots its depth-first walk from slot 0
 * reaches through fall-through, jump, local-call and `func` edges. Expects
 * the earlier passes to have passed (targets in range, lddw pairs whole).
 */
export function cfgIssue(insns: readonly RawInsn[]): ProgramIssue | null {
  const seen = new Uint8Array(insns.length);
  const stack = [0];
  seen[0] = 1;
  const push = (target: number) => {
    if (target >= 0 && target < insns.length && seen[target] === 0) {
      seen[target] = 1;
      stack.push(target);
    }
  };
  for (let t = stack.pop(); t !== undefined; t = stack.pop()) {
    const insn = insns[t];
    const cls = bpfClass(insn.code);
    const size = insn.code === LD_IMM64 ? 2 : 1;
    if (insn.code === LD_IMM64 && insn.src === BPF_PSEUDO_FUNC) {
      push(t + insn.imm + 1);
    }
    if (cls !== BPF_JMP && cls !== BPF_JMP32) {
      push(t + size);
      continue;
    }
    const op = bpfOp(insn.code);
    if (op === BPF_EXIT) continue;
    if (op === BPF_CALL) {
      push(t + 1);
      if (insn.src === BPF_PSEUDO_CALL) push(t + insn.imm + 1);
    } else if (op === BPF_JA) {
      push(t + (cls === BPF_JMP ? insn.off : insn.imm) + 1);
    } else {
      push(t + 1);
      push(t + insn.off + 1);
    }
  }
  for (let i = 0; i < insns.length; i++) {
    if (seen[i] === 0) return { index: i, message: `unreachable insn ${i}` };
    if (insns[i].code === LD_IMM64) {
      if (seen[i + 1] === 1) {
        return {
          index: i,
          message: `jump into the middle of ldimm64 insn ${i}`,
        };
      }
      i++;
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
