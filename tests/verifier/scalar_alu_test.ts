// Tests for lib/verifier/scalar_alu.ts and the kernel log format of scalars.
// Strings marked "kernel" were printed by the Linux 6.18.44 verifier
// (log_level 2) for the same instruction sequence; the property test checks
// soundness against concrete RFC 9669 semantics on seeded random inputs.
import assert from "node:assert/strict";
import { regBoundsSync } from "../../lib/verifier/bounds_sync.ts";
import { regSetMinMax } from "../../lib/verifier/branch.ts";
import {
  constScalar,
  copyScalar,
  formatScalar,
  type Scalar,
  scalarContains,
  unknownScalar,
} from "../../lib/verifier/scalar.ts";
import {
  adjustScalarImm,
  adjustScalarMinMaxVals,
  type ScalarAluOp,
  scalarByteSwap,
  scalarMov,
  scalarMovImm,
} from "../../lib/verifier/scalar_alu.ts";
import { tnum, U64_MAX } from "../../lib/verifier/tnum.ts";
import { seeded } from "./seeded.ts";

/** Applies `if (s op imm)` and keeps the fall-through (`false`) or jump side. */
function branch(
  s: Scalar,
  op: Parameters<typeof regSetMinMax>[4],
  imm: number,
  side: boolean,
  jmp32 = false,
) {
  const t = copyScalar(s);
  regSetMinMax(
    t,
    constScalar(BigInt(imm)),
    s,
    constScalar(BigInt(imm)),
    op,
    jmp32,
  );
  if (side) Object.assign(s, t);
}

