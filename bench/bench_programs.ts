/**
 * The four hand-assembled programs the interpreter and JIT benchmarks time
 * (bench/interp_bench.ts, bench/jit_bench.ts): ALU, memory, local calls and
 * helper calls, each retiring a known number of instructions, given beside
 * each builder.
 * @module
 */
import { rawInsn } from "../lib/isa/decode.ts";
import type { RawInsn } from "../lib/isa/insn.ts";

/** Loop iterations of every program here. */
export const ITERATIONS = 100_000;

// Tiny raw builders (the benchmark must not depend on the assembler).
const mov = (d: number, imm: number): RawInsn => rawInsn(0xb7, d, 0, 0, imm);
const movr = (d: number, s: number): RawInsn => rawInsn(0xbf, d, s, 0, 0);
const alu = (code: number, d: number, s: number, imm = 0): RawInsn =>
  rawInsn(code, d, s, 0, imm);
const exit = (): RawInsn => rawInsn(0x95, 0, 0, 0, 0);

/** ALU loop: 2 setup + 12 per iteration + 1 exit. */
export function aluLoop(): RawInsn[] {
  return [
    mov(0, 1),
    mov(1, ITERATIONS),
    // loop:
    alu(0x0f, 0, 1), // r0 += r1
    alu(0x27, 0, 0, 0x9e3779b9 | 0), // r0 *= imm
    movr(2, 0),
    alu(0x77, 2, 0, 13), // r2 >>= 13
    alu(0xaf, 0, 2), // r0 ^= r2
    alu(0x67, 2, 0, 7), // r2 <<= 7
    alu(0x0c, 3, 2), // w3 += w2
    alu(0x57, 3, 0, 0xffff), // r3 &= 0xffff
    alu(0x4f, 0, 3), // r0 |= r3
    alu(0xc7, 2, 0, 3), // r2 s>>= 3
    alu(0x17, 1, 0, 1), // r1 -= 1
    rawInsn(0x55, 1, 0, -12, 0), // if r1 != 0 goto loop
    exit(),
  ];
}

/** Memory loop over the stack and `mem`: 3 setup + 12 per iteration + 1 exit. */
export function memoryLoop(): RawInsn[] {
  return [
    mov(0, 0),
    mov(3, ITERATIONS),
    mov(4, 7),
    // loop:
    rawInsn(0x7b, 10, 3, -8, 0), // *(u64 *)(r10 - 8) = r3
    rawInsn(0x79, 5, 10, -8, 0), // r5 = *(u64 *)(r10 - 8)
    rawInsn(0x63, 1, 5, 4, 0), // *(u32 *)(r1 + 4) = r5
    rawInsn(0x61, 6, 1, 4, 0), // r6 = *(u32 *)(r1 + 4)
    rawInsn(0x73, 10, 4, -16, 0), // *(u8 *)(r10 - 16) = r4
    rawInsn(0x71, 7, 10, -16, 0), // r7 = *(u8 *)(r10 - 16)
    rawInsn(0x7a, 1, 0, 8, 42), // *(u64 *)(r1 + 8) = 42
    rawInsn(0x79, 8, 1, 8, 0), // r8 = *(u64 *)(r1 + 8)
    alu(0x0f, 0, 6),
    alu(0x0f, 0, 7),
    alu(0x17, 3, 0, 1),
    rawInsn(0x55, 3, 0, -12, 0), // if r3 != 0 goto loop
    exit(),
  ];
}

/**
 * Calls: per iteration the main loop (5 insns) calls `f` (5 insns), which
 * calls helper 5 and returns: 2 setup + 10 per iteration + 2 at the end.
 */
export function callLoop(): RawInsn[] {
  return [
    mov(6, ITERATIONS),
    mov(7, 0),
    // loop:
    movr(1, 6),
    rawInsn(0x85, 0, 1, 0, 5), // call local f (slot 9)
    alu(0x0f, 7, 0), // r7 += r0
    alu(0x17, 6, 0, 1),
    rawInsn(0x55, 6, 0, -5, 0), // if r6 != 0 goto loop
    movr(0, 7),
    exit(),
    // f:
    movr(6, 1),
    rawInsn(0x85, 0, 0, 0, 5), // call bpf_ktime_get_ns
    alu(0x57, 0, 0, 1),
    alu(0x0f, 0, 6),
    exit(),
  ];
}

/** Call-heavy: a helper call in every 4 instructions (2 setup + 4 per iteration + 2). */
export function helperLoop(): RawInsn[] {
  return [
    mov(6, ITERATIONS),
    mov(7, 0),
    // loop:
    rawInsn(0x85, 0, 0, 0, 5), // r0 = bpf_ktime_get_ns()
    alu(0x0f, 7, 0), // r7 += r0
    alu(0x17, 6, 0, 1), // r6 -= 1
    rawInsn(0x55, 6, 0, -4, 0), // if r6 != 0 goto loop
    movr(0, 7),
    exit(),
  ];
}
