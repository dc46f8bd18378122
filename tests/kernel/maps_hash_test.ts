/**
 * Hash maps: errnos against the real kernel (maps.kernel.json), stale
 * pointers for preallocated and BPF_F_NO_PREALLOC elements, per-CPU values,
 * and the common LRU's eviction order replayed against the kernel's.
 */
import assert from "node:assert/strict";
import { AddressSpace } from "../../lib/exec/memory.ts";
import { MemoryFault } from "../../lib/exec/fault.ts";
import {
  BPF_ANY,
  BPF_EXIST,
  BPF_F_LOCK,
  BPF_F_NO_COMMON_LRU,
  BPF_F_NO_PREALLOC,
  BPF_NOEXIST,
  type BpfMap,
  createMap,
  E2BIG,
  EINVAL,
  ENOENT,
  type HashMap,
  type MapAttr,
  toHex,
} from "../../lib/kernel/maps/mod.ts";
import { k32, kernelAnswers, kernelOp, v64 } from "./maps_fakes.ts";

const HASH = 1, PERCPU_HASH = 5, LRU_HASH = 9, LRU_PERCPU_HASH = 10;

function hashAttr(over: Partial<MapAttr> = {}): MapAttr {
  return {
    name: "h",
    type: HASH,
    keySize: 4,
    valueSize: 8,
    maxEntries: 2,
    flags: 0,
    ...over,
  };
}

function keys(m: BpfMap): number[] {
  return m.dump().map((e) => new DataView(e.key.buffer).getUint32(0, true))
    .sort((a, b) => a - b);
}

function keyOf(k: Uint8Array | number): number {
  if (typeof k === "number") return k;
  return new DataView(k.buffer, k.byteOffset).getUint32(0, true);
}

function contents(m: BpfMap): string[] {
  return m.dump().map((e) => `${toHex(e.key)}=${toHex(e.value)}`);
}

Deno.test("hash map operations answer as the kernel's", async (t) => {
  for (const flags of [0, BPF_F_NO_PREALLOC]) {
    await t.step(flags ? "BPF_F_NO_PREALLOC" : "preallocated", () => {
      const m = createMap(new AddressSpace(), hashAttr({ flags }));
      const v = v64(0x1122n);
      const op = kernelOp;
      assert.equal(
        m.update(k32(1), v, BPF_EXIST, 0),
        op("hash update EXIST missing"),
      );
      assert.equal(m.update(k32(1), v, BPF_ANY, 0), op("hash update 1"));
      assert.equal(
        m.update(k32(1), v64(9n), BPF_NOEXIST, 0),
        op("hash update NOEXIST existing"),
      );
      assert.equal(m.update(k32(2), v, BPF_ANY, 0), op("hash update 2"));
      const before = contents(m);
      assert.equal(m.update(k32(3), v, BPF_ANY, 0), op("hash update 3 full"));
      assert.deepEqual(
        contents(m),
        before,
        "a full map refuses without evicting",
      );
      assert.equal(
        m.update(k32(1), v, BPF_ANY, 0),
        op("hash update 1 replace when full"),
      );
      assert.equal(
        m.update(k32(1), v, BPF_F_LOCK, 0),
        op("hash update flags 4"),
      );
      assert.equal(m.delete(k32(3), 0), op("hash delete 3 missing"));
      assert.equal(m.delete(k32(1), 0), op("hash delete 1"));
      assert.equal(keyOf(m.getNextKey(null)), kernelOp("hash next_key NULL"));
      assert.equal(
        keyOf(m.getNextKey(k32(7))),
        kernelOp("hash next_key of missing 7"),
      );
      assert.equal(m.getNextKey(k32(2)), op("hash next_key of last"));
      assert.equal(op("hash update 3 full"), -E2BIG);
    });
  }
});