Deno.test("scalar ALU: kernel vectors", async (t) => {
  const fresh = () => unknownScalar();
  await t.step("AND of unknown with 0xff, then [10,255] + 1", () => {
    const r = fresh();
    adjustScalarImm(r, "and", 0xff, true);
    assert.equal(
      formatScalar(r),
      "scalar(smin=smin32=0,smax=umax=smax32=umax32=255,var_off=(0x0; 0xff))",
    );
    branch(r, "jlt", 10, false);
    adjustScalarImm(r, "add", 1, true);
    assert.equal(
      formatScalar(r),
      "scalar(smin=umin=smin32=umin32=11,smax=umax=smax32=umax32=256,var_off=(0x0; 0x1ff))",
    );
  });
  await t.step("lsh of [0,3] by 2", () => {
    const r = fresh();
    adjustScalarImm(r, "and", 3, true);
    adjustScalarImm(r, "lsh", 2, true);
    assert.equal(
      formatScalar(r),
      "scalar(smin=smin32=0,smax=umax=smax32=umax32=12,var_off=(0x0; 0xc))",
    );
  });
  await t.step("32-bit ALU zero-extends", () => {
    const r = fresh();
    adjustScalarImm(r, "add", 1815104599, false);
    assert.equal(
      formatScalar(r),
      "scalar(smin=0,smax=umax=0xffffffff,var_off=(0x0; 0xffffffff))",
    );
    const s = fresh();
    adjustScalarImm(s, "lsh", 24, false);
    assert.equal(
      formatScalar(s),
      "scalar(smin=0,smax=umax=umax32=0xff000000,smax32=0x7f000000,var_off=(0x0; 0xff000000))",
    );
    const u = fresh();
    adjustScalarImm(u, "rsh", 4, false);
    assert.equal(
      formatScalar(u),
      "scalar(smin=smin32=0,smax=umax=smax32=umax32=0xfffffff,var_off=(0x0; 0xfffffff))",
    );
  });
  await t.step("sub crossing zero makes the unsigned range unbounded", () => {
    const r = fresh();
    branch(r, "jgt", 10, false);
    adjustScalarImm(r, "sub", 5, true);
    assert.equal(formatScalar(r), "scalar(smin=smin32=-5,smax=smax32=5)");
  });
  await t.step("add where every sum wraps keeps the range", () => {
    const r = fresh();
    branch(r, "jlt", -2, false); // r in [2^64-2, 2^64-1]
    adjustScalarImm(r, "add", 2, true);
    assert.equal(
      formatScalar(r),
      "scalar(smin=smin32=0,smax=umax=smax32=umax32=1,var_off=(0x0; 0x1))",
    );
  });
  await t.step("or, and, xor, mul, arsh", () => {
    const r = fresh();
    adjustScalarImm(r, "or", 3584, true);
    assert.equal(
      formatScalar(r),
      "scalar(smin=0x8000000000000e00,umin=umin32=3584,smin32=0x80000e00,var_off=(0xe00; 0xfffffffffffff1ff))",
    );
    adjustScalarImm(r, "and", 3840, true);
    assert.equal(
      formatScalar(r),
      "scalar(smin=umin=smin32=umin32=3584,smax=umax=smax32=umax32=3840,var_off=(0xe00; 0x100))",
    );
    const x = fresh();
    adjustScalarImm(x, "and", 0xf0, true);
    adjustScalarImm(x, "xor", 0xff, true);
    assert.equal(
      formatScalar(x),
      "scalar(smin=umin=smin32=umin32=15,smax=umax=smax32=umax32=255,var_off=(0xf; 0xf0))",
    );
    const m = fresh();
    adjustScalarImm(m, "and", 0xff, true);
    adjustScalarImm(m, "mul", 3, true);
    assert.equal(
      formatScalar(m),
      "scalar(smin=smin32=0,smax=umax=smax32=umax32=765,var_off=(0x0; 0x3ff))",
    );
    const n = fresh();
    adjustScalarImm(n, "and", 0xf, true);
    adjustScalarImm(n, "mul", -3, true);
    assert.equal(formatScalar(n), "scalar(smin=smin32=-45,smax=smax32=0)");
    const a = fresh();
    branch(a, "jslt", -100, false);
    branch(a, "jsgt", 100, false);
    adjustScalarImm(a, "arsh", 2, true);
    assert.equal(formatScalar(a), "scalar(smin=smin32=-25,smax=smax32=25)");
  });
  await t.step("neg in 64 and 32 bits", () => {
    const r = fresh();
    scalarByteSwap(r, "swap", 32);
    assert.equal(
      formatScalar(r),
      "scalar(smin=0,smax=umax=0xffffffff,var_off=(0x0; 0xffffffff))",
    );
    adjustScalarMinMaxVals(r, r, "neg", true);
    assert.equal(formatScalar(r), "scalar(smin=0xffffffff00000001,smax=0)");
    const w = fresh();
    adjustScalarImm(w, "and", 0xff, true);
    adjustScalarMinMaxVals(w, w, "neg", false);
    assert.equal(
      formatScalar(w),
      "scalar(smin=0,smax=umax=0xffffffff,smin32=-255,smax32=0,var_off=(0x0; 0xffffffff))",
    );
    const c = constScalar(0n);
    scalarMovImm(c, 1441852630, false);
    assert.equal(formatScalar(c), "0x55f0ecd6");
    adjustScalarMinMaxVals(c, c, "neg", true);
    assert.equal(formatScalar(c), "0xffffffffaa0f132a");
  });
  await t.step(
    "division, modulo and unknown shift amounts give an unknown (not zero-extended)",
    () => {
      for (const op of ["div", "sdiv", "mod", "smod"] as const) {
        const r = fresh();
        adjustScalarImm(r, "and", 0xff, true);
        adjustScalarImm(r, op, 7, false);
        assert.equal(formatScalar(r), "scalar()", op);
      }
      const s = fresh();
      adjustScalarImm(s, "and", 0xff, true);
      adjustScalarMinMaxVals(s, unknownScalar(), "arsh", true);
      assert.equal(formatScalar(s), "scalar()");
    },
  );
  await t.step("byte swaps (BPF_END tnum tracking)", () => {
    const r = fresh();
    adjustScalarImm(r, "and", 16128, false);
    scalarByteSwap(r, "swap", 16);
    assert.equal(
      formatScalar(r),
      "scalar(smin=smin32=0,smax=umax=smax32=umax32=63,var_off=(0x0; 0x3f))",
    );
    const l = fresh();
    scalarByteSwap(l, "le", 16);
    assert.equal(
      formatScalar(l),
      "scalar(smin=smin32=0,smax=umax=smax32=umax32=0xffff,var_off=(0x0; 0xffff))",
    );
    const b = fresh();
    adjustScalarImm(b, "or", 0x12, true);
    scalarByteSwap(b, "be", 32);
    assert.equal(
      formatScalar(b),
      "scalar(smin=umin=umin32=0x12000000,smax=umax=0xffffffff,smin32=0x92000000,var_off=(0x12000000; 0xedffffff))",
    );
  });
  await t.step("mov and movsx", () => {
    // selftest 'bounds deduction cross sign boundary, negative overlap', insns 2..7
    const r0 = fresh();
    const r6 = unknownScalar();
    scalarMov(r6, r0, false, 8); // w6 = (s8)w0
    assert.equal(
      formatScalar(r6),
      "scalar(smin=0,smax=umax=0xffffffff,smin32=-128,smax32=127,var_off=(0x0; 0xffffffff))",
    );
    scalarMov(r0, r0, true, 8); // r0 = (s8)r0: left unsynced, as the kernel prints it
    assert.equal(formatScalar(r0), "scalar(smin=smin32=-128,smax=smax32=127)");
    branch(r6, "jge", 0xf0000000 | 0, false, true);
    assert.equal(
      formatScalar(r6),
      "scalar(smin=smin32=0,smax=umax=smax32=umax32=127,var_off=(0x0; 0x7f))",
    );
    adjustScalarMinMaxVals(r0, r6, "add", true);
    assert.equal(formatScalar(r0), "scalar(smin=smin32=-128,smax=smax32=254)");
    adjustScalarImm(r6, "add", 400, true);
    assert.equal(
      formatScalar(r6),
      "scalar(smin=umin=smin32=umin32=400,smax=umax=smax32=umax32=527,var_off=(0x0; 0x3ff))",
    );
    adjustScalarMinMaxVals(r0, r6, "sub", true);
    assert.equal(
      formatScalar(r0),
      "scalar(smin=smin32=-655,smax=smax32=-146,umin=0xfffffffffffffd71,umax=0xffffffffffffff6e," +
        "umin32=0xfffffd71,umax32=0xffffff6e,var_off=(0xfffffffffffffc00; 0x3ff))",
    );
    const w = fresh();
    adjustScalarImm(w, "and", 128, false);
    const d = unknownScalar();
    scalarMov(d, w, false, 8);
    assert.equal(
      formatScalar(d),
      "scalar(smin=0,smax=umax=0xffffffff,smin32=-128,smax32=127,var_off=(0x0; 0xffffffff))",
    );
  });
});

