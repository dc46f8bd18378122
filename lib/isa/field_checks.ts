/**
 * The checks the kernel verifier makes on one instruction's fields, with its
 * exact messages: the opcode table of `bpf_opcode_in_insntable()`, the
 * reserved-field checks of do_check() (check_alu_op(), the JMP / CALL / EXIT /
 * ST / STX / LD branches, check_atomic(), check_ld_abs(), check_ld_imm()) and
 * check_alu_op()'s constant-operand checks (`div by zero`, `invalid shift`).
 * They need no register state, so both `validate.ts` and the verifier use them.
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
  BPF_PSEUDO_KFUNC_CALL,
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
