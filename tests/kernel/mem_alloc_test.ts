/**
 * The BPF memory allocator model against facts of kernel/bpf/memalloc.c:
 * size classes and watermarks hand-computed from the kernel's tables,
 * refill only from irq_work, the `active` re-entrancy guard, reuse rules of
 * bpf_mem_free / bpf_mem_free_rcu, trimming through RCU Tasks Trace, misuse
 * reports, and invariants over a seeded random workload.
 */
import {
  deepStrictEqual as assertEquals,
  ok,
  throws,
} from "node:assert/strict";
import { AddressSpace, MAX_REGION_ID } from "../../lib/exec/memory.ts";
import { MemoryFault } from "../../lib/exec/fault.ts";
import {
  type BpfMemAlloc,
  bpfMemAllocInit,
  bpfMemCacheIdx,
  MemAllocError,
} from "../../lib/kernel/mem_alloc.ts";
import { refillWatermarks } from "../../lib/kernel/mem_cache.ts";
import { RcuFlavor, RcuStallError, RcuState } from "../../lib/kernel/rcu.ts";

function machine(nrCpus: number, size = 0): {
  space: AddressSpace;
  rcu: RcuState;
  ma: BpfMemAlloc;
} {
  const space = new AddressSpace();
  const rcu = new RcuState(nrCpus);
  return { space, rcu, ma: bpfMemAllocInit({ space, rcu }, size) };
}

/** Fault reason of reading 8 bytes at `ptr`, or "ok". */
function probe(space: AddressSpace, ptr: bigint): string {
  try {
    space.read(ptr, 8);
    return "ok";
  } catch (e) {
    if (e instanceof MemoryFault) return e.reason;
    throw e;
  }
}

function catchError(fn: () => void): MemAllocError {
  try {
    fn();
  } catch (e) {
    if (e instanceof MemAllocError) return e;
    throw e;
  }
  throw new Error("expected a MemAllocError");
}

Deno.test("size classes follow size_index[] and fls()", async (t) => {
  // [request, unit size chosen after adding the 8-byte llist_node], by hand
  // from sizes[] = {96, 192, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096}
  const cases: [number, number | null][] = [
    [0, null], // 6.18: size 0 returns NULL
    [1, 16],
    [8, 16],
    [9, 32],
    [24, 32],
    [25, 64],
    [56, 64],
    [57, 96],
    [88, 96],
    [89, 128],
    [120, 128],
    [121, 192],
    [184, 192],
    [185, 256],
    [248, 256],
    [249, 512],
    [504, 512],
    [505, 1024],
    [1016, 1024],
    [1017, 2048],
    [2040, 2048],
    [2041, 4096],
    [4088, 4096],
    [4089, null],
    [100000, null],
  ];
  const { space, ma } = machine(1);
  for (const [request, unit] of cases) {
    await t.step(`bpf_mem_alloc(${request}) -> ${unit ?? "NULL"}`, () => {
      ma.runIrqWork(0); // caches over 256 bytes are prefilled with one unit
      const p = ma.alloc(0, request);
      if (unit === null) return assertEquals(p, 0n);
      assertEquals(ma.objectInfo(p)?.unitSize, unit);
      assertEquals(space.regionAt(p)?.size, unit); // the unit, header included
      assertEquals(space.offsetOf(p), 8); // pointer is past the llist_node
      space.write(p + BigInt(request - 1), 1, 0xffn); // last requested byte
      throws(() => space.read(p + BigInt(unit - 8), 1), MemoryFault);
    });
  }
  await t.step("bpf_mem_cache_idx on unit sizes", () => {
    const got = [1, 16, 17, 96, 97, 192, 193, 4096, 4097, 0].map(
      bpfMemCacheIdx,
    );
    assertEquals(got, [2, 2, 3, 0, 5, 1, 6, 10, -1, -1]);
  });
});

