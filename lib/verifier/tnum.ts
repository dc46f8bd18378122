/**
 * Tristate numbers ("tnums"), the verifier's bit-level abstract domain, as in
 * the kernel's `kernel/bpf/tnum.c` and `include/linux/tnum.h`.
 *
 * A tnum is a pair `(value; mask)`: a bit set in `mask` is unknown, any other
 * bit is known and equal to the same bit of `value` (so `value & mask` is
 * always 0). Every function here mirrors the kernel function of the same name
 * bit for bit, including its imprecisions, because verifier logs and verdicts
 * depend on them.
 *
 * Values are unsigned 64-bit `bigint`s (0 … 2^64-1). Tnums are small frozen-
 * by-convention objects: functions never mutate their arguments.
 * @module
 */

/** A tracked number: known bits in `value`, unknown bits set in `mask`. */
export interface Tnum {
  /** Known bit values (0 where unknown). */
  readonly value: bigint;
  /** Unknown bits. */
  readonly mask: bigint;
}

/** 2^64 - 1. */
export const U64_MAX: bigint = 0xffff_ffff_ffff_ffffn;
/** 2^32 - 1, as a bigint. */
export const U32_MASK: bigint = 0xffff_ffffn;

/** Builds a tnum from raw fields (the kernel's `TNUM()` macro). */
export function tnum(value: bigint, mask: bigint): Tnum {
  return { value, mask };
}

/** The completely unknown value (mirrors `tnum_unknown`). */
export const TNUM_UNKNOWN: Tnum = Object.freeze({ value: 0n, mask: U64_MAX });
/** The constant 0, shared to avoid allocation. */
export const TNUM_ZERO: Tnum = Object.freeze({ value: 0n, mask: 0n });

/** Reduces a bigint to its unsigned 64-bit pattern. */
export function u64(x: bigint): bigint {
  return BigInt.asUintN(64, x);
}

/** Index of the most significant set bit, 1-based; 0 for 0 (mirrors `fls64`). */
export function fls64(x: bigint): number {
  if (x === 0n) return 0;
  if (x <= U32_MASK) return 32 - Math.clz32(Number(x));
  return 64 - Math.clz32(Number(x >> 32n));
}

/** A known constant (mirrors `tnum_const`). */
export function tnumConst(value: bigint): Tnum {
  return { value: u64(value), mask: 0n };
}

/**
 * The smallest tnum containing every value of the unsigned range [min, max]
 * (mirrors `tnum_range`); may contain values outside the range.
 */
export function tnumRange(min: bigint, max: bigint): Tnum {
  const bits = fls64(min ^ max);
  // 1 << 64 would not fit: the kernel special-cases it as unknown.
  if (bits > 63) return TNUM_UNKNOWN;
  const delta = LOW_BITS[bits];
  return { value: min & ~delta, mask: delta };
}

/** `LOW_BITS[k]` is `(1 << k) - 1` for k in 0..64, precomputed for hot paths. */
export const LOW_BITS: readonly bigint[] = Array.from(
  { length: 65 },
  (_, k) => (1n << BigInt(k)) - 1n,
);

/** Shift left by a constant (mirrors `tnum_lshift`). */
export function tnumLshift(a: Tnum, shift: number): Tnum {
  const s = BigInt(shift);
  return { value: u64(a.value << s), mask: u64(a.mask << s) };
}

/** Logical shift right by a constant (mirrors `tnum_rshift`). */
export function tnumRshift(a: Tnum, shift: number): Tnum {
  const s = BigInt(shift);
  return { value: a.value >> s, mask: a.mask >> s };
}

/**
 * Arithmetic shift right by `minShift` in 32 or 64 bits (mirrors
 * `tnum_arshift`); the 32-bit form works on, and returns, the low half only.
 */
export function tnumArshift(
  a: Tnum,
  minShift: number,
  insnBitness: 32 | 64,
): Tnum {
  const s = BigInt(minShift);
  if (insnBitness === 32) {
    return {
      value: BigInt.asUintN(32, BigInt.asIntN(32, a.value) >> s),
      mask: BigInt.asUintN(32, BigInt.asIntN(32, a.mask) >> s),
    };
  }
  return {
    value: u64(BigInt.asIntN(64, a.value) >> s),
    mask: u64(BigInt.asIntN(64, a.mask) >> s),
  };
}

/** Sum (mirrors `tnum_add`). */
export function tnumAdd(a: Tnum, b: Tnum): Tnum {
  const sv = (a.value + b.value) & U64_MAX;
  const sigma = (a.mask + b.mask + sv) & U64_MAX;
  const mu = (sigma ^ sv) | a.mask | b.mask;
  return { value: sv & ~mu, mask: mu };
}

