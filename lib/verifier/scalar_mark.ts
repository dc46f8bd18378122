/**
 * Setting a scalar to a known constant or opening its bounds: the kernel's
 * `___mark_reg_known()`, `__mark_reg32_known()`, `__mark_reg_known_zero()`,
 * `__mark_reg_unbounded()`, `__mark_reg64_unbounded()`,
 * `__mark_reg32_unbounded()` and the bounds part of `__mark_reg_unknown()`.
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
import { TNUM_UNKNOWN, tnumConst, tnumConstSubreg, U64_MAX } from "./tnum.ts";

const LO32 = 0xffff_ffffn;

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
