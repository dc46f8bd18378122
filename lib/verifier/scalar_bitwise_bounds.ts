/**
 * Bounds of scalar AND, OR and XOR: the kernel's `scalar32_min_max_and()`,
 * `scalar_min_max_and()`, `scalar32_min_max_or()`, `scalar_min_max_or()`,
 * `scalar32_min_max_xor()` and `scalar_min_max_xor()`, called by
 * `adjust_scalar_min_max_vals()` (scalar_alu.ts) after it has computed the
 * result's `var_off`.
 * @module
 */

import { updateRegBounds } from "./bounds_sync.ts";
import { markScalar32Known, markScalarKnown } from "./scalar_mark.ts";
import { S32_MAX, S32_MIN, S64_MAX, S64_MIN, type Scalar } from "./scalar.ts";

const LO32 = 0xffff_ffffn;

// These run after var_off already holds the result's tnum, which the
// "both known" tests below look at, exactly as in the kernel.

/** Sets s32 from u32 when the u32 range does not cross the sign bit, else opens it. */
function s32FromU32(dst: Scalar): void {
  if ((dst.u32Min | 0) <= (dst.u32Max | 0)) {
    dst.s32Min = dst.u32Min | 0;
    dst.s32Max = dst.u32Max | 0;
  } else {
    dst.s32Min = S32_MIN;
    dst.s32Max = S32_MAX;
  }
}

/** Sets s64 from u64 when the u64 range does not cross the sign bit, else opens it. */
function s64FromU64(dst: Scalar): void {
  const lo = BigInt.asIntN(64, dst.umin);
  const hi = BigInt.asIntN(64, dst.umax);
  if (lo <= hi) {
    dst.smin = lo;
    dst.smax = hi;
  } else {
    dst.smin = S64_MIN;
    dst.smax = S64_MAX;
  }
}

function bothConst32(dst: Scalar, src: Scalar): boolean {
  return (src.varOff.mask & LO32) === 0n && (dst.varOff.mask & LO32) === 0n;
}

function bothConst64(dst: Scalar, src: Scalar): boolean {
  return src.varOff.mask === 0n && dst.varOff.mask === 0n;
}

/** Mirrors `scalar32_min_max_and`. */
export function scalar32MinMaxAnd(dst: Scalar, src: Scalar): void {
  const v = Number(dst.varOff.value & LO32);
  if (bothConst32(dst, src)) return markScalar32Known(dst, BigInt(v));
  // minimum from the known bits, maximum from the smaller operand maximum
  dst.u32Min = v;
  dst.u32Max = Math.min(dst.u32Max, src.u32Max);
  s32FromU32(dst);
}

/** Mirrors `scalar_min_max_and`. */
export function scalarMinMaxAnd(dst: Scalar, src: Scalar): void {
  if (bothConst64(dst, src)) return markScalarKnown(dst, dst.varOff.value);
  dst.umin = dst.varOff.value;
  if (src.umax < dst.umax) dst.umax = src.umax;
  s64FromU64(dst);
  updateRegBounds(dst);
}

/** Mirrors `scalar32_min_max_or`. */
export function scalar32MinMaxOr(dst: Scalar, src: Scalar): void {
  const v = dst.varOff.value & LO32;
  if (bothConst32(dst, src)) return markScalar32Known(dst, v);
  // maximum from the known bits, minimum from the larger operand minimum
  dst.u32Min = Math.max(dst.u32Min, src.u32Min);
  dst.u32Max = Number(v | (dst.varOff.mask & LO32));
  s32FromU32(dst);
}

/** Mirrors `scalar_min_max_or`. */
export function scalarMinMaxOr(dst: Scalar, src: Scalar): void {
  if (bothConst64(dst, src)) return markScalarKnown(dst, dst.varOff.value);
  if (src.umin > dst.umin) dst.umin = src.umin;
  dst.umax = dst.varOff.value | dst.varOff.mask;
  s64FromU64(dst);
  updateRegBounds(dst);
}

/** Mirrors `scalar32_min_max_xor`. */
export function scalar32MinMaxXor(dst: Scalar, src: Scalar): void {
  const v = dst.varOff.value & LO32;
  if (bothConst32(dst, src)) return markScalar32Known(dst, v);
  dst.u32Min = Number(v);
  dst.u32Max = Number(v | (dst.varOff.mask & LO32));
  s32FromU32(dst);
}

/** Mirrors `scalar_min_max_xor`. */
export function scalarMinMaxXor(dst: Scalar, src: Scalar): void {
  if (bothConst64(dst, src)) return markScalarKnown(dst, dst.varOff.value);
  dst.umin = dst.varOff.value;
  dst.umax = dst.varOff.value | dst.varOff.mask;
  s64FromU64(dst);
  updateRegBounds(dst);
}
