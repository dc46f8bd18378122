/**
 * Typed BPF instructions. `decode.ts` turns raw 8-byte slots into these; the
 * verifier, the interpreter and the printers work on them and never on bits.
 *
 * A program is an array indexed by *slot*, as the kernel indexes it: a 16-byte
 * `lddw` occupies slot i (`ld_imm64`) and slot i+1 (`ld_imm64_hi`, never
 * executed), so jump offsets and log indices match the kernel's.
 * @module
 */

/** The five raw fields of one 8-byte slot. `off` and `imm` are signed. */
export interface RawInsn {
  /** Opcode byte. */
  readonly code: number;
  /** Destination register field, 0–15. */
  readonly dst: number;
  /** Source register field, 0–15. */
  readonly src: number;
  /** Signed 16-bit offset. */
  readonly off: number;
  /** Signed 32-bit immediate. */
  readonly imm: number;
}

/** ALU operations after decoding the `off` field (sdiv, smod, movsx). */
export type AluOp =
  | "add"
  | "sub"
  | "mul"
  | "div"
  | "sdiv"
  | "or"
  | "and"
  | "lsh"
  | "rsh"
  | "neg"
  | "mod"
  | "smod"
  | "xor"
  | "mov"
  | "movsx"
  | "arsh"
  | "addr_space_cast";

/** Conditional jump operations. */
export type JmpOp =
  | "jeq"
  | "jgt"
  | "jge"
  | "jset"
  | "jne"
  | "jsgt"
  | "jsge"
  | "jlt"
  | "jle"
  | "jslt"
  | "jsle";

/** Atomic read-modify-write (and acquire/release) operations. */
export type AtomicOp =
  | "add"
  | "or"
  | "and"
  | "xor"
  | "xchg"
  | "cmpxchg"
  | "load_acq"
  | "store_rel";

/** Where an operand comes from: the immediate (`BPF_K`) or `src` (`BPF_X`). */
export type Source = "imm" | "reg";

/** `dst op= src` in 32 or 64 bits (class ALU / ALU64, except `BPF_END`). */
export interface AluInsn extends RawInsn {
  /** Which family of instruction this is. */
  readonly kind: "alu";
  /** True for class ALU64. */
  readonly alu64: boolean;
  /** The operation. */
  readonly op: AluOp;
  /** Whether the operand is the immediate or the `src` register. */
  readonly source: Source;
  /** For `movsx`: the width being sign-extended (8, 16 or 32), else 0. */
  readonly extendBits: 0 | 8 | 16 | 32;
}

/** Byte-order conversion: `le16/32/64`, `be16/32/64`, `bswap16/32/64`. */
export interface EndianInsn extends RawInsn {
  /** Which family of instruction this is. */
  readonly kind: "endian";
  /** `le` and `be` convert from host order (little-endian); `swap` always swaps. */
  readonly order: "le" | "be" | "swap";
  /** See the interface doc. */
  readonly bits: 16 | 32 | 64;
}

/** Unconditional jump: `ja` (16-bit offset) or `gotol` (32-bit imm). */
export interface JaInsn extends RawInsn {
  /** Which family of instruction this is. */
  readonly kind: "ja";
  /** True for `gotol` (class JMP32, offset in imm). */
  readonly long: boolean;
  /** Slot index jumped to: index + 1 + offset. */
  readonly target: number;
}

/** Conditional jump in 64 (JMP) or 32 bits (JMP32). */
export interface CondJmpInsn extends RawInsn {
  /** Which family of instruction this is. */
  readonly kind: "jcond";
  /** True for class JMP32 (compares the low 32 bits). */
  readonly jmp32: boolean;
  /** The operation. */
  readonly op: JmpOp;
  /** Whether the operand is the immediate or the `src` register. */
  readonly source: Source;
  /** Slot index jumped to when the condition holds. */
  readonly target: number;
}