Deno.test("watermarks, batch and prefill per class", async (t) => {
  // init_refill_work(): <= 256: 32/96; else 32*256/u, 96*256/u (min 1, 3);
  // batch = max((high - low) / 4 * 3, 1)
  const expected: Record<number, [number, number, number, number]> = {
    // unit: [low, high, batch, prefilled]
    16: [32, 96, 48, 4],
    96: [32, 96, 48, 4],
    256: [32, 96, 48, 4],
    512: [16, 48, 24, 1],
    1024: [8, 24, 12, 1],
    2048: [4, 12, 6, 1],
    4096: [2, 6, 3, 1],
  };
  const { ma } = machine(2);
  await t.step("kmalloc-style caches on every CPU", () => {
    for (const c of ma.caches.flat()) {
      const want = expected[c.unitSize];
      if (want === undefined) continue;
      assertEquals(
        [c.lowWatermark, c.highWatermark, c.batch, c.freeCnt],
        want,
        `unit ${c.unitSize} cpu${c.cpu}`,
      );
    }
    assertEquals(ma.caches.map((cs) => cs.length), [11, 11]);
    // 7 caches of <= 256 bytes get 4 units, 4 bigger ones 1, per CPU
    assertEquals(ma.stats().slabUnits, 2 * (7 * 4 + 4 * 1));
  });
  await t.step("fixed-size caches use size + 8", () => {
    assertEquals(refillWatermarks(300), { low: 27, high: 81, batch: 39 });
    assertEquals(refillWatermarks(8200), { low: 1, high: 3, batch: 1 });
    assertEquals(refillWatermarks(64, true), { low: 1, high: 3, batch: 1 });
    const fixed = machine(1, 292).ma;
    assertEquals(fixed.caches[0][0].unitSize, 300);
    assertEquals(fixed.caches[0][0].freeCnt, 1); // 300 > 256: one unit
  });
});

Deno.test("refill happens only when irq_work runs", () => {
  const { ma } = machine(2);
  const c = ma.cacheFor(0, 8)!;
  const got: bigint[] = [];
  for (let i = 0; i < 4; i++) got.push(ma.alloc(0, 8));
  ok(got.every((p) => p !== 0n));
  assertEquals(c.freeCnt, 0);
  assertEquals(ma.pendingIrqWork(0), 1); // raised once, not once per alloc
  assertEquals(ma.pendingIrqWork(1), 0);
  assertEquals(ma.alloc(0, 8), 0n); // dry until the refill runs
  assertEquals(c.stats.nullReturns, 1);
  assertEquals(ma.runIrqWork(0), 1);
  assertEquals(c.freeCnt, 48); // one batch
  assertEquals(c.stats.refills, 1);
  ok(ma.alloc(0, 8) !== 0n);
  assertEquals(ma.cacheFor(1, 8)!.freeCnt, 4); // the other CPU is untouched
});

Deno.test("NMI inside the active window: NULL, then success after refill", async (t) => {
  const { ma } = machine(1);
  const c16 = ma.cacheFor(0, 8)!;
  await t.step("same cache busy: NULL although the list is not empty", () => {
    const seen: bigint[] = [];
    ma.onActive((cpu, cache, op) => {
      if (op !== "alloc" || cache !== c16) return;
      seen.push(ma.alloc(cpu, 8)); // same cache: active == 2
      seen.push(ma.alloc(cpu, 24)); // another cache: its active is 0
      throws(() => ma.runIrqWork(cpu), /interrupts are off/);
      assertEquals(ma.cpuContext(cpu), { inNmi: true, active: true });
    });
    const outer = ma.alloc(0, 8);
    ma.onActive(undefined);
    ok(outer !== 0n);
    assertEquals(ma.cpuContext(0), { inNmi: false, active: false });
    assertEquals(seen[0], 0n);
    ok(seen[1] !== 0n);
    assertEquals(c16.stats.nullActive, 1);
    assertEquals(c16.freeCnt, 3);
  });
  await t.step("NMI free while active goes to free_llist_extra", () => {
    const victim = ma.alloc(0, 8);
    ma.onActive((cpu, cache, op) => {
      if (op === "alloc" && cache === c16) ma.free(cpu, victim);
    });
    ma.alloc(0, 8);
    ma.onActive(undefined);
    assertEquals(c16.freeLlistExtra.length, 1);
    assertEquals(c16.freeCnt, 1); // 3 - 2 allocs; the NMI free is not counted
  });
  await t.step("a faulting NMI leaves the cache usable", () => {
    const gone = ma.alloc(0, 8);
    ma.free(0, gone);
    ma.onActive((cpu) => ma.free(cpu, gone)); // the NMI double-frees
    ma.runIrqWork(0);
    throws(() => ma.alloc(0, 8), MemAllocError);
    ma.onActive(undefined);
    assertEquals(c16.active, 0);
    ok(ma.alloc(0, 8) !== 0n);
  });
  await t.step("dry list: NMI gets NULL until the refill runs", () => {
    while (ma.alloc(0, 8) !== 0n);
    assertEquals(ma.nmi(0, () => ma.alloc(0, 8)), 0n);
    ma.runIrqWork(0);
    ok(ma.nmi(0, () => ma.alloc(0, 8)) !== 0n);
  });
});