/** Difference `a - b` (mirrors `tnum_sub`). */
export function tnumSub(a: Tnum, b: Tnum): Tnum {
  const dv = (a.value - b.value) & U64_MAX;
  const alpha = (dv + a.mask) & U64_MAX;
  const beta = (dv - b.mask) & U64_MAX;
  const mu = (alpha ^ beta) | a.mask | b.mask;
  return { value: dv & ~mu, mask: mu };
}

/** Negation `0 - a` in 64 bits (mirrors `tnum_neg`). */
export function tnumNeg(a: Tnum): Tnum {
  return tnumSub(TNUM_ZERO, a);
}

/** Bitwise and (mirrors `tnum_and`). */
export function tnumAnd(a: Tnum, b: Tnum): Tnum {
  const alpha = a.value | a.mask;
  const beta = b.value | b.mask;
  const v = a.value & b.value;
  return { value: v, mask: alpha & beta & ~v };
}

/** Bitwise or (mirrors `tnum_or`). */
export function tnumOr(a: Tnum, b: Tnum): Tnum {
  const v = a.value | b.value;
  const mu = a.mask | b.mask;
  return { value: v, mask: mu & ~v };
}

/** Bitwise xor (mirrors `tnum_xor`). */
export function tnumXor(a: Tnum, b: Tnum): Tnum {
  const v = a.value ^ b.value;
  const mu = a.mask | b.mask;
  return { value: v & ~mu, mask: mu };
}

/**
 * Product (mirrors `tnum_mul`): long multiplication over the trits of `a`; an
 * unknown trit contributes the union of "add b" and "add nothing".
 */
export function tnumMul(a: Tnum, b: Tnum): Tnum {
  // tnum_add() and tnum_union() are inlined on local bigints: this loop runs
  // once per bit of a and allocates nothing else.
  let accV = 0n;
  let accM = 0n;
  let av = a.value;
  let am = a.mask;
  let bv = b.value;
  let bm = b.mask;
  while (av !== 0n || am !== 0n) {
    if (av & 1n || am & 1n) {
      // sum = acc + b (tnum_add)
      const sv = (accV + bv) & U64_MAX;
      const sigma = (accM + bm + sv) & U64_MAX;
      const mu = (sigma ^ sv) | accM | bm;
      const sumV = sv & ~mu;
      if (av & 1n) {
        accV = sumV;
        accM = mu;
      } else {
        // an unknown trit: acc = union(acc, acc + b)
        const uMu = (accV ^ sumV) | accM | mu;
        accV = accV & sumV & ~uMu;
        accM = uMu;
      }
    }
    av >>= 1n;
    am >>= 1n;
    bv = (bv << 1n) & U64_MAX;
    bm = (bm << 1n) & U64_MAX;
  }
  return { value: accV, mask: accM };
}

/**
 * True when some value may belong to both tnums, i.e. their known bits agree
 * (mirrors `tnum_overlap`, used by `is_scalar_branch_taken` for JEQ/JNE).
 */
export function tnumOverlap(a: Tnum, b: Tnum): boolean {
  const mu = ~(a.mask | b.mask); // known in both (negative: infinite ones above)
  return (a.value & mu) === (b.value & mu);
}

/**
 * Values satisfying both tnums (mirrors `tnum_intersect`). Where the known
 * bits disagree the result says "known 1", exactly like the kernel.
 */
export function tnumIntersect(a: Tnum, b: Tnum): Tnum {
  const v = a.value | b.value;
  const mu = a.mask & b.mask;
  return { value: v & ~mu, mask: mu };
}

/** A tnum containing both inputs' values (mirrors `tnum_union`). */
export function tnumUnion(a: Tnum, b: Tnum): Tnum {
  const v = a.value & b.value;
  const mu = (a.value ^ b.value) | a.mask | b.mask;
  return { value: v & ~mu, mask: mu };
}

/** Keeps only the low `size` bytes (mirrors `tnum_cast`). */
export function tnumCast(a: Tnum, size: number): Tnum {
  if (size >= 8) return a;
  const m = (1n << BigInt(size * 8)) - 1n;
  return { value: a.value & m, mask: a.mask & m };
}

/** True when `a` is known to be a multiple of `size`, a power of two (mirrors `tnum_is_aligned`). */
export function tnumIsAligned(a: Tnum, size: bigint): boolean {
  if (size === 0n) return true;
  return ((a.value | a.mask) & (size - 1n)) === 0n;
}

/**
 * True when every value of `b` is a value of `a` (mirrors `tnum_in`, the
 * test state pruning uses on `var_off`).
 */
export function tnumIn(a: Tnum, b: Tnum): boolean {
  if (b.mask & ~a.mask) return false;
  return a.value === (b.value & ~a.mask);
}

/** True when the value is fully known (mirrors `tnum_is_const`). */
export function tnumIsConst(a: Tnum): boolean {
  return a.mask === 0n;
}