Deno.test("rejected hash updates leave value and order untouched", () => {
  const m = createMap(new AddressSpace(), hashAttr({ maxEntries: 4 }));
  for (const k of [3, 1, 2]) m.update(k32(k), v64(BigInt(k * 10)), BPF_ANY, 0);
  const before = contents(m);
  assert.equal(m.update(k32(1), v64(99n), BPF_NOEXIST, 0), -17);
  assert.equal(m.update(k32(9), v64(99n), BPF_EXIST, 0), -ENOENT);
  assert.equal(m.update(k32(1), v64(99n), 8, 0), -EINVAL);
  assert.deepEqual(contents(m), before);
  // A replaced key keeps its place in iteration order.
  m.update(k32(1), v64(11n), BPF_ANY, 0);
  assert.deepEqual(keysInOrder(m), [3, 1, 2]);
});

function keysInOrder(m: BpfMap): number[] {
  return m.dump().map((e) => new DataView(e.key.buffer).getUint32(0, true));
}

Deno.test("preallocated elements: stale pointers see reuse, never fault", () => {
  const space = new AddressSpace();
  const m = createMap(space, hashAttr({ maxEntries: 2 }));
  m.update(k32(1), v64(111n), BPF_ANY, 0);
  const a1 = m.lookup(k32(1), 0)!;
  assert.equal(m.delete(k32(1), 0), 0);
  assert.equal(space.read(a1, 8), 111n, "old data until reused");
  m.update(k32(2), v64(222n), BPF_ANY, 0);
  assert.equal(m.lookup(k32(2), 0), a1, "the freed slot pops first (LIFO)");
  assert.equal(space.read(a1, 8), 222n);
  // Replacing takes this CPU's spare element; the old one becomes the spare.
  m.update(k32(2), v64(333n), BPF_ANY, 0);
  const a2 = m.lookup(k32(2), 0)!;
  assert.notEqual(a2, a1);
  assert.equal(space.read(a1, 8), 222n);
  m.update(k32(2), v64(444n), BPF_ANY, 0);
  assert.equal(m.lookup(k32(2), 0), a1);
});

Deno.test("BPF_F_NO_PREALLOC: freed elements stay mapped until the grace period", () => {
  const space = new AddressSpace();
  const pending: (() => void)[] = [];
  const m = createMap(space, hashAttr({ flags: BPF_F_NO_PREALLOC }), {
    deferFree: (cb) => pending.push(cb),
  });
  m.update(k32(1), v64(111n), BPF_ANY, 0);
  const a = m.lookup(k32(1), 0)!;
  m.update(k32(1), v64(222n), BPF_ANY, 0);
  const b = m.lookup(k32(1), 0)!;
  assert.notEqual(a, b);
  assert.equal(
    space.read(a, 8),
    111n,
    "a reader inside its RCU section still sees old data",
  );
  assert.equal(pending.length, 1);
  pending.shift()!();
  assert.throws(
    () => space.read(a, 8),
    (e: unknown) => e instanceof MemoryFault && e.reason === "use-after-free",
  );
  assert.equal(m.delete(k32(1), 0), 0);
  assert.equal(space.read(b, 8), 222n);
  m.destroy();
  pending.shift()!(); // the callback after destruction must not double-free
  assert.throws(() => space.read(b, 8), MemoryFault);
});

Deno.test("per-CPU hash", async (t) => {
  const space = new AddressSpace();
  const m = createMap(
    space,
    hashAttr({ type: PERCPU_HASH, valueSize: 4, maxEntries: 4 }),
    {
      nrCpus: 2,
    },
  );
  await t.step("a new element: this CPU's value, the others zeroed", () => {
    assert.equal(m.update(k32(5), new Uint8Array([1, 0, 0, 0]), BPF_ANY, 1), 0);
    assert.equal(
      toHex(m.lookupValueCopy(k32(5)) as Uint8Array),
      "0000000000000000" + "0100000000000000",
    );
  });
  await t.step("an existing element is updated in place on one CPU", () => {
    const a0 = m.lookup(k32(5), 0)!;
    assert.equal(
      m.update(k32(5), new Uint8Array([7, 0, 0, 0]), BPF_EXIST, 0),
      0,
    );
    assert.equal(m.lookup(k32(5), 0), a0);
    assert.equal(
      toHex(m.lookupValueCopy(k32(5)) as Uint8Array),
      "0700000000000000" + "0100000000000000",
    );
  });
  await t.step("user space writes both CPUs; F_LOCK is refused", () => {
    const v = new Uint8Array(16);
    v[0] = 3;
    v[8] = 4;
    assert.equal(m.updateFromSyscall(k32(6), v, BPF_ANY), 0);
    assert.equal(space.read(m.lookup(k32(6), 1)!, 4), 4n);
    assert.equal(m.update(k32(6), new Uint8Array(4), BPF_F_LOCK, 0), -EINVAL);
  });
});

