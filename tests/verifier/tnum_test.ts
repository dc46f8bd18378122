// Tests for lib/verifier/tnum.ts: hand-computed cases from the kernel's
// tnum.c semantics, and a seeded soundness property test (every concrete
// result of an operation on members of the inputs is a member of the output).
import assert from "node:assert/strict";
import {
  fls64,
  hex,
  type Tnum,
  tnum,
  TNUM_UNKNOWN,
  tnumAdd,
  tnumAnd,
  tnumArshift,
  tnumBswap16,
  tnumBswap32,
  tnumBswap64,
  tnumCast,
  tnumClearSubreg,
  tnumConst,
  tnumConstSubreg,
  tnumContains,
  tnumIn,
  tnumIntersect,
  tnumIsAligned,
  tnumLshift,
  tnumMul,
  tnumNeg,
  tnumOr,
  tnumOverlap,
  tnumRange,
  tnumRshift,
  tnumSbin,
  tnumStep,
  tnumStr,
  tnumSub,
  tnumSubreg,
  tnumUnion,
  tnumWithSubreg,
  tnumXor,
  U64_MAX,
} from "../../lib/verifier/tnum.ts";

const eq = (a: Tnum, value: bigint, mask: bigint) =>
  assert.deepEqual(a, { value, mask });

