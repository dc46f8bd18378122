/**
 * The numeric part of the kernel's `struct bpf_reg_state` for a
 * `SCALAR_VALUE`: signed and unsigned 64-bit bounds, their 32-bit twins for
 * the subregister, and the `var_off` tnum. Pointer fields (type, id, off …)
 * belong to the verifier's register state, which embeds one of these.
 *
 * 64-bit bounds are `bigint` (signed fields in [-2^63, 2^63), unsigned in
 * [0, 2^64)); 32-bit bounds are plain numbers (`s32*` as int32, `u32*` as
 * uint32) because they are hot and fit. A `Scalar` is a plain mutable object
 * so the verifier can copy states cheaply with {@link copyScalar}.
 * @module
 */

import {
  hex,
  type Tnum,
  TNUM_UNKNOWN,
  tnumConst,
  tnumIn,
  tnumIsConst,
  tnumIsUnknown,
  tnumStr,
  U64_MAX,
} from "./tnum.ts";

/** Smallest signed 64-bit value. */
export const S64_MIN: bigint = -(1n << 63n);
/** Largest signed 64-bit value. */
export const S64_MAX: bigint = (1n << 63n) - 1n;
/** Smallest signed 32-bit value. */
export const S32_MIN: number = -0x8000_0000;
/** Largest signed 32-bit value. */
export const S32_MAX: number = 0x7fff_ffff;
/** Largest unsigned 32-bit value. */
export const U32_MAX: number = 0xffff_ffff;

/** Bounds and known bits of a scalar register (fields of `bpf_reg_state`). */
export interface Scalar {
  /** `smin_value`: minimum as a signed 64-bit number. */
  smin: bigint;
  /** `smax_value`: maximum as a signed 64-bit number. */
  smax: bigint;
  /** `umin_value`: minimum as an unsigned 64-bit number. */
  umin: bigint;
  /** `umax_value`: maximum as an unsigned 64-bit number. */
  umax: bigint;
  /** `s32_min_value`: minimum of the low 32 bits, signed. */
  s32Min: number;
  /** `s32_max_value`: maximum of the low 32 bits, signed. */
  s32Max: number;
  /** `u32_min_value`: minimum of the low 32 bits, unsigned. */
  u32Min: number;
  /** `u32_max_value`: maximum of the low 32 bits, unsigned. */
  u32Max: number;
  /** `var_off`: which bits are known and their values. */
  varOff: Tnum;
}

/** A scalar about which nothing is known (bounds of `__mark_reg_unknown`). */
export function unknownScalar(): Scalar {
  return {
    smin: S64_MIN,
    smax: S64_MAX,
    umin: 0n,
    umax: U64_MAX,
    s32Min: S32_MIN,
    s32Max: S32_MAX,
    u32Min: 0,
    u32Max: U32_MAX,
    varOff: TNUM_UNKNOWN,
  };
}

/** A known constant, any bigint reduced to 64 bits (mirrors `___mark_reg_known`). */
export function constScalar(v: bigint): Scalar {
  const u = BigInt.asUintN(64, v);
  const lo = Number(u & 0xffff_ffffn);
  return {
    smin: BigInt.asIntN(64, u),
    smax: BigInt.asIntN(64, u),
    umin: u,
    umax: u,
    s32Min: lo | 0,
    s32Max: lo | 0,
    u32Min: lo,
    u32Max: lo,
    varOff: tnumConst(u),
  };
}

/** A fresh copy (tnums are immutable, so sharing `varOff` is safe). */
export function copyScalar(s: Scalar): Scalar {
  return {
    smin: s.smin,
    smax: s.smax,
    umin: s.umin,
    umax: s.umax,
    s32Min: s.s32Min,
    s32Max: s.s32Max,
    u32Min: s.u32Min,
    u32Max: s.u32Max,
    varOff: s.varOff,
  };
}