/** True when `a` is exactly the constant `b` (mirrors `tnum_equals_const`). */
export function tnumEqualsConst(a: Tnum, b: bigint): boolean {
  return a.mask === 0n && a.value === b;
}

/** True when nothing is known (mirrors `tnum_is_unknown`). */
export function tnumIsUnknown(a: Tnum): boolean {
  return a.mask === U64_MAX;
}

/** True when `x` is one of the values of `a`. */
export function tnumContains(a: Tnum, x: bigint): boolean {
  return (x & ~a.mask) === a.value;
}

/** The low 32 bits (mirrors `tnum_subreg`). */
export function tnumSubreg(a: Tnum): Tnum {
  return { value: a.value & U32_MASK, mask: a.mask & U32_MASK };
}

/** True when the low 32 bits are known (mirrors `tnum_subreg_is_const`). */
export function tnumSubregIsConst(a: Tnum): boolean {
  return (a.mask & U32_MASK) === 0n;
}

/** `a` with its low 32 bits known zero (mirrors `tnum_clear_subreg`). */
export function tnumClearSubreg(a: Tnum): Tnum {
  const hi = ~U32_MASK & U64_MAX;
  return { value: a.value & hi, mask: a.mask & hi };
}

/** High half of `reg`, low half of `subreg` (mirrors `tnum_with_subreg`). */
export function tnumWithSubreg(reg: Tnum, subreg: Tnum): Tnum {
  return tnumOr(tnumClearSubreg(reg), tnumSubreg(subreg));
}

/** `a` with its low 32 bits set to the constant `value` (mirrors `tnum_const_subreg`). */
export function tnumConstSubreg(a: Tnum, value: number): Tnum {
  return tnumWithSubreg(a, tnumConst(BigInt(value >>> 0)));
}

function swab16(x: bigint): bigint {
  return ((x & 0xffn) << 8n) | ((x >> 8n) & 0xffn);
}

function swab32(x: bigint): bigint {
  return ((x & 0xffn) << 24n) | ((x & 0xff00n) << 8n) | ((x >> 8n) & 0xff00n) |
    ((x >> 24n) & 0xffn);
}

function swab64(x: bigint): bigint {
  return (swab32(x & U32_MASK) << 32n) | swab32(x >> 32n);
}

/** Byte swap of the low 16 bits, upper bits known zero (mirrors `tnum_bswap16`). */
export function tnumBswap16(a: Tnum): Tnum {
  return { value: swab16(a.value & 0xffffn), mask: swab16(a.mask & 0xffffn) };
}

/** Byte swap of the low 32 bits, upper bits known zero (mirrors `tnum_bswap32`). */
export function tnumBswap32(a: Tnum): Tnum {
  return { value: swab32(a.value & U32_MASK), mask: swab32(a.mask & U32_MASK) };
}

/** Byte swap of all 64 bits (mirrors `tnum_bswap64`). */
export function tnumBswap64(a: Tnum): Tnum {
  return { value: swab64(a.value), mask: swab64(a.mask) };
}

/**
 * The smallest member of `t` greater than `z` (mirrors `tnum_step`); returns
 * the largest member when `z` is at or above it, the smallest when `z` is
 * below it.
 */
export function tnumStep(t: Tnum, z: bigint): bigint {
  const tmax = t.value | t.mask;
  if (z >= tmax) return tmax;
  if (z < t.value) return t.value;
  // Members are t.value + s for submasks s of t.mask; find the smallest
  // submask above d by incrementing d "inside" the mask.
  const d = z - t.value;
  const carryMask = LOW_BITS[fls64(d & ~t.mask)];
  // filled is negative (infinite ones above bit 63); the carry out of bit
  // 63 is dropped by the final mask, as in u64 arithmetic
  const filled = d | carryMask | ~t.mask;
  const inc = (filled + 1n) & t.mask;
  return t.value | inc;
}

/** Formats as the kernel's `tnum_strn`: `(0x0; 0xff)`. */
export function tnumStr(a: Tnum): string {
  return `(${hex(a.value)}; ${hex(a.mask)})`;
}

/** Formats as the kernel's `tnum_sbin`: 64 characters of `0`, `1` and `x`. */
export function tnumSbin(a: Tnum): string {
  let out = "";
  for (let bit = 63n; bit >= 0n; bit--) {
    if ((a.mask >> bit) & 1n) out += "x";
    else out += (a.value >> bit) & 1n ? "1" : "0";
  }
  return out;
}

/**
 * The kernel's `%#llx`: `0x` and lowercase hex digits. Unlike glibc, the
 * kernel's vsnprintf keeps the prefix for zero (`0x0`), as logs show.
 */
export function hex(x: bigint): string {
  return "0x" + x.toString(16);
}