Deno.test("reuse: bpf_mem_free at once, bpf_mem_free_rcu after a GP", async (t) => {
  const { space, rcu, ma } = machine(2, 8);
  await t.step("plain free: same unit reused, old pointer faults", () => {
    const p = ma.cacheAlloc(0, "prog a insn 1");
    const slot = ma.objectInfo(p)!.slot;
    ma.cacheFree(0, p);
    assertEquals(probe(space, p), "use-after-free");
    const q = ma.cacheAlloc(0);
    assertEquals(ma.objectInfo(q)!.slot, slot); // LIFO free_llist
    ok(q !== p); // a fresh region id: stale pointers keep faulting
    assertEquals(probe(space, p), "use-after-free");
    ma.cacheFree(0, q);
  });
  await t.step("_rcu free: readable until the GP, reused only after", () => {
    const p = ma.cacheAlloc(0);
    const slot = ma.objectInfo(p)!.slot;
    ma.cacheFreeRcu(0, p);
    ma.runIrqWork(0); // refill + check_free_by_rcu: call_rcu queued
    assertEquals(ma.objectInfo(p)?.state, "rcu_wait");
    const before: number[] = [];
    for (let q = ma.cacheAlloc(0); q !== 0n; q = ma.cacheAlloc(0)) {
      before.push(ma.objectInfo(q)!.slot);
    }
    ok(!before.includes(slot), "reused before the grace period");
    rcu.rcu.readLock(1); // a reader on CPU 1 holds the GP
    assertEquals(rcu.rcu.advance(), false);
    assertEquals(probe(space, p), "ok");
    rcu.rcu.readUnlock(1);
    assertEquals(rcu.rcu.advance(), true);
    assertEquals(probe(space, p), "use-after-free");
    ma.runIrqWork(0);
    const after: number[] = [];
    for (let q = ma.cacheAlloc(0); q !== 0n; q = ma.cacheAlloc(0)) {
      after.push(ma.objectInfo(q)!.slot);
    }
    ok(after.includes(slot), "not reused after the grace period");
  });
});

Deno.test("free_bulk trims to the midpoint through RCU Tasks Trace", () => {
  const { rcu, ma } = machine(2, 8);
  const ptrs: bigint[] = [];
  while (ptrs.length < 100) {
    const p = ma.cacheAlloc(0);
    if (p === 0n) ma.runIrqWork(0);
    else ptrs.push(p);
  }
  const cpu0 = ma.caches[0][0];
  const cpu1 = ma.caches[1][0];
  const slab = ma.stats().slabUnits;
  const [extra, interrupted, last] = ptrs.splice(0, 3);
  for (const p of ptrs) ma.cacheFree(1, p); // 97 freed on the other CPU
  ma.onActive((cpu, _c, op) => {
    if (op === "free") ma.cacheFree(cpu, extra); // NMI: free_llist_extra
  });
  ma.cacheFree(1, interrupted);
  ma.onActive(undefined);
  assertEquals(cpu1.freeLlistExtra.length, 1);
  ma.cacheFree(1, last);
  assertEquals(cpu1.freeCnt, 103); // 4 prefilled + 99, the NMI free not counted
  assertEquals(ma.pendingIrqWork(1), 1);
  ma.runIrqWork(1);
  assertEquals(cpu1.freeCnt, 64); // (96 + 32) / 2
  // 39 trimmed + the drained free_llist_extra, to tgt: the owner's cache
  assertEquals(cpu1.freeLlistExtra.length, 0);
  assertEquals(cpu0.waitingForGpTtrace.length, 40);
  assertEquals(ma.stats().slabUnits, slab); // not yet given back
  rcu.tasksTrace.advance();
  assertEquals(ma.stats().slabUnits, slab - 40);
  assertEquals(cpu0.stats.kfrees, 40);
});

