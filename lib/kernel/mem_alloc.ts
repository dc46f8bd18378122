/**
 * `struct bpf_mem_alloc`: the any-context BPF memory allocator of
 * `kernel/bpf/memalloc.c` (Linux 6.18), over the interpreter's
 * {@link AddressSpace}.
 *
 * Two shapes, as `bpf_mem_alloc_init(ma, size, percpu)` makes them:
 * - `size == 0`: kmalloc-style, 11 caches per CPU (16 … 4096 bytes, see
 *   {@link BPF_MEM_CACHE_SIZES}); `bpf_mem_alloc(ma, size)` adds the 8-byte
 *   `llist_node` header and picks the class (sizes over 4088 fail);
 * - `size > 0`: one cache per CPU of `size + 8`-byte units
 *   (`bpf_mem_cache_alloc`), the hash map's case.
 *
 * ## Memory model (a deliberate choice)
 * Each handed-out object is one `alloc` region of `unit_size` bytes: the
 * header at offset 0, the object at offset {@link LLIST_NODE_SZ}, and the
 * returned pointer points past the header, as in the kernel. A region lives
 * exactly as long as the object is handed out (for `_rcu` frees: until the
 * RCU grace period ends). The *unit* (the slab memory) is recycled as the
 * kernel recycles it, but every reuse maps a fresh region id, so a stale
 * pointer faults `use-after-free` naming the old region (until the address
 * space, out of its ~30k ids, recycles that id: its quarantine). This is
 * stricter than the kernel, where `bpf_mem_free()`d memory is reused in place
 * at once and a stale read silently sees the new owner's bytes; reuse is
 * observable here through {@link BpfMemAlloc.objectInfo}'s `slot`. Freeing
 * another allocator's object is also refused (the kernel would accept it,
 * the memory being plain slab either way). The
 * unit's bytes are shared by its successive regions and zeroed at every
 * hand-out (the kernel zeroes only fresh kmalloc memory; its users
 * initialise what they read), so runs never depend on stale contents.
 *
 * ## Concurrency model
 * Calls name their CPU. irq_work never runs by itself: `unit_alloc()` /
 * `unit_free()` queue the refill work and the scheduler runs it with
 * {@link BpfMemAlloc.runIrqWork}. An NMI is simulated with
 * {@link BpfMemAlloc.onActive}: the hook runs, as an NMI on that CPU, inside
 * the window where `active` is held, so its allocations return NULL and its
 * frees go to `free_llist_extra`, as in the kernel.
 * @module
 */
import { type AddressSpace, regionAddress } from "../exec/memory.ts";
import { formatAddress } from "../exec/fault.ts";
import {
  BPF_MEM_CACHE_SIZES,
  BpfMemCache,
  bpfMemCacheIdx,
  LLIST_NODE_SZ,
  type MemCacheHost,
  type MemCacheStats,
  type MemUnit,
  NUM_CACHES,
} from "./mem_cache.ts";
import type { RcuState } from "./rcu.ts";

export {
  BPF_MEM_CACHE_SIZES,
  BpfMemCache,
  bpfMemCacheIdx,
  LLIST_NODE_SZ,
  type MemCacheStats,
  NUM_CACHES,
};

/** What kind of allocator misuse was detected. */
export type MemAllocErrorKind = "double-free" | "invalid-free" | "leak";

/** Where a {@link MemAllocError} happened and the object's history. */
export interface MemAllocErrorSites {
  /** CPU of the faulting call (-1 for leaks found by destroy). */
  readonly cpu?: number;
  /** Site of the faulting call, e.g. `prog foo insn 12`. */
  readonly site?: string;
  /** Site of the object's allocation, when known. */
  readonly allocSite?: string;
  /** Site of the earlier free, when known. */
  readonly freeSite?: string;
}

/**
 * A KASAN-style report of allocator misuse: what, at which address, on
 * which CPU, with the allocation and free sites the callers passed.
 */