/** Replays maps_probe.c's LRU sequence (pinned to CPU 0) and compares key sets. */
function replayLru(
  maxEntries: number,
  expected: readonly { op?: string; result: number; keys?: number[] }[],
) {
  const nrCpus = kernelAnswers().nrCpus;
  const m = createMap(
    new AddressSpace(),
    hashAttr({ type: LRU_HASH, maxEntries }),
    { nrCpus },
  );
  const upd = (k: number, f: number) =>
    m.update(k32(k), v64(BigInt(k * 100)), f, 0);
  const steps: [string, () => number][] = [];
  for (let k = 1; k <= 12; k++) {
    steps.push([`update ${k} ANY`, () => upd(k, BPF_ANY)]);
  }
  steps.push(["update 12 NOEXIST", () => upd(12, BPF_NOEXIST)]);
  steps.push(["update 99 EXIST", () => upd(99, BPF_EXIST)]);
  steps.push(["update 11 ANY", () => upd(11, BPF_ANY)]);
  steps.push(["delete 12", () => m.delete(k32(12), 0)]);
  steps.push(["delete 12 again", () => m.delete(k32(12), 0)]);
  for (let k = 20; k <= 24; k++) {
    steps.push([`update ${k} ANY`, () => upd(k, BPF_ANY)]);
  }
  assert.equal(steps.length, expected.length);
  steps.forEach(([name, run], i) => {
    assert.equal(expected[i].op, name);
    assert.equal(run(), expected[i].result, name);
    assert.deepEqual(keys(m), expected[i].keys, `keys after ${name}`);
  });
}

Deno.test("LRU eviction follows the kernel's common LRU", async (t) => {
  const answers = kernelAnswers();
  await t.step(
    "max_entries 8 (target_free 2)",
    () => replayLru(8, answers.lru8),
  );
  await t.step(
    "max_entries 4 (target_free 1)",
    () => replayLru(4, answers.lru4),
  );
  await t.step(
    "a refused NOEXIST update may still evict (kernel behaviour)",
    () => {
      const i = answers.lru8.findIndex((c) => c.op === "update 12 NOEXIST");
      assert.equal(answers.lru8[i].result, -17);
      assert.ok(
        answers.lru8[i].keys!.length < answers.lru8[i - 1].keys!.length,
      );
    },
  );
});

Deno.test("LRU reference bits: program lookups replayed against the kernel", () => {
  // maps_probe.c looks keys up from a BPF program (setting the ref bit)
  // between updates; the same script must leave the same keys.
  const answers = kernelAnswers();
  const m = createMap(
    new AddressSpace(),
    hashAttr({ type: LRU_HASH, maxEntries: 8 }),
    { nrCpus: answers.nrCpus },
  );
  assert.ok(answers.lruRef.length > 30);
  for (const c of answers.lruRef) {
    const [verb, arg] = c.op!.split(" ");
    const k = Number(arg);
    const r = verb === "update"
      ? m.update(k32(k), v64(BigInt(k)), BPF_ANY, 0)
      : (m.lookup(k32(k), 0) === null ? 0 : 1);
    assert.equal(r, c.result, c.op);
    assert.deepEqual(keys(m), c.keys, `keys after ${c.op}`);
  }
});

