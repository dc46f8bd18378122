// Tests for lib/verifier/branch.ts. Strings marked "kernel" are the states
// the Linux 6.18.44 verifier printed (log_level 2) on each side of the same
// compare; the seeded property test checks decisions and refinements against
// concrete comparisons.
import assert from "node:assert/strict";
import type { JmpOp } from "../../lib/isa/insn.ts";
import { regBoundsSync } from "../../lib/verifier/bounds_sync.ts";
import {
  flipOpcode,
  isBranchTaken,
  isScalarBranchTaken,
  regSetMinMax,
  regsRefineCondOp,
  revOpcode,
} from "../../lib/verifier/branch.ts";
import {
  constScalar,
  copyScalar,
  formatScalar,
  type Scalar,
  scalarContains,
  unknownScalar,
} from "../../lib/verifier/scalar.ts";
import { adjustScalarImm } from "../../lib/verifier/scalar_alu.ts";
import { tnum, U64_MAX } from "../../lib/verifier/tnum.ts";
import { seeded } from "./seeded.ts";

/** Both sides of `if (reg op imm)`: [taken, fall-through]. */
function sides(
  reg: Scalar,
  op: JmpOp,
  imm: bigint,
  jmp32 = false,
): [Scalar, Scalar, string[]] {
  const t = copyScalar(reg);
  const f = copyScalar(reg);
  const msgs = regSetMinMax(
    t,
    constScalar(imm),
    f,
    constScalar(imm),
    op,
    jmp32,
  );
  return [t, f, msgs];
}
/** Keeps one side of `if (reg op imm)` in place, like following a path. */
function follow(
  reg: Scalar,
  op: JmpOp,
  imm: bigint,
  taken: boolean,
  jmp32 = false,
): Scalar {
  const [t, f] = sides(reg, op, imm, jmp32);
  return Object.assign(reg, taken ? t : f);
}

Deno.test("is_branch_taken: decisions", async (t) => {
  await t.step("known-different and known-equal constants", () => {
    const five = constScalar(5n);
    const six = constScalar(6n);
    assert.equal(isScalarBranchTaken(five, six, "jeq", false), 0);
    assert.equal(isScalarBranchTaken(five, six, "jne", false), 1);
    assert.equal(isScalarBranchTaken(five, six, "jlt", false), 1);
    assert.equal(isScalarBranchTaken(five, six, "jsge", false), 0);
    assert.equal(isBranchTaken(five, constScalar(5n), "jeq", false), 1);
    // equal low halves: equal for JMP32, different for JMP
    const big = constScalar(0x1_0000_0005n);
    assert.equal(isScalarBranchTaken(big, five, "jeq", true), 1);
    assert.equal(isScalarBranchTaken(big, five, "jeq", false), 0);
  });
  await t.step("ranges and tnums", () => {
    const byte = unknownScalar();
    adjustScalarImm(byte, "and", 0xff, true);
    assert.equal(isScalarBranchTaken(byte, constScalar(256n), "jlt", false), 1);
    assert.equal(isScalarBranchTaken(byte, constScalar(255n), "jgt", false), 0);
    assert.equal(isScalarBranchTaken(byte, constScalar(10n), "jlt", false), -1);
    assert.equal(isScalarBranchTaken(byte, constScalar(-1n), "jsgt", false), 1);
    // tnum_overlap: an even register never equals an odd constant
    const even = unknownScalar();
    adjustScalarImm(even, "and", -2, true);
    assert.equal(isScalarBranchTaken(even, constScalar(7n), "jeq", false), 0);
    assert.equal(isScalarBranchTaken(even, constScalar(7n), "jne", false), 1);
    // jset: a known-1 tested bit, or only known-0 tested bits
    const odd = unknownScalar();
    adjustScalarImm(odd, "or", 1, true);
    assert.equal(isScalarBranchTaken(odd, constScalar(3n), "jset", false), 1);
    assert.equal(isScalarBranchTaken(even, constScalar(1n), "jset", false), 0);
    assert.equal(isScalarBranchTaken(even, constScalar(3n), "jset", false), -1);
  });
  await t.step("opcode helpers", () => {
    assert.equal(flipOpcode("jlt"), "jgt");
    assert.equal(flipOpcode("jsge"), "jsle");
    assert.equal(flipOpcode("jset"), "jset");
    assert.equal(revOpcode("jlt"), "jge");
    assert.equal(revOpcode("jset"), "jnset");
    assert.equal(revOpcode("jnset"), "jset");
  });
});