export class MemAllocError extends Error {
  /** What went wrong. */
  readonly kind: MemAllocErrorKind;
  /** The pointer passed (or, for a leak, the object's address). */
  readonly address: bigint;
  /** CPU of the faulting call (-1 for leaks found by destroy). */
  readonly cpu: number;
  /** Site of the faulting call. */
  readonly site: string;
  /** Site of the object's allocation ("" when unknown). */
  readonly allocSite: string;
  /** Site of the earlier free ("" when unknown). */
  readonly freeSite: string;

  /** Builds the report; the first line reads like KASAN's. */
  constructor(
    kind: MemAllocErrorKind,
    address: bigint,
    detail: string,
    sites: MemAllocErrorSites = {},
  ) {
    const { cpu = -1, site = "", allocSite = "", freeSite = "" } = sites;
    let message = `BUG: KASAN: ${kind}${site === "" ? "" : ` in ${site}`}: ` +
      `${formatAddress(address)}${cpu >= 0 ? ` on CPU ${cpu}` : ""}: ${detail}`;
    if (allocSite !== "") message += `; allocated at ${allocSite}`;
    if (freeSite !== "") message += `; freed at ${freeSite}`;
    super(message);
    this.name = "MemAllocError";
    this.kind = kind;
    this.address = address;
    this.cpu = cpu;
    this.site = site;
    this.allocSite = allocSite;
    this.freeSite = freeSite;
  }
}

/** The machine an allocator lives in. */
export interface BpfMemAllocEnv {
  /** Where objects are mapped. */
  readonly space: AddressSpace;
  /** Grace periods; its CPU count is the allocator's. */
  readonly rcu: RcuState;
  /** Prefix of region names and reports (default `bpf_mem_alloc`). */
  readonly name?: string;
}

/** Runs inside an `active` window, as an NMI on `cpu`. */
export type ActiveHook = (
  cpu: number,
  cache: BpfMemCache,
  op: "alloc" | "free" | "free_rcu",
) => void;

/** One cache's counters and levels. */
export interface MemCacheSnapshot extends MemCacheStats {
  /** Owning CPU. */
  readonly cpu: number;
  /** Bytes per unit, header included. */
  readonly unitSize: number;
  /** Objects on free_llist. */
  readonly freeCnt: number;
  /** Units on any list of the cache. */
  readonly cached: number;
}

/** Counters of a whole allocator. */
export interface MemAllocStats {
  /** Every cache, CPU-major, in `sizes[]` order. */
  readonly caches: MemCacheSnapshot[];
  /** Objects handed out and not freed. */
  readonly inUse: number;
  /** Units made and not yet released to slab. */
  readonly slabUnits: number;
  /** Regions currently mapped (in use, or `_rcu`-freed awaiting the GP). */
  readonly mappedRegions: number;
}

/** The per-CPU context that decides what an allocator call may do. */
export interface CpuAllocContext {
  /** Inside a (simulated) NMI: irq_work must wait until it returns. */
  readonly inNmi: boolean;
  /** Some cache of the CPU is inside its `active` window (irqs are off). */
  readonly active: boolean;
}

/** What {@link BpfMemAlloc.objectInfo} tells about a pointer. */
export interface ObjectInfo {
  /** Unit identity; equal slots mean the same memory was reused. */
  readonly slot: number;
  /** Bytes per unit, header included. */
  readonly unitSize: number;
  /** CPU whose cache handed it out. */
  readonly cpu: number;
  /** `allocated`, or `rcu_wait` after a `_rcu` free. */
  readonly state: string;
  /** Site of its allocation. */
  readonly allocSite: string;
}

interface FreedRecord {
  readonly allocSite: string;
  readonly freeSite: string;
}

