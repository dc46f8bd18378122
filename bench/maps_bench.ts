/**
 * Speed of the simulated maps: each iteration does 1000 operations, so
 * operations per second = 1000 / (time per iteration).
 */
import { AddressSpace } from "../lib/exec/memory.ts";
import {
  BPF_ANY,
  BPF_F_NO_PREALLOC,
  createMap,
  type RingBuf,
} from "../lib/kernel/maps/mod.ts";

const N = 1000;
const keys = Array.from({ length: N }, (_, i) => {
  const k = new Uint8Array(4);
  new DataView(k.buffer).setUint32(0, i, true);
  return k;
});
const value = new Uint8Array(16).fill(1);

function map(type: number, maxEntries: number, flags = 0) {
  return createMap(new AddressSpace(), {
    name: "bench",
    type,
    keySize: type === 27 ? 0 : 4,
    valueSize: type === 27 ? 0 : 16,
    maxEntries,
    flags,
  }, { nrCpus: 2 });
}

const array = map(2, N);
const hash = map(1, N);
const dynHash = map(1, N, BPF_F_NO_PREALLOC);
const lru = map(9, N / 2);
const rb = map(27, 1 << 16) as RingBuf;
for (const k of keys) hash.update(k, value, BPF_ANY, 0);

Deno.bench("array lookup x1000", { group: "lookup", baseline: true }, () => {
  for (const k of keys) array.lookup(k, 0);
});
Deno.bench("hash lookup x1000 (1000 elements)", { group: "lookup" }, () => {
  for (const k of keys) hash.lookup(k, 0);
});
Deno.bench("array update x1000", { group: "update", baseline: true }, () => {
  for (const k of keys) array.update(k, value, BPF_ANY, 0);
});
Deno.bench("hash update (replace) x1000, prealloc", { group: "update" }, () => {
  for (const k of keys) hash.update(k, value, BPF_ANY, 0);
});
Deno.bench(
  "hash update+delete x1000, BPF_F_NO_PREALLOC",
  { group: "update" },
  () => {
    for (const k of keys) {
      dynHash.update(k, value, BPF_ANY, 0);
      dynHash.delete(k, 0);
    }
  },
);
Deno.bench(
  "LRU update x1000 into 500 entries (evicting)",
  { group: "update" },
  () => {
    for (const k of keys) lru.update(k, value, BPF_ANY, 0);
  },
);
Deno.bench("ringbuf output+consume x1000 (16-byte samples)", () => {
  for (let i = 0; i < N; i++) {
    rb.output(value);
    if ((i & 63) === 63) rb.consume();
  }
  rb.consume();
});