Deno.test("reg_set_min_max: kernel vectors", async (t) => {
  await t.step(
    "if r1 < 10 on [0, 255]: umax 9 when taken, umin 10 otherwise",
    () => {
      const r = unknownScalar();
      adjustScalarImm(r, "and", 0xff, true);
      const [taken, fall] = sides(r, "jlt", 10n);
      assert.equal(
        formatScalar(taken),
        "scalar(smin=smin32=0,smax=umax=smax32=umax32=9,var_off=(0x0; 0xf))",
      );
      assert.equal(
        formatScalar(fall),
        "scalar(smin=umin=smin32=umin32=10,smax=umax=smax32=umax32=255,var_off=(0x0; 0xff))",
      );
    },
  );
  await t.step("JMP32 refines the subregister only", () => {
    const [taken, fall] = sides(unknownScalar(), "jgt", 0x100000n, true);
    assert.equal(
      formatScalar(taken),
      "scalar(smin=0x8000000000100001,umin=umin32=0x100001)",
    );
    assert.equal(
      formatScalar(fall),
      "scalar(smax=0x7fffffff00100000,umax=0xffffffff00100000,smin32=0,smax32=umax32=0x100000,var_off=(0x0; 0xffffffff001fffff))",
    );
  });
  await t.step(
    "signed and unsigned bounds deduce each other across the sign boundary",
    () => {
      const r = unknownScalar();
      follow(r, "jsgt", 10n, false);
      follow(r, "jslt", -10n, false);
      assert.equal(formatScalar(r), "scalar(smin=smin32=-10,smax=smax32=10)");
      follow(r, "jlt", 5n, false);
      assert.equal(
        formatScalar(r),
        "scalar(smin=smin32=-10,smax=smax32=10,umin=5)",
      );
      follow(r, "jgt", 0x8000_0000_0000_0010n, false); // 'if r6 > r8' in the kernel run
      assert.equal(
        formatScalar(r),
        "scalar(smin=umin=smin32=umin32=5,smax=umax=smax32=umax32=10,var_off=(0x0; 0xf))",
      );
      const w = unknownScalar();
      follow(w, "jsgt", 10n, false, true);
      follow(w, "jslt", -10n, false, true);
      follow(w, "jlt", 5n, false, true);
      assert.equal(
        formatScalar(w),
        "scalar(smin=0x8000000000000005,umin=umin32=5,smin32=-10,smax32=10)",
      );
      follow(w, "jgt", 0x80000010n, false, true);
      assert.equal(
        formatScalar(w),
        "scalar(smin=0x8000000000000005,smax=0x7fffffff0000000a,umin=smin32=umin32=5,umax=0xffffffff0000000a," +
          "smax32=umax32=10,var_off=(0x0; 0xffffffff0000000f))",
      );
    },
  );
  await t.step("jset and its negation", () => {
    const [taken, fall] = sides(unknownScalar(), "jset", 8n);
    assert.equal(
      formatScalar(taken),
      "scalar(smin=0x8000000000000008,umin=umin32=8,smin32=0x80000008,var_off=(0x8; 0xfffffffffffffff7))",
    );
    assert.equal(
      formatScalar(fall),
      "scalar(smax=0x7ffffffffffffff7,umax=0xfffffffffffffff7,smax32=0x7ffffff7,umax32=0xfffffff7,var_off=(0x0; 0xfffffffffffffff7))",
    );
  });
  await t.step("jne trims a constant at either edge", () => {
    const r = unknownScalar();
    follow(r, "jgt", 10n, false);
    const [ne0] = sides(r, "jne", 0n);
    assert.equal(ne0.umin, 1n);
    const [ne10] = sides(r, "jne", 10n);
    assert.equal(ne10.umax, 9n);
    const [ne5] = sides(r, "jne", 5n);
    assert.equal(formatScalar(ne5), formatScalar(r)); // a hole cannot be represented
  });
  await t.step(
    "comparing a register with itself refines through the alias",
    () => {
      // kernel: 'if r6 > r6' is not decided; the taken side becomes [1, U64_MAX-1]
      const t1 = unknownScalar();
      const f1 = unknownScalar();
      assert.equal(isScalarBranchTaken(t1, t1, "jgt", false), -1);
      assert.deepEqual(regSetMinMax(t1, t1, f1, f1, "jgt", false), []);
      assert.equal(formatScalar(t1), "scalar(umin=1,umax=0xfffffffffffffffe)");
      assert.equal(formatScalar(f1), "scalar()");
      // kernel: 'r6 &= 255; if r6 s<= r6' falls through with [1, 254]
      const b = unknownScalar();
      adjustScalarImm(b, "and", 255, true);
      const tb = copyScalar(b);
      regSetMinMax(tb, tb, b, b, "jsle", false);
      assert.equal(
        formatScalar(b),
        "scalar(smin=umin=smin32=umin32=1,smax=umax=smax32=umax32=254,var_off=(0x0; 0xff))",
      );
    },
  );
  await t.step(
    "a contradiction is reported and its bounds reset, as the kernel logs it",
    () => {
      const r = unknownScalar();
      follow(r, "jle", -3n, false); // r in [2^64-2, 2^64-1]
      assert.equal(
        formatScalar(r),
        "scalar(smin=smin32=-2,smax=smax32=-1,umin=0xfffffffffffffffe,umin32=0xfffffffe,var_off=(0xfffffffffffffffe; 0x1))",
      );
      const t1 = copyScalar(r);
      const msgs = regSetMinMax(t1, t1, r, r, "jsgt", true); // if w9 s> w9
      assert.deepEqual(msgs, [
        "REG INVARIANTS VIOLATION (true_reg1): range bounds violation u64=[0xfffffffffffffffe, 0xffffffffffffffff] " +
        "s64=[0xfffffffffffffffe, 0xffffffffffffffff] u32=[0xfffffffe, 0xffffffff] s32=[0xffffffff, 0xfffffffe] " +
        "var_off=(0xfffffffffffffffe, 0x1)",
      ]);
      assert.equal(
        formatScalar(t1),
        "scalar(var_off=(0xfffffffffffffffe; 0x1))",
      );
    },
  );
  await t.step(
    "jeq of two registers intersects them (tnum_step settles the dead case)",
    () => {
      const r6 = unknownScalar(); // {0x10, 0x20}
      adjustScalarImm(r6, "and", 0x30, true);
      follow(r6, "jlt", 0x10n, false);
      follow(r6, "jgt", 0x20n, false);
      const r7 = unknownScalar(); // [17, 31]
      adjustScalarImm(r7, "and", 0xf, true);
      adjustScalarImm(r7, "or", 0x10, true);
      follow(r7, "jlt", 0x11n, false);
      const [t6, t7, f6, f7] = [
        copyScalar(r6),
        copyScalar(r7),
        copyScalar(r6),
        copyScalar(r7),
      ];
      assert.deepEqual(regSetMinMax(t6, t7, f6, f7, "jeq", false), []);
      assert.equal(formatScalar(t6), "16"); // kernel: R6=16 R7=16
      assert.equal(formatScalar(t7), "16");
    },
  );
});

