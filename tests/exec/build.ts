/**
 * Test-only instruction builders on top of `rawInsn` + `decodeRaw`, so the
 * interpreter tests do not depend on the assembler. Each builder returns
 * one raw slot (or two for `lddw`); `program()` flattens and decodes.
 * @module
 */
import { decodeRaw, rawInsn } from "../../lib/isa/decode.ts";
import type { Insn, RawInsn } from "../../lib/isa/insn.ts";
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import { compileProgram } from "../../lib/exec/compile.ts";
import { ExecError, MemoryFault } from "../../lib/exec/fault.ts";
import { REGION_BASE_HI } from "../../lib/exec/memory.ts";
import { ENGINES } from "../../lib/exec/jit/step_jit.ts";
import {
  type RunOptions,
  runProgram,
  type RunResult,
} from "../../lib/exec/run.ts";

/** A slot or an `lddw` pair. */
export type Part = RawInsn | RawInsn[];

const ALU: Record<string, [number, number]> = {
  add: [0x00, 0],
  sub: [0x10, 0],
  mul: [0x20, 0],
  div: [0x30, 0],
  sdiv: [0x30, 1],
  or: [0x40, 0],
  and: [0x50, 0],
  lsh: [0x60, 0],
  rsh: [0x70, 0],
  mod: [0x90, 0],
  smod: [0x90, 1],
  xor: [0xa0, 0],
  mov: [0xb0, 0],
  arsh: [0xc0, 0],
}; // deno-fmt-ignore

const JMP: Record<string, number> = {
  jeq: 0x10, jgt: 0x20, jge: 0x30, jset: 0x40, jne: 0x50, jsgt: 0x60, jsge: 0x70,
  jlt: 0xa0, jle: 0xb0, jslt: 0xc0, jsle: 0xd0,
}; // deno-fmt-ignore

const SIZE: Record<number, number> = { 1: 0x10, 2: 0x08, 4: 0x00, 8: 0x18 };

/** ALU operation names accepted by the builders. */
export const ALU_OPS: readonly string[] = Object.keys(ALU);
/** Conditional jump names accepted by the builders. */
export const JMP_OPS: readonly string[] = Object.keys(JMP);

/** `dst op= imm`, 64-bit. */
export const alu64i = (op: string, d: number, imm: number): RawInsn =>
  rawInsn(0x07 | ALU[op][0], d, 0, ALU[op][1], imm);
/** `dst op= src`, 64-bit. */
export const alu64r = (op: string, d: number, s: number): RawInsn =>
  rawInsn(0x0f | ALU[op][0], d, s, ALU[op][1], 0);
/** `wdst op= imm`, 32-bit. */
export const alu32i = (op: string, d: number, imm: number): RawInsn =>
  rawInsn(0x04 | ALU[op][0], d, 0, ALU[op][1], imm);
/** `wdst op= wsrc`, 32-bit. */
export const alu32r = (op: string, d: number, s: number): RawInsn =>
  rawInsn(0x0c | ALU[op][0], d, s, ALU[op][1], 0);
/** `dst = imm` (sign-extended). */
export const mov = (d: number, imm: number): RawInsn => alu64i("mov", d, imm);
/** `dst = src`. */
export const movr = (d: number, s: number): RawInsn => alu64r("mov", d, s);
/** `dst = -dst`. */
export const neg64 = (d: number): RawInsn => rawInsn(0x87, d, 0, 0, 0);
/** `wdst = -wdst`. */
export const neg32 = (d: number): RawInsn => rawInsn(0x84, d, 0, 0, 0);
/** `dst = (s<bits>)src`, 64-bit. */
export const movsx64 = (d: number, s: number, bits: 8 | 16 | 32): RawInsn =>
  rawInsn(0xbf, d, s, bits, 0);
/** `wdst = (s<bits>)wsrc`, 32-bit. */
export const movsx32 = (d: number, s: number, bits: 8 | 16): RawInsn =>
  rawInsn(0xbc, d, s, bits, 0);
