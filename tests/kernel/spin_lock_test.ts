// SpinLocks: the allocation-free entries (tryLock / release) and the
// result-object entries (lock / unlock) agree with each other, keep the lock
// word in BPF memory in step, and stay right when thousands of distinct
// locks come and go (records are dropped and made again).
import { deepEqual, equal, ok, throws } from "node:assert/strict";
import { addressHi, addressLo, AddressSpace } from "../../lib/exec/memory.ts";
import { formatAddress, MemoryFault } from "../../lib/exec/fault.ts";
import {
  LOCK_ACQUIRED,
  LOCK_CONTENDED,
  LOCK_DEADLOCK,
  SpinLocks,
  UNLOCK_NOT_HELD,
  UNLOCK_RELEASED,
  UNLOCK_WRONG_OWNER,
} from "../../lib/kernel/spin_lock.ts";

function lockWord(mem: AddressSpace, addr: bigint): bigint {
  return mem.read(addr, 4);
}

Deno.test("tryLock / release: codes, the holder in conflict, the lock word", async (t) => {
  const mem = new AddressSpace();
  const value = mem.mapRegion("map_value", 16);
  const addr = value + 4n;
  const lo = addressLo(addr), hi = addressHi(addr);
  const locks = new SpinLocks();

  await t.step("a free lock is acquired and its word becomes 1", () => {
    equal(locks.tryLock(mem, lo, hi, 0, 0, "p", 7), LOCK_ACQUIRED);
    equal(lockWord(mem, addr), 1n);
    equal(locks.heldCount, 1);
    deepEqual(locks.holderOf(addr), { cpu: 0, level: 0, prog: "p", insn: 7 });
  });

  await t.step("another CPU contends, the same CPU deadlocks", () => {
    equal(locks.tryLock(mem, lo, hi, 1, 0, "q", 3), LOCK_CONTENDED);
    equal(locks.conflict?.cpu, 0);
    equal(locks.conflict?.insn, 7);
    equal(locks.tryLock(mem, lo, hi, 0, 1, "nmi", 2), LOCK_DEADLOCK);
    equal(locks.conflict?.prog, "p");
    const state = locks.stateOf(lo, hi);
    ok(state?.held);
    equal(state?.cpu, 0);
  });

  await t.step("only the holding context releases it", () => {
    equal(locks.release(mem, lo, hi, 1, 0), UNLOCK_WRONG_OWNER);
    equal(locks.release(mem, lo, hi, 0, 1), UNLOCK_WRONG_OWNER);
    equal(lockWord(mem, addr), 1n);
    const state = locks.stateOf(lo, hi);
    equal(locks.release(mem, lo, hi, 0, 0), UNLOCK_RELEASED);
    equal(lockWord(mem, addr), 0n);
    equal(state?.held, false, "a poller's view sees the release");
    equal(locks.release(mem, lo, hi, 0, 0), UNLOCK_NOT_HELD);
    equal(locks.conflict, undefined);
    equal(locks.heldCount, 0);
  });

  await t.step("the text of the address is the trace's", () => {
    equal(locks.textOf(lo, hi), formatAddress(addr));
    const other = value + 8n;
    equal(
      locks.textOf(addressLo(other), addressHi(other)),
      formatAddress(other),
    );
  });
});

Deno.test("lock / unlock (result objects) agree with tryLock / release", () => {
  const mem = new AddressSpace();
  const addr = mem.mapRegion("map_value", 8);
  const locks = new SpinLocks();
  const who = { cpu: 2, level: 0, prog: "a", insn: 1 };
  deepEqual(locks.lock(mem, addr, who), { kind: "acquired" });
  const contended = locks.lock(mem, addr, { ...who, cpu: 3 });
  deepEqual(contended, { kind: "contended", holder: who });
  deepEqual(locks.lock(mem, addr, { ...who, level: 1 }), {
    kind: "deadlock",
    holder: who,
  });
  deepEqual(locks.unlock(mem, addr, { cpu: 3, level: 0 }), {
    kind: "wrong_owner",
    holder: who,
  });
  deepEqual(locks.unlock(mem, addr, { cpu: 2, level: 0 }), {
    kind: "released",
    holder: who,
  });
  // the holder handed out earlier is a copy: taking the lock again changes it not
  locks.lock(mem, addr, { cpu: 1, level: 0, prog: "b", insn: 9 });
  if (contended.kind === "contended") deepEqual(contended.holder, who);
  deepEqual(locks.unlock(mem, addr + 4n, { cpu: 1, level: 0 }), {
    kind: "not_held",
  });
});

Deno.test("heldBy lists a context's locks in the order they were taken", () => {
  const mem = new AddressSpace();
  const a = mem.mapRegion("map_value", 8), b = mem.mapRegion("map_value", 8);
  const c = mem.mapRegion("map_value", 8);
  const locks = new SpinLocks();
  for (const [addr, insn] of [[b, 1], [a, 2], [c, 3]] as const) {
    locks.lock(mem, addr, { cpu: 0, level: 0, prog: "p", insn });
  }
  locks.unlock(mem, a, { cpu: 0, level: 0 });
  deepEqual(locks.heldBy(0, 0).map(([addr, h]) => [addr, h.insn]), [
    [b, 1],
    [c, 3],
  ]);
  ok(locks.holdsAny(0, 0));
  ok(!locks.holdsAny(0, 1));
  ok(!locks.holdsAny(1, 0));
  ok(locks.holdsInRegionOf(mem, 0, 0, c + 4n));
  ok(!locks.holdsInRegionOf(mem, 0, 0, a));
});

Deno.test("thousands of distinct locks: records are dropped, answers stay right", () => {
  const mem = new AddressSpace();
  const locks = new SpinLocks();
  const addrs: bigint[] = [];
  for (let i = 0; i < 6000; i++) addrs.push(mem.mapRegion("alloc", 8));
  // every lock taken and released, one after the other
  for (const addr of addrs) {
    const lo = addressLo(addr), hi = addressHi(addr);
    equal(locks.tryLock(mem, lo, hi, 0, 0, "p", 0), LOCK_ACQUIRED);
    equal(locks.release(mem, lo, hi, 0, 0), UNLOCK_RELEASED);
  }
  // two locks held at once in the same pass, far apart in the list
  const first = addrs[0], last = addrs[5999];
  locks.lock(mem, first, { cpu: 1, level: 0, prog: "p", insn: 1 });
  locks.lock(mem, last, { cpu: 2, level: 0, prog: "p", insn: 2 });
  equal(locks.holderOf(first)?.cpu, 1);
  equal(locks.holderOf(last)?.cpu, 2);
  equal(
    locks.lock(mem, first, { cpu: 3, level: 0, prog: "p", insn: 3 }).kind,
    "contended",
  );
  equal(locks.heldCount, 2);
  equal(lockWord(mem, first), 1n);
  equal(lockWord(mem, addrs[1]), 0n);
});

Deno.test("a lock outside every region faults and is not recorded", () => {
  const mem = new AddressSpace();
  const locks = new SpinLocks();
  throws(
    () => locks.lock(mem, 0x1000n, { cpu: 0, level: 0, prog: "p", insn: 0 }),
    MemoryFault,
  );
  equal(locks.heldCount, 0);
  equal(locks.holderOf(0x1000n), undefined);
});
