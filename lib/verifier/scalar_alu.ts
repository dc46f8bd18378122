/**
 * Transfer functions of ALU instructions on scalars: the kernel's
 * `adjust_scalar_min_max_vals()` with its `scalar_min_max_*` and
 * `scalar32_min_max_*` helpers, plus the scalar cases of `check_alu_op()`
 * for `mov`, `movsx` and byte swaps (`scalar_byte_swap()`).
 *
 * As in the kernel, each operation computes the 32-bit and 64-bit bounds
 * separately and updates `var_off` with the matching tnum operation; 32-bit
 * results are then zero-extended and everything goes through
 * `reg_bounds_sync()`. Overflow checks follow `check_add_overflow()` and
 * friends: the wrapped result is kept when the check passes.
 * @module
 */

import type { AluOp } from "../isa/insn.ts";
import {
  coerceRegToSize,
  coerceRegToSizeSx,
  coerceSubregToSizeSx,
  markScalar32Known,
  markScalar32Unbounded,
  markScalar64Unbounded,
  markScalarKnown,
  markScalarUnbounded,
  markScalarUnknown,
  regBoundsSync,
  updateReg32Bounds,
  updateRegBounds,
  zext32To64,
} from "./bounds_sync.ts";
import {
  assignScalar,
  constScalar,
  copyScalar,
  S32_MAX,
  S32_MIN,
  S64_MAX,
  S64_MIN,
  type Scalar,
  U32_MAX,
} from "./scalar.ts";
import {
  tnumAdd,
  tnumAnd,
  tnumArshift,
  tnumBswap16,
  tnumBswap32,
  tnumBswap64,
  tnumLshift,
  tnumMul,
  tnumNeg,
  tnumOr,
  tnumRshift,
  tnumSub,
  tnumSubreg,
  tnumXor,
  U64_MAX,
} from "./tnum.ts";

/** The ALU operations handled by {@link adjustScalarMinMaxVals}. */
export type ScalarAluOp = Exclude<AluOp, "mov" | "movsx" | "addr_space_cast">;

const LO32 = 0xffff_ffffn;

function isInt32(x: number): boolean {
  return x >= S32_MIN && x <= S32_MAX;
}

// --- add / sub ------------------------------------------------------------

