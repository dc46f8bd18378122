/**
 * The deduction rounds of `reg_bounds_sync()`: the kernel's
 * `__reg32_deduce_bounds()`, `__reg64_deduce_bounds()`,
 * `__reg_deduce_mixed_bounds()` and `__reg_deduce_bounds()`, which let the
 * signed, unsigned, 32-bit and 64-bit bounds of a scalar tighten each other.
 *
 * Everything mutates the scalar in place, like the kernel's functions on
 * `struct bpf_reg_state *`.
 * @module
 */

import { S32_MAX, S32_MIN, type Scalar, U32_MAX } from "./scalar.ts";
import { tnumIntersect, tnumRange } from "./tnum.ts";

const LO32 = 0xffff_ffffn;
const HI32 = -0x1_0000_0000n; // ~0xffffffff as an infinite two's complement
const S32_MIN_BIG = BigInt(S32_MIN);
const S32_MAX_BIG = BigInt(S32_MAX);

/** Uses the 64-bit bounds and the signedness of each half to tighten the 32-bit ones (mirrors `__reg32_deduce_bounds`). */
export function reg32DeduceBounds(s: Scalar): void {
  // Upper halves are compared as bigints; low halves are only converted to
  // numbers when a rule applies (conversions dominate the cost otherwise).
  const uminHi = s.umin >> 32n;
  const umaxHi = s.umax >> 32n;
  // If the upper halves of a 64-bit range are equal, its lower halves form
  // a valid u32 range, and an s32 range when they do not cross the sign.
  if (uminHi === umaxHi) {
    const uminLo = Number(s.umin & LO32);
    const umaxLo = Number(s.umax & LO32);
    s.u32Min = Math.max(s.u32Min, uminLo);
    s.u32Max = Math.min(s.u32Max, umaxLo);
    if ((uminLo | 0) <= (umaxLo | 0)) {
      s.s32Min = Math.max(s.s32Min, uminLo | 0);
      s.s32Max = Math.min(s.s32Max, umaxLo | 0);
    }
  }
  const sminHi = s.smin >> 32n;
  const smaxHi = s.smax >> 32n;
  if (sminHi === smaxHi) {
    const sminLo = Number(s.smin & LO32);
    const smaxLo = Number(s.smax & LO32);
    if (sminLo <= smaxLo) {
      s.u32Min = Math.max(s.u32Min, sminLo);
      s.u32Max = Math.min(s.u32Max, smaxLo);
    }
    if ((sminLo | 0) <= (smaxLo | 0)) {
      s.s32Min = Math.max(s.s32Min, sminLo | 0);
      s.s32Max = Math.min(s.s32Max, smaxLo | 0);
    }
  }
  // Upper halves that are two consecutive numbers (0xffffffff -> 0 included)
  // with lower halves going from negative to non-negative: still a valid
  // s32 range, e.g. s64 [-1, 1] gives s32 [-1, 1].
  if (((uminHi + 1n) & LO32) === (umaxHi & LO32)) {
    const uminLo = Number(s.umin & LO32) | 0;
    const umaxLo = Number(s.umax & LO32) | 0;
    if (uminLo < 0 && umaxLo >= 0) {
      s.s32Min = Math.max(s.s32Min, uminLo);
      s.s32Max = Math.min(s.s32Max, umaxLo);
    }
  }
  if (((sminHi + 1n) & LO32) === (smaxHi & LO32)) {
    const sminLo = Number(s.smin & LO32) | 0;
    const smaxLo = Number(s.smax & LO32) | 0;
    if (sminLo < 0 && smaxLo >= 0) {
      s.s32Min = Math.max(s.s32Min, sminLo);
      s.s32Max = Math.min(s.s32Max, smaxLo);
    }
  }
  // u32 range on one side of the sign boundary is also an s32 range
  if ((s.u32Min | 0) <= (s.u32Max | 0)) {
    s.s32Min = Math.max(s.s32Min, s.u32Min | 0);
    s.s32Max = Math.min(s.s32Max, s.u32Max | 0);
  }
  // and the other way round: e.g. -3 s<= x s<= -1 implies 0xfffffffd u<= x
  if ((s.s32Min >>> 0) <= (s.s32Max >>> 0)) {
    s.u32Min = Math.max(s.u32Min, s.s32Min >>> 0);
    s.u32Max = Math.min(s.u32Max, s.s32Max >>> 0);
  } else if (s.u32Max < (s.s32Min >>> 0)) {
    // The s32 range wraps the sign boundary and the u32 range overlaps
    // only its non-negative part.
    s.s32Min = s.u32Min | 0;
    s.u32Max = Math.min(s.u32Max, s.s32Max >>> 0);
  } else if ((s.s32Max >>> 0) < s.u32Min) {
    // ... or only its negative part.
    s.s32Max = s.u32Max | 0;
    s.u32Min = Math.max(s.u32Min, s.s32Min >>> 0);
  }
}

