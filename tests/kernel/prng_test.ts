// Prng.below(n): uniform in [0, n) by rejection sampling over nextU32(),
// checked against the plain definition (x % n over the same stream).
import assert from "node:assert/strict";
import { Prng } from "../../lib/kernel/prng.ts";

function reference(p: Prng, n: number): number {
  if (n <= 1) return 0;
  const limit = Math.floor(0x1_0000_0000 / n) * n;
  let x = p.nextU32();
  while (x >= limit) x = p.nextU32();
  return x % n;
}

Deno.test("Prng.below equals the rejection-sampling definition", () => {
  const sizes = [
    1,
    2,
    3,
    4,
    5,
    7,
    8,
    64,
    100,
    1000,
    4096,
    65537,
    2 ** 31,
    2 ** 31 + 3,
    2 ** 32 - 1,
  ];
  for (const seed of [0, 1, 42, 0xdeadbeef]) {
    const a = new Prng(seed), b = new Prng(seed);
    for (let i = 0; i < 20_000; i++) {
      const n = sizes[i % sizes.length];
      const got = a.below(n);
      assert.equal(got, reference(b, n), `seed ${seed} draw ${i} n ${n}`);
      assert.ok(got >= 0 && got < Math.max(n, 1));
    }
  }
});
