/**
 * The cold paths of generated loads and stores, out of line so that each
 * memory instruction's source stays short (V8's compile time grows with
 * it): an access the inline check refused goes to the region's hook (a
 * context whose fields the kernel would rewrite) or faults there.
 * @module
 */
import type { AddressSpace } from "../memory.ts";

/**
 * Hooked load of `size` bytes at `(lo, hi) + off` for slot `k`, into
 * `out[0]` / `out[1]` as the load would leave the register: zero-extended,
 * or sign-extended from `signBits` (8, 16, 32; 0 for none).
 */
export function coldLoad(
  mem: AddressSpace,
  out: Int32Array,
  lo: number,
  hi: number,
  off: number,
  size: number,
  k: number,
  signBits: number,
): void {
  const value = mem.hookLoad(lo, hi, off, size, k);
  const low = Number(value & 0xffffffffn) | 0;
  if (signBits === 0) {
    out[0] = low;
    out[1] = Number((value >> 32n) & 0xffffffffn) | 0;
    return;
  }
  const shift = 32 - signBits;
  out[0] = (low << shift) >> shift;
  out[1] = out[0] >> 31;
}

/** Hooked store of `size` bytes of the value `(vlo, vhi)` at `(lo, hi) + off` for slot `k`. */
export function coldStore(
  mem: AddressSpace,
  lo: number,
  hi: number,
  off: number,
  size: number,
  vlo: number,
  vhi: number,
  k: number,
): void {
  const value = (BigInt(vhi >>> 0) << 32n) | BigInt(vlo >>> 0);
  mem.hookStore(lo, hi, off, size, value, k);
}
