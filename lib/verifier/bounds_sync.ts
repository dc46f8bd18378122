/**
 * Keeping a scalar's five views (s64, u64, s32, u32 bounds and the tnum)
 * consistent: the kernel's `reg_bounds_sync()` and the helpers around it in
 * `kernel/bpf/verifier.c`, in the same order of deductions.
 *
 * Everything mutates the scalar in place, like the kernel's functions on
 * `struct bpf_reg_state *`.
 * @module
 */

import {
  S32_MAX,
  S32_MIN,
  S64_MAX,
  S64_MIN,
  type Scalar,
  U32_MAX,
} from "./scalar.ts";
import {
  fls64,
  hex,
  LOW_BITS,
  TNUM_UNKNOWN,
  tnumCast,
  tnumConst,
  tnumConstSubreg,
  tnumIntersect,
  tnumRange,
  tnumStep,
  tnumSubreg,
  U64_MAX,
} from "./tnum.ts";

const LO32 = 0xffff_ffffn;
const SIGN64 = 1n << 63n;
const HI32 = -0x1_0000_0000n; // ~0xffffffff as an infinite two's complement
const S32_MIN_BIG = BigInt(S32_MIN);
const S32_MAX_BIG = BigInt(S32_MAX);

/** Sets all bounds and the tnum to the constant `imm` (mirrors `___mark_reg_known`). */
export function markScalarKnown(s: Scalar, imm: bigint): void {
  const u = BigInt.asUintN(64, imm);
  const lo = Number(u & LO32);
  s.varOff = tnumConst(u);
  s.smin = s.smax = BigInt.asIntN(64, u);
  s.umin = s.umax = u;
  s.s32Min = s.s32Max = lo | 0;
  s.u32Min = s.u32Max = lo;
}

/** The constant 0 (mirrors `__mark_reg_known_zero` on a scalar). */
export function markScalarKnownZero(s: Scalar): void {
  markScalarKnown(s, 0n);
}

/** Low 32 bits become the constant `imm` (mirrors `__mark_reg32_known`). */
export function markScalar32Known(s: Scalar, imm: bigint): void {
  const lo = Number(BigInt.asUintN(32, imm));
  s.varOff = tnumConstSubreg(s.varOff, lo);
  s.s32Min = s.s32Max = lo | 0;
  s.u32Min = s.u32Max = lo;
}

/** Forgets everything (the bounds part of `__mark_reg_unknown`). */
export function markScalarUnknown(s: Scalar): void {
  s.varOff = TNUM_UNKNOWN;
  markScalarUnbounded(s);
}

/** Opens all eight bounds, keeps the tnum (mirrors `__mark_reg_unbounded`). */
export function markScalarUnbounded(s: Scalar): void {
  markScalar64Unbounded(s);
  markScalar32Unbounded(s);
}

/** Opens the 64-bit bounds (mirrors `__mark_reg64_unbounded`). */
export function markScalar64Unbounded(s: Scalar): void {
  s.smin = S64_MIN;
  s.smax = S64_MAX;
  s.umin = 0n;
  s.umax = U64_MAX;
}

/** Opens the 32-bit bounds (mirrors `__mark_reg32_unbounded`). */
export function markScalar32Unbounded(s: Scalar): void {
  s.s32Min = S32_MIN;
  s.s32Max = S32_MAX;
  s.u32Min = 0;
  s.u32Max = U32_MAX;
}

/** Tightens the 32-bit bounds from the tnum's low half (mirrors `__update_reg32_bounds`). */
export function updateReg32Bounds(s: Scalar): void {
  const m = Number(s.varOff.mask & LO32);
  // an unknown low half yields exactly the unbounded 32-bit ranges
  if (m === 0xffff_ffff) return;
  const v = Number(s.varOff.value & LO32);
  // min signed is max(sign bit) | min(other bits); max the other way round
  s.s32Min = Math.max(s.s32Min, (v | (m & 0x8000_0000)) | 0);
  s.s32Max = Math.min(s.s32Max, (v | (m & 0x7fff_ffff)) | 0);
  s.u32Min = Math.max(s.u32Min, v);
  s.u32Max = Math.min(s.u32Max, (v | m) >>> 0);
}

/**
 * Tightens the 64-bit bounds from the tnum (mirrors `__update_reg64_bounds`),
 * including the `tnum_step()` check that collapses the register to a
 * constant when the u64 range and the tnum share a single value.
 */