Deno.test("GFP_KERNEL fallback, raw free, and NMI _rcu frees", async (t) => {
  const { space, rcu, ma } = machine(1, 100);
  const c = ma.caches[0][0];
  await t.step(
    "bpf_mem_cache_alloc_flags: kmalloc only with GFP_KERNEL",
    () => {
      assertEquals(c.freeCnt, 4); // 108-byte units (<= 256): prefilled with 4
      while (c.freeCnt > 0) ma.cacheAlloc(0);
      assertEquals(ma.cacheAllocFlags(0, false), 0n);
      const p = ma.cacheAllocFlags(0, true, "sleepable prog");
      assertEquals(ma.objectInfo(p)?.allocSite, "sleepable prog");
      assertEquals(c.freeCnt, 0); // nothing went through the free list
    },
  );
  await t.step("bpf_mem_cache_raw_free goes straight back to slab", () => {
    const p = ma.cacheAllocFlags(0, true);
    const before = ma.stats();
    ma.rawFree(p);
    const after = ma.stats();
    assertEquals(after.slabUnits, before.slabUnits - 1);
    assertEquals(after.inUse, before.inUse - 1);
    assertEquals(c.freeCnt, 0);
    assertEquals(probe(space, p), "use-after-free");
  });
  await t.step("_rcu free from an NMI waits in free_llist_extra_rcu", () => {
    const victim = ma.cacheAllocFlags(0, true);
    ma.onActive((cpu, _c, op) => {
      if (op === "free_rcu") ma.cacheFreeRcu(cpu, victim);
    });
    ma.cacheFreeRcu(0, ma.cacheAllocFlags(0, true));
    ma.onActive(undefined);
    assertEquals([c.freeByRcu.length, c.freeLlistExtraRcu.length], [1, 1]);
    ma.runIrqWork(0); // check_free_by_rcu: both wait for one GP
    assertEquals(c.waitingForGp.length, 2);
    assertEquals(probe(space, victim), "ok");
    rcu.rcu.advance();
    assertEquals(probe(space, victim), "use-after-free");
    assertEquals(c.waitingForGp.length, 0);
  });
});

Deno.test("misuse is reported KASAN-style", async (t) => {
  const { space, ma } = machine(2);
  await t.step("double free names both sites and the CPU", () => {
    const p = ma.alloc(0, 8, "prog a insn 2");
    ma.free(0, p, "prog a insn 9");
    const e = catchError(() => ma.free(1, p, "prog b insn 4"));
    assertEquals(
      [e.kind, e.cpu, e.site, e.allocSite, e.freeSite],
      ["double-free", 1, "prog b insn 4", "prog a insn 2", "prog a insn 9"],
    );
    ok(e.message.startsWith("BUG: KASAN: double-free in prog b insn 4"));
  });
  await t.step(
    "a stale pointer to a reused unit is still a double free",
    () => {
      const p = ma.alloc(0, 8);
      ma.free(0, p);
      const q = ma.alloc(0, 8); // same unit, new region
      assertEquals(catchError(() => ma.free(0, p)).kind, "double-free");
      ma.free(0, q); // q is intact
    },
  );
  await t.step("double free while waiting for the RCU GP", () => {
    const p = ma.alloc(0, 100);
    ma.freeRcu(0, p, "first");
    const e = catchError(() => ma.freeRcu(0, p, "second"));
    assertEquals([e.kind, e.freeSite], ["double-free", "first"]);
  });
  await t.step("pointers that are not allocator objects", () => {
    const p = ma.alloc(1, 16);
    const v = space.mapRegion("map_value", 16, { name: "counts[0]" });
    for (const bad of [p + 8n, p - 8n, v, 0x1234n]) {
      assertEquals(catchError(() => ma.free(1, bad)).kind, "invalid-free");
    }
    const other = machine(1).ma;
    assertEquals(catchError(() => other.free(0, p)).kind, "invalid-free");
    ma.free(1, 0n); // NULL is a no-op
    ma.free(1, p);
  });
  await t.step("wrong API for the allocator's shape", () => {
    throws(() => ma.cacheAlloc(0), /kmalloc-style/);
    throws(() => machine(1, 8).ma.alloc(0, 8), /fixed-size/);
  });
});