// --- seeded property test ---------------------------------------------------

const { rnd32, rnd64, interesting, around } = seeded(0x51ed270b, {
  smallBelow: 64,
  wrapToU64: true,
});
function randomScalar(x: bigint = interesting()): [Scalar, bigint[]] {
  const s = unknownScalar();
  const mask = [
    0n,
    U64_MAX,
    (1n << BigInt(rnd32() % 64)) - 1n,
    rnd64(),
    rnd64() & rnd64(),
  ][rnd32() % 5];
  s.varOff = tnum(x & ~mask & U64_MAX, mask);
  if (rnd32() & 1) [s.umin, s.umax] = around(x, 0n, U64_MAX);
  if (rnd32() & 1) {
    [s.smin, s.smax] = around(
      BigInt.asIntN(64, x),
      -(1n << 63n),
      (1n << 63n) - 1n,
    );
  }
  if (rnd32() & 1) {
    const [a, b] = around(BigInt.asIntN(32, x), -(1n << 31n), (1n << 31n) - 1n);
    [s.s32Min, s.s32Max] = [Number(a), Number(b)];
  }
  regBoundsSync(s);
  const members = [x];
  for (let k = 0; k < 5; k++) {
    const y = x ^ (rnd64() & s.varOff.mask);
    if (scalarContains(s, y)) members.push(y);
  }
  // the edges of each range, where off-by-one mistakes show
  for (
    const e of [
      s.umin,
      s.umax,
      BigInt.asUintN(64, s.smin),
      BigInt.asUintN(64, s.smax),
    ]
  ) {
    if (scalarContains(s, e) && !members.includes(e)) members.push(e);
  }
  return [s, members];
}