export function updateReg64Bounds(s: Scalar): void {
  const { value, mask } = s.varOff;
  if (mask === U64_MAX) {
    // Unknown tnum (value 0): the four bounds cannot improve, and tnum_step()
    // is umin + 1, so only "umin is the single shared value" can apply.
    if (s.umin === s.umax && s.umin !== U64_MAX) markScalarKnown(s, s.umin);
    return;
  }
  const sminT = BigInt.asIntN(64, value | (mask & SIGN64));
  const smaxT = BigInt.asIntN(64, value | (mask & S64_MAX));
  if (sminT > s.smin) s.smin = sminT;
  if (smaxT < s.smax) s.smax = smaxT;
  if (value > s.umin) s.umin = value;
  const tmax = value | mask;
  if (tmax < s.umax) s.umax = tmax;

  if (mask === 0n) {
    // Constant tnum: tnum_step() returns the constant, so the three cases
    // below reduce to "bounds other than the constant become the constant".
    if (s.umin !== value || s.umax !== value) markScalarKnown(s, value);
    return;
  }
  const tnumNext = tnumStep(s.varOff, s.umin);
  const uminInTnum = (s.umin & ~mask) === value;
  if (uminInTnum && tnumNext > s.umax) {
    // the u64 range and the tnum only overlap in umin
    markScalarKnown(s, s.umin);
  } else if (!uminInTnum && tnumNext === tmax) {
    // they only overlap in the largest member of the tnum
    markScalarKnown(s, tmax);
  } else if (
    !uminInTnum && tnumNext <= s.umax && tnumStep(s.varOff, tnumNext) > s.umax
  ) {
    // they only overlap in one value strictly between umin and umax
    markScalarKnown(s, tnumNext);
  }
}

/** Both halves of the tnum-to-bounds step (mirrors `__update_reg_bounds`). */
export function updateRegBounds(s: Scalar): void {
  updateReg32Bounds(s);
  updateReg64Bounds(s);
}

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

/** Learns known bits from the u64 and u32 ranges (mirrors `__reg_bound_offset`). */
export function regBoundOffset(s: Scalar): void {
  let value = s.varOff.value;
  let mask = s.varOff.mask;
  // var64 = tnum_intersect(var_off, tnum_range(umin, umax)), inlined; the
  // full range gives the unknown tnum, which changes nothing.
  if (s.umin !== 0n || s.umax !== U64_MAX) {
    const delta = LOW_BITS[fls64(s.umin ^ s.umax)];
    const m = mask & delta;
    value = (value | (s.umin & ~delta)) & ~m;
    mask = m;
  }
  // var32 = tnum_intersect(tnum_subreg(var64), tnum_range(u32_min, u32_max))
  // in plain numbers; again the full u32 range changes nothing.
  if (s.u32Min !== 0 || s.u32Max !== U32_MAX) {
    const chi = (s.u32Min ^ s.u32Max) >>> 0;
    const delta = chi === 0 ? 0 : (0xffff_ffff >>> Math.clz32(chi));
    const rangeV = (s.u32Min & ~delta) >>> 0;
    const lowV = Number(value & LO32);
    const lowM = Number(mask & LO32);
    const m32 = (lowM & delta) >>> 0;
    const v32 = ((lowV | rangeV) & ~m32) >>> 0;
    if (v32 !== lowV || m32 !== lowM) {
      value = (value & ~LO32) | BigInt(v32);
      mask = (mask & ~LO32) | BigInt(m32);
    }
  }
  // var_off = tnum_or(tnum_clear_subreg(var64), var32)
  if (value !== s.varOff.value || mask !== s.varOff.mask) {
    s.varOff = { value, mask };
  }
}

/**
 * Brings all views of the scalar into agreement (mirrors `reg_bounds_sync`):
 * bounds from the tnum, three rounds of sign/width deductions, bits from the
 * bounds, and bounds from the improved tnum again.
 */
export function regBoundsSync(s: Scalar): void {
  // A constant whose bounds all agree is a fixed point of every step below.
  if (s.varOff.mask === 0n && s.umin === s.varOff.value && s.umax === s.umin) {
    const lo = Number(s.umin & LO32);
    if (
      s.smin === s.smax && s.smin === BigInt.asIntN(64, s.umin) &&
      s.u32Min === lo &&
      s.u32Max === lo && s.s32Min === (lo | 0) && s.s32Max === (lo | 0)
    ) return;
  }
  updateRegBounds(s);
  // The kernel runs three rounds. A round is a pure function of the state,
  // so once one changes nothing the remaining rounds cannot either.
  for (let round = 0; round < 3; round++) {
    const { smin, smax, umin, umax, s32Min, s32Max, u32Min, u32Max, varOff } =
      s;
    regDeduceBounds(s);
    if (
      s.varOff === varOff && s.s32Min === s32Min && s.s32Max === s32Max &&
      s.u32Min === u32Min &&
      s.u32Max === u32Max && s.umin === umin && s.umax === umax &&
      s.smin === smin && s.smax === smax
    ) break;
  }
  regBoundOffset(s);
  updateRegBounds(s);
}