/** `struct bpf_mem_alloc`. Build it with {@link bpfMemAllocInit}. */
export class BpfMemAlloc implements MemCacheHost {
  /** RCU flavours. */
  readonly rcu: RcuState;
  /** Number of CPUs. */
  readonly nrCpus: number;
  /** Name used in region names and reports. */
  readonly name: string;
  /** Object size of a fixed-size allocator (0: kmalloc-style). */
  readonly fixedSize: number;
  /** Caches per CPU: 11 (kmalloc-style) or 1 (fixed size). */
  readonly caches: readonly (readonly BpfMemCache[])[];
  private readonly space: AddressSpace;
  private readonly units = new Map<number, MemUnit>();
  /** Sites of our unmapped regions, by id (bounded: ids are recycled). */
  private readonly freed = new Map<number, FreedRecord>();
  private readonly irqWork: BpfMemCache[][];
  private readonly nmiDepth: Int32Array;
  private hook: ActiveHook | undefined;
  private nextSlot = 1;
  private liveObjects = 0;
  private slab = 0;
  private destroyed = false;

  /** Use {@link bpfMemAllocInit}. */
  constructor(env: BpfMemAllocEnv, size: number) {
    this.space = env.space;
    this.rcu = env.rcu;
    this.nrCpus = env.rcu.rcu.nrCpus;
    this.name = env.name ?? "bpf_mem_alloc";
    this.fixedSize = size;
    this.irqWork = Array.from({ length: this.nrCpus }, () => []);
    this.nmiDepth = new Int32Array(this.nrCpus);
    const unitSizes = size > 0 ? [size + LLIST_NODE_SZ] : BPF_MEM_CACHE_SIZES;
    this.caches = Array.from(
      { length: this.nrCpus },
      (_, cpu) => unitSizes.map((u) => new BpfMemCache(this, cpu, u)),
    );
    for (const perCpu of this.caches) for (const c of perCpu) c.prefill();
  }

  /** Objects handed out and not freed, over all CPUs. */
  get inUse(): number {
    return this.liveObjects;
  }

  /** Mirrors bpf_mem_alloc(): an object of `size` bytes, or 0n (NULL). */
  alloc(cpu: number, size: number, site = ""): bigint {
    this.checkUsable(cpu, false);
    if (size <= 0) return 0n; // 6.18 returns NULL for size 0
    const idx = bpfMemCacheIdx(size + LLIST_NODE_SZ);
    if (idx < 0) return 0n;
    return this.handOut(this.caches[cpu][idx].unitAlloc(), cpu, site);
  }

  /** Mirrors bpf_mem_free(): immediate reuse on `cpu`'s cache. NULL is a no-op. */
  free(cpu: number, ptr: bigint, site = ""): void {
    this.release(cpu, ptr, site, false, false);
  }

  /** Mirrors bpf_mem_free_rcu(): reusable only after an RCU grace period. */
  freeRcu(cpu: number, ptr: bigint, site = ""): void {
    this.release(cpu, ptr, site, false, true);
  }

  /** Mirrors bpf_mem_cache_alloc(): one fixed-size object, or 0n. */
  cacheAlloc(cpu: number, site = ""): bigint {
    this.checkUsable(cpu, true);
    return this.handOut(this.caches[cpu][0].unitAlloc(), cpu, site);
  }

  /**
   * Mirrors bpf_mem_cache_alloc_flags(): with `gfpKernel` (a caller that may
   * sleep) an empty cache falls back to a fresh kmalloc instead of NULL.
   */
  cacheAllocFlags(cpu: number, gfpKernel: boolean, site = ""): bigint {
    this.checkUsable(cpu, true);
    const c = this.caches[cpu][0];
    const unit = c.unitAlloc() ?? (gfpKernel ? c.allocDirect() : undefined);
    return this.handOut(unit, cpu, site);
  }

  /** Mirrors bpf_mem_cache_free(). NULL is a no-op. */
  cacheFree(cpu: number, ptr: bigint, site = ""): void {
    this.release(cpu, ptr, site, true, false);
  }

  /** Mirrors bpf_mem_cache_free_rcu(). */
  cacheFreeRcu(cpu: number, ptr: bigint, site = ""): void {
    this.release(cpu, ptr, site, true, true);
  }

  /**
   * Mirrors bpf_mem_cache_raw_free(): straight back to slab, no reuse. The
   * caller must already have waited for an RCU Tasks Trace grace period.
   */
  rawFree(ptr: bigint, site = ""): void {
    if (this.destroyed) throw new Error(`${this.name}: used after destroy`);
    if (ptr === 0n) return;
    const unit = this.resolve(-1, ptr, site);
    this.noteFree(unit, -1, site);
    unit.owner.stats.inUse--;
    this.kfree(unit);
  }

