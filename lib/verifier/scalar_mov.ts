/**
 * The scalar cases of `check_alu_op()` that are not arithmetic: `mov` of an
 * immediate or a register, `movsx` (through `coerce_reg_to_size_sx()` and
 * `coerce_subreg_to_size_sx()`), and the byte order instructions
 * (`scalar_byte_swap()` and the end of `adjust_scalar_min_max_vals()`).
 * @module
 */

import { regBoundsSync } from "./bounds_sync.ts";
import {
  coerceRegToSize,
  coerceRegToSizeSx,
  coerceSubregToSizeSx,
  zext32To64,
} from "./scalar_coerce.ts";
import { markScalarKnown, markScalarUnbounded } from "./scalar_mark.ts";
import { assignScalar, type Scalar } from "./scalar.ts";
import { tnumBswap16, tnumBswap32, tnumBswap64 } from "./tnum.ts";

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
