/**
 * 64-bit arithmetic on pairs of 32-bit halves, for the interpreter's hot
 * loop (no bigint). A register file is an `Int32Array` with register `r` at
 * `[2r]` (low half) and `[2r + 1]` (high half); functions taking `(R, d, …)`
 * update the pair at `d` in place. Stores into an `Int32Array` wrap modulo
 * 2^32 by themselves, which the callers rely on for carries.
 *
 * Semantics are RFC 9669 §4 (and what Linux does at run time): division by
 * zero gives 0, modulo by zero leaves dst, `MIN / -1 = MIN`, `MIN % -1 = 0`,
 * signed remainder truncates (its sign follows the dividend).
 * @module
 */

const TWO_32 = 4294967296;

/** Scratch result of {@link udivmod64}: quotient lo, hi, remainder lo, hi. */
export const DIVMOD: Int32Array = new Int32Array(4);

/** High 32 bits of the 64-bit product of two uint32 values (as int32). */
export function mulHiU32(a: number, b: number): number {
  const a0 = a & 0xffff, a1 = a >>> 16, b0 = b & 0xffff, b1 = b >>> 16;
  const low = a0 * b0;
  const mid = a1 * b0 + (low >>> 16);
  const mid2 = a0 * b1 + (mid & 0xffff);
  return (a1 * b1 + (mid >>> 16) + (mid2 >>> 16)) | 0;
}

/** `R[d] *= (bl, bh)`, wrapping modulo 2^64. */
export function mul64(R: Int32Array, d: number, bl: number, bh: number): void {
  const al = R[d], ah = R[d + 1];
  R[d + 1] = mulHiU32(al >>> 0, bl >>> 0) + Math.imul(al, bh) +
    Math.imul(ah, bl);
  R[d] = Math.imul(al, bl);
}

/**
 * Unsigned 64-bit division of (al, ah) by a non-zero (bl, bh); the result
 * lands in {@link DIVMOD}. Three paths: both operands below 2^32 (one
 * double division); a 32-bit divisor (long division in 16-bit digits, each
 * partial dividend < 2^48 so double division is exact); a divisor of 2^32
 * or more (quotient < 2^32: shift-and-subtract over the low 32 bits).
 */
export function udivmod64(
  al: number,
  ah: number,
  bl: number,
  bh: number,
): void {
  const aL = al >>> 0, aH = ah >>> 0, bL = bl >>> 0, bH = bh >>> 0;
  if (bH === 0) {
    if (aH === 0) {
      const q = Math.floor(aL / bL);
      DIVMOD[0] = q;
      DIVMOD[1] = 0;
      DIVMOD[2] = aL - q * bL;
      DIVMOD[3] = 0;
      return;
    }
    let r = aH >>> 16;
    const q3 = Math.floor(r / bL);
    r = (r - q3 * bL) * 65536 + (aH & 0xffff);
    const q2 = Math.floor(r / bL);
    r = (r - q2 * bL) * 65536 + (aL >>> 16);
    const q1 = Math.floor(r / bL);
    r = (r - q1 * bL) * 65536 + (aL & 0xffff);
    const q0 = Math.floor(r / bL);
    r -= q0 * bL;
    DIVMOD[0] = q1 * 65536 + q0;
    DIVMOD[1] = q3 * 65536 + q2;
    DIVMOD[2] = r;
    DIVMOD[3] = 0;
    return;
  }
  // The partial remainder starts as the high half (< 2^32 <= divisor).
  let rH = 0, rL = aH, q = 0;
  for (let i = 31; i >= 0; i--) {
    const carried = rH >>> 31; // set: the shifted value is >= 2^64 > divisor
    rH = ((rH << 1) | (rL >>> 31)) >>> 0;
    rL = ((rL << 1) | ((aL >>> i) & 1)) >>> 0;
    q *= 2;
    if (carried !== 0 || rH > bH || (rH === bH && rL >= bL)) {
      const low = rL - bL;
      rL = low >>> 0;
      rH = (rH - bH - (low < 0 ? 1 : 0)) >>> 0;
      q += 1;
    }
  }
  DIVMOD[0] = q;
  DIVMOD[1] = 0;
  DIVMOD[2] = rL;
  DIVMOD[3] = rH;
}

/** Unsigned `R[d] /= (bl, bh)`; division by zero gives 0. */
export function div64(R: Int32Array, d: number, bl: number, bh: number): void {
  if ((bl | bh) === 0) {
    R[d] = 0;
    R[d + 1] = 0;
    return;
  }
  udivmod64(R[d], R[d + 1], bl, bh);
  R[d] = DIVMOD[0];
  R[d + 1] = DIVMOD[1];
}

/** Unsigned `R[d] %= (bl, bh)`; modulo by zero leaves dst. */
export function mod64(R: Int32Array, d: number, bl: number, bh: number): void {
  if ((bl | bh) === 0) return;
  udivmod64(R[d], R[d + 1], bl, bh);
  R[d] = DIVMOD[2];
  R[d + 1] = DIVMOD[3];
}

