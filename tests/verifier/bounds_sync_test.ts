// Tests for lib/verifier/bounds_sync.ts. Expected strings marked "kernel"
// were printed by the Linux 6.18.44 verifier (log_level 2) or quoted from
// kernel selftests/commit messages; the others are computed by hand from the
// kernel's rules. A seeded property test checks that syncing never loses a
// value the scalar described.
import assert from "node:assert/strict";
import {
  formatInvariantViolation,
  markScalarKnown,
  regBoundOffset,
  regBoundsSanityCheck,
  regBoundsSync,
  regBoundsViolation,
  regDeduceBounds,
  updateRegBounds,
} from "../../lib/verifier/bounds_sync.ts";
import {
  coerceRegToSize,
  coerceRegToSizeSx,
  coerceSubregToSizeSx,
  zext32To64,
} from "../../lib/verifier/scalar_coerce.ts";
import {
  constScalar,
  formatScalar,
  type Scalar,
  scalarContains,
  unknownScalar,
} from "../../lib/verifier/scalar.ts";
import { tnum, U64_MAX } from "../../lib/verifier/tnum.ts";
import { seeded } from "./seeded.ts";

function scalar(fields: Partial<Scalar>): Scalar {
  return Object.assign(unknownScalar(), fields);
}

Deno.test("reg_bounds_sync: kernel vectors", async (t) => {
  await t.step(
    "three deduction rounds (selftest 'cross sign boundary, negative overlap')",
    () => {
      // The commit adding the third round traces this entry state.
      const s = scalar({
        smin: -655n,
        smax: 0xeffffeeen,
        s32Min: -783,
        s32Max: -146,
      });
      regBoundsSync(s);
      assert.equal(
        formatScalar(s),
        "scalar(smin=smin32=-655,smax=smax32=-146,umin=0xfffffffffffffd71,umax=0xffffffffffffff6e," +
          "umin32=0xfffffd71,umax32=0xffffff6e,var_off=(0xfffffffffffffc00; 0x3ff))",
      );
      // and with only two rounds the kernel printed the older, weaker state
      const two = scalar({
        smin: -655n,
        smax: 0xeffffeeen,
        s32Min: -783,
        s32Max: -146,
      });
      updateRegBounds(two);
      regDeduceBounds(two);
      regDeduceBounds(two);
      regBoundOffset(two);
      updateRegBounds(two);
      assert.equal(
        formatScalar(two),
        "scalar(smin=-655,smax=smax32=-146,umin=0xfffffffffffffd71,umax=0xffffffffffffff6e," +
          "smin32=-783,umin32=0xfffffcf1,umax32=0xffffff6e,var_off=(0xfffffffffffffc00; 0x3ff))",
      );
    },
  );
  await t.step(
    "tnum_step collapses a range meeting the tnum in one value (Cilium case)",
    () => {
      // r0 in {0xe00, 0xf00}; after 'if r0 == 0xe00' falls through, kernel: R0=3840
      const s = scalar({
        smin: 0xe01n,
        umin: 0xe01n,
        smax: 0xf00n,
        umax: 0xf00n,
        varOff: tnum(0xe00n, 0x100n),
      });
      regBoundsSync(s);
      assert.equal(formatScalar(s), "3840");
    },
  );
  await t.step(
    "mixed-bounds special case replaces the s64 range with the s32 one",
    () => {
      // kernel: r6 = bswap32 r6; r6 = -r6; 'if r6 >= 0xf0' falls through with
      // smin=-0xffffffff,smax=0,umax=239 and prints [0, 239], not the constant 0
      const s = scalar({ smin: -0xffff_ffffn, smax: 0n, umax: 239n });
      regBoundsSync(s);
      assert.equal(
        formatScalar(s),
        "scalar(smin=smin32=0,smax=umax=smax32=umax32=239,var_off=(0x0; 0xff))",
      );
    },
  );
  await t.step("signed range of negatives implies the unsigned one", () => {
    const s = scalar({ smin: -3n, smax: -1n });
    regBoundsSync(s);
    assert.equal(
      formatScalar(s),
      "scalar(smin=smin32=-3,smax=smax32=-1,umin=0xfffffffffffffffd,umin32=0xfffffffd,var_off=(0xfffffffffffffffc; 0x3))",
    );
  });
  await t.step(
    "64-bit range with constant upper half gives the 32-bit range",
    () => {
      const s = scalar({ umin: 0x1_0000_000an, umax: 0x1_0000_000fn });
      regBoundsSync(s);
      assert.equal(s.u32Min, 10);
      assert.equal(s.u32Max, 15);
      assert.equal(s.s32Min, 10);
      assert.equal(s.s32Max, 15);
      assert.deepEqual(s.varOff, tnum(0x1_0000_0008n, 0x7n));
    },
  );
  await t.step(
    "s64 [-1, 1] gives s32 [-1, 1] (two consecutive upper halves)",
    () => {
      const s = scalar({ smin: -1n, smax: 1n });
      regBoundsSync(s);
      assert.equal(s.s32Min, -1);
      assert.equal(s.s32Max, 1);
      assert.equal(s.umin, 0n); // the u64 view stays split
    },
  );
});

