/**
 * Name-to-bits tables shared by both assembler dialects, and line splitting.
 * @module
 */
import {
  BPF_ADD,
  BPF_AND,
  BPF_ARSH,
  BPF_B,
  BPF_DIV,
  BPF_DW,
  BPF_H,
  BPF_JEQ,
  BPF_JGE,
  BPF_JGT,
  BPF_JLE,
  BPF_JLT,
  BPF_JNE,
  BPF_JSET,
  BPF_JSGE,
  BPF_JSGT,
  BPF_JSLE,
  BPF_JSLT,
  BPF_LSH,
  BPF_MOD,
  BPF_MOV,
  BPF_MUL,
  BPF_NEG,
  BPF_OR,
  BPF_RSH,
  BPF_SUB,
  BPF_W,
  BPF_XOR,
} from "./opcodes.ts";

/** ALU operation bits by conformance-dialect name. */
export const ALU_OP_BITS: ReadonlyMap<string, number> = new Map([
  ["add", BPF_ADD],
  ["sub", BPF_SUB],
  ["mul", BPF_MUL],
  ["div", BPF_DIV],
  ["or", BPF_OR],
  ["and", BPF_AND],
  ["lsh", BPF_LSH],
  ["rsh", BPF_RSH],
  ["neg", BPF_NEG],
  ["mod", BPF_MOD],
  ["xor", BPF_XOR],
  ["mov", BPF_MOV],
  ["arsh", BPF_ARSH],
]);

/** Conditional jump bits by conformance-dialect name. */
export const JMP_OP_BITS: ReadonlyMap<string, number> = new Map([
  ["jeq", BPF_JEQ],
  ["jgt", BPF_JGT],
  ["jge", BPF_JGE],
  ["jset", BPF_JSET],
  ["jne", BPF_JNE],
  ["jsgt", BPF_JSGT],
  ["jsge", BPF_JSGE],
  ["jlt", BPF_JLT],
  ["jle", BPF_JLE],
  ["jslt", BPF_JSLT],
  ["jsle", BPF_JSLE],
]);

/** Atomic read-modify-write operation bits (imm without `BPF_FETCH`). */
export const ATOMIC_OP_BITS: ReadonlyMap<string, number> = new Map([
  ["add", BPF_ADD],
  ["or", BPF_OR],
  ["and", BPF_AND],
  ["xor", BPF_XOR],
]);

/** Size bits by conformance-dialect suffix (`ldxb` … `ldxdw`). */
export const SIZE_BITS: ReadonlyMap<string, number> = new Map([
  ["b", BPF_B],
  ["h", BPF_H],
  ["w", BPF_W],
  ["dw", BPF_DW],
]);

/** Kernel-syntax compound assignments (`bpf_alu_string`, `bpf_alu_sign_string`) → op bits and `off`. */
export const ALU_ASSIGN_OPS: ReadonlyMap<string, { op: number; off: number }> =
  new Map([
    ["+=", { op: BPF_ADD, off: 0 }],
    ["-=", { op: BPF_SUB, off: 0 }],
    ["*=", { op: BPF_MUL, off: 0 }],
    ["/=", { op: BPF_DIV, off: 0 }],
    ["|=", { op: BPF_OR, off: 0 }],
    ["&=", { op: BPF_AND, off: 0 }],
    ["<<=", { op: BPF_LSH, off: 0 }],
    [">>=", { op: BPF_RSH, off: 0 }],
    ["%=", { op: BPF_MOD, off: 0 }],
    ["^=", { op: BPF_XOR, off: 0 }],
    ["s>>=", { op: BPF_ARSH, off: 0 }],
    ["s/=", { op: BPF_DIV, off: 1 }],
    ["s%=", { op: BPF_MOD, off: 1 }],
  ]);

/** Kernel-syntax comparison operators (`bpf_jmp_string`) → jump op bits. */
export const JMP_COMPARE_OPS: ReadonlyMap<string, number> = new Map([
  ["==", BPF_JEQ],
  ["!=", BPF_JNE],
  [">", BPF_JGT],
  [">=", BPF_JGE],
  ["<", BPF_JLT],
  ["<=", BPF_JLE],
  ["&", BPF_JSET],
  ["s>", BPF_JSGT],
  ["s>=", BPF_JSGE],
  ["s<", BPF_JSLT],
  ["s<=", BPF_JSLE],
]);

/** Kernel-syntax access types (`bpf_ldst_string`, `bpf_ldsx_string`) → size bits and signedness. */
export const ACCESS_TYPES: ReadonlyMap<
  string,
  { size: number; bytes: number; signed: boolean }
> = new Map([
  ["u8", { size: BPF_B, bytes: 1, signed: false }],
  ["u16", { size: BPF_H, bytes: 2, signed: false }],
  ["u32", { size: BPF_W, bytes: 4, signed: false }],
  ["u64", { size: BPF_DW, bytes: 8, signed: false }],
  ["s8", { size: BPF_B, bytes: 1, signed: true }],
  ["s16", { size: BPF_H, bytes: 2, signed: true }],
  ["s32", { size: BPF_W, bytes: 4, signed: true }],
]);

/** One input line with its 1-based number; a trailing `\r` is dropped. */
export interface NumberedLine {
  /** 1-based line number. */
  readonly line: number;
  /** The line's text. */
  readonly text: string;
}

/** Splits text into numbered lines (accepting `\n` and `\r\n` endings). */
export function splitLines(text: string): NumberedLine[] {
  return text.split("\n").map((raw, i) => ({
    line: i + 1,
    text: raw.endsWith("\r") ? raw.slice(0, -1) : raw,
  }));
}
