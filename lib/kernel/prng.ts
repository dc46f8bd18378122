/**
 * The simulation's only source of choice: a seeded pseudo-random generator
 * (xoshiro128**, 32-bit arithmetic only), so a seed replays a run exactly.
 * @module
 */

/** A deterministic generator; the same seed gives the same sequence. */
export class Prng {
  /**
   * The four state words a, b, c, d as int32. A typed array, not four
   * fields: words above 2^30 are not small integers to V8, so fields would
   * hold boxed doubles, and the scheduler draws twice per pick.
   */
  private readonly s: Int32Array = new Int32Array(4);

  /** Seeds the state from `seed` with splitmix32, so nearby seeds diverge at once. */
  constructor(seed: number) {
    let x = seed >>> 0;
    const next = (): number => {
      x = (x + 0x9e3779b9) >>> 0;
      let z = x;
      z = Math.imul(z ^ (z >>> 16), 0x85ebca6b) >>> 0;
      z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35) >>> 0;
      return (z ^ (z >>> 16)) >>> 0;
    };
    const s = this.s;
    s[0] = next();
    s[1] = next();
    s[2] = next();
    s[3] = next() | 1; // never the all-zero state
  }

  /** The next 32-bit unsigned value. */
  nextU32(): number {
    const s = this.s;
    const a = s[0], b = s[1];
    const m = Math.imul(b, 5);
    const result = Math.imul((m << 7) | (m >>> 25), 9) >>> 0;
    const c = s[2] ^ a;
    const d = s[3] ^ b;
    s[0] = a ^ d;
    s[1] = b ^ c;
    s[2] = c ^ (b << 9);
    s[3] = (d << 11) | (d >>> 21);
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