Deno.test("destroy drains everything and reports leaks", async (t) => {
  await t.step("clean: in-use and slab return to zero", () => {
    const { rcu, ma } = machine(2);
    const ps = [ma.alloc(0, 8), ma.alloc(1, 500), ma.alloc(1, 4000)];
    ma.free(1, ps[0]);
    ma.freeRcu(0, ps[1]);
    ma.free(0, ps[2]);
    ma.runIrqWork(0);
    assertEquals(ma.inUse, 0);
    assertEquals(ma.destroy(), []);
    rcu.barrier(); // pending callbacks find empty lists
    const s = ma.stats();
    assertEquals([s.inUse, s.slabUnits, s.mappedRegions], [0, 0, 0]);
    const made = s.caches.reduce((n, c) => n + c.kmallocs, 0);
    assertEquals(s.caches.reduce((n, c) => n + c.kfrees, 0), made);
    throws(() => ma.alloc(0, 8), /after destroy/);
  });
  await t.step("leaked objects are reported with their allocation site", () => {
    const { space, ma } = machine(1, 40);
    const p = ma.cacheAlloc(0, "prog leaky insn 5");
    ma.cacheAlloc(0, "prog leaky insn 6");
    const leaks = ma.destroy();
    assertEquals(leaks.map((e) => [e.kind, e.allocSite]), [
      ["leak", "prog leaky insn 5"],
      ["leak", "prog leaky insn 6"],
    ]);
    assertEquals(leaks[0].address, p);
    assertEquals(probe(space, p), "use-after-free");
    assertEquals(ma.stats().slabUnits, 0);
  });
});

Deno.test("RCU: callbacks wait for a full grace period", async (t) => {
  await t.step("queued mid-GP waits for the next GP", () => {
    const rcu = new RcuFlavor("rcu", 2);
    const ran: string[] = [];
    rcu.callRcu(() => ran.push("a"));
    rcu.quiescentState(0);
    rcu.callRcu(() => ran.push("b")); // GP 1 is running
    rcu.quiescentState(1);
    assertEquals(ran, ["a"]);
    rcu.advance();
    assertEquals(ran, ["a", "b"]);
    assertEquals([rcu.gpStarted, rcu.gpCompleted], [2, 2]);
  });
  await t.step("a reader stalls synchronize()", () => {
    const rcu = new RcuFlavor("rcu", 2);
    rcu.readLock(1);
    let e: unknown;
    try {
      rcu.synchronize();
    } catch (err) {
      e = err;
    }
    ok(e instanceof RcuStallError);
    assertEquals(e.blockingCpus, [1]);
    rcu.readUnlock(1);
    rcu.barrier();
    assertEquals(rcu.pendingCallbacks, 0);
  });
});

Deno.test("keeps working once the region ids are recycled", () => {
  const { space, ma } = machine(1, 8);
  let last = 0n;
  for (let i = 0; i < MAX_REGION_ID + 1000; i++) {
    let p = ma.cacheAlloc(0);
    if (p === 0n) {
      ma.runIrqWork(0);
      p = ma.cacheAlloc(0);
    }
    space.write(p, 8, BigInt(i));
    assertEquals(space.read(p, 8), BigInt(i));
    ma.cacheFree(0, p);
    last = p;
  }
  assertEquals(probe(space, last), "use-after-free");
  assertEquals(catchError(() => ma.cacheFree(0, last)).kind, "double-free");
  assertEquals(ma.inUse, 0);
  assertEquals(ma.destroy(), []);
});