/** `may_goto`: jumps when the program's loop budget is exhausted. */
export interface MayGotoInsn extends RawInsn {
  /** Which family of instruction this is. */
  readonly kind: "may_goto";
  /** Slot index jumped to. */
  readonly target: number;
}

/** A call: helper (`src` 0), local function (1), kfunc (2), or `callx` (0x8d). */
export interface CallInsn extends RawInsn {
  /** Which family of instruction this is. */
  readonly kind: "call";
  /** See the interface doc. */
  readonly callee: "helper" | "local" | "kfunc" | "reg";
  /** For local calls: the slot index of the callee; otherwise -1. */
  readonly target: number;
}

/** `exit`: return r0 from the current frame. */
export interface ExitInsn extends RawInsn {
  /** Which family of instruction this is. */
  readonly kind: "exit";
}

/** `lddw`: a 64-bit immediate, possibly a pseudo value (map, BTF id, function). */
export interface LdImm64Insn extends RawInsn {
  /** Which family of instruction this is. */
  readonly kind: "ld_imm64";
  /** The 64-bit immediate: low 32 bits from this slot, high from the next. */
  readonly imm64: bigint;
  /** Immediate of the second slot (high half, or an offset for map values). */
  readonly imm2: number;
}

/** Second slot of an `lddw`; carries its high half, never executed. */
export interface LdImm64HiInsn extends RawInsn {
  /** Which family of instruction this is. */
  readonly kind: "ld_imm64_hi";
}

/** `dst = *(size *)(src + off)`, zero- or sign-extending. */
export interface LoadInsn extends RawInsn {
  /** Which family of instruction this is. */
  readonly kind: "ldx";
  /** Access size in bytes. */
  readonly size: 1 | 2 | 4 | 8;
  /** See the interface doc. */
  readonly signExtend: boolean;
}

/** `*(size *)(dst + off) = imm` (class ST) or `= src` (class STX). */
export interface StoreInsn extends RawInsn {
  /** Which family of instruction this is. */
  readonly kind: "st" | "stx";
  /** Access size in bytes. */
  readonly size: 1 | 2 | 4 | 8;
}

/** Atomic operation on `*(size *)(dst + off)` with `src` (and r0 for cmpxchg). */
export interface AtomicInsn extends RawInsn {
  /** Which family of instruction this is. */
  readonly kind: "atomic";
  /** Access size in bytes. */
  readonly size: 1 | 2 | 4 | 8;
  /** The operation. */
  readonly op: AtomicOp;
  /** True when the old value is written back (to src, or r0 for cmpxchg). */
  readonly fetch: boolean;
}

/** Legacy packet load `ld_abs` / `ld_ind`: r0 = ntoh(*(size *)(skb + [src +] imm)). */
export interface PacketLoadInsn extends RawInsn {
  /** Which family of instruction this is. */
  readonly kind: "ld_abs" | "ld_ind";
  /** Access size in bytes. */
  readonly size: 1 | 2 | 4 | 8;
}

/** Any decoded instruction slot. */
export type Insn =
  | AluInsn
  | EndianInsn
  | JaInsn
  | CondJmpInsn
  | MayGotoInsn
  | CallInsn
  | ExitInsn
  | LdImm64Insn
  | LdImm64HiInsn
  | LoadInsn
  | StoreInsn
  | AtomicInsn
  | PacketLoadInsn;

/** Error in an instruction stream: which slot and why. */
export class IsaError extends Error {
  /** Slot index of the offending instruction (-1 when not about one slot). */
  readonly insnIndex: number;
  /** The reason without the index, e.g. `unknown opcode 8d`. */
  readonly reason: string;

  /** Builds the error; the message reads `insn N: reason`. */
  constructor(insnIndex: number, reason: string) {
    super(insnIndex >= 0 ? `insn ${insnIndex}: ${reason}` : reason);
    this.name = "IsaError";
    this.insnIndex = insnIndex;
    this.reason = reason;
  }
}
