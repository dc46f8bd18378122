/**
 * ALU semantics of the interpreter: hand-computed cases for every family
 * (RFC 9669 §4.1 edge rules), then a seeded differential run of every op
 * in both widths and both operand forms against the bigint model.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import {
  alu32i,
  alu32r,
  alu64i,
  alu64r,
  ALU_OPS,
  EDGES,
  exit,
  lddw,
  ldx,
  mov,
  movr,
  movsx32,
  movsx64,
  neg32,
  neg64,
  pair,
  type Part,
  r0Of,
  rng,
} from "./build.ts";
import { refAlu } from "./reference.ts";
import { compileProgram } from "../../lib/exec/compile.ts";
import { runProgram } from "../../lib/exec/run.ts";
import { decodeRaw } from "../../lib/isa/decode.ts";

const MIN64 = 0x8000000000000000n;
const ALL = 0xffffffffffffffffn;

/** r0 = a; r1 = b; <op>; exit. */
function binop(a: bigint, b: bigint, op: Part): bigint {
  return r0Of([lddw(0, a), lddw(1, b), op, exit()]);
}

Deno.test("ALU32 results are zero-extended", async (t) => {
  await t.step("add32 wraps and clears the high half", () => {
    assertEquals(r0Of([lddw(0, ALL), alu32i("add", 0, 1), exit()]), 0n);
  });
  await t.step("mov32 -1 is 0x00000000ffffffff", () => {
    assertEquals(
      r0Of([lddw(0, ALL), alu32i("mov", 0, -1), exit()]),
      0xffffffffn,
    );
  });
  await t.step("xor32 with 0 still clears bits 63..32", () => {
    assertEquals(
      r0Of([lddw(0, ALL), alu32i("xor", 0, 0), exit()]),
      0xffffffffn,
    );
  });
  await t.step("neg32 of 0x80000000 stays 0x80000000", () => {
    assertEquals(
      r0Of([lddw(0, 0xffffffff80000000n), neg32(0), exit()]),
      0x80000000n,
    );
  });
  await t.step("mov32 reg copies only the low half", () => {
    assertEquals(
      binop(0n, 0x1234567887654321n, alu32r("mov", 0, 1)),
      0x87654321n,
    );
  });
  await t.step("mul32 wraps modulo 2^32", () => {
    assertEquals(
      r0Of([mov(0, 0x10000), alu32i("mul", 0, 0x10001), exit()]),
      0x10000n,
    );
  });
});

Deno.test("64-bit add/sub/mul carry between the halves", async (t) => {
  await t.step("0xffffffff + 1 carries", () => {
    assertEquals(binop(0xffffffffn, 1n, alu64r("add", 0, 1)), 0x100000000n);
  });
  await t.step("0x100000000 - 1 borrows", () => {
    assertEquals(binop(0x100000000n, 1n, alu64r("sub", 0, 1)), 0xffffffffn);
  });
  await t.step("add of a negative immediate sign-extends it", () => {
    assertEquals(
      r0Of([mov(0, 5), alu64i("add", 0, -10), exit()]),
      0xfffffffffffffffbn,
    );
  });
  await t.step("sub of imm 0x80000000 subtracts -2^31", () => {
    assertEquals(
      r0Of([mov(0, 0), alu64i("sub", 0, 0x80000000 | 0), exit()]),
      0x80000000n,
    );
  });
  await t.step("(-1) * (-1) = 1", () => {
    assertEquals(binop(ALL, ALL, alu64r("mul", 0, 1)), 1n);
  });
  await t.step("0x100000001 squared = 0x200000001", () => {
    assertEquals(
      binop(0x100000001n, 0x100000001n, alu64r("mul", 0, 1)),
      0x200000001n,
    );
  });
  await t.step("0xffffffff * 0xffffffff = 0xfffffffe00000001", () => {
    assertEquals(
      binop(0xffffffffn, 0xffffffffn, alu64r("mul", 0, 1)),
      0xfffffffe00000001n,
    );
  });
  await t.step("neg64", () => {
    assertEquals(r0Of([mov(0, 1), neg64(0), exit()]), ALL);
    assertEquals(r0Of([mov(0, 0), neg64(0), exit()]), 0n);
    assertEquals(
      r0Of([lddw(0, 0x100000000n), neg64(0), exit()]),
      0xffffffff00000000n,
    );
  });
  await t.step("mov imm sign-extends", () => {
    assertEquals(r0Of([mov(0, -1), exit()]), ALL);
    assertEquals(r0Of([mov(0, 0x7fffffff), exit()]), 0x7fffffffn);
  });
});