Deno.test("tnum: hand-computed kernel semantics", async (t) => {
  await t.step("tnum_add of (0x0; 0x3) + (0x1; 0x0) is (0x0; 0x7)", () => {
    // sm=3 sv=1 sigma=4 chi=5 mu=7: {1..4} needs the three low bits unknown
    eq(tnumAdd(tnum(0n, 3n), tnumConst(1n)), 0n, 7n);
  });
  await t.step("tnum_sub and tnum_neg", () => {
    eq(tnumSub(tnumConst(10n), tnumConst(3n)), 7n, 0n);
    eq(tnumNeg(tnumConst(1n)), U64_MAX, 0n);
    // 0 - (0; 0x1) = {0, -1}: every bit unknown
    eq(tnumNeg(tnum(0n, 1n)), 0n, U64_MAX);
  });
  await t.step("bitwise operations", () => {
    eq(tnumAnd(TNUM_UNKNOWN, tnumConst(0xffn)), 0n, 0xffn);
    eq(tnumAnd(tnum(0x10n, 0x0fn), tnumConst(0x18n)), 0x10n, 0x08n);
    eq(tnumOr(TNUM_UNKNOWN, tnumConst(0xe00n)), 0xe00n, U64_MAX & ~0xe00n);
    eq(tnumXor(tnum(0x1n, 0x2n), tnumConst(0x3n)), 0n, 0x2n); // {1,3} ^ 3 = {2,0}
  });
  await t.step("tnum_mul", () => {
    eq(tnumMul(tnumConst(6n), tnumConst(7n)), 42n, 0n);
    // (0; 1) * 3 = {0, 3}: bits 0 and 1 unknown
    eq(tnumMul(tnum(0n, 1n), tnumConst(3n)), 0n, 3n);
    // a known 0 factor gives a known 0 product
    eq(tnumMul(tnumConst(0n), TNUM_UNKNOWN), 0n, 0n);
  });
  await t.step("shifts", () => {
    eq(tnumLshift(tnum(0n, 3n), 2), 0n, 0xcn);
    eq(tnumLshift(tnumConst(1n << 63n), 1), 0n, 0n); // shifted out
    eq(tnumRshift(tnum(0xf0n, 0x0fn), 4), 0xfn, 0n);
    eq(tnumArshift(tnumConst(1n << 63n), 4, 64), 0xf8n << 56n, 0n);
    // 32-bit arithmetic shift only looks at the subregister
    eq(
      tnumArshift(tnumConst(0xffff_ffff_8000_0000n), 31, 32),
      0xffff_ffffn,
      0n,
    );
  });
  await t.step("tnum_range", () => {
    eq(tnumRange(0n, 2n), 0n, 3n); // {0,1,2,3}: the documented over-approximation
    eq(tnumRange(5n, 5n), 5n, 0n);
    eq(tnumRange(0x100n, 0x1ffn), 0x100n, 0xffn);
    assert.deepEqual(tnumRange(0n, U64_MAX), TNUM_UNKNOWN);
    assert.deepEqual(tnumRange(1n, 1n << 63n), TNUM_UNKNOWN);
  });
  await t.step("intersect, union, overlap, in", () => {
    // disagreeing known bits read as "known 1", like the kernel
    eq(tnumIntersect(tnumConst(1n), tnumConst(2n)), 3n, 0n);
    eq(tnumIntersect(tnum(0n, 0x30n), tnum(0x10n, 0xfn)), 0x10n, 0n);
    eq(tnumUnion(tnumConst(4n), tnumConst(6n)), 4n, 2n);
    assert.equal(tnumOverlap(tnum(0x5n, 0xan), tnum(0xan, 0x5n)), true);
    assert.equal(tnumOverlap(tnumConst(1n), tnumConst(2n)), false);
    assert.equal(tnumIn(tnum(0n, 0xffn), tnumConst(0x42n)), true);
    assert.equal(tnumIn(tnum(0n, 0xffn), tnumConst(0x142n)), false);
    assert.equal(tnumIn(tnumConst(1n), tnum(0n, 1n)), false);
    assert.equal(tnumIn(tnumRange(0n, 2n), tnumConst(3n)), true); // documented caveat
  });
  await t.step("subregister helpers and casts", () => {
    const a = tnum(0x1234_0000_0000_0010n, 0x0000_00ff_0000_000fn);
    eq(tnumSubreg(a), 0x10n, 0xfn);
    eq(tnumClearSubreg(a), 0x1234_0000_0000_0000n, 0xff_0000_0000n);
    eq(
      tnumWithSubreg(a, tnumConst(0xabcdn)),
      0x1234_0000_0000_abcdn,
      0xff_0000_0000n,
    );
    eq(tnumConstSubreg(TNUM_UNKNOWN, 7), 7n, 0xffff_ffff_0000_0000n);
    eq(tnumCast(a, 1), 0x10n, 0xfn);
    assert.equal(tnumIsAligned(tnum(0x10n, 0xf0n), 16n), true);
    assert.equal(tnumIsAligned(tnum(0x10n, 0xf8n), 16n), false);
  });
  await t.step("byte swaps", () => {
    // the BPF_END commit's example: x &= 0x3f00; bswap16 -> (0x0; 0x3f)
    eq(tnumBswap16(tnum(0n, 0x3f00n)), 0n, 0x3fn);
    eq(tnumBswap32(tnumConst(0x1122_3344n)), 0x4433_2211n, 0n);
    eq(
      tnumBswap64(tnumConst(0x0102_0304_0506_0708n)),
      0x0807_0605_0403_0201n,
      0n,
    );
    eq(tnumBswap16(tnumConst(0xdead_beefn)), 0xefben, 0n); // upper bits dropped
  });
  await t.step("tnum_step, including the kernel comment's example", () => {
    // t = x11100x0 (value 0x70, mask 0x82), z = 241 -> 242
    assert.equal(tnumStep(tnum(0x70n, 0x82n), 241n), 242n);
    assert.equal(tnumStep(tnum(0xe00n, 0x100n), 0xe01n), 0xf00n);
    assert.equal(tnumStep(tnum(0xe00n, 0x100n), 0xf00n), 0xf00n); // z >= tmax
    assert.equal(tnumStep(tnum(0xe00n, 0x100n), 5n), 0xe00n); // z < tmin
  });
  await t.step("formatting and fls64", () => {
    assert.equal(tnumStr(tnum(0n, 0xffn)), "(0x0; 0xff)");
    assert.equal(tnumStr(TNUM_UNKNOWN), "(0x0; 0xffffffffffffffff)");
    assert.equal(hex(0n), "0x0");
    assert.equal(tnumSbin(tnum(0x70n, 0x82n)), "0".repeat(56) + "x11100x0");
    assert.equal(fls64(0n), 0);
    assert.equal(fls64(1n), 1);
    assert.equal(fls64(0x1_0000_0000n), 33);
    assert.equal(fls64(U64_MAX), 64);
  });
});

// --- seeded property test ---------------------------------------------------

