/**
 * Bounds and `var_off` of scalar shifts by a known amount: the kernel's
 * `scalar32_min_max_lsh()` / `__scalar32_min_max_lsh()`,
 * `scalar_min_max_lsh()` / `__scalar64_min_max_lsh()`,
 * `scalar32_min_max_rsh()`, `scalar_min_max_rsh()`,
 * `scalar32_min_max_arsh()` and `scalar_min_max_arsh()`, called by
 * `adjust_scalar_min_max_vals()` (scalar_alu.ts).
 * @module
 */

import { updateReg32Bounds, updateRegBounds } from "./bounds_sync.ts";
import { markScalar32Unbounded, markScalar64Unbounded } from "./scalar_mark.ts";
import {
  S32_MAX,
  S32_MIN,
  S64_MAX,
  S64_MIN,
  type Scalar,
  U32_MAX,
} from "./scalar.ts";
import {
  tnumArshift,
  tnumLshift,
  tnumRshift,
  tnumSubreg,
  U64_MAX,
} from "./tnum.ts";

/** Mirrors `__scalar32_min_max_lsh`. */
function scalar32MinMaxLshBounds(
  dst: Scalar,
  uminVal: number,
  umaxVal: number,
): void {
  // the sign bit is lost, except what var_off will tell
  dst.s32Min = S32_MIN;
  dst.s32Max = S32_MAX;
  if (umaxVal > 31 || dst.u32Max > 2 ** (31 - umaxVal)) {
    dst.u32Min = 0;
    dst.u32Max = U32_MAX;
  } else {
    dst.u32Min = (dst.u32Min * 2 ** uminVal) >>> 0;
    dst.u32Max = (dst.u32Max * 2 ** umaxVal) >>> 0;
  }
}

/** Mirrors `__scalar64_min_max_lsh`. */
function scalar64MinMaxLshBounds(
  dst: Scalar,
  uminVal: number,
  umaxVal: number,
): void {
  // `<<32` is how compilers sign-extend a subregister (<<32 s>>32): the
  // signed 32-bit bounds move up unchanged.
  if (uminVal === 32 && umaxVal === 32) {
    dst.smax = BigInt(dst.s32Max) << 32n;
    dst.smin = BigInt(dst.s32Min) << 32n;
  } else {
    dst.smax = S64_MAX;
    dst.smin = S64_MIN;
  }
  if (dst.umax > 1n << BigInt(63 - umaxVal)) {
    dst.umin = 0n;
    dst.umax = U64_MAX;
  } else {
    dst.umin = (dst.umin << BigInt(uminVal)) & U64_MAX;
    dst.umax = (dst.umax << BigInt(umaxVal)) & U64_MAX;
  }
}

/** Mirrors `scalar32_min_max_lsh`. */
export function scalar32MinMaxLsh(dst: Scalar, src: Scalar): void {
  const subreg = tnumSubreg(dst.varOff);
  scalar32MinMaxLshBounds(dst, src.u32Min, src.u32Max);
  dst.varOff = tnumSubreg(tnumLshift(subreg, src.u32Min));
  markScalar64Unbounded(dst);
  updateReg32Bounds(dst);
}

/** Mirrors `scalar_min_max_lsh`. */
export function scalarMinMaxLsh(dst: Scalar, src: Scalar): void {
  const uminVal = Number(src.umin);
  const umaxVal = Number(src.umax);
  // the 64-bit step reads the unshifted 32-bit bounds, so it goes first
  scalar64MinMaxLshBounds(dst, uminVal, umaxVal);
  scalar32MinMaxLshBounds(dst, uminVal, umaxVal);
  dst.varOff = tnumLshift(dst.varOff, uminVal);
  updateRegBounds(dst);
}

/** Mirrors `scalar32_min_max_rsh`. */
export function scalar32MinMaxRsh(dst: Scalar, src: Scalar): void {
  const subreg = tnumSubreg(dst.varOff);
  // an unsigned shift tells nothing about the sign: rely on u32 and var_off
  dst.s32Min = S32_MIN;
  dst.s32Max = S32_MAX;
  dst.varOff = tnumRshift(subreg, src.u32Min);
  dst.u32Min = dst.u32Min >>> src.u32Max;
  dst.u32Max = dst.u32Max >>> src.u32Min;
  markScalar64Unbounded(dst);
  updateReg32Bounds(dst);
}

/** Mirrors `scalar_min_max_rsh`. */
export function scalarMinMaxRsh(dst: Scalar, src: Scalar): void {
  dst.smin = S64_MIN;
  dst.smax = S64_MAX;
  dst.varOff = tnumRshift(dst.varOff, Number(src.umin));
  dst.umin >>= src.umax;
  dst.umax >>= src.umin;
  // bits shifted in from the upper half: recompute the subregister from var_off
  markScalar32Unbounded(dst);
  updateRegBounds(dst);
}

/** Mirrors `scalar32_min_max_arsh`. */
export function scalar32MinMaxArsh(dst: Scalar, src: Scalar): void {
  const shift = src.u32Min;
  dst.s32Min >>= shift;
  dst.s32Max >>= shift;
  dst.varOff = tnumArshift(tnumSubreg(dst.varOff), shift, 32);
  dst.u32Min = 0;
  dst.u32Max = U32_MAX;
  markScalar64Unbounded(dst);
  updateReg32Bounds(dst);
}

/** Mirrors `scalar_min_max_arsh`. */
export function scalarMinMaxArsh(dst: Scalar, src: Scalar): void {
  const shift = src.umin;
  dst.smin >>= shift;
  dst.smax >>= shift;
  dst.varOff = tnumArshift(dst.varOff, Number(shift), 64);
  dst.umin = 0n;
  dst.umax = U64_MAX;
  markScalar32Unbounded(dst);
  updateRegBounds(dst);
}