  /**
   * Installs (or with `undefined` removes) the NMI hook: it runs inside
   * every `active` window of a CPU not already in an NMI.
   */
  onActive(hook: ActiveHook | undefined): void {
    this.hook = hook;
  }

  /** Runs `fn` as an NMI on `cpu` (irq_work cannot run meanwhile). */
  nmi<T>(cpu: number, fn: () => T): T {
    this.nmiDepth[this.checkCpu(cpu)]++;
    try {
      return fn();
    } finally {
      this.nmiDepth[cpu]--;
    }
  }

  /** Whether `cpu` is in an NMI and whether one of its caches holds `active`. */
  cpuContext(cpu: number): CpuAllocContext {
    return {
      inNmi: this.nmiDepth[this.checkCpu(cpu)] > 0,
      active: this.caches[cpu].some((c) => c.active > 0),
    };
  }

  /** irq_work items queued on `cpu` and not yet run. */
  pendingIrqWork(cpu: number): number {
    return this.irqWork[this.checkCpu(cpu)].length;
  }

  /**
   * Runs `cpu`'s queued refill work (bpf_mem_refill), in queue order, and
   * returns how many ran. Refused inside an NMI or an `active` window, where
   * the kernel has interrupts off.
   */
  runIrqWork(cpu: number): number {
    const ctx = this.cpuContext(cpu);
    if (ctx.inNmi || ctx.active) {
      throw new Error(`irq_work cannot run on CPU ${cpu}: interrupts are off`);
    }
    const queue = this.irqWork[cpu];
    let ran = 0;
    while (queue.length > 0) {
      queue.shift()!.refill();
      ran++;
    }
    return ran;
  }

  /** The cache serving a `bpf_mem_alloc(size)` on `cpu`, if any. */
  cacheFor(cpu: number, size: number): BpfMemCache | undefined {
    if (this.fixedSize > 0) return this.caches[this.checkCpu(cpu)][0];
    const idx = bpfMemCacheIdx(size + LLIST_NODE_SZ);
    return idx < 0 ? undefined : this.caches[this.checkCpu(cpu)][idx];
  }

  /** What the allocator knows about a live (or `_rcu`-freed) object pointer. */
  objectInfo(ptr: bigint): ObjectInfo | undefined {
    const region = this.space.regionAt(ptr);
    const unit = region === undefined ? undefined : this.units.get(region.id);
    if (unit === undefined) return undefined;
    return {
      slot: unit.slot,
      unitSize: unit.owner.unitSize,
      cpu: unit.owner.cpu,
      state: unit.state,
      allocSite: unit.allocSite,
    };
  }

  /** Counters of every cache and the totals. */
  stats(): MemAllocStats {
    const caches: MemCacheSnapshot[] = [];
    for (const perCpu of this.caches) {
      for (const c of perCpu) {
        caches.push({
          ...c.stats,
          cpu: c.cpu,
          unitSize: c.unitSize,
          freeCnt: c.freeCnt,
          cached: c.cachedUnits(),
        });
      }
    }
    return {
      caches,
      inUse: this.liveObjects,
      slabUnits: this.slab,
      mappedRegions: this.units.size,
    };
  }

  /**
   * Mirrors bpf_mem_alloc_destroy(): drops pending refill work, drains every
   * list back to slab, and returns a `leak` report for every object still
   * handed out (those are released too, so later use faults). Pending RCU
   * callbacks find empty lists. The allocator is unusable afterwards.
   */
  destroy(): MemAllocError[] {
    if (this.destroyed) throw new Error(`${this.name}: destroyed twice`);
    const leaks: MemAllocError[] = [];
    for (const unit of [...this.units.values()]) {
      if (unit.state !== "allocated") continue;
      const address = regionAddress(unit.regionId) + BigInt(LLIST_NODE_SZ);
      leaks.push(
        new MemAllocError("leak", address, `${this.describe(unit)} leaked`, {
          allocSite: unit.allocSite,
        }),
      );
      unit.owner.stats.inUse--;
      this.liveObjects--;
      this.kfree(unit);
    }
    for (const queue of this.irqWork) queue.length = 0;
    for (const perCpu of this.caches) for (const c of perCpu) c.drain();
    this.destroyed = true;
    return leaks;
  }

