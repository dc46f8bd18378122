/**
 * Loads, stores, byte swaps and atomics through the region memory model,
 * with hand-computed results.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import {
  alu64i,
  atomic,
  endian,
  exit,
  lddw,
  ldx,
  ldxs,
  mov,
  movr,
  type Part,
  r0Of,
  run,
  st,
  stx,
} from "./build.ts";
import {
  BPF_ADD,
  BPF_AND,
  BPF_CMPXCHG,
  BPF_FETCH,
  BPF_LOAD_ACQ,
  BPF_OR,
  BPF_STORE_REL,
  BPF_XCHG,
  BPF_XOR,
} from "../../lib/isa/opcodes.ts";

Deno.test("loads and stores on mem are little-endian and may be unaligned", async (t) => {
  await t.step("stx of each width at odd offsets lands byte by byte", () => {
    const result = run([
      lddw(2, 0x8877665544332211n),
      stx(1, 1, 2, 0),
      stx(2, 1, 2, 1),
      stx(4, 1, 2, 3),
      stx(8, 1, 2, 7),
      mov(0, 0),
      exit(),
    ], { mem: new Uint8Array(16) });
    assertEquals(
      [...result.memOut!],
      [
        0x11,
        0x11,
        0x22,
        0x11,
        0x22,
        0x33,
        0x44,
        0x11,
        0x22,
        0x33,
        0x44,
        0x55,
        0x66,
        0x77,
        0x88,
        0,
      ],
    );
  });
  await t.step("the caller's input is copied, not written", () => {
    const input = new Uint8Array([1, 2, 3, 4]);
    run([st(1, 1, 0, 9), mov(0, 0), exit()], { mem: input });
    assertEquals([...input], [1, 2, 3, 4]);
  });
  await t.step("ldx of each width zero-extends, r2 holds the length", () => {
    const mem = new Uint8Array([
      0xff,
      0xfe,
      0xfd,
      0xfc,
      0xfb,
      0xfa,
      0xf9,
      0xf8,
      0xf7,
    ]);
    assertEquals(r0Of([ldx(1, 0, 1, 1), exit()], { mem }), 0xfen);
    assertEquals(r0Of([ldx(2, 0, 1, 1), exit()], { mem }), 0xfdfen);
    assertEquals(r0Of([ldx(4, 0, 1, 1), exit()], { mem }), 0xfbfcfdfen);
    assertEquals(r0Of([ldx(8, 0, 1, 1), exit()], { mem }), 0xf7f8f9fafbfcfdfen);
    assertEquals(r0Of([movr(0, 2), exit()], { mem }), 9n);
  });
  await t.step("sign-extending loads", () => {
    const mem = new Uint8Array([
      0x80,
      0x00,
      0x00,
      0x80,
      0x7f,
      0x7f,
      0x00,
      0x00,
    ]);
    assertEquals(
      r0Of([ldxs(1, 0, 1, 0), exit()], { mem }),
      0xffffffffffffff80n,
    );
    assertEquals(r0Of([ldxs(1, 0, 1, 4), exit()], { mem }), 0x7fn);
    assertEquals(
      r0Of([ldxs(2, 0, 1, 2), exit()], { mem }),
      0xffffffffffff8000n,
    );
    assertEquals(r0Of([ldxs(2, 0, 1, 4), exit()], { mem }), 0x7f7fn);
    assertEquals(
      r0Of([ldxs(4, 0, 1, 0), exit()], { mem }),
      0xffffffff80000080n,
    );
    assertEquals(r0Of([ldxs(4, 0, 1, 4), exit()], { mem }), 0x7f7fn);
  });
  await t.step("st imm: stdw sign-extends, sth/stb truncate", () => {
    assertEquals(
      r0Of([st(8, 10, -8, -2), ldx(8, 0, 10, -8), exit()]),
      0xfffffffffffffffen,
    );
    assertEquals(
      r0Of([
        st(8, 10, -8, 0),
        st(2, 10, -8, 0x12345),
        ldx(8, 0, 10, -8),
        exit(),
      ]),
      0x2345n,
    );
    assertEquals(
      r0Of([st(8, 10, -8, 0), st(1, 10, -7, -1), ldx(8, 0, 10, -8), exit()]),
      0xff00n,
    );
  });
  await t.step(
    "a pointer moved below the region start and back still reaches it",
    () => {
      // r1 = r10 - 520 (8 below stack[0]); *(u64 *)(r1 + 16) is stack offset 8
      assertEquals(
        r0Of([
          movr(1, 10),
          alu64i("add", 1, -520),
          st(8, 1, 16, 9),
          ldx(8, 0, 1, 16),
          exit(),
        ]),
        9n,
      );
    },
  );
  await t.step("pointer arithmetic on r10 keeps addressing the stack", () => {
    // r1 = r10 - 16; *(u64 *)(r1 + 8) = 7; r0 = *(u64 *)(r10 - 8)
    assertEquals(
      r0Of([
        movr(1, 10),
        alu64i("add", 1, -16),
        st(8, 1, 8, 7),
        ldx(8, 0, 10, -8),
        exit(),
      ]),
      7n,
    );
  });
});

Deno.test("byte swaps: le, be and bswap", async (t) => {
  const value = lddw(0, 0x0102030405060708n);
  const cases: [Part, bigint][] = [
    [endian("le", 0, 16), 0x0708n],
    [endian("le", 0, 32), 0x05060708n],
    [endian("le", 0, 64), 0x0102030405060708n],
    [endian("be", 0, 16), 0x0807n],
    [endian("be", 0, 32), 0x08070605n],
    [endian("be", 0, 64), 0x0807060504030201n],
    [endian("swap", 0, 16), 0x0807n],
    [endian("swap", 0, 32), 0x08070605n],
    [endian("swap", 0, 64), 0x0807060504030201n],
  ];
  for (const [op, expected] of cases) {
    const insn = op as { code: number; imm: number };
    await t.step(`opcode 0x${insn.code.toString(16)} imm ${insn.imm}`, () => {
      assertEquals(r0Of([value, op, exit()]), expected);
    });
  }
});

/** Runs an atomic on the stack slot [r10-8] and returns memory, src (r3) and r0. */
function atomicRun(
  size: 4 | 8,
  op: number,
  memory: bigint,
  src: bigint,
  r0: bigint,
): { mem: bigint; src: bigint; r0: bigint } {
  const state = run([
    lddw(2, memory),
    stx(8, 10, 2, -8),
    lddw(3, src),
    lddw(0, r0),
    atomic(size, op, 10, 3, -8),
    ldx(8, 4, 10, -8),
    exit(),
  ]).state;
  return { mem: state.getReg(4), src: state.getReg(3), r0: state.getReg(0) };
}

