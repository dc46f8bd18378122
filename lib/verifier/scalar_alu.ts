/**
 * Transfer functions of ALU instructions on scalars: the kernel's
 * `adjust_scalar_min_max_vals()` with `is_safe_to_compute_dst_reg_range()`
 * and the scalar side of `maybe_fork_scalars()`, dispatching to the
 * `scalar_min_max_*` and `scalar32_min_max_*` helpers (scalar_arith_bounds.ts,
 * scalar_bitwise_bounds.ts, scalar_shift_bounds.ts). The scalar cases of
 * `check_alu_op()` for `mov`, `movsx` and byte swaps (`scalar_byte_swap()`)
 * live in scalar_mov.ts and are re-exported here.
 *
 * As in the kernel, each operation computes the 32-bit and 64-bit bounds
 * separately and updates `var_off` with the matching tnum operation; 32-bit
 * results are then zero-extended and everything goes through
 * `reg_bounds_sync()`. Overflow checks follow `check_add_overflow()` and
 * friends: the wrapped result is kept when the check passes.
 * @module
 */

import type { AluOp } from "../isa/insn.ts";
import { regBoundsSync } from "./bounds_sync.ts";
import { zext32To64 } from "./scalar_coerce.ts";
import {
  markScalar32Known,
  markScalarKnown,
  markScalarUnknown,
} from "./scalar_mark.ts";
import { constScalar, copyScalar, type Scalar } from "./scalar.ts";
import {
  scalar32MinMaxAdd,
  scalar32MinMaxMul,
  scalar32MinMaxSub,
  scalarMinMaxAdd,
  scalarMinMaxMul,
  scalarMinMaxSub,
} from "./scalar_arith_bounds.ts";
import {
  scalar32MinMaxAnd,
  scalar32MinMaxOr,
  scalar32MinMaxXor,
  scalarMinMaxAnd,
  scalarMinMaxOr,
  scalarMinMaxXor,
} from "./scalar_bitwise_bounds.ts";
import {
  scalar32MinMaxArsh,
  scalar32MinMaxLsh,
  scalar32MinMaxRsh,
  scalarMinMaxArsh,
  scalarMinMaxLsh,
  scalarMinMaxRsh,
} from "./scalar_shift_bounds.ts";
import {
  tnumAdd,
  tnumAnd,
  tnumMul,
  tnumNeg,
  tnumOr,
  tnumSub,
  tnumXor,
} from "./tnum.ts";

export { scalarByteSwap, scalarMov, scalarMovImm } from "./scalar_mov.ts";

/** The ALU operations handled by {@link adjustScalarMinMaxVals}. */
export type ScalarAluOp = Exclude<AluOp, "mov" | "movsx" | "addr_space_cast">;

const LO32 = 0xffff_ffffn;

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
