/**
 * Bounds of scalar addition, subtraction and multiplication: the kernel's
 * `scalar32_min_max_add()`, `scalar_min_max_add()`, `scalar32_min_max_sub()`,
 * `scalar_min_max_sub()`, `scalar32_min_max_mul()` and
 * `scalar_min_max_mul()`, called by `adjust_scalar_min_max_vals()`
 * (scalar_alu.ts), which also updates `var_off`.
 *
 * Overflow checks follow `check_add_overflow()` and friends: the wrapped
 * result is kept when the check passes.
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
import { U64_MAX } from "./tnum.ts";

function isInt32(x: number): boolean {
  return x >= S32_MIN && x <= S32_MAX;
}

// --- add / sub ------------------------------------------------------------

/** Mirrors `scalar32_min_max_add`. */
export function scalar32MinMaxAdd(dst: Scalar, src: Scalar): void {
  const smin = dst.s32Min + src.s32Min;
  const smax = dst.s32Max + src.s32Max;
  if (!isInt32(smin) || !isInt32(smax)) {
    dst.s32Min = S32_MIN;
    dst.s32Max = S32_MAX;
  } else {
    dst.s32Min = smin;
    dst.s32Max = smax;
  }
  // Bounds stay valid if no addition or every addition wraps.
  const umin = dst.u32Min + src.u32Min;
  const umax = dst.u32Max + src.u32Max;
  dst.u32Min = umin >>> 0;
  dst.u32Max = umax >>> 0;
  if (umin <= U32_MAX && umax > U32_MAX) {
    dst.u32Min = 0;
    dst.u32Max = U32_MAX;
  }
}

/** Mirrors `scalar_min_max_add`. */
export function scalarMinMaxAdd(dst: Scalar, src: Scalar): void {
  const smin = dst.smin + src.smin;
  const smax = dst.smax + src.smax;
  if (smin < S64_MIN || smin > S64_MAX || smax < S64_MIN || smax > S64_MAX) {
    dst.smin = S64_MIN;
    dst.smax = S64_MAX;
  } else {
    dst.smin = smin;
    dst.smax = smax;
  }
  const umin = dst.umin + src.umin;
  const umax = dst.umax + src.umax;
  dst.umin = umin & U64_MAX;
  dst.umax = umax & U64_MAX;
  if (umin <= U64_MAX && umax > U64_MAX) {
    dst.umin = 0n;
    dst.umax = U64_MAX;
  }
}

/** Mirrors `scalar32_min_max_sub`. */
export function scalar32MinMaxSub(dst: Scalar, src: Scalar): void {
  const smin = dst.s32Min - src.s32Max;
  const smax = dst.s32Max - src.s32Min;
  if (!isInt32(smin) || !isInt32(smax)) {
    dst.s32Min = S32_MIN;
    dst.s32Max = S32_MAX;
  } else {
    dst.s32Min = smin;
    dst.s32Max = smax;
  }
  // Bounds stay valid if no subtraction or every subtraction wraps.
  const umin = dst.u32Min - src.u32Max;
  const umax = dst.u32Max - src.u32Min;
  dst.u32Min = umin >>> 0;
  dst.u32Max = umax >>> 0;
  if (umin < 0 && umax >= 0) {
    dst.u32Min = 0;
    dst.u32Max = U32_MAX;
  }
}

/** Mirrors `scalar_min_max_sub`. */
export function scalarMinMaxSub(dst: Scalar, src: Scalar): void {
  const smin = dst.smin - src.smax;
  const smax = dst.smax - src.smin;
  if (smin < S64_MIN || smin > S64_MAX || smax < S64_MIN || smax > S64_MAX) {
    dst.smin = S64_MIN;
    dst.smax = S64_MAX;
  } else {
    dst.smin = smin;
    dst.smax = smax;
  }
  const umin = dst.umin - src.umax;
  const umax = dst.umax - src.umin;
  dst.umin = umin & U64_MAX;
  dst.umax = umax & U64_MAX;
  if (umin < 0n && umax >= 0n) {
    dst.umin = 0n;
    dst.umax = U64_MAX;
  }
}

// --- mul ------------------------------------------------------------------

/** Mirrors `scalar32_min_max_mul`. */
export function scalar32MinMaxMul(dst: Scalar, src: Scalar): void {
  // Products of 32-bit numbers are exact doubles whenever they fit in 32 bits,
  // so comparing the double against the limits detects overflow reliably.
  const umax = dst.u32Max * src.u32Max;
  const umin = dst.u32Min * src.u32Min;
  if (umax > U32_MAX || umin > U32_MAX) {
    dst.u32Min = 0;
    dst.u32Max = U32_MAX;
  } else {
    dst.u32Min = umin;
    dst.u32Max = umax;
  }
  const p0 = dst.s32Min * src.s32Min;
  const p1 = dst.s32Min * src.s32Max;
  const p2 = dst.s32Max * src.s32Min;
  const p3 = dst.s32Max * src.s32Max;
  if (!isInt32(p0) || !isInt32(p1) || !isInt32(p2) || !isInt32(p3)) {
    dst.s32Min = S32_MIN;
    dst.s32Max = S32_MAX;
  } else {
    dst.s32Min = Math.min(p0, p1, p2, p3) | 0;
    dst.s32Max = Math.max(p0, p1, p2, p3) | 0;
  }
}

function inS64(x: bigint): boolean {
  return x >= S64_MIN && x <= S64_MAX;
}

/** Mirrors `scalar_min_max_mul`. */
export function scalarMinMaxMul(dst: Scalar, src: Scalar): void {
  const umax = dst.umax * src.umax;
  const umin = dst.umin * src.umin;
  if (umax > U64_MAX || umin > U64_MAX) {
    dst.umin = 0n;
    dst.umax = U64_MAX;
  } else {
    dst.umin = umin;
    dst.umax = umax;
  }
  const p0 = dst.smin * src.smin;
  const p1 = dst.smin * src.smax;
  const p2 = dst.smax * src.smin;
  const p3 = dst.smax * src.smax;
  if (!inS64(p0) || !inS64(p1) || !inS64(p2) || !inS64(p3)) {
    dst.smin = S64_MIN;
    dst.smax = S64_MAX;
  } else {
    let lo = p0, hi = p0;
    for (const p of [p1, p2, p3]) {
      if (p < lo) lo = p;
      if (p > hi) hi = p;
    }
    dst.smin = lo;
    dst.smax = hi;
  }
}