Deno.test("scalar print format (kernel log shapes)", () => {
  assert.equal(formatScalar(unknownScalar()), "scalar()");
  assert.equal(formatScalar(constScalar(5n)), "5");
  assert.equal(formatScalar(constScalar(5n), { precise: true }), "P5");
  assert.equal(formatScalar(constScalar(-5n)), "-5");
  assert.equal(formatScalar(constScalar(32767n)), "32767");
  assert.equal(formatScalar(constScalar(32768n)), "0x8000"); // constants use the signed limit
  assert.equal(formatScalar(constScalar(3840n)), "3840");
  const u = unknownScalar();
  u.umin = 2n;
  assert.equal(formatScalar(u, { leading: ["id=4"] }), "scalar(id=4,umin=2)");
  assert.equal(formatScalar(u, { precise: true }), "Pscalar(umin=2)");
  // unsigned bounds print in decimal up to 65535, signed ones only to 32767;
  // equal values merge under the first (signed) name and its format
  const s = unknownScalar();
  s.umax = 0xffffn;
  assert.equal(formatScalar(s), "scalar(umax=65535)");
  s.smax = 0xffffn;
  assert.equal(formatScalar(s), "scalar(smax=umax=0xffff)");
  s.smax = 40000n;
  assert.equal(formatScalar(s), "scalar(smax=0x9c40,umax=65535)");
  const v = unknownScalar();
  v.varOff = tnum(0xe00n, 0x100n);
  assert.equal(formatScalar(v), "scalar(var_off=(0xe00; 0x100))");
  // equal values of different signs are not merged
  const n = unknownScalar();
  n.smin = -1n;
  n.s32Min = -1;
  n.umin = U64_MAX;
  assert.equal(
    formatScalar(n),
    "scalar(smin=smin32=-1,umin=0xffffffffffffffff)",
  );
});

// --- soundness against concrete semantics (RFC 9669) ------------------------

