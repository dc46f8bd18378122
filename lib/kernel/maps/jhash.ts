/**
 * `jhash()` (include/linux/jhash.h): Bob Jenkins' lookup3 hash as the
 * kernel computes it on a little-endian host. Sockhash buckets use it with
 * seed 0 (`sock_hash_bucket_hash()`), so their iteration order is fixed
 * and the simulator can reproduce it.
 * @module
 */

/** `JHASH_INITVAL`. */
export const JHASH_INITVAL = 0xdeadbeef;

const rol32 = (x: number, k: number): number => (x << k) | (x >>> (32 - k));

/** `jhash(key, key.length, initval)`: a u32. */
export function jhash(key: Uint8Array, initval = 0): number {
  let len = key.length;
  let a = (JHASH_INITVAL + len + initval) | 0, b = a, c = a;
  let k = 0;
  const word = (at: number) =>
    key[at] | (key[at + 1] << 8) | (key[at + 2] << 16) | (key[at + 3] << 24);
  while (len > 12) {
    a = (a + word(k)) | 0;
    b = (b + word(k + 4)) | 0;
    c = (c + word(k + 8)) | 0;
    // __jhash_mix()
    a = (a - c) | 0, a ^= rol32(c, 4), c = (c + b) | 0;
    b = (b - a) | 0, b ^= rol32(a, 6), a = (a + c) | 0;
    c = (c - b) | 0, c ^= rol32(b, 8), b = (b + a) | 0;
    a = (a - c) | 0, a ^= rol32(c, 16), c = (c + b) | 0;
    b = (b - a) | 0, b ^= rol32(a, 19), a = (a + c) | 0;
    c = (c - b) | 0, c ^= rol32(b, 4), b = (b + a) | 0;
    len -= 12;
    k += 12;
  }
  if (len === 0) return c >>> 0;
  // the last 1..12 bytes, little-endian into a, b, c
  const tail = [0, 0, 0];
  for (let i = 0; i < len; i++) tail[i >> 2] += key[k + i] << (8 * (i & 3));
  a = (a + tail[0]) | 0;
  b = (b + tail[1]) | 0;
  c = (c + tail[2]) | 0;
  // __jhash_final()
  c ^= b, c = (c - rol32(b, 14)) | 0;
  a ^= c, a = (a - rol32(c, 11)) | 0;
  b ^= a, b = (b - rol32(a, 25)) | 0;
  c ^= b, c = (c - rol32(b, 16)) | 0;
  a ^= c, a = (a - rol32(c, 4)) | 0;
  b ^= a, b = (b - rol32(a, 14)) | 0;
  c ^= b, c = (c - rol32(b, 24)) | 0;
  return c >>> 0;
}