/** le16/32/64, be16/32/64, bswap16/32/64. */
export const endian = (
  order: "le" | "be" | "swap",
  d: number,
  bits: 16 | 32 | 64,
): RawInsn =>
  rawInsn(
    order === "swap" ? 0xd7 : order === "le" ? 0xd4 : 0xdc,
    d,
    0,
    0,
    bits,
  );
/** `dst = imm64` (two slots). */
export const lddw = (d: number, value: bigint): RawInsn[] => {
  const v = BigInt.asUintN(64, value);
  return [
    rawInsn(0x18, d, 0, 0, Number(v & 0xffffffffn)),
    rawInsn(0, 0, 0, 0, Number(v >> 32n)),
  ];
};
/** `dst = *(u<size> *)(src + off)`. */
export const ldx = (
  size: 1 | 2 | 4 | 8,
  d: number,
  s: number,
  off: number,
): RawInsn => rawInsn(0x61 | SIZE[size], d, s, off, 0);
/** `dst = *(s<size> *)(src + off)`. */
export const ldxs = (
  size: 1 | 2 | 4,
  d: number,
  s: number,
  off: number,
): RawInsn => rawInsn(0x81 | SIZE[size], d, s, off, 0);
/** `*(u<size> *)(dst + off) = imm`. */
export const st = (
  size: 1 | 2 | 4 | 8,
  d: number,
  off: number,
  imm: number,
): RawInsn => rawInsn(0x62 | SIZE[size], d, 0, off, imm);
/** `*(u<size> *)(dst + off) = src`. */
export const stx = (
  size: 1 | 2 | 4 | 8,
  d: number,
  s: number,
  off: number,
): RawInsn => rawInsn(0x63 | SIZE[size], d, s, off, 0);
/** Atomic operation `imm` (BPF_ADD …, BPF_CMPXCHG, load-acquire …) on `dst + off`. */
export const atomic = (
  size: 1 | 2 | 4 | 8,
  op: number,
  d: number,
  s: number,
  off: number,
): RawInsn => rawInsn(0xc3 | SIZE[size], d, s, off, op);
/** `if dst op imm goto +off` (64-bit). */
export const jmpi = (
  op: string,
  d: number,
  imm: number,
  off: number,
): RawInsn => rawInsn(0x05 | JMP[op], d, 0, off, imm);
/** `if dst op src goto +off` (64-bit). */
export const jmpr = (op: string, d: number, s: number, off: number): RawInsn =>
  rawInsn(0x0d | JMP[op], d, s, off, 0);
/** `if wdst op imm goto +off` (JMP32). */
export const jmp32i = (
  op: string,
  d: number,
  imm: number,
  off: number,
): RawInsn => rawInsn(0x06 | JMP[op], d, 0, off, imm);
/** `if wdst op wsrc goto +off` (JMP32). */
export const jmp32r = (
  op: string,
  d: number,
  s: number,
  off: number,
): RawInsn => rawInsn(0x0e | JMP[op], d, s, off, 0);
/** `goto +off`. */
export const ja = (off: number): RawInsn => rawInsn(0x05, 0, 0, off, 0);
/** `gotol +imm`. */
export const gotol = (imm: number): RawInsn => rawInsn(0x06, 0, 0, 0, imm);
/** `may_goto +off`. */
export const mayGoto = (off: number): RawInsn => rawInsn(0xe5, 0, 0, off, 0);
/** `call helper#id`. */
export const call = (id: number): RawInsn => rawInsn(0x85, 0, 0, 0, id);
/** `call pc+rel` (local function). */
export const callLocal = (rel: number): RawInsn => rawInsn(0x85, 0, 1, 0, rel);
/** `call kfunc#btfId`. */
export const callKfunc = (btfId: number): RawInsn =>
  rawInsn(0x85, 0, 2, 0, btfId);
/** `callx reg` (helper id in the register; bpf_conformance encoding). */
export const callx = (reg: number): RawInsn => rawInsn(0x8d, reg, 0, 0, 0);
/** `exit`. */
export const exit = (): RawInsn => rawInsn(0x95, 0, 0, 0, 0);
/** `r0 = ntoh(*(u<size> *)(skb + imm))`. */
export const ldAbs = (size: 1 | 2 | 4, imm: number): RawInsn =>
  rawInsn(0x20 | SIZE[size], 0, 0, 0, imm);