Deno.test("per-CPU LRU (BPF_F_NO_COMMON_LRU) replayed against the kernel", () => {
  const answers = kernelAnswers();
  const [sizing, ...script] = answers.percpuLru;
  const rounded = createMap(
    new AddressSpace(),
    hashAttr({ type: LRU_HASH, maxEntries: 7, flags: BPF_F_NO_COMMON_LRU }),
    { nrCpus: answers.nrCpus },
  );
  assert.equal(rounded.attr.maxEntries, sizing.maxEntries);
  const m = createMap(
    new AddressSpace(),
    hashAttr({ type: LRU_HASH, maxEntries: 8, flags: BPF_F_NO_COMMON_LRU }),
    { nrCpus: answers.nrCpus },
  );
  let cpu = 0;
  for (const c of script) {
    const [verb, arg] = c.op!.split(" ");
    const k = Number(arg);
    let r: number;
    if (verb === "cpu") r = (cpu = k, 0);
    else if (verb === "update") {
      r = m.update(k32(k), v64(BigInt(k)), BPF_ANY, cpu);
    } else if (verb === "delete") r = m.delete(k32(k), cpu);
    else r = m.lookup(k32(k), cpu) === null ? 0 : 1;
    assert.equal(r, c.result, c.op);
    assert.deepEqual(keys(m), c.keys, `keys after ${c.op} (cpu ${cpu})`);
  }
});

Deno.test("LRU: a program's lookup protects an element from eviction", () => {
  // One CPU, 4 entries: target_free = 2. Hand-traced through bpf_lru_list.c:
  // k1..k4 take slots 2,3,0,1; the 5th update flushes pending nodes to the
  // inactive list, rotation moves k1 (referenced) to active, and shrinking
  // evicts the two oldest unreferenced nodes, k2 and k3.
  const m = createMap(
    new AddressSpace(),
    hashAttr({ type: LRU_HASH, maxEntries: 4 }),
    {
      nrCpus: 1,
    },
  ) as HashMap;
  for (let k = 1; k <= 4; k++) m.update(k32(k), v64(BigInt(k)), BPF_ANY, 0);
  assert.notEqual(m.lookup(k32(1), 0), null);
  m.update(k32(5), v64(5n), BPF_ANY, 0);
  assert.deepEqual(keys(m), [1, 4, 5]);
  assert.deepEqual(m.lruList!.listNodes("active"), [2]);
  // Without the lookup, k1 would have been the first evicted:
  const m2 = createMap(
    new AddressSpace(),
    hashAttr({ type: LRU_HASH, maxEntries: 4 }),
    {
      nrCpus: 1,
    },
  );
  for (let k = 1; k <= 4; k++) m2.update(k32(k), v64(BigInt(k)), BPF_ANY, 0);
  assert.notEqual(
    m2.lookupValueCopy(k32(1)),
    -ENOENT,
    "syscall lookups take no reference",
  );
  m2.update(k32(5), v64(5n), BPF_ANY, 0);
  assert.deepEqual(keys(m2), [3, 4, 5]);
});

Deno.test("LRU per-CPU hash: BPF_EXIST updates in place without taking a node", () => {
  const m = createMap(
    new AddressSpace(),
    hashAttr({ type: LRU_PERCPU_HASH, maxEntries: 2 }),
    {
      nrCpus: 2,
    },
  );
  assert.equal(m.update(k32(1), v64(1n), BPF_ANY, 0), 0);
  assert.equal(m.update(k32(2), v64(2n), BPF_ANY, 1), 0);
  assert.equal(m.update(k32(1), v64(9n), BPF_EXIST, 1), 0);
  assert.deepEqual(keys(m), [1, 2]);
  assert.equal(
    toHex(m.lookupValueCopy(k32(1)) as Uint8Array),
    "0100000000000000" + "0900000000000000",
  );
  assert.equal(m.update(k32(3), v64(1n), 4, 0), -EINVAL);
});
