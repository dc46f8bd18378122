/**
 * The simulation's only source of choice: a seeded pseudo-random generator
 * (xoshiro128**, 32-bit arithmetic only), so a seed replays a run exactly.
 * @module
 */

/** A deterministic generator; the same seed gives the same sequence. */
export class Prng {
  private a: number;
  private b: number;
  private c: number;
  private d: number;

  /** Seeds the state from `seed` with splitmix32, so nearby seeds diverge at once. */
  constructor(seed: number) {
    let s = seed >>> 0;
    const next = (): number => {
      s = (s + 0x9e3779b9) >>> 0;
      let z = s;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    this.a = next();
    this.b = next();
    this.c = next();
    this.d = next() | 1; // never the all-zero state
  }

  /** The next 32-bit unsigned value. */
  nextU32(): number {
    const result = Math.imul(rotl(Math.imul(this.b, 5), 7), 9) >>> 0;
    const t = this.b << 9;
    this.c ^= this.a;
    this.d ^= this.b;
    this.b ^= this.c;
    this.a ^= this.d;
    this.c ^= t;
    this.d = rotl(this.d, 11);
    return result;
  }

  /** A uniform integer in [0, n) (n ≥ 1), without modulo bias. */
  below(n: number): number {
    if (n <= 1) return 0;
    // a power of two: the limit is 2^32, nothing is rejected
    if ((n & (n - 1)) === 0) return this.nextU32() & (n - 1);
    const limit = Math.floor(0x1_0000_0000 / n) * n;
    let x = this.nextU32();
    while (x >= limit) x = this.nextU32();
    // x % n without V8's slow float modulo for x ≥ 2^31 (exact for u32 x)
    return x - Math.floor(x / n) * n;
  }

  /** True with probability `p` (0 ≤ p ≤ 1). */
  chance(p: number): boolean {
    return this.nextU32() < p * 0x1_0000_0000;
  }
}

function rotl(x: number, k: number): number {
  return ((x << k) | (x >>> (32 - k))) >>> 0;
}