/** `r0 = ntoh(*(u<size> *)(skb + src + imm))`. */
export const ldInd = (size: 1 | 2 | 4, s: number, imm: number): RawInsn =>
  rawInsn(0x40 | SIZE[size], 0, s, 0, imm);

/** Flattens parts into decoded instructions. */
export function program(...parts: Part[]): Insn[] {
  return decodeRaw(parts.flat());
}

/**
 * Decodes and runs; returns the result. Unless `opts.engine` picks one, the
 * program runs on every engine, from one compiled program, and the runs
 * must end identically — r0, steps, pc, registers, the `mem` bytes after,
 * or the same error (class, slot and message) — so every test written
 * with `run` / `r0Of` checks the JIT against the interpreter too.
 */
export function run(parts: Part[], opts: RunOptions = {}): RunResult {
  if (opts.engine !== undefined) return runProgram(program(...parts), opts);
  const compiled = compileProgram(program(...parts), opts);
  const outcomes = ENGINES.map((engine) => {
    try {
      return runProgram(compiled, { ...opts, engine });
    } catch (e) {
      return e instanceof MemoryFault || e instanceof ExecError
        ? e
        : new Error(`not a run error: ${e}`);
    }
  });
  const [first, ...others] = outcomes.map(describeOutcome);
  for (const [i, other] of others.entries()) {
    assertEquals(other, first, `${ENGINES[i + 1]} against ${ENGINES[0]}`);
  }
  const reference = outcomes[0];
  if (reference instanceof Error) throw reference;
  return reference;
}

/** Everything observable about how a run ended, for comparing engines. */
export function describeOutcome(outcome: RunResult | Error): string {
  if (outcome instanceof Error) {
    const at = outcome instanceof MemoryFault || outcome instanceof ExecError
      ? outcome.insnIndex
      : -1;
    return `${outcome.constructor.name} at ${at}: ${outcome.message}`;
  }
  const { steps, memOut, state } = outcome;
  // In a caller's space each run maps its own stack: a pointer is compared
  // as region name + offset, not as the address of that run's region.
  const regs = Array.from({ length: 11 }, (_, r) => {
    const lo = state.regs[2 * r], hi = state.regs[2 * r + 1];
    const region = state.mem.regionById((hi - REGION_BASE_HI) >>> 0);
    return region === undefined
      ? `${lo >>> 0}:${hi >>> 0}`
      : `${region.name}+${lo}`;
  });
  return `steps=${steps} pc=${state.pc} depth=${state.depth} ` +
    `regs=${regs.join(",")} mem=${memOut?.join(",") ?? "-"}`;
}

/** Runs and returns r0. */
export function r0Of(parts: Part[], opts: RunOptions = {}): bigint {
  return run(parts, opts).r0;
}

/** 16 bytes holding two little-endian u64 values (a at 0, b at 8). */
export function pair(a: bigint, b: bigint): Uint8Array {
  const bytes = new Uint8Array(16);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(0, BigInt.asUintN(64, a), true);
  view.setBigUint64(8, BigInt.asUintN(64, b), true);
  return bytes;
}

/** Deterministic xorshift64* generator for differential tests (no Math.random). */
export function rng(seed: bigint): () => bigint {
  let x = BigInt.asUintN(64, seed) || 1n;
  return () => {
    x ^= x >> 12n;
    x ^= BigInt.asUintN(64, x << 25n);
    x ^= x >> 27n;
    return BigInt.asUintN(64, x * 0x2545f4914f6cdd1dn);
  };
}

/** Edge values that random operands are mixed with. */
export const EDGES: readonly bigint[] = [
  0n,
  1n,
  2n,
  0x7fn,
  0x80n,
  0xffn,
  0x7fffffffn,
  0x80000000n,
  0xffffffffn,
  0x100000000n,
  0x7fffffffffffffffn,
  0x8000000000000000n,
  0xffffffffffffffffn,
  0xfffffffffffffffen,
  0xffffffff00000000n,
  0x00000001fffffffen,
  63n,
  64n,
  31n,
  32n,
]; // deno-fmt-ignore