/** Copies the 32-bit bounds into the 64-bit ones after a zero extension (mirrors `__reg_assign_32_into_64`). */
export function regAssign32Into64(s: Scalar): void {
  s.umin = BigInt(s.u32Min);
  s.umax = BigInt(s.u32Max);
  // Signed 32-bit bounds carry over only when both are non-negative;
  // otherwise take the widest zero-extended range and refine from the tnum.
  if (s.s32Min >= 0 && s.s32Max >= 0) {
    s.smin = BigInt(s.s32Min);
    s.smax = BigInt(s.s32Max);
  } else {
    s.smin = 0n;
    s.smax = BigInt(U32_MAX);
  }
}

/** The upper half becomes zero, as after any ALU32 result (mirrors `zext_32_to_64`). */
export function zext32To64(s: Scalar): void {
  s.varOff = tnumSubreg(s.varOff);
  regAssign32Into64(s);
}

/**
 * Truncates to the low `size` bytes, zero-extending (mirrors
 * `coerce_reg_to_size`, used by narrow loads and bswap16/32).
 */
export function coerceRegToSize(s: Scalar, size: 1 | 2 | 4): void {
  s.varOff = tnumCast(s.varOff, size);
  const mask = (1n << BigInt(size * 8)) - 1n;
  const notMask = ~mask & U64_MAX;
  if ((s.umin & notMask) === (s.umax & notMask)) {
    s.umin &= mask;
    s.umax &= mask;
  } else {
    s.umin = 0n;
    s.umax = mask;
  }
  s.smin = s.umin;
  s.smax = s.umax;
  // narrower than 32 bits: the subregister was truncated too
  if (size < 4) markScalar32Unbounded(s);
  regBoundsSync(s);
}

function signExtend(x: bigint, size: number): bigint {
  return BigInt.asIntN(size * 8, x);
}

/** Mirrors `set_sext64_default_val`: the widest range a sign extension from `size` bytes allows. */
function setSext64DefaultVal(s: Scalar, size: 1 | 2 | 4): void {
  const bits = size * 8;
  s.smin = -(1n << BigInt(bits - 1));
  s.smax = (1n << BigInt(bits - 1)) - 1n;
  s.s32Min = Number(s.smin);
  s.s32Max = Number(s.smax);
  s.umin = 0n;
  s.u32Min = 0;
  s.umax = U64_MAX;
  s.u32Max = U32_MAX;
  s.varOff = TNUM_UNKNOWN;
}

/**
 * Sign-extends the low `size` bytes into 64 bits (mirrors
 * `coerce_reg_to_size_sx`, used by `movsx` and sign-extending loads). Like
 * the kernel it does not call `reg_bounds_sync()` itself.
 */
export function coerceRegToSizeSx(s: Scalar, size: 1 | 2 | 4): void {
  if (s.varOff.mask === 0n) {
    const c = BigInt.asUintN(64, signExtend(s.varOff.value, size));
    const lo = Number(c & LO32);
    s.varOff = tnumConst(c);
    s.smin = s.smax = BigInt.asIntN(64, c);
    s.umin = s.umax = c;
    s.s32Min = s.s32Max = lo | 0;
    s.u32Min = s.u32Max = lo;
    return;
  }
  const numBits = BigInt(size * 8);
  const topSmax = BigInt.asUintN(64, s.smax) >> numBits;
  const topSmin = BigInt.asUintN(64, s.smin) >> numBits;
  if (topSmax === topSmin) {
    const initMax = signExtend(s.smax, size);
    const initMin = signExtend(s.smin, size);
    const max = initMax > initMin ? initMax : initMin;
    const min = initMax > initMin ? initMin : initMax;
    // both ends on the same side of zero: the extension keeps the range
    if ((max >= 0n) === (min >= 0n)) {
      const uMin = BigInt.asUintN(64, min);
      const uMax = BigInt.asUintN(64, max);
      s.smin = min;
      s.smax = max;
      s.s32Min = Number(BigInt.asIntN(32, min));
      s.s32Max = Number(BigInt.asIntN(32, max));
      s.umin = uMin;
      s.umax = uMax;
      s.u32Min = Number(uMin & LO32);
      s.u32Max = Number(uMax & LO32);
      s.varOff = tnumRange(uMin, uMax);
      return;
    }
  }
  setSext64DefaultVal(s, size);
}

/**
 * Sign-extends the low `size` bytes into the 32-bit subregister (mirrors
 * `coerce_subreg_to_size_sx`, used by 32-bit `movsx`); the caller
 * zero-extends afterwards.
 */