Deno.test("atomics, 64-bit", async (t) => {
  const M = 0x00000001ffffffffn, S = 0x0000000100000001n, R0 = 0x1234n;
  const cases: [string, number, bigint][] = [
    ["add", BPF_ADD, 0x0000000300000000n],
    ["or", BPF_OR, 0x00000001ffffffffn],
    ["and", BPF_AND, 0x0000000100000001n],
    ["xor", BPF_XOR, 0x00000000fffffffen],
  ];
  for (const [name, op, result] of cases) {
    await t.step(`lock ${name}: memory updated, src kept`, () => {
      assertEquals(atomicRun(8, op, M, S, R0), { mem: result, src: S, r0: R0 });
    });
    await t.step(`lock fetch ${name}: src receives the old value`, () => {
      assertEquals(atomicRun(8, op | BPF_FETCH, M, S, R0), {
        mem: result,
        src: M,
        r0: R0,
      });
    });
  }
  await t.step("xchg swaps memory and src", () => {
    assertEquals(atomicRun(8, BPF_XCHG, M, S, R0), { mem: S, src: M, r0: R0 });
  });
  await t.step("cmpxchg success: memory = src, r0 = old", () => {
    assertEquals(atomicRun(8, BPF_CMPXCHG, M, S, M), { mem: S, src: S, r0: M });
  });
  await t.step(
    "cmpxchg failure (high halves differ): memory kept, r0 = old",
    () => {
      assertEquals(atomicRun(8, BPF_CMPXCHG, M, S, 0xffffffffn), {
        mem: M,
        src: S,
        r0: M,
      });
    },
  );
});

Deno.test("atomics, 32-bit: the upper stack word is untouched, fetched values zero-extended", async (t) => {
  // memory [r10-8] = 0x77777777_ffffffff: the 32-bit op works on the low word
  const M = 0x77777777ffffffffn, S = 0xaaaaaaaa00000001n, R0 = 0x1234n;
  const high = 0x7777777700000000n;
  const cases: [string, number, bigint][] = [
    ["add32", BPF_ADD, 0x00000000n],
    ["or32", BPF_OR, 0xffffffffn],
    ["and32", BPF_AND, 0x00000001n],
    ["xor32", BPF_XOR, 0xfffffffen],
  ];
  for (const [name, op, low] of cases) {
    await t.step(`lock ${name}`, () => {
      assertEquals(atomicRun(4, op, M, S, R0), {
        mem: high | low,
        src: S,
        r0: R0,
      });
    });
    await t.step(`lock fetch ${name}`, () => {
      assertEquals(atomicRun(4, op | BPF_FETCH, M, S, R0), {
        mem: high | low,
        src: 0xffffffffn,
        r0: R0,
      });
    });
  }
  await t.step("xchg32", () => {
    assertEquals(atomicRun(4, BPF_XCHG, M, S, R0), {
      mem: high | 1n,
      src: 0xffffffffn,
      r0: R0,
    });
  });
  await t.step("cmpxchg32 success compares only the low half of r0", () => {
    assertEquals(atomicRun(4, BPF_CMPXCHG, M, S, 0xdeadbeefffffffffn), {
      mem: high | 1n,
      src: S,
      r0: 0xffffffffn,
    });
  });
  await t.step(
    "cmpxchg32 failure: memory kept, r0 = old, zero-extended",
    () => {
      assertEquals(atomicRun(4, BPF_CMPXCHG, M, S, 0x100000000n), {
        mem: M,
        src: S,
        r0: 0xffffffffn,
      });
    },
  );
});

Deno.test("load-acquire and store-release of every width", async (t) => {
  for (const size of [1, 2, 4, 8] as const) {
    await t.step(`${size} byte(s)`, () => {
      const bits = BigInt(size * 8);
      const stored = 0x8182838485868788n & ((1n << bits) - 1n);
      const r0 = r0Of([
        st(8, 10, -8, 0),
        lddw(2, 0x8182838485868788n),
        atomic(size, BPF_STORE_REL, 10, 2, -8),
        atomic(size, BPF_LOAD_ACQ, 0, 10, -8),
        exit(),
      ]);
      assertEquals(r0, stored);
    });
  }
});