/** Lets the signed and unsigned 64-bit bounds tighten each other (mirrors `__reg64_deduce_bounds`). */
export function reg64DeduceBounds(s: Scalar): void {
  const uminS = BigInt.asIntN(64, s.umin);
  const umaxS = BigInt.asIntN(64, s.umax);
  // a u64 range on one side of the sign boundary is also an s64 range
  if (uminS <= umaxS) {
    if (uminS > s.smin) s.smin = uminS;
    if (umaxS < s.smax) s.smax = umaxS;
  }
  const sminU = BigInt.asUintN(64, s.smin);
  const smaxU = BigInt.asUintN(64, s.smax);
  if (sminU <= smaxU) {
    if (sminU > s.umin) s.umin = sminU;
    if (smaxU < s.umax) s.umax = smaxU;
  } else if (s.umax < sminU) {
    // The s64 range crosses the sign boundary and the u64 range overlaps
    // only its non-negative part.
    s.smin = BigInt.asIntN(64, s.umin);
    if (smaxU < s.umax) s.umax = smaxU;
  } else if (smaxU < s.umin) {
    // ... or only its negative part.
    s.smax = BigInt.asIntN(64, s.umax);
    if (sminU > s.umin) s.umin = sminU;
  }
}

/**
 * Tightens the 64-bit bounds with the 32-bit ones by substituting the low
 * halves of the 64-bit limits (mirrors `__reg_deduce_mixed_bounds`).
 */
export function regDeduceMixedBounds(s: Scalar): void {
  // With the full u32 range the substitutions below cannot tighten anything.
  if (s.u32Min !== 0 || s.u32Max !== U32_MAX) {
    const u32Min = BigInt(s.u32Min);
    const u32Max = BigInt(s.u32Max);
    // u32 -> u64 tightening, always well-formed
    const newUmin = (s.umin & HI32) | u32Min;
    const newUmax = (s.umax & HI32) | u32Max;
    if (newUmin > s.umin) s.umin = newUmin;
    if (newUmax < s.umax) s.umax = newUmax;
    // u32 -> s64 tightening: a u32 range embedded into s64 stays a range
    const newSmin = (s.smin & HI32) | u32Min;
    const newSmax = (s.smax & HI32) | u32Max;
    if (newSmin > s.smin) s.smin = newSmin;
    if (newSmax < s.smax) s.smax = newSmax;
  }

  // After a sign-extending load the upper 32 bits are all 0s or all 1s. If
  // the s64 range lies within [S32_MIN, S32_MAX] and the s32 range is
  // non-negative, the "all 1s" half is impossible: the value is the
  // non-negative subregister. The kernel replaces (rather than intersects)
  // the 64-bit bounds with the s32 ones here, which can lose precision.
  if (s.s32Min >= 0 && s.smin >= S32_MIN_BIG && s.smax <= S32_MAX_BIG) {
    s.smin = BigInt(s.s32Min);
    s.smax = BigInt(s.s32Max);
    s.umin = s.smin;
    s.umax = s.smax;
    s.varOff = tnumIntersect(s.varOff, tnumRange(s.smin, s.smax));
  }
}

/** All three deductions, in the kernel's order (mirrors `__reg_deduce_bounds`). */
export function regDeduceBounds(s: Scalar): void {
  reg32DeduceBounds(s);
  reg64DeduceBounds(s);
  regDeduceMixedBounds(s);
}