Deno.test("bounds_sync: helpers", async (t) => {
  await t.step("zext_32_to_64", () => {
    const s = scalar({ s32Min: -5, s32Max: 5 });
    regBoundsSync(s);
    zext32To64(s);
    // negative s32 bounds cannot carry over: [0, U32_MAX] until refined
    assert.equal(s.smin, 0n);
    assert.equal(s.smax, 0xffff_ffffn);
    assert.equal(s.varOff.mask, 0xffff_ffffn);
    regBoundsSync(s);
    assert.equal(
      formatScalar(s),
      "scalar(smin=0,smax=umax=0xffffffff,smin32=-5,smax32=5,var_off=(0x0; 0xffffffff))",
    );
  });
  await t.step("coerce_reg_to_size", () => {
    const a = scalar({ umin: 0x1_0000_0005n, umax: 0x1_0000_0010n });
    regBoundsSync(a);
    coerceRegToSize(a, 4);
    assert.equal(
      formatScalar(a),
      "scalar(smin=umin=smin32=umin32=5,smax=umax=smax32=umax32=16,var_off=(0x0; 0x1f))",
    );
    const b = scalar({ umin: 0xf0n, umax: 0x110n }); // crosses a byte boundary
    regBoundsSync(b);
    coerceRegToSize(b, 1);
    assert.equal(b.umin, 0n);
    assert.equal(b.umax, 0xffn);
  });
  await t.step("coerce_reg_to_size_sx (movsx) does not sync", () => {
    const c = constScalar(0x80n);
    coerceRegToSizeSx(c, 1);
    assert.equal(formatScalar(c), "-128");
    const u = unknownScalar();
    coerceRegToSizeSx(u, 1);
    // kernel: 'r0 = (s8)r0' on an unknown prints exactly this
    assert.equal(formatScalar(u), "scalar(smin=smin32=-128,smax=smax32=127)");
    const r = scalar({
      umin: 0x180n,
      umax: 0x1ffn,
      smin: 0x180n,
      smax: 0x1ffn,
    });
    coerceRegToSizeSx(r, 1); // low bytes 0x80..0xff: all negative after extension
    assert.equal(r.smin, -128n);
    assert.equal(r.smax, -1n);
    assert.equal(r.umin, 0xffff_ffff_ffff_ff80n);
  });
  await t.step("coerce_subreg_to_size_sx", () => {
    const c = constScalar(0xffn);
    coerceSubregToSizeSx(c, 1);
    zext32To64(c);
    regBoundsSync(c);
    assert.equal(formatScalar(c), "0xffffffff");
    const u = unknownScalar();
    coerceSubregToSizeSx(u, 2);
    zext32To64(u);
    regBoundsSync(u);
    // kernel: 'w6 = (s16)w7' on an unknown w7
    assert.equal(
      formatScalar(u),
      "scalar(smin=0,smax=umax=0xffffffff,smin32=-32768,smax32=32767,var_off=(0x0; 0xffffffff))",
    );
  });
  await t.step("invariant violations: detection, message, recovery", () => {
    const ok = constScalar(7n);
    assert.equal(regBoundsViolation(ok), null);
    // the message quoted in the tnum_step fix ("bpf: Improve bounds when tnum
    // has a single possible value")
    const bad = scalar({
      umin: 0xe01n,
      umax: 0xe00n,
      smin: 0xe01n,
      smax: 0xe00n,
      u32Min: 0xe01,
      u32Max: 0xe00,
      s32Min: 0xe01,
      s32Max: 0xe00,
      varOff: tnum(0xe00n, 0n),
    });
    assert.equal(regBoundsViolation(bad), "range bounds violation");
    assert.equal(
      formatInvariantViolation(bad, "false_reg1", "range bounds violation"),
      "REG INVARIANTS VIOLATION (false_reg1): range bounds violation u64=[0xe01, 0xe00] " +
        "s64=[0xe01, 0xe00] u32=[0xe01, 0xe00] s32=[0xe01, 0xe00] var_off=(0xe00, 0x0)",
    );
    const k = constScalar(5n);
    k.umax = 6n;
    assert.equal(
      regBoundsViolation(k),
      "const tnum out of sync with range bounds",
    );
    const k32 = scalar({
      varOff: tnum(0x1_0000_0005n, 0xffff_ffff_0000_0000n),
    });
    assert.equal(
      regBoundsViolation(k32),
      "const subreg tnum out of sync with range bounds",
    );
    // like the kernel without BPF_F_TEST_REG_INVARIANTS: bounds open, tnum kept
    const s = scalar({
      s32Min: -1,
      s32Max: -2,
      varOff: tnum(0xffff_ffff_ffff_fffen, 1n),
    });
    assert.match(
      regBoundsSanityCheck(s, "true_reg1") ?? "",
      /^REG INVARIANTS VIOLATION \(true_reg1\)/,
    );
    assert.equal(formatScalar(s), "scalar(var_off=(0xfffffffffffffffe; 0x1))");
    markScalarKnown(s, 1n);
    assert.equal(regBoundsSanityCheck(s, "alu"), null);
  });
});