/** Signed `R[d] /= (bl, bh)`: truncating; `/0` gives 0; `MIN / -1 = MIN`. */
export function sdiv64(R: Int32Array, d: number, bl: number, bh: number): void {
  if ((bl | bh) === 0) {
    R[d] = 0;
    R[d + 1] = 0;
    return;
  }
  const al = R[d], ah = R[d + 1];
  const negA = ah < 0, negB = bh < 0;
  // |MIN| stays 0x8000…0, which read unsigned is 2^63: the right magnitude.
  udivmod64(
    negA ? -al : al,
    negA ? ~ah + (al === 0 ? 1 : 0) : ah,
    negB ? -bl : bl,
    negB ? ~bh + (bl === 0 ? 1 : 0) : bh,
  );
  storeSigned(R, d, DIVMOD[0], DIVMOD[1], negA !== negB);
}

/** Signed `R[d] %= (bl, bh)`: sign follows the dividend; `%0` leaves dst; `MIN % -1 = 0`. */
export function smod64(R: Int32Array, d: number, bl: number, bh: number): void {
  if ((bl | bh) === 0) return;
  const al = R[d], ah = R[d + 1];
  const negA = ah < 0, negB = bh < 0;
  udivmod64(
    negA ? -al : al,
    negA ? ~ah + (al === 0 ? 1 : 0) : ah,
    negB ? -bl : bl,
    negB ? ~bh + (bl === 0 ? 1 : 0) : bh,
  );
  storeSigned(R, d, DIVMOD[2], DIVMOD[3], negA);
}

function storeSigned(
  R: Int32Array,
  d: number,
  lo: number,
  hi: number,
  negate: boolean,
): void {
  if (negate) {
    R[d] = -lo;
    R[d + 1] = ~hi + (lo === 0 ? 1 : 0);
  } else {
    R[d] = lo;
    R[d + 1] = hi;
  }
}

/** 32-bit unsigned `a / b` (b = 0 gives 0), as int32. */
export function div32(a: number, b: number): number {
  return b === 0 ? 0 : Math.floor((a >>> 0) / (b >>> 0)) | 0;
}

/** 32-bit unsigned `a % b` (b = 0 gives a), as int32. */
export function mod32(a: number, b: number): number {
  return b === 0 ? a : ((a >>> 0) % (b >>> 0)) | 0;
}

/** 32-bit signed `a / b`: truncating; `/0` = 0; `MIN / -1` wraps to MIN. */
export function sdiv32(a: number, b: number): number {
  return b === 0 ? 0 : (a / b) | 0;
}

/** 32-bit signed `a % b`: sign of a; `%0` = a; `MIN % -1` = 0. */
export function smod32(a: number, b: number): number {
  return b === 0 ? a : (a % b) | 0;
}

/** `R[d] <<= n` for 0 <= n < 64. */
export function lsh64(R: Int32Array, d: number, n: number): void {
  if (n === 0) return;
  if (n < 32) {
    R[d + 1] = (R[d + 1] << n) | (R[d] >>> (32 - n));
    R[d] = R[d] << n;
  } else {
    R[d + 1] = R[d] << (n - 32);
    R[d] = 0;
  }
}

/** Logical `R[d] >>= n` for 0 <= n < 64. */
export function rsh64(R: Int32Array, d: number, n: number): void {
  if (n === 0) return;
  if (n < 32) {
    R[d] = (R[d] >>> n) | (R[d + 1] << (32 - n));
    R[d + 1] = R[d + 1] >>> n;
  } else {
    R[d] = R[d + 1] >>> (n - 32);
    R[d + 1] = 0;
  }
}

/** Arithmetic `R[d] >>= n` for 0 <= n < 64. */
export function arsh64(R: Int32Array, d: number, n: number): void {
  if (n === 0) return;
  if (n < 32) {
    R[d] = (R[d] >>> n) | (R[d + 1] << (32 - n));
    R[d + 1] = R[d + 1] >> n;
  } else {
    R[d] = R[d + 1] >> (n - 32);
    R[d + 1] = R[d + 1] >> 31;
  }
}

/** Reverses the four bytes of a 32-bit value (as int32). */
export function bswap32(x: number): number {
  return ((x & 0xff) << 24) | ((x & 0xff00) << 8) | ((x >>> 8) & 0xff00) |
    (x >>> 24);
}

/** Reverses the two low bytes of a value, zero-extended. */
export function bswap16(x: number): number {
  return ((x & 0xff) << 8) | ((x >>> 8) & 0xff);
}

/** Combines two int32 halves into an unsigned 64-bit bigint (API edges only). */
export function joinU64(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/** Low half (int32) of a 64-bit integer given as a JS number (safe range) — e.g. a helper result. */
export function numberLo(n: number): number {
  return n | 0;
}

/** High half (int32) of a 64-bit integer given as a JS number (safe range); -1 for negatives. */
export function numberHi(n: number): number {
  return Math.floor(n / TWO_32) | 0;
}