export function coerceSubregToSizeSx(s: Scalar, size: 1 | 2): void {
  if (s.varOff.mask === 0n) {
    // The kernel keeps the full sign-extended 64-bit constant in var_off
    // and lets the later zext_32_to_64() drop the upper half.
    const c = BigInt.asUintN(64, signExtend(s.varOff.value & LO32, size));
    const lo = Number(c & LO32);
    s.varOff = tnumConst(c);
    s.s32Min = s.s32Max = lo | 0;
    s.u32Min = s.u32Max = lo;
    return;
  }
  const numBits = size * 8;
  const topSmax = (s.s32Max >>> 0) >>> numBits;
  const topSmin = (s.s32Min >>> 0) >>> numBits;
  if (topSmax === topSmin) {
    const shift = 32 - numBits;
    const initMax = (s.s32Max << shift) >> shift;
    const initMin = (s.s32Min << shift) >> shift;
    const max = Math.max(initMax, initMin);
    const min = Math.min(initMax, initMin);
    if ((min >= 0) === (max >= 0)) {
      s.s32Min = min;
      s.s32Max = max;
      s.u32Min = min >>> 0;
      s.u32Max = max >>> 0;
      s.varOff = tnumSubreg(
        tnumRange(
          BigInt.asUintN(64, BigInt(min)),
          BigInt.asUintN(64, BigInt(max)),
        ),
      );
      return;
    }
  }
  // mirrors set_sext32_default_val()
  s.s32Min = size === 1 ? -0x80 : -0x8000;
  s.s32Max = size === 1 ? 0x7f : 0x7fff;
  s.u32Min = 0;
  s.u32Max = U32_MAX;
  s.varOff = tnumSubreg(TNUM_UNKNOWN);
}

/**
 * Mirrors the checks of `reg_bounds_sanity_check()`: returns the kernel's
 * reason (`range bounds violation`, `const tnum out of sync with range
 * bounds`, `const subreg tnum out of sync with range bounds`) or null.
 */
export function regBoundsViolation(s: Scalar): string | null {
  if (
    s.umin > s.umax || s.smin > s.smax || s.u32Min > s.u32Max ||
    s.s32Min > s.s32Max
  ) {
    return "range bounds violation";
  }
  if (s.varOff.mask === 0n) {
    const u = s.varOff.value;
    const sv = BigInt.asIntN(64, u);
    if (s.umin !== u || s.umax !== u || s.smin !== sv || s.smax !== sv) {
      return "const tnum out of sync with range bounds";
    }
  }
  if ((s.varOff.mask & LO32) === 0n) {
    const u32 = Number(s.varOff.value & LO32);
    if (
      s.u32Min !== u32 || s.u32Max !== u32 || s.s32Min !== (u32 | 0) ||
      s.s32Max !== (u32 | 0)
    ) {
      return "const subreg tnum out of sync with range bounds";
    }
  }
  return null;
}

/**
 * The text `reg_bounds_sanity_check()` logs after `verifier bug: `, e.g.
 * `REG INVARIANTS VIOLATION (false_reg1): range bounds violation u64=[0xe01,
 * 0xe00] s64=[…] u32=[…] s32=[…] var_off=(0xe00, 0x0)`.
 */
export function formatInvariantViolation(
  s: Scalar,
  ctx: string,
  reason: string,
): string {
  const h32 = (n: number) => "0x" + (n >>> 0).toString(16);
  return `REG INVARIANTS VIOLATION (${ctx}): ${reason} ` +
    `u64=[${hex(s.umin)}, ${hex(s.umax)}] ` +
    `s64=[${hex(BigInt.asUintN(64, s.smin))}, ${
      hex(BigInt.asUintN(64, s.smax))
    }] ` +
    `u32=[${h32(s.u32Min)}, ${h32(s.u32Max)}] s32=[${h32(s.s32Min)}, ${
      h32(s.s32Max)
    }] ` +
    `var_off=(${hex(s.varOff.value)}, ${hex(s.varOff.mask)})`;
}

/**
 * Mirrors `reg_bounds_sanity_check()` as it behaves without
 * `BPF_F_TEST_REG_INVARIANTS`: on a violated invariant it returns the message
 * (to be logged after `verifier bug: `) and opens all bounds of the scalar,
 * keeping its tnum; the verification then goes on. Returns null when sane.
 */
export function regBoundsSanityCheck(s: Scalar, ctx: string): string | null {
  const reason = regBoundsViolation(s);
  if (reason === null) return null;
  const msg = formatInvariantViolation(s, ctx, reason);
  markScalarUnbounded(s);
  return msg;
}