// --- seeded property test: syncing keeps every described value -------------

const { rnd32, rnd64, interesting, around } = seeded(0x2545f491, {
  smallBelow: 1000,
  wrapToU64: false,
});
/** A random scalar containing `x`, with random constraints in every view. */
function randomScalarAround(x: bigint): Scalar {
  const u = BigInt.asUintN(64, x);
  const s = unknownScalar();
  const mask = [
    0n,
    U64_MAX,
    (1n << BigInt(rnd32() % 64)) - 1n,
    rnd64(),
    rnd64() & rnd64(),
  ][rnd32() % 5];
  s.varOff = tnum(u & ~mask & U64_MAX, mask);
  if (rnd32() & 1) [s.umin, s.umax] = around(u, 0n, U64_MAX);
  if (rnd32() & 1) {
    [s.smin, s.smax] = around(
      BigInt.asIntN(64, u),
      -(1n << 63n),
      (1n << 63n) - 1n,
    );
  }
  if (rnd32() & 1) {
    const [a, b] = around(u & 0xffff_ffffn, 0n, 0xffff_ffffn);
    [s.u32Min, s.u32Max] = [Number(a), Number(b)];
  }
  if (rnd32() & 1) {
    const [a, b] = around(BigInt.asIntN(32, u), -(1n << 31n), (1n << 31n) - 1n);
    [s.s32Min, s.s32Max] = [Number(a), Number(b)];
  }
  return s;
}

Deno.test("reg_bounds_sync: never drops a contained value (seeded, 4000 cases)", () => {
  for (let i = 0; i < 4000; i++) {
    const x = interesting();
    const s = randomScalarAround(x);
    const members = [x];
    for (let k = 0; k < 6; k++) {
      const y = BigInt.asUintN(64, x ^ (rnd64() & s.varOff.mask));
      if (scalarContains(s, y)) members.push(y);
    }
    const before = formatScalar(s);
    regBoundsSync(s);
    assert.equal(
      regBoundsViolation(s),
      null,
      `violation after sync of ${before}`,
    );
    for (const m of members) {
      assert.ok(
        scalarContains(s, m),
        `${before} -> ${formatScalar(s)} lost ${m}`,
      );
    }
  }
});
