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
 * ## Memory model
 * Each handed-out object is one `alloc` region of the address space, mapped
 * only while it is handed out (see `mem_unit_regions.ts` for the rules and
 * why they are stricter than the kernel's).
 *
 * ## Concurrency model
 * Calls name their CPU. irq_work never runs by itself: `unit_alloc()` /
 * `unit_free()` queue the refill work and the scheduler runs it with
 * {@link BpfMemAlloc.runIrqWork}. An NMI is simulated with
 * {@link BpfMemAlloc.onActive} (see `mem_alloc_irq.ts`).
 * @module
 */
import type { AddressSpace } from "../exec/memory.ts";
import {
  type ActiveHook,
  AllocIrqState,
  type CpuAllocContext,
} from "./mem_alloc_irq.ts";
import type { MemAllocError } from "./mem_alloc_error.ts";
import {
  type MemAllocStats,
  memAllocStats,
  type ObjectInfo,
} from "./mem_alloc_stats.ts";
import { BpfMemCache } from "./mem_cache.ts";
import {
  BPF_MEM_CACHE_SIZES,
  bpfMemCacheIdx,
  LLIST_NODE_SZ,
} from "./mem_cache_sizes.ts";
import { type MemCacheHost, type MemUnit, newMemUnit } from "./mem_unit.ts";
import { UnitRegions } from "./mem_unit_regions.ts";
import type { RcuState } from "./rcu.ts";

export {
  BPF_MEM_CACHE_SIZES,
  bpfMemCacheIdx,
  LLIST_NODE_SZ,
  NUM_CACHES,
} from "./mem_cache_sizes.ts";
export { BpfMemCache } from "./mem_cache.ts";
export type { MemCacheStats } from "./mem_unit.ts";
export { MemAllocError } from "./mem_alloc_error.ts";

/** The machine an allocator lives in. */
export interface BpfMemAllocEnv {
  /** Where objects are mapped. */
  readonly space: AddressSpace;
  /** Grace periods; its CPU count is the allocator's. */
  readonly rcu: RcuState;
  /** Prefix of region names and reports (default `bpf_mem_alloc`). */
  readonly name?: string;
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
  /** Called when refill work is queued (the scheduler must run it). */
  onIrqWork: (() => void) | undefined = undefined;
  private readonly regions: UnitRegions;
  private readonly irq: AllocIrqState;
  private nextSlot = 1;
  private liveObjects = 0;
  private slab = 0;
  private destroyed = false;

  /** Use {@link bpfMemAllocInit}. */
  constructor(env: BpfMemAllocEnv, size: number) {
    this.rcu = env.rcu;
    this.nrCpus = env.rcu.rcu.nrCpus;
    this.name = env.name ?? "bpf_mem_alloc";
    this.regions = new UnitRegions(env.space, this.name);
    this.fixedSize = size;
    this.irq = new AllocIrqState(this.nrCpus);
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
    const unit = this.regions.lookup(-1, ptr, site);
    this.noteFree(unit, -1, site);
    unit.owner.stats.inUse--;
    this.kfree(unit);
  }

  /**
   * Installs (or with `undefined` removes) the NMI hook: it runs inside
   * every `active` window of a CPU not already in an NMI.
   */
  onActive(hook: ActiveHook | undefined): void {
    this.irq.hook = hook;
  }

  /** Runs `fn` as an NMI on `cpu` (irq_work cannot run meanwhile). */
  nmi<T>(cpu: number, fn: () => T): T {
    return this.irq.nmi(this.checkCpu(cpu), fn);
  }

  /** Whether `cpu` is in an NMI and whether one of its caches holds `active`. */
  cpuContext(cpu: number): CpuAllocContext {
    return this.irq.context(this.checkCpu(cpu), this.caches[cpu]);
  }

  /** irq_work items queued on `cpu` and not yet run. */
  pendingIrqWork(cpu: number): number {
    return this.irq.pending(this.checkCpu(cpu));
  }

  /**
   * Runs `cpu`'s queued refill work (bpf_mem_refill), in queue order, and
   * returns how many ran. Refused inside an NMI or an `active` window, where
   * the kernel has interrupts off.
   */
  runIrqWork(cpu: number): number {
    return this.irq.run(this.checkCpu(cpu), this.caches[cpu]);
  }

  /** The cache serving a `bpf_mem_alloc(size)` on `cpu`, if any. */
  cacheFor(cpu: number, size: number): BpfMemCache | undefined {
    if (this.fixedSize > 0) return this.caches[this.checkCpu(cpu)][0];
    const idx = bpfMemCacheIdx(size + LLIST_NODE_SZ);
    return idx < 0 ? undefined : this.caches[this.checkCpu(cpu)][idx];
  }

  /** What the allocator knows about a live (or `_rcu`-freed) object pointer. */
  objectInfo(ptr: bigint): ObjectInfo | undefined {
    return this.regions.objectInfo(ptr);
  }

  /** Counters of every cache and the totals. */
  stats(): MemAllocStats {
    return memAllocStats(
      this.caches,
      this.liveObjects,
      this.slab,
      this.regions.mappedCount,
    );
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
    for (const unit of this.regions.handedOut()) {
      leaks.push(this.regions.leakReport(unit));
      unit.owner.stats.inUse--;
      this.liveObjects--;
      this.kfree(unit);
    }
    this.irq.clear();
    for (const perCpu of this.caches) for (const c of perCpu) c.drain();
    this.destroyed = true;
    return leaks;
  }

  /**
   * A `leak` report (not thrown) for every object still handed out, with
   * its allocation site: what kmemleak would list. Unlike {@link destroy}
   * it changes nothing.
   */
  liveObjectReports(): MemAllocError[] {
    return this.regions.handedOut().map((u) => this.regions.leakReport(u));
  }

  /**
   * The allocation and free sites of the object `ptr` points into, live,
   * waiting for a grace period or already released ("" when not freed);
   * undefined when the address was never one of ours (or its region id has
   * since been reused).
   */
  sitesOf(
    ptr: bigint,
  ): { readonly allocSite: string; readonly freeSite: string } | undefined {
    return this.regions.sitesOf(ptr);
  }

  // ---- MemCacheHost: what the caches call back ----

  /** "kmalloc" of a fresh unit for `c`. */
  kmalloc(c: BpfMemCache): MemUnit {
    c.stats.kmallocs++;
    this.slab++;
    return newMemUnit(this.nextSlot++, c);
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
    this.regions.unmap(unit);
  }

  /** Queues `c`'s refill on its CPU. */
  queueIrqWork(c: BpfMemCache): void {
    this.irq.queue(c);
    this.onIrqWork?.();
  }

  /** Runs the NMI hook inside an `active` window. */
  insideActive(c: BpfMemCache, op: "alloc" | "free" | "free_rcu"): void {
    this.irq.insideActive(c, op);
  }

  // ---- internals ----

  /** Maps a fresh region for a unit unit_alloc() returned (0n for NULL). */
  private handOut(
    unit: MemUnit | undefined,
    cpu: number,
    site: string,
  ): bigint {
    if (unit === undefined) return 0n;
    const ptr = this.regions.map(unit, cpu, site);
    this.liveObjects++;
    return ptr;
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
    const unit = this.regions.lookup(cpu, ptr, site);
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