/** xorshift32: the test's own seeded source of choice. */
function xorshift(seed: number): (n: number) => number {
  let s = seed >>> 0 || 1;
  return (n) => {
    s ^= s << 13;
    s >>>= 0;
    s ^= s >>> 17;
    s ^= s << 5;
    s >>>= 0;
    return s % n;
  };
}

/** A random workload on 4 CPUs; returns the final stats as JSON. */
function randomWorkload(seed: number, steps: number): string {
  const { space, rcu, ma } = machine(4);
  const rand = xorshift(seed);
  const live = new Map<bigint, { size: number; tag: bigint; slot: number }>();
  let tags = 0n;
  const allocOn = (cpu: number): void => {
    // mostly small objects, so a few classes see deep alloc/free swings
    const size = rand(4) === 0 ? 1 + rand(4200) : 1 + rand(24);
    const p = ma.alloc(cpu, size, `step ${tags}`);
    if (size > 4088) return assertEquals(p, 0n);
    if (p === 0n) return;
    ok(!live.has(p), "address handed out twice");
    const slot = ma.objectInfo(p)!.slot;
    for (const o of live.values()) ok(o.slot !== slot, "unit handed out twice");
    ok(space.regionAt(p)!.size - 8 >= size);
    const tag = ++tags;
    space.write(p, size > 8 ? 8 : 1, tag); // head and last byte never overlap
    space.write(p + BigInt(size - 1), 1, tag & 0xffn);
    live.set(p, { size, tag: size > 8 ? tag : tag & 0xffn, slot });
  };
  for (let i = 0; i < steps; i++) {
    const cpu = rand(2) === 0 ? 0 : rand(4); // CPU 0 is the busy one
    // phases of growth and shrinkage push free_cnt past both watermarks
    const grow = ((i >> 9) & 1) === 0;
    const op = rand(100);
    if (op < (grow ? 55 : 15)) allocOn(cpu);
    else if (op < 80 && live.size > 0) {
      const keys = [...live.keys()];
      const p = keys[rand(keys.length)];
      const o = live.get(p)!;
      const width = o.size > 8 ? 8 : 1;
      assertEquals(space.read(p, width), o.tag, "object overwritten");
      assertEquals(space.read(p + BigInt(o.size - 1), 1), o.tag & 0xffn);
      live.delete(p);
      if (rand(2) === 0) ma.free(cpu, p);
      else ma.freeRcu(cpu, p);
    } else if (op < 90) ma.runIrqWork(cpu);
    else if (op < 94) rcu.advance();
    else if (op < 97) {
      ma.onActive((c) => allocOn(c)); // an NMI allocation mid-allocation
      allocOn(cpu);
      ma.onActive(undefined);
    } else rcu.quiescentState(cpu);
    const s = ma.stats();
    assertEquals(s.inUse, live.size);
    assertEquals(s.caches.reduce((n, c) => n + c.inUse, 0), live.size);
    const cached = s.caches.reduce((n, c) => n + c.cached, 0);
    assertEquals(s.slabUnits, live.size + cached, "units lost or duplicated");
  }
  const caches = ma.stats().caches;
  const total = (k: "trims" | "refills" | "nullActive" | "freesRcu"): number =>
    caches.reduce((n, c) => n + c[k], 0);
  // the invariants above were checked across every path of the allocator
  ok(total("trims") > 0 && total("refills") > 0, "no trim or refill ran");
  ok(total("nullActive") > 0 && total("freesRcu") > 0, "no NMI or _rcu free");
  for (const p of live.keys()) ma.free(0, p);
  rcu.barrier();
  for (let cpu = 0; cpu < 4; cpu++) ma.runIrqWork(cpu);
  rcu.barrier();
  const summary = JSON.stringify(caches);
  assertEquals(ma.destroy(), []);
  assertEquals(ma.stats().slabUnits, 0);
  return summary;
}

Deno.test("random alloc/free on 4 CPUs keeps the invariants", async (t) => {
  for (const seed of [1, 2, 3]) {
    await t.step(`seed ${seed}`, () => {
      const first = randomWorkload(seed, 3000);
      assertEquals(randomWorkload(seed, 3000), first); // deterministic
    });
  }
});