/** Overwrites `dst` with `src` without allocating; returns `dst`. */
export function assignScalar(dst: Scalar, src: Scalar): Scalar {
  dst.smin = src.smin;
  dst.smax = src.smax;
  dst.umin = src.umin;
  dst.umax = src.umax;
  dst.s32Min = src.s32Min;
  dst.s32Max = src.s32Max;
  dst.u32Min = src.u32Min;
  dst.u32Max = src.u32Max;
  dst.varOff = src.varOff;
  return dst;
}

/** True when every field is identical. */
export function scalarsEqual(a: Scalar, b: Scalar): boolean {
  return a.smin === b.smin && a.smax === b.smax && a.umin === b.umin &&
    a.umax === b.umax && a.s32Min === b.s32Min && a.s32Max === b.s32Max &&
    a.u32Min === b.u32Min && a.u32Max === b.u32Max &&
    a.varOff.value === b.varOff.value && a.varOff.mask === b.varOff.mask;
}

/** True when the whole 64-bit value is known (`tnum_is_const(reg->var_off)`). */
export function isConst(s: Scalar): boolean {
  return tnumIsConst(s.varOff);
}

/** True when the low 32 bits are known (`tnum_subreg_is_const`). */
export function isConst32(s: Scalar): boolean {
  return (s.varOff.mask & 0xffff_ffffn) === 0n;
}

/**
 * Mirrors `is_reg_const()`: constant in the width a JMP32 (`subreg32`) or
 * JMP compares.
 */
export function isRegConst(s: Scalar, subreg32: boolean): boolean {
  return subreg32 ? isConst32(s) : isConst(s);
}

/** Mirrors `reg_const_value()`: the known value, low 32 bits for `subreg32`. */
export function regConstValue(s: Scalar, subreg32: boolean): bigint {
  return subreg32 ? s.varOff.value & 0xffff_ffffn : s.varOff.value;
}

/** True when nothing at all is known (all bounds open, tnum unknown). */
export function isUnknown(s: Scalar): boolean {
  return tnumIsUnknown(s.varOff) && s.smin === S64_MIN && s.smax === S64_MAX &&
    s.umin === 0n && s.umax === U64_MAX && s.s32Min === S32_MIN &&
    s.s32Max === S32_MAX && s.u32Min === 0 && s.u32Max === U32_MAX;
}

/** True when `x` (any bigint, taken modulo 2^64) satisfies every bound and the tnum. */
export function scalarContains(s: Scalar, x: bigint): boolean {
  const u = BigInt.asUintN(64, x);
  const sv = BigInt.asIntN(64, u);
  const lo = Number(u & 0xffff_ffffn);
  const slo = lo | 0;
  return u >= s.umin && u <= s.umax && sv >= s.smin && sv <= s.smax &&
    lo >= s.u32Min && lo <= s.u32Max && slo >= s.s32Min && slo <= s.s32Max &&
    (u & ~s.varOff.mask & U64_MAX) === s.varOff.value;
}

/**
 * Mirrors `range_within()` from state pruning: every bound of `cur` lies
 * inside the matching bound of `old`.
 */
export function rangeWithin(old: Scalar, cur: Scalar): boolean {
  return old.umin <= cur.umin && old.umax >= cur.umax &&
    old.smin <= cur.smin && old.smax >= cur.smax &&
    old.u32Min <= cur.u32Min && old.u32Max >= cur.u32Max &&
    old.s32Min <= cur.s32Min && old.s32Max >= cur.s32Max;
}

/**
 * The scalar case of `regsafe()`: `cur` describes a subset of `old` both in
 * ranges (`range_within`) and in known bits (`tnum_in`).
 */
export function scalarWithin(old: Scalar, cur: Scalar): boolean {
  return rangeWithin(old, cur) && tnumIn(old.varOff, cur.varOff);
}

/** Options for {@link formatScalar}. */
export interface ScalarFormatOptions {
  /** Print the `P` prefix of a precise scalar. */
  precise?: boolean;
  /** Fields printed first inside the parentheses, e.g. `id=2`. */
  leading?: readonly string[];
}