Deno.test("division and modulo by zero", async (t) => {
  const dividend = 0xffffffff00000007n;
  await t.step("div64 / 0 = 0 and div32 / 0 = 0", () => {
    assertEquals(binop(dividend, 0n, alu64r("div", 0, 1)), 0n);
    assertEquals(binop(dividend, 0n, alu32r("div", 0, 1)), 0n);
  });
  await t.step("sdiv / 0 = 0, both widths", () => {
    assertEquals(binop(dividend, 0n, alu64r("sdiv", 0, 1)), 0n);
    assertEquals(binop(dividend, 0n, alu32r("sdiv", 0, 1)), 0n);
  });
  await t.step(
    "mod64 % 0 leaves dst; mod32 % 0 keeps the low half zero-extended",
    () => {
      assertEquals(binop(dividend, 0n, alu64r("mod", 0, 1)), dividend);
      assertEquals(binop(dividend, 0n, alu32r("mod", 0, 1)), 7n);
    },
  );
  await t.step("smod % 0 likewise", () => {
    assertEquals(binop(dividend, 0n, alu64r("smod", 0, 1)), dividend);
    assertEquals(binop(dividend, 0n, alu32r("smod", 0, 1)), 7n);
  });
  await t.step("a 64-bit divisor with a zero low half is not zero", () => {
    assertEquals(binop(0x500000000n, 0x100000000n, alu64r("div", 0, 1)), 5n);
  });
});

Deno.test("signed division overflow and truncation", async (t) => {
  await t.step("sdiv64 MIN / -1 = MIN; smod64 MIN % -1 = 0", () => {
    assertEquals(binop(MIN64, ALL, alu64r("sdiv", 0, 1)), MIN64);
    assertEquals(binop(MIN64, ALL, alu64r("smod", 0, 1)), 0n);
  });
  await t.step("sdiv32 MIN / -1 = MIN; smod32 MIN % -1 = 0", () => {
    assertEquals(
      binop(0x80000000n, 0xffffffffn, alu32r("sdiv", 0, 1)),
      0x80000000n,
    );
    assertEquals(binop(0x80000000n, 0xffffffffn, alu32r("smod", 0, 1)), 0n);
  });
  await t.step("-13 / 3 = -4 and -13 % 3 = -1 (truncating)", () => {
    const m13 = BigInt.asUintN(64, -13n);
    assertEquals(binop(m13, 3n, alu64r("sdiv", 0, 1)), BigInt.asUintN(64, -4n));
    assertEquals(binop(m13, 3n, alu64r("smod", 0, 1)), ALL);
    assertEquals(
      r0Of([mov(0, -13), alu32i("smod", 0, 3), exit()]),
      0xffffffffn,
    );
  });
  await t.step("13 % -3 = 1 and 13 / -3 = -4", () => {
    assertEquals(r0Of([mov(0, 13), alu64i("smod", 0, -3), exit()]), 1n);
    assertEquals(
      r0Of([mov(0, 13), alu64i("sdiv", 0, -3), exit()]),
      BigInt.asUintN(64, -4n),
    );
  });
  await t.step("unsigned div64 by imm -10 divides by 2^64-10", () => {
    assertEquals(r0Of([mov(0, -1), alu64i("div", 0, -10), exit()]), 1n);
  });
  await t.step("unsigned div32 by imm -10 divides by 2^32-10", () => {
    assertEquals(r0Of([mov(0, -1), alu32i("div", 0, -10), exit()]), 1n);
  });
});

Deno.test("64-bit division: every path of the half-word algorithm", async (t) => {
  const cases: [bigint, bigint, bigint, bigint][] = [
    [100n, 7n, 14n, 2n], // both below 2^32
    [ALL, 10n, 0x1999999999999999n, 5n], // 64 / 32
    [ALL, 0x100000000n, 0xffffffffn, 0xffffffffn], // 64 / 64
    [MIN64, ALL, 0n, MIN64], // divisor above dividend
    [ALL, 0x8000000000000000n, 1n, 0x7fffffffffffffffn], // top bit carries out
    [0xfedcba9876543210n, 0x123456789n, 0xe0000000n, 0x96543210n],
    [0xfedcba9876543210n, 0x89abcdefn, 0x1d9ead7d0n, 0x7d5326e0n], // 64 / 32, quotient above 2^32
  ];
  for (const [a, b, q, r] of cases) {
    await t.step(`0x${a.toString(16)} / 0x${b.toString(16)}`, () => {
      assertEquals(q * b + r, a); // the expectation itself is consistent
      assertEquals(binop(a, b, alu64r("div", 0, 1)), q);
      assertEquals(binop(a, b, alu64r("mod", 0, 1)), r);
    });
  }
});

