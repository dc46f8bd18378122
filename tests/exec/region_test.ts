// region.ts: the id quarantine's FIFO order (also across its growth) and the
// address halves, checked against plain bigint arithmetic.
import { deepEqual, equal } from "node:assert/strict";
import {
  addressHi,
  addressLo,
  IdQuarantine,
  REGION_BASE_HI,
  regionAddress,
  splitAddress,
} from "../../lib/exec/region.ts";

Deno.test("IdQuarantine hands ids back oldest first, growing past 1024", () => {
  const q = new IdQuarantine();
  equal(q.take(), undefined);
  // interleave takes so the ring wraps before it grows
  for (let i = 1; i <= 600; i++) q.add(i);
  for (let i = 1; i <= 300; i++) equal(q.take(), i);
  for (let i = 601; i <= 3000; i++) q.add(i);
  const out: number[] = [];
  for (let id = q.take(); id !== undefined; id = q.take()) out.push(id);
  deepEqual(out, Array.from({ length: 2700 }, (_, i) => 301 + i));
});

Deno.test("addressLo / addressHi are the int32 halves of the address mod 2^64", () => {
  const cases = [
    0n,
    1n,
    0xffffffffn,
    0x1_0000_0000n,
    regionAddress(1) + 0x7fff_fffen,
    regionAddress(7) - 600n,
    (1n << 64n) - 1n,
    -1n, // taken modulo 2^64
    1n << 64n, // wraps to 0
  ];
  for (const a of cases) {
    const u = BigInt.asUintN(64, a);
    const lo = Number(BigInt.asIntN(32, u & 0xffffffffn));
    const hi = Number(BigInt.asIntN(32, u >> 32n));
    equal(addressLo(a), lo, `lo of ${a}`);
    equal(addressHi(a), hi, `hi of ${a}`);
    deepEqual(splitAddress(a), [lo, hi]);
  }
  equal(addressHi(regionAddress(3)) - REGION_BASE_HI, 3);
});
