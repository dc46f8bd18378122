/**
 * BPF opcode fields, named as in the kernel's `include/uapi/linux/bpf.h` and
 * RFC 9669. An opcode byte is split into class (low 3 bits) and, depending on
 * the class, an operation, a source bit, a size and a mode.
 *
 * Only `lib/isa` reads these bits; everything else works on decoded
 * instructions (see `insn.ts`).
 * @module
 */

/** Instruction classes (`BPF_CLASS(code)`). */
export const BPF_LD = 0x00;
/** Load from memory into a register. */
export const BPF_LDX = 0x01;
/** Store an immediate to memory. */
export const BPF_ST = 0x02;
/** Store a register to memory (also atomics). */
export const BPF_STX = 0x03;
/** 32-bit arithmetic. */
export const BPF_ALU = 0x04;
/** 64-bit jumps, calls and exit. */
export const BPF_JMP = 0x05;
/** 32-bit jumps (and `gotol` as `BPF_JMP32 | BPF_JA`). */
export const BPF_JMP32 = 0x06;
/** 64-bit arithmetic. */
export const BPF_ALU64 = 0x07;

/** Source operand: immediate. */
export const BPF_K = 0x00;
/** Source operand: register. */
export const BPF_X = 0x08;
/** `BPF_END` direction: to little-endian (shares the bit with `BPF_K`). */
export const BPF_TO_LE = 0x00;
/** `BPF_END` direction: to big-endian (shares the bit with `BPF_X`). */
export const BPF_TO_BE = 0x08;

/** Access sizes (`BPF_SIZE(code)`). */
export const BPF_W = 0x00;
/** Half word, 2 bytes. */
export const BPF_H = 0x08;
/** Byte. */
export const BPF_B = 0x10;
/** Double word, 8 bytes. */
export const BPF_DW = 0x18;

/** Modes (`BPF_MODE(code)`). */
export const BPF_IMM = 0x00;
/** Legacy packet load, absolute offset. */
export const BPF_ABS = 0x20;
/** Legacy packet load, register-relative offset. */
export const BPF_IND = 0x40;
/** Regular memory access. */
export const BPF_MEM = 0x60;
/** Sign-extending load. */
export const BPF_MEMSX = 0x80;
/** Atomic operation (imm selects which). */
export const BPF_ATOMIC = 0xc0;

/** ALU operations (`BPF_OP(code)`). */
export const BPF_ADD = 0x00;
/** Subtract. */
export const BPF_SUB = 0x10;
/** Multiply. */
export const BPF_MUL = 0x20;
/** Divide (signed when off == 1). */
export const BPF_DIV = 0x30;
/** Bitwise or. */
export const BPF_OR = 0x40;
/** Bitwise and. */
export const BPF_AND = 0x50;
/** Left shift. */
export const BPF_LSH = 0x60;
/** Logical right shift. */
export const BPF_RSH = 0x70;
/** Negate. */
export const BPF_NEG = 0x80;
/** Remainder (signed when off == 1). */
export const BPF_MOD = 0x90;
/** Bitwise xor. */
export const BPF_XOR = 0xa0;
/** Move (sign-extending when off is 8, 16 or 32). */
export const BPF_MOV = 0xb0;
/** Arithmetic right shift. */
export const BPF_ARSH = 0xc0;
/** Byte swap / endianness conversion. */
export const BPF_END = 0xd0;

/** Jump operations (`BPF_OP(code)` in the JMP classes). */
export const BPF_JA = 0x00;
/** Jump if equal. */
export const BPF_JEQ = 0x10;
/** Jump if greater, unsigned. */
export const BPF_JGT = 0x20;
/** Jump if greater or equal, unsigned. */
export const BPF_JGE = 0x30;
/** Jump if `dst & src` is not zero. */
export const BPF_JSET = 0x40;
/** Jump if not equal. */
export const BPF_JNE = 0x50;
/** Jump if greater, signed. */
export const BPF_JSGT = 0x60;
/** Jump if greater or equal, signed. */
export const BPF_JSGE = 0x70;
/** Function call. */
export const BPF_CALL = 0x80;
/** Return. */
export const BPF_EXIT = 0x90;
/** Jump if less, unsigned. */
export const BPF_JLT = 0xa0;
/** Jump if less or equal, unsigned. */
export const BPF_JLE = 0xb0;
/** Jump if less, signed. */
export const BPF_JSLT = 0xc0;
/** Jump if less or equal, signed. */
export const BPF_JSLE = 0xd0;
/** `may_goto` (conditional pseudo jump). */
export const BPF_JCOND = 0xe0;

/** Atomic operations (imm of a `BPF_ATOMIC` instruction). */
export const BPF_FETCH = 0x01;
/** Atomic exchange (always fetches). */
export const BPF_XCHG = 0xe0 | BPF_FETCH;
/** Atomic compare and exchange (always fetches). */
export const BPF_CMPXCHG = 0xf0 | BPF_FETCH;
/** Load-acquire (Linux 6.15+). */
export const BPF_LOAD_ACQ = 0x100;
/** Store-release (Linux 6.15+). */
export const BPF_STORE_REL = 0x110;

/** `src_reg` of a `BPF_LD | BPF_IMM | BPF_DW`: what the 64-bit immediate means. */
export const BPF_PSEUDO_MAP_FD = 1;
/** imm is a map fd, off in the second half is an offset into its value. */
export const BPF_PSEUDO_MAP_VALUE = 2;
/** imm is a kernel BTF type id. */
export const BPF_PSEUDO_BTF_ID = 3;
/** imm is the relative address of a local function. */
export const BPF_PSEUDO_FUNC = 4;
/** imm is an index into the fd array of the program load. */
export const BPF_PSEUDO_MAP_IDX = 5;
/** as `BPF_PSEUDO_MAP_IDX`, pointing into the map's value. */
export const BPF_PSEUDO_MAP_IDX_VALUE = 6;

/** `src_reg` of a `BPF_CALL`: call of a local function (imm = relative slot). */
export const BPF_PSEUDO_CALL = 1;
/** `src_reg` of a `BPF_CALL`: call of a kernel function (imm = BTF id). */
export const BPF_PSEUDO_KFUNC_CALL = 2;

/** Number of registers, r0 … r10. */
export const MAX_BPF_REG = 11;
/** The read-only frame pointer. */
export const BPF_REG_FP = 10;
/** Bytes of stack per frame. */
export const MAX_BPF_STACK = 512;
/** Size in bytes of one instruction slot. */
export const INSN_SIZE = 8;

/** `BPF_CLASS(code)`. */
export function bpfClass(code: number): number {
  return code & 0x07;
}
/** `BPF_OP(code)`. */
export function bpfOp(code: number): number {
  return code & 0xf0;
}
/** `BPF_SRC(code)`. */
export function bpfSrc(code: number): number {
  return code & 0x08;
}
/** `BPF_SIZE(code)`. */
export function bpfSize(code: number): number {
  return code & 0x18;
}
/** `BPF_MODE(code)`. */
export function bpfMode(code: number): number {
  return code & 0xe0;
}
/** Bytes accessed by a `BPF_SIZE` value. */
export function sizeBytes(size: number): 1 | 2 | 4 | 8 {
  switch (size) {
    case BPF_B:
      return 1;
    case BPF_H:
      return 2;
    case BPF_W:
      return 4;
    default:
      return 8;
  }
}