Deno.test("shift counts are masked, including counts >= width from registers", async (t) => {
  await t.step("lsh64 by 65 shifts by 1; lsh32 by 33 shifts by 1", () => {
    assertEquals(binop(1n, 65n, alu64r("lsh", 0, 1)), 2n);
    assertEquals(binop(1n, 33n, alu32r("lsh", 0, 1)), 2n);
  });
  await t.step(
    "rsh64 by 64 shifts by 0; rsh32 by 32 keeps the low half",
    () => {
      assertEquals(
        binop(0x1234567890n, 64n, alu64r("rsh", 0, 1)),
        0x1234567890n,
      );
      assertEquals(binop(0x1234567890n, 32n, alu32r("rsh", 0, 1)), 0x34567890n);
    },
  );
  await t.step("arsh64 by 127 (= 63) of MIN gives -1", () => {
    assertEquals(binop(MIN64, 127n, alu64r("arsh", 0, 1)), ALL);
  });
  await t.step(
    "arsh32 by 63 (= 31) of 0x80000000 gives 0xffffffff, zero-extended",
    () => {
      assertEquals(binop(0x80000000n, 63n, alu32r("arsh", 0, 1)), 0xffffffffn);
    },
  );
  await t.step("64-bit shifts across the halves", () => {
    assertEquals(r0Of([mov(0, 1), alu64i("lsh", 0, 40), exit()]), 1n << 40n);
    assertEquals(
      r0Of([lddw(0, 0xabcd000000000000n), alu64i("rsh", 0, 48), exit()]),
      0xabcdn,
    );
    assertEquals(
      r0Of([lddw(0, MIN64), alu64i("arsh", 0, 40), exit()]),
      0xffffffffff800000n,
    );
    assertEquals(
      r0Of([lddw(0, 0x00000001_80000000n), alu64i("lsh", 0, 1), exit()]),
      0x300000000n,
    );
  });
});

Deno.test("movsx sign-extends 8/16/32 bits", async (t) => {
  const src = (v: bigint, op: Part) => r0Of([lddw(1, v), op, exit()]);
  await t.step("64-bit forms", () => {
    assertEquals(src(0x180n, movsx64(0, 1, 8)), 0xffffffffffffff80n);
    assertEquals(src(0x7fn, movsx64(0, 1, 8)), 0x7fn);
    assertEquals(src(0x18000n, movsx64(0, 1, 16)), 0xffffffffffff8000n);
    assertEquals(src(0x180000000n, movsx64(0, 1, 32)), 0xffffffff80000000n);
  });
  await t.step("32-bit forms zero the high half", () => {
    assertEquals(src(0x80n, movsx32(0, 1, 8)), 0xffffff80n);
    assertEquals(src(0x8000n, movsx32(0, 1, 16)), 0xffff8000n);
    assertEquals(src(0x7fffn, movsx32(0, 1, 16)), 0x7fffn);
  });
});

Deno.test("every ALU op, both widths and forms, matches the bigint model", async (t) => {
  const next = rng(0x5eeda1a0n);
  const operand = (): bigint => {
    const r = next();
    return (r & 3n) === 0n ? EDGES[Number(r >> 8n) % EDGES.length] : next();
  };
  for (const op of ALU_OPS) {
    for (const w32 of [false, true]) {
      const regForm = compileProgram(decodeRaw([
        ldx(8, 0, 1, 0),
        ldx(8, 2, 1, 8),
        (w32 ? alu32r : alu64r)(op, 0, 2),
        exit(),
      ]));
      await t.step(`${op}${w32 ? "32" : ""}`, () => {
        for (let i = 0; i < 150; i++) {
          const a = operand(), b = operand();
          const got = runProgram(regForm, { mem: pair(a, b) }).r0;
          assertEquals(
            runProgram(regForm, { mem: pair(a, b), engine: "jit" }).r0,
            got,
            "jit against interp",
          );
          assertEquals(
            got,
            refAlu(op, w32, a, b),
            `${op} 0x${a.toString(16)}, 0x${b.toString(16)}`,
          );
          const imm = Number(BigInt.asIntN(32, operand()));
          const immGot = r0Of([
            ldx(8, 0, 1, 0),
            (w32 ? alu32i : alu64i)(op, 0, imm),
            exit(),
          ], {
            mem: pair(a, 0n),
          });
          // ALU64 sign-extends imm; ALU32 uses its 32 bits
          const b2 = w32 ? BigInt(imm >>> 0) : BigInt.asUintN(64, BigInt(imm));
          assertEquals(
            immGot,
            refAlu(op, w32, a, maskImmShift(op, w32, b2)),
            `${op} imm ${imm}`,
          );
        }
      });
    }
  }
  await t.step("mov r0 from another register keeps all 64 bits", () => {
    assertEquals(
      r0Of([lddw(3, 0x8877665544332211n), movr(0, 3), exit()]),
      0x8877665544332211n,
    );
  });
});

/** Immediate shift counts are masked like register ones (RFC 9669). */
function maskImmShift(op: string, w32: boolean, b: bigint): bigint {
  return op === "lsh" || op === "rsh" || op === "arsh"
    ? b & (w32 ? 31n : 63n)
    : b;
}