  // ---- MemCacheHost: what the caches call back ----

  /** "kmalloc" of a fresh unit for `c`. */
  kmalloc(c: BpfMemCache): MemUnit {
    c.stats.kmallocs++;
    this.slab++;
    return {
      slot: this.nextSlot++,
      owner: c,
      bytes: new Uint8Array(c.unitSize),
      regionId: 0,
      state: "free",
      allocSite: "",
      allocCpu: -1,
      freeSite: "",
      freeCpu: -1,
    };
  }

  /** "kfree": the unit leaves the allocator. */
  kfree(unit: MemUnit): void {
    this.poison(unit);
    unit.state = "released";
    unit.owner.stats.kfrees++;
    this.slab--;
  }

  /** Unmaps the unit's region, remembering its sites for later reports. */
  poison(unit: MemUnit): void {
    if (unit.regionId === 0) return;
    this.space.unmapRegion(regionAddress(unit.regionId));
    this.units.delete(unit.regionId);
    this.freed.set(unit.regionId, {
      allocSite: unit.allocSite,
      freeSite: unit.freeSite,
    });
    unit.regionId = 0;
  }

  /** Queues `c`'s refill on its CPU. */
  queueIrqWork(c: BpfMemCache): void {
    this.irqWork[c.cpu].push(c);
  }

  /** Runs the NMI hook inside an `active` window. */
  insideActive(c: BpfMemCache, op: "alloc" | "free" | "free_rcu"): void {
    const hook = this.hook;
    if (hook === undefined || this.nmiDepth[c.cpu] > 0) return;
    this.nmi(c.cpu, () => hook(c.cpu, c, op));
  }

  // ---- internals ----

  /** Maps a fresh region for a unit unit_alloc() returned (0n for NULL). */
  private handOut(
    unit: MemUnit | undefined,
    cpu: number,
    site: string,
  ): bigint {
    if (unit === undefined) return 0n;
    unit.bytes.fill(0);
    const id = this.space.mapRegionId("alloc", unit.bytes, {
      name:
        `${this.name}[cpu${unit.owner.cpu}:${unit.owner.unitSize}]#${unit.slot}`,
    });
    this.freed.delete(id);
    unit.regionId = id;
    unit.state = "allocated";
    unit.allocSite = site;
    unit.allocCpu = cpu;
    unit.freeSite = "";
    this.units.set(id, unit);
    this.liveObjects++;
    return regionAddress(id) + BigInt(LLIST_NODE_SZ);
  }

  /** The four bpf_mem_[cache_]free[_rcu]() flavours. */
  private release(
    cpu: number,
    ptr: bigint,
    site: string,
    fixed: boolean,
    afterGp: boolean,
  ): void {
    this.checkUsable(cpu, fixed);
    if (ptr === 0n) return;
    const unit = this.resolve(cpu, ptr, site);
    this.noteFree(unit, cpu, site);
    // mirrors bpf_mem_free(): the class comes from the header's cache
    const idx = fixed ? 0 : bpfMemCacheIdx(unit.owner.unitSize);
    if (afterGp) this.caches[cpu][idx].unitFreeRcu(unit);
    else {
      this.poison(unit);
      this.caches[cpu][idx].unitFree(unit);
    }
  }

  /** Records the free site and drops the global in-use count. */
  private noteFree(unit: MemUnit, cpu: number, site: string): void {
    unit.freeSite = site;
    unit.freeCpu = cpu;
    this.liveObjects--;
  }