/** Mirrors `scalar32_min_max_add`. */
function scalar32MinMaxAdd(dst: Scalar, src: Scalar): void {
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
function scalarMinMaxAdd(dst: Scalar, src: Scalar): void {
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
function scalar32MinMaxSub(dst: Scalar, src: Scalar): void {
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
function scalarMinMaxSub(dst: Scalar, src: Scalar): void {
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
function scalar32MinMaxMul(dst: Scalar, src: Scalar): void {
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
function scalarMinMaxMul(dst: Scalar, src: Scalar): void {
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

// --- and / or / xor ---------------------------------------------------------
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
function scalar32MinMaxAnd(dst: Scalar, src: Scalar): void {
  const v = Number(dst.varOff.value & LO32);
  if (bothConst32(dst, src)) return markScalar32Known(dst, BigInt(v));
  // minimum from the known bits, maximum from the smaller operand maximum
  dst.u32Min = v;
  dst.u32Max = Math.min(dst.u32Max, src.u32Max);
  s32FromU32(dst);
}

/** Mirrors `scalar_min_max_and`. */
function scalarMinMaxAnd(dst: Scalar, src: Scalar): void {
  if (bothConst64(dst, src)) return markScalarKnown(dst, dst.varOff.value);
  dst.umin = dst.varOff.value;
  if (src.umax < dst.umax) dst.umax = src.umax;
  s64FromU64(dst);
  updateRegBounds(dst);
}

/** Mirrors `scalar32_min_max_or`. */
function scalar32MinMaxOr(dst: Scalar, src: Scalar): void {
  const v = dst.varOff.value & LO32;
  if (bothConst32(dst, src)) return markScalar32Known(dst, v);
  // maximum from the known bits, minimum from the larger operand minimum
  dst.u32Min = Math.max(dst.u32Min, src.u32Min);
  dst.u32Max = Number(v | (dst.varOff.mask & LO32));
  s32FromU32(dst);
}

/** Mirrors `scalar_min_max_or`. */
function scalarMinMaxOr(dst: Scalar, src: Scalar): void {
  if (bothConst64(dst, src)) return markScalarKnown(dst, dst.varOff.value);
  if (src.umin > dst.umin) dst.umin = src.umin;
  dst.umax = dst.varOff.value | dst.varOff.mask;
  s64FromU64(dst);
  updateRegBounds(dst);
}

/** Mirrors `scalar32_min_max_xor`. */
function scalar32MinMaxXor(dst: Scalar, src: Scalar): void {
  const v = dst.varOff.value & LO32;
  if (bothConst32(dst, src)) return markScalar32Known(dst, v);
  dst.u32Min = Number(v);
  dst.u32Max = Number(v | (dst.varOff.mask & LO32));
  s32FromU32(dst);
}

/** Mirrors `scalar_min_max_xor`. */
function scalarMinMaxXor(dst: Scalar, src: Scalar): void {
  if (bothConst64(dst, src)) return markScalarKnown(dst, dst.varOff.value);
  dst.umin = dst.varOff.value;
  dst.umax = dst.varOff.value | dst.varOff.mask;
  s64FromU64(dst);
  updateRegBounds(dst);
}

// --- shifts (the shift amount is a known constant below the width) ---------

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
function scalar32MinMaxLsh(dst: Scalar, src: Scalar): void {
  const subreg = tnumSubreg(dst.varOff);
  scalar32MinMaxLshBounds(dst, src.u32Min, src.u32Max);
  dst.varOff = tnumSubreg(tnumLshift(subreg, src.u32Min));
  markScalar64Unbounded(dst);
  updateReg32Bounds(dst);
}

/** Mirrors `scalar_min_max_lsh`. */
function scalarMinMaxLsh(dst: Scalar, src: Scalar): void {
  const uminVal = Number(src.umin);
  const umaxVal = Number(src.umax);
  // the 64-bit step reads the unshifted 32-bit bounds, so it goes first
  scalar64MinMaxLshBounds(dst, uminVal, umaxVal);
  scalar32MinMaxLshBounds(dst, uminVal, umaxVal);
  dst.varOff = tnumLshift(dst.varOff, uminVal);
  updateRegBounds(dst);
}

/** Mirrors `scalar32_min_max_rsh`. */
function scalar32MinMaxRsh(dst: Scalar, src: Scalar): void {
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
function scalarMinMaxRsh(dst: Scalar, src: Scalar): void {
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
function scalar32MinMaxArsh(dst: Scalar, src: Scalar): void {
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
function scalarMinMaxArsh(dst: Scalar, src: Scalar): void {
  const shift = src.umin;
  dst.smin >>= shift;
  dst.smax >>= shift;
  dst.varOff = tnumArshift(dst.varOff, Number(shift), 64);
  dst.umin = 0n;
  dst.umax = U64_MAX;
  markScalar32Unbounded(dst);
  updateRegBounds(dst);
}

// --- dispatch ---------------------------------------------------------------

/**
 * Mirrors `is_safe_to_compute_dst_reg_range()`: bounds are tracked for
 * add, sub, neg, mul, and, or, xor (and byte swaps), and for shifts by a
 * known amount below the operand width. Division and modulo are not tracked
 * by this kernel (6.18): their result is unknown.
 */
export function isSafeToComputeDstRegRange(
  src: Scalar,
  op: ScalarAluOp,
  alu64: boolean,
): boolean {
  switch (op) {
    case "add":
    case "sub":
    case "neg":
    case "and":
    case "xor":
    case "or":
    case "mul":
      return true;
    case "lsh":
    case "rsh":
    case "arsh": {
      const bitness = alu64 ? 64n : 32n;
      const srcIsConst = alu64
        ? src.varOff.mask === 0n && src.smin === src.smax &&
          src.umin === src.umax
        : (src.varOff.mask & LO32) === 0n && src.s32Min === src.s32Max &&
          src.u32Min === src.u32Max;
      // the 64-bit umax is compared even for 32-bit shifts, as in the kernel
      return srcIsConst && src.umax < bitness;
    }
    default:
      return false;
  }
}

/**
 * The scalar side of `maybe_fork_scalars()`: LLVM lowers `c ? K : 0` to
 * `(x s>> 63) & K` (or `|`), so before an AND/OR with a constant the kernel
 * splits a `dst` in [-1, 0] (64-bit, else 32-bit) into two states. `dst`
 * becomes -1 in place; the returned scalar is the 0 variant, from which the
 * verifier pushes a branch that re-executes the same instruction. Returns
 * null when no split applies.
 */
export function maybeForkScalars(dst: Scalar): Scalar | null {
  let alu32: boolean;
  if (dst.smin === -1n && dst.smax === 0n) alu32 = false;
  else if (dst.s32Min === -1 && dst.s32Max === 0) alu32 = true;
  else return null;
  const zero = copyScalar(dst);
  if (alu32) {
    markScalar32Known(zero, 0n);
    markScalar32Known(dst, -1n);
  } else {
    markScalarKnown(zero, 0n);
    markScalarKnown(dst, -1n);
  }
  return zero;
}

/**
 * Called when the kernel would fork the verifier state (see
 * {@link maybeForkScalars}); receives the `dst = 0` variant.
 */
export type ScalarForkHandler = (zero: Scalar) => void;

function forkIfSignMask(dst: Scalar, onFork: ScalarForkHandler): void {
  const zero = maybeForkScalars(dst);
  if (zero) onFork(zero);
}

/**
 * `dst = dst op src` on scalars in 64 (`alu64`) or 32 bits (mirrors
 * `adjust_scalar_min_max_vals()`); `neg` ignores `src`. When the range is not
 * computable (unknown shift amount, division) `dst` becomes fully unknown,
 * with no zero extension, like the kernel's early `__mark_reg_unknown()`.
 * `src` may be `dst` itself. With `onFork`, an AND/OR by a constant on a
 * `dst` in [-1, 0] splits as in the kernel: `dst` continues as -1 and
 * `onFork` gets the 0 variant; without it no split happens.
 */
export function adjustScalarMinMaxVals(
  dst: Scalar,
  src: Scalar,
  op: ScalarAluOp,
  alu64: boolean,
  onFork?: ScalarForkHandler,
): void {
  if (!isSafeToComputeDstRegRange(src, op, alu64)) {
    markScalarUnknown(dst);
    return;
  }
  // The kernel passes src by value: `r1 += r1` must see the old r1.
  const s = src === dst ? copyScalar(src) : src;
  switch (op) {
    case "add":
      scalar32MinMaxAdd(dst, s);
      scalarMinMaxAdd(dst, s);
      dst.varOff = tnumAdd(dst.varOff, s.varOff);
      break;
    case "sub":
      scalar32MinMaxSub(dst, s);
      scalarMinMaxSub(dst, s);
      dst.varOff = tnumSub(dst.varOff, s.varOff);
      break;
    case "neg": {
      // 0 - dst, through the subtraction rules on a copy of dst
      const old = copyScalar(dst);
      markScalarKnown(dst, 0n);
      scalar32MinMaxSub(dst, old);
      scalarMinMaxSub(dst, old);
      dst.varOff = tnumNeg(old.varOff);
      break;
    }
    case "mul":
      dst.varOff = tnumMul(dst.varOff, s.varOff);
      scalar32MinMaxMul(dst, s);
      scalarMinMaxMul(dst, s);
      break;
    case "and":
      if (onFork && s.varOff.mask === 0n) forkIfSignMask(dst, onFork);
      dst.varOff = tnumAnd(dst.varOff, s.varOff);
      scalar32MinMaxAnd(dst, s);
      scalarMinMaxAnd(dst, s);
      break;
    case "or":
      if (onFork && s.varOff.mask === 0n) forkIfSignMask(dst, onFork);
      dst.varOff = tnumOr(dst.varOff, s.varOff);
      scalar32MinMaxOr(dst, s);
      scalarMinMaxOr(dst, s);
      break;
    case "xor":
      dst.varOff = tnumXor(dst.varOff, s.varOff);
      scalar32MinMaxXor(dst, s);
      scalarMinMaxXor(dst, s);
      break;
    case "lsh":
      if (alu64) scalarMinMaxLsh(dst, s);
      else scalar32MinMaxLsh(dst, s);
      break;
    case "rsh":
      if (alu64) scalarMinMaxRsh(dst, s);
      else scalar32MinMaxRsh(dst, s);
      break;
    case "arsh":
      if (alu64) scalarMinMaxArsh(dst, s);
      else scalar32MinMaxArsh(dst, s);
      break;
  }
  // ALU32 results are zero-extended into the 64-bit register
  if (!alu64) zext32To64(dst);
  regBoundsSync(dst);
}

/**
 * `dst op= imm` (class ALU/ALU64 with `BPF_K`): the immediate is a 32-bit
 * signed number, sign-extended to 64 bits as in `adjust_reg_min_max_vals()`.
 */
export function adjustScalarImm(
  dst: Scalar,
  op: ScalarAluOp,
  imm: number,
  alu64: boolean,
  onFork?: ScalarForkHandler,
): void {
  adjustScalarMinMaxVals(dst, constScalar(BigInt(imm | 0)), op, alu64, onFork);
}

/** `dst = imm` (mirrors `check_alu_op()` for `BPF_MOV | BPF_K`). */
export function scalarMovImm(dst: Scalar, imm: number, alu64: boolean): void {
  markScalarKnown(dst, alu64 ? BigInt(imm | 0) : BigInt(imm >>> 0));
}

/**
 * `dst = src` for a scalar source in 64 or 32 bits, optionally
 * sign-extending from `extendBits` (`movsx`), as `check_alu_op()` does for
 * `BPF_MOV | BPF_X`. The 64-bit `movsx` leaves the bounds unsynced, like the
 * kernel, which is visible in its logs.
 */
export function scalarMov(
  dst: Scalar,
  src: Scalar,
  alu64: boolean,
  extendBits: 0 | 8 | 16 | 32 = 0,
): void {
  assignScalar(dst, src);
  if (alu64) {
    if (extendBits !== 0) {
      coerceRegToSizeSx(dst, (extendBits >> 3) as 1 | 2 | 4);
    }
    return;
  }
  if (extendBits === 8 || extendBits === 16) {
    coerceSubregToSizeSx(dst, (extendBits >> 3) as 1 | 2);
  }
  zext32To64(dst);
  regBoundsSync(dst);
}

/**
 * Byte order instructions (mirrors `scalar_byte_swap()` and the end of
 * `adjust_scalar_min_max_vals()`): `swap` (bswap, ALU64) and `be` swap on a
 * little-endian machine, `le` does not; 16- and 32-bit forms truncate. The
 * range is rebuilt from the swapped tnum.
 */
export function scalarByteSwap(
  dst: Scalar,
  order: "le" | "be" | "swap",
  bits: 16 | 32 | 64,
): void {
  if (order !== "le") {
    if (bits === 16) dst.varOff = tnumBswap16(dst.varOff);
    else if (bits === 32) dst.varOff = tnumBswap32(dst.varOff);
    else dst.varOff = tnumBswap64(dst.varOff);
    markScalarUnbounded(dst);
  }
  if (bits !== 64) coerceRegToSize(dst, (bits >> 3) as 2 | 4);
  regBoundsSync(dst);
}