// Limits of log.c's is_unum_decimal()/is_snum_decimal().
const UNUM_MAX_DECIMAL = 0xffffn;
const SNUM_MAX_DECIMAL = 0x7fffn;
const SNUM_MIN_DECIMAL = -0x8000n;

function isSnumDecimal(n: bigint): boolean {
  return n >= SNUM_MIN_DECIMAL && n <= SNUM_MAX_DECIMAL;
}

/** Mirrors `verbose_snum()`: small signed numbers in decimal, others as u64 hex. */
export function formatSnum(n: bigint): string {
  const s = BigInt.asIntN(64, n);
  return isSnumDecimal(s) ? s.toString() : hex(BigInt.asUintN(64, s));
}

/** Mirrors `verbose_unum()`: numbers up to 65535 in decimal, others in hex. */
export function formatUnum(n: bigint): string {
  return n <= UNUM_MAX_DECIMAL ? n.toString() : hex(n);
}

/**
 * The range part of a scalar as the kernel log prints it, mirroring
 * `print_scalar_ranges()`: unbounded bounds are omitted and equal min (or
 * max) values of the same sign are merged, as in `smin=umin=0`.
 */
export function formatScalarRanges(s: Scalar): string[] {
  const s32min = BigInt(s.s32Min);
  const s32max = BigInt(s.s32Max);
  const names = [
    "smin",
    "smax",
    "umin",
    "umax",
    "smin32",
    "smax32",
    "umin32",
    "umax32",
  ];
  const vals: bigint[] = [
    BigInt.asUintN(64, s.smin),
    BigInt.asUintN(64, s.smax),
    s.umin,
    s.umax,
    // 32-bit signed bounds are sign-extended only when printed in decimal.
    isSnumDecimal(s32min) ? BigInt.asUintN(64, s32min) : BigInt(s.s32Min >>> 0),
    isSnumDecimal(s32max) ? BigInt.asUintN(64, s32max) : BigInt(s.s32Max >>> 0),
    BigInt(s.u32Min),
    BigInt(s.u32Max),
  ];
  const omit = [
    s.smin === S64_MIN,
    s.smax === S64_MAX,
    s.umin === 0n,
    s.umax === U64_MAX,
    s.s32Min === S32_MIN,
    s.s32Max === S32_MAX,
    s.u32Min === 0,
    s.u32Max === U32_MAX,
  ];
  const isNeg = (i: number) =>
    names[i][0] === "s" && BigInt.asIntN(64, vals[i]) < 0n;
  const out: string[] = [];
  for (let i = 0; i < 8; i++) {
    if (omit[i]) continue;
    const neg1 = isNeg(i);
    let field = names[i] + "=";
    for (let j = i + 2; j < 8; j += 2) {
      if (omit[j] || vals[j] !== vals[i] || isNeg(j) !== neg1) continue;
      omit[j] = true;
      field += names[j] + "=";
    }
    field += names[i][0] === "s" ? formatSnum(vals[i]) : formatUnum(vals[i]);
    out.push(field);
  }
  return out;
}

/**
 * A scalar as `print_reg_state()` prints it after `R1=`: a constant as a
 * number (`5`, `-1`, `0xfffff`), otherwise
 * `scalar(smin=0,smax=umax=255,var_off=(0x0; 0xff))`; `P` marks precision.
 */
export function formatScalar(
  s: Scalar,
  opts: ScalarFormatOptions = {},
): string {
  const p = opts.precise ? "P" : "";
  if (tnumIsConst(s.varOff)) return p + formatSnum(s.varOff.value);
  const fields = opts.leading ? [...opts.leading] : [];
  fields.push(...formatScalarRanges(s));
  if (!tnumIsUnknown(s.varOff)) fields.push("var_off=" + tnumStr(s.varOff));
  return `${p}scalar(${fields.join(",")})`;
}