const { rnd32, rnd64, interesting, around } = seeded(0x1234567, {
  smallBelow: 1000,
  wrapToU64: true,
});
/** A synced random scalar and some of its members (the first one is `x`). */
function randomScalar(): [Scalar, bigint[]] {
  const x = interesting();
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
  for (let k = 0; k < 4; k++) {
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

const swab = (x: bigint, bytes: number) => {
  let r = 0n;
  for (let i = 0; i < bytes; i++) {
    r = (r << 8n) | ((x >> BigInt(8 * i)) & 0xffn);
  }
  return r;
};

/** One ALU instruction on concrete values, per RFC 9669. */
function concrete(
  op: ScalarAluOp,
  alu64: boolean,
  x: bigint,
  y: bigint,
): bigint {
  const w = alu64 ? 64 : 32;
  const a = BigInt.asUintN(w, x);
  const b = BigInt.asUintN(w, y);
  const sa = BigInt.asIntN(w, a);
  const sb = BigInt.asIntN(w, b);
  const sh = b & BigInt(w - 1);
  const r: Record<ScalarAluOp, () => bigint> = {
    add: () => a + b,
    sub: () => a - b,
    mul: () => a * b,
    div: () => (b === 0n ? 0n : a / b),
    sdiv: () => (sb === 0n ? 0n : sa / sb),
    mod: () => (b === 0n ? a : a % b),
    smod: () => (sb === 0n ? sa : sa % sb),
    or: () => a | b,
    and: () => a & b,
    xor: () => a ^ b,
    lsh: () => a << sh,
    rsh: () => a >> sh,
    arsh: () => sa >> sh,
    neg: () => -a,
  };
  return BigInt.asUintN(w, r[op]());
}

const OPS: ScalarAluOp[] = [
  "add",
  "sub",
  "mul",
  "div",
  "sdiv",
  "mod",
  "smod",
  "or",
  "and",
  "xor",
  "lsh",
  "rsh",
  "arsh",
  "neg",
];

Deno.test("scalar ALU: soundness on random abstract inputs (seeded, 600 x all ops)", () => {
  let checks = 0;
  for (let i = 0; i < 600; i++) {
    const [dst, dvals] = randomScalar();
    for (const op of OPS) {
      for (const alu64 of [true, false]) {
        let src: Scalar;
        let svals: bigint[];
        if (op === "lsh" || op === "rsh" || op === "arsh") {
          // the verifier rejects shifts by an immediate >= width
          const k = BigInt(rnd32() % (alu64 ? 64 : 32));
          [src, svals] = rnd32() % 4 ? [constScalar(k), [k]] : randomScalar();
        } else {
          [src, svals] = randomScalar();
        }
        if (
          op !== "neg" &&
          svals.some((v) =>
            (op.endsWith("div") || op.endsWith("mod")) && v === 0n
          )
        ) continue;
        const out = copyScalar(dst);
        adjustScalarMinMaxVals(out, op === "neg" ? out : src, op, alu64);
        for (const x of dvals) {
          for (const y of svals) {
            const width = alu64 ? 64n : 32n;
            if (
              (op === "lsh" || op === "rsh" || op === "arsh") &&
              BigInt.asUintN(Number(width), y) >= width
            ) continue;
            const z = concrete(op, alu64, x, op === "neg" ? 0n : y);
            checks++;
            assert.ok(
              scalarContains(out, z),
              `${op}${alu64 ? "" : "32"} ${formatScalar(dst)} (${x}) , ${
                formatScalar(src)
              } (${y}) -> ${formatScalar(out)} misses ${z}`,
            );
          }
        }
      }
    }
    // mov, movsx and byte swaps
    for (
      const [alu64, bits] of [
        [true, 0],
        [true, 8],
        [true, 16],
        [true, 32],
        [false, 0],
        [false, 8],
        [false, 16],
      ] as const
    ) {
      const out = unknownScalar();
      scalarMov(out, dst, alu64, bits);
      for (const x of dvals) {
        let z = bits ? BigInt.asIntN(bits, x) : x;
        z = BigInt.asUintN(alu64 ? 64 : 32, z);
        assert.ok(
          scalarContains(out, z),
          `mov${alu64 ? 64 : 32} s${bits} ${formatScalar(dst)} -> ${
            formatScalar(out)
          } misses ${z}`,
        );
      }
    }
    for (const order of ["le", "be", "swap"] as const) {
      for (const bits of [16, 32, 64] as const) {
        const out = copyScalar(dst);
        scalarByteSwap(out, order, bits);
        for (const x of dvals) {
          const low = BigInt.asUintN(bits, x);
          const z = order === "le" ? low : swab(low, bits / 8);
          assert.ok(
            scalarContains(out, z),
            `${order}${bits} ${formatScalar(dst)} -> ${
              formatScalar(out)
            } misses ${z}`,
          );
        }
      }
    }
  }
  assert.ok(checks > 20_000, `only ${checks} concrete checks`);
  console.log(`${checks} concrete ALU checks`);
});
