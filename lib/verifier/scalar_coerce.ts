/**
 * Truncation, zero extension and sign extension of a scalar: the kernel's
 * `coerce_reg_to_size()`, `coerce_reg_to_size_sx()`,
 * `coerce_subreg_to_size_sx()` (with `set_sext64_default_val()` and
 * `set_sext32_default_val()`), `zext_32_to_64()` and
 * `__reg_assign_32_into_64()`, used by narrow and sign-extending loads,
 * `movsx`, byte swaps and every ALU32 result.
 *
 * Everything mutates the scalar in place, like the kernel's functions on
 * `struct bpf_reg_state *`.
 * @module
 */

import { regBoundsSync } from "./bounds_sync.ts";
import { markScalar32Unbounded, markScalarKnown } from "./scalar_mark.ts";
import { type Scalar, U32_MAX } from "./scalar.ts";
import {
  TNUM_UNKNOWN,
  tnumCast,
  tnumConst,
  tnumRange,
  tnumSubreg,
  U64_MAX,
} from "./tnum.ts";

const LO32 = 0xffff_ffffn;

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
    markScalarKnown(s, signExtend(s.varOff.value, size));
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
