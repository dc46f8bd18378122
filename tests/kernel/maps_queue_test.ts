/**
 * Queue and stack maps, replaying maps_probe.c's operations (creation
 * checks, pushes with and without BPF_EXIST, peeks, pops) against the
 * kernel's recorded answers.
 */
import assert from "node:assert/strict";
import { AddressSpace } from "../../lib/exec/memory.ts";
import {
  BPF_ANY,
  BPF_EXIST,
  BPF_NOEXIST,
  createMap,
  mapAllocCheck,
  type QueueStackMap,
} from "../../lib/kernel/maps/mod.ts";
import { kernelAnswers, kernelOp } from "./maps_fakes.ts";

const QUEUE = 22, STACK = 23;
const NONE = new Uint8Array(0);

function u32(v: number): Uint8Array {
  return new Uint8Array(new Uint32Array([v]).buffer);
}

/** A peek/pop result as the probe prints it: the u32 read, or the errno. */
function asResult(r: Uint8Array | number): number {
  return typeof r === "number" ? r : new DataView(r.buffer).getUint32(0, true);
}

Deno.test("queue/stack creation checks agree with the kernel", () => {
  const cases = kernelAnswers().ops.filter((c) =>
    c.case !== undefined && (c.type === QUEUE || c.type === STACK)
  );
  assert.ok(cases.length >= 7);
  for (const c of cases) {
    assert.equal(
      mapAllocCheck({
        name: c.mapName!,
        type: c.type!,
        keySize: c.keySize!,
        valueSize: c.valueSize!,
        maxEntries: c.maxEntries!,
        flags: c.flags!,
      }),
      c.result,
      c.case,
    );
  }
});

for (const [name, type] of [["queue", QUEUE], ["stack", STACK]] as const) {
  Deno.test(`${name}: pushes, peeks and pops as the kernel's`, () => {
    const m = createMap(new AddressSpace(), {
      name,
      type,
      keySize: 0,
      valueSize: 4,
      maxEntries: 3,
      flags: 0,
    }) as QueueStackMap;
    const op = (what: string) => kernelOp(`${name} ${what}`);
    assert.equal(asResult(m.lookupValueCopy(NONE)), op("peek empty"));
    assert.equal(m.updateFromSyscall(NONE, u32(1), BPF_ANY), op("push 1"));
    assert.equal(m.updateFromSyscall(NONE, u32(2), BPF_ANY), op("push 2"));
    assert.equal(m.updateFromSyscall(NONE, u32(3), BPF_ANY), op("push 3"));
    assert.equal(m.updateFromSyscall(NONE, u32(4), BPF_ANY), op("push 4 full"));
    assert.equal(m.count, 3, "a refused push changes nothing");
    assert.equal(
      m.updateFromSyscall(NONE, u32(4), BPF_EXIST),
      op("push 4 EXIST"),
    );
    assert.equal(m.push(u32(5), BPF_NOEXIST), op("push 5 NOEXIST"));
    assert.equal(asResult(m.lookupValueCopy(NONE)), op("peek"));
    assert.equal(asResult(m.lookupAndDeleteFromSyscall()), op("pop a"));
    assert.equal(m.push(u32(6), BPF_ANY), op("push 6"));
    assert.equal(asResult(m.pop()), op("pop b"));
    assert.equal(asResult(m.pop()), op("pop c"));
    assert.equal(asResult(m.pop()), op("pop d"));
    assert.equal(asResult(m.pop()), op("pop empty"));
    assert.equal(m.deleteFromSyscall(NONE), op("delete"));
    assert.equal(m.getNextKey(null), op("get_next_key"));
    assert.equal(m.lookup(NONE, 0), null);
    assert.deepEqual(m.dump(), []);
  });
}
