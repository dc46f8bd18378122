/**
 * Keeping a scalar's five views (s64, u64, s32, u32 bounds and the tnum)
 * consistent: the kernel's `reg_bounds_sync()` with `__update_reg_bounds()`,
 * `__update_reg32_bounds()`, `__update_reg64_bounds()` and
 * `__reg_bound_offset()`, in the same order of deductions.
 *
 * The deduction rounds live in bounds_deduce.ts, the `__mark_reg_*` setters
 * in scalar_mark.ts and `reg_bounds_sanity_check()` in bounds_sanity.ts; they
 * are re-exported here. Truncation and extension are in scalar_coerce.ts.
 *
 * Everything mutates the scalar in place, like the kernel's functions on
 * `struct bpf_reg_state *`.
 * @module
 */

import { regDeduceBounds } from "./bounds_deduce.ts";
import { markScalarKnown } from "./scalar_mark.ts";
import { S64_MAX, type Scalar, U32_MAX } from "./scalar.ts";
import { fls64, LOW_BITS, tnumStep, U64_MAX } from "./tnum.ts";

export {
  reg32DeduceBounds,
  reg64DeduceBounds,
  regDeduceBounds,
  regDeduceMixedBounds,
} from "./bounds_deduce.ts";
export {
  markScalar32Known,
  markScalar32Unbounded,
  markScalar64Unbounded,
  markScalarKnown,
  markScalarKnownZero,
  markScalarUnbounded,
  markScalarUnknown,
} from "./scalar_mark.ts";
export {
  formatInvariantViolation,
  regBoundsSanityCheck,
  regBoundsViolation,
} from "./bounds_sanity.ts";

const LO32 = 0xffff_ffffn;
const SIGN64 = 1n << 63n;

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