let seed = 0x9e3779b9;
function rnd32(): number {
  seed ^= seed << 13;
  seed ^= seed >>> 17;
  seed ^= seed << 5;
  return seed >>> 0;
}
function rnd64(): bigint {
  return (BigInt(rnd32()) << 32n) | BigInt(rnd32());
}
function randMask(): bigint {
  switch (rnd32() % 5) {
    case 0:
      return 0n;
    case 1:
      return (1n << BigInt(rnd32() % 65)) - 1n; // low bits
    case 2:
      return rnd64() & rnd64() & rnd64(); // sparse
    case 3:
      return U64_MAX;
    default:
      return rnd64();
  }
}
function randTnum(): Tnum {
  const mask = randMask();
  return tnum(rnd64() & ~mask & U64_MAX, mask);
}
function member(a: Tnum): bigint {
  return a.value | (rnd64() & a.mask);
}

const BINARY: [
  string,
  (a: Tnum, b: Tnum) => Tnum,
  (x: bigint, y: bigint) => bigint,
][] = [
  ["add", tnumAdd, (x, y) => (x + y) & U64_MAX],
  ["sub", tnumSub, (x, y) => (x - y) & U64_MAX],
  ["mul", tnumMul, (x, y) => (x * y) & U64_MAX],
  ["and", tnumAnd, (x, y) => x & y],
  ["or", tnumOr, (x, y) => x | y],
  ["xor", tnumXor, (x, y) => x ^ y],
  ["union", tnumUnion, (x) => x],
];

Deno.test("tnum: soundness on random members (seeded)", () => {
  const ITER = 3000;
  for (let i = 0; i < ITER; i++) {
    const a = randTnum();
    const b = randTnum();
    const x = member(a);
    const y = member(b);
    for (const [name, abs, conc] of BINARY) {
      const r = abs(a, b);
      assert.equal(r.value & r.mask, 0n, `${name}: value and mask overlap`);
      assert.ok(
        tnumContains(r, conc(x, y)),
        `${name} ${tnumStr(a)} ${tnumStr(b)} x=${hex(x)} y=${hex(y)}`,
      );
    }
    assert.ok(tnumContains(tnumUnion(a, b), y));
    assert.ok(tnumContains(tnumNeg(a), (-x) & U64_MAX));
    const sh = rnd32() % 64;
    assert.ok(tnumContains(tnumLshift(a, sh), (x << BigInt(sh)) & U64_MAX));
    assert.ok(tnumContains(tnumRshift(a, sh), x >> BigInt(sh)));
    assert.ok(
      tnumContains(
        tnumArshift(a, sh, 64),
        BigInt.asUintN(64, BigInt.asIntN(64, x) >> BigInt(sh)),
      ),
    );
    const sh32 = sh % 32;
    const lo = BigInt.asIntN(32, x);
    assert.ok(
      tnumContains(
        tnumArshift(a, sh32, 32),
        BigInt.asUintN(32, lo >> BigInt(sh32)),
      ),
    );
    if (tnumOverlap(a, b) === false) {
      assert.notEqual(x, y, "tnum_overlap false but values equal");
    }
    // intersect is exact on values both tnums contain
    if (tnumContains(b, x)) assert.ok(tnumContains(tnumIntersect(a, b), x));
    // a range tnum contains the whole range, checked at its ends and a middle
    const [lo64, hi64] = x < y ? [x, y] : [y, x];
    const rg = tnumRange(lo64, hi64);
    for (const v of [lo64, hi64, lo64 + (hi64 - lo64) / 2n]) {
      assert.ok(tnumContains(rg, v));
    }
  }
});

Deno.test("tnum: tnum_step returns the next member (brute force on 10-bit tnums)", () => {
  for (let i = 0; i < 400; i++) {
    const mask = BigInt(rnd32() & 0x3ff);
    const t = tnum(BigInt(rnd32() & 0x3ff) & ~mask, mask);
    const tmax = t.value | t.mask;
    const z = BigInt(rnd32() % 1100);
    let expected = tmax;
    if (z < t.value) expected = t.value;
    else {
      for (let v = z + 1n; v <= tmax; v++) {
        if (tnumContains(t, v)) {
          expected = v;
          break;
        }
      }
    }
    assert.equal(tnumStep(t, z), expected, `t=${tnumStr(t)} z=${z}`);
  }
});