  /** The handed-out unit `ptr` points to, or a thrown {@link MemAllocError}. */
  private resolve(cpu: number, ptr: bigint, site: string): MemUnit {
    const region = this.space.regionAt(ptr);
    if (region === undefined) {
      throw new MemAllocError("invalid-free", ptr, "not a mapped object", {
        cpu,
        site,
      });
    }
    const unit = this.units.get(region.id);
    if (unit === undefined) {
      // region ids are finite and recycled: the record speaks only while
      // the id is still unmapped (then its last owner was one of ours)
      const past = region.live || !region.name.startsWith(`${this.name}[`)
        ? undefined
        : this.freed.get(region.id);
      throw past !== undefined
        ? new MemAllocError("double-free", ptr, `'${region.name}' freed`, {
          cpu,
          site,
          ...past,
        })
        : new MemAllocError(
          "invalid-free",
          ptr,
          `${region.kind} region '${region.name}' is not from ${this.name}`,
          { cpu, site },
        );
    }
    const sites = { cpu, site, allocSite: unit.allocSite };
    if (unit.state !== "allocated") {
      const detail = `${this.describe(unit)} freed, waiting for an RCU GP`;
      throw new MemAllocError("double-free", ptr, detail, {
        ...sites,
        freeSite: unit.freeSite,
      });
    }
    const offset = this.space.offsetOf(ptr);
    if (offset !== LLIST_NODE_SZ) {
      const detail = `pointer is at offset ${offset} of ${
        this.describe(unit)
      }, the object starts at ${LLIST_NODE_SZ}`;
      throw new MemAllocError("invalid-free", ptr, detail, sites);
    }
    return unit;
  }

  /** `N-byte unit #slot of <name> cpuK`, for reports. */
  private describe(unit: MemUnit): string {
    return `${unit.owner.unitSize}-byte unit #${unit.slot} of ${this.name} cpu${unit.owner.cpu}`;
  }

  /** Refuses a destroyed allocator, a bad CPU, or the wrong API shape. */
  private checkUsable(cpu: number, fixed: boolean): void {
    this.checkCpu(cpu);
    if (this.destroyed) throw new Error(`${this.name}: used after destroy`);
    if (fixed !== this.fixedSize > 0) {
      // the kernel would dereference a NULL ma->cache / ma->caches
      throw new Error(
        fixed
          ? `${this.name}: bpf_mem_cache_* on a kmalloc-style allocator`
          : `${this.name}: bpf_mem_alloc/free on a fixed-size allocator`,
      );
    }
  }

  /** Validates a CPU number. */
  private checkCpu(cpu: number): number {
    if (!Number.isInteger(cpu) || cpu < 0 || cpu >= this.nrCpus) {
      throw new RangeError(`${this.name}: no CPU ${cpu} (have ${this.nrCpus})`);
    }
    return cpu;
  }
}

/**
 * Mirrors bpf_mem_alloc_init(): `size == 0` builds the 11 kmalloc-style
 * caches per CPU, `size > 0` one cache per CPU of `size + 8`-byte units.
 * Every cache is prefilled (4 units up to 256 bytes, else 1). Per-CPU
 * allocators (`percpu`) are not modelled and throw.
 *
 * @example
 * ```ts
 * import { AddressSpace } from "../exec/memory.ts";
 * import { RcuState } from "./rcu.ts";
 * const ma = bpfMemAllocInit(
 *   { space: new AddressSpace(), rcu: new RcuState(2) },
 *   0,
 * );
 * const p = ma.alloc(0, 8, "prog foo insn 3"); // a 16-byte unit, or 0n
 * ma.free(1, p, "prog foo insn 9"); // onto CPU 1's free list
 * ma.runIrqWork(0); // the scheduler decides when refills run
 * ```
 */
export function bpfMemAllocInit(
  env: BpfMemAllocEnv,
  size: number,
  percpu = false,
): BpfMemAlloc {
  if (percpu) {
    throw new Error("bpf_mem_alloc_init: per-CPU allocators are not modelled");
  }
  if (!Number.isInteger(size) || size < 0) {
    throw new RangeError(`bpf_mem_alloc_init: bad size ${size}`);
  }
  return new BpfMemAlloc(env, size);
}
