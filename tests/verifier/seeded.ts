/**
 * The seeded value source the scalar-domain property tests share: a
 * xorshift32 stream, 64-bit values from it, "interesting" values clustered
 * at the edges where bounds logic breaks, and random ranges around a value.
 * Each test file keeps its own seed, so its sequence of cases is its own.
 * @module
 */

/** How a test wants its interesting values. */
export interface SeededOptions {
  /** Small values are drawn from [0, smallBelow). */
  readonly smallBelow: number;
  /** Wrap edge values into u64 (edge ± 2 may otherwise go below 0). */
  readonly wrapToU64: boolean;
}

/** The generator functions, all drawing from one stream. */
export interface Seeded {
  /** Next 32-bit unsigned value. */
  rnd32(): number;
  /** Next 64-bit value (two 32-bit draws). */
  rnd64(): bigint;
  /** An edge value ± 2, a small value, or any 64-bit value. */
  interesting(): bigint;
  /** A random range around `x`, clamped to [lo, hi]. */
  around(x: bigint, lo: bigint, hi: bigint): [bigint, bigint];
}

const EDGES: readonly bigint[] = [
  0n,
  1n,
  0x7fn,
  0x80n,
  0xffn,
  0x7fff_ffffn,
  0x8000_0000n,
  0xffff_ffffn,
  1n << 32n,
  1n << 63n,
];

/** A value source seeded with `seed`. */
export function seeded(seed: number, options: SeededOptions): Seeded {
  let state = seed;
  const rnd32 = (): number => {
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return state >>> 0;
  };
  const rnd64 = (): bigint => (BigInt(rnd32()) << 32n) | BigInt(rnd32());
  const interesting = (): bigint => {
    const r = rnd32() % 4;
    if (r === 0) {
      const v = EDGES[rnd32() % EDGES.length] + BigInt(rnd32() % 5) - 2n;
      return options.wrapToU64 ? BigInt.asUintN(64, v) : v;
    }
    if (r === 1) return BigInt(rnd32() % options.smallBelow);
    return rnd64();
  };
  const around = (x: bigint, lo: bigint, hi: bigint): [bigint, bigint] => {
    const spread = (1n << BigInt(rnd32() % 64)) - 1n;
    const a = x - (rnd64() & spread);
    const b = x + (rnd64() & spread);
    return [a < lo ? lo : a, b > hi ? hi : b];
  };
  return { rnd32, rnd64, interesting, around };
}