function holds(op: JmpOp, jmp32: boolean, x: bigint, y: bigint): boolean {
  const w = jmp32 ? 32 : 64;
  const a = BigInt.asUintN(w, x);
  const b = BigInt.asUintN(w, y);
  const sa = BigInt.asIntN(w, a);
  const sb = BigInt.asIntN(w, b);
  switch (op) {
    case "jeq":
      return a === b;
    case "jne":
      return a !== b;
    case "jset":
      return (a & b) !== 0n;
    case "jgt":
      return a > b;
    case "jge":
      return a >= b;
    case "jlt":
      return a < b;
    case "jle":
      return a <= b;
    case "jsgt":
      return sa > sb;
    case "jsge":
      return sa >= sb;
    case "jslt":
      return sa < sb;
    case "jsle":
      return sa <= sb;
  }
}

const JMPS: JmpOp[] = [
  "jeq",
  "jne",
  "jset",
  "jgt",
  "jge",
  "jlt",
  "jle",
  "jsgt",
  "jsge",
  "jslt",
  "jsle",
];

Deno.test("branches: decisions agree and refinements keep satisfying values (seeded, 800 x 22)", () => {
  let refined = 0;
  for (let i = 0; i < 800; i++) {
    const [a, avals] = randomScalar();
    // half of the compares are against an immediate (like BPF_K), often
    // one of reg1's own values or a neighbour, to hit equality and the edges
    const near = BigInt.asUintN(
      64,
      avals[rnd32() % avals.length] + BigInt(rnd32() % 3) - 1n,
    );
    const [b, bvals] = rnd32() & 1
      ? randomScalar(rnd32() & 1 ? near : interesting())
      : (() => {
        const k = rnd32() % 3 ? near : interesting();
        return [constScalar(k), [k]] as [Scalar, bigint[]];
      })();
    for (const op of JMPS) {
      for (const jmp32 of [false, true]) {
        const d = isScalarBranchTaken(a, b, op, jmp32);
        const ctx = () =>
          `${op}${jmp32 ? "32" : ""} ${formatScalar(a)} vs ${formatScalar(b)}`;
        for (const x of avals) {
          for (const y of bvals) {
            if (d === 1) {
              assert.ok(
                holds(op, jmp32, x, y),
                `${ctx()} said taken for ${x},${y}`,
              );
            }
            if (d === 0) {
              assert.ok(
                !holds(op, jmp32, x, y),
                `${ctx()} said not taken for ${x},${y}`,
              );
            }
          }
        }
        if (d !== -1) continue;
        const [t1, t2, f1, f2] = [
          copyScalar(a),
          copyScalar(b),
          copyScalar(a),
          copyScalar(b),
        ];
        const msgs = regSetMinMax(t1, t2, f1, f2, op, jmp32);
        for (const x of avals) {
          for (const y of bvals) {
            const sideIsTrue = holds(op, jmp32, x, y);
            const [r1, r2] = sideIsTrue ? [t1, t2] : [f1, f2];
            // a violation means the kernel found that side dead: no values may reach it
            if (
              msgs.some((m) => m.includes(sideIsTrue ? "(true_" : "(false_"))
            ) assert.fail(`${ctx()} live side reported dead`);
            assert.ok(
              scalarContains(r1, x),
              `${ctx()} ${sideIsTrue} side lost reg1 ${x}: ${formatScalar(r1)}`,
            );
            assert.ok(
              scalarContains(r2, y),
              `${ctx()} ${sideIsTrue} side lost reg2 ${y}: ${formatScalar(r2)}`,
            );
            refined++;
          }
        }
      }
    }
  }
  assert.ok(refined > 10_000, `only ${refined} refinement checks`);
  console.log(`${refined} refinement checks`);
});

Deno.test("regs_refine_cond_op: only the compared width changes", () => {
  const a = unknownScalar();
  const k = constScalar(100n);
  regsRefineCondOp(a, k, "jlt", true);
  assert.equal(a.u32Max, 99);
  assert.equal(a.umax, U64_MAX);
  const b = unknownScalar();
  regsRefineCondOp(b, constScalar(100n), "jlt", false);
  assert.equal(b.umax, 99n);
  assert.equal(b.u32Max, 0xffff_ffff); // until reg_bounds_sync
});
