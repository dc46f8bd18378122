/**
 * What a `struct bpf_mem_alloc` tells about itself: per-cache snapshots of
 * counters and levels, the allocator's totals, and what it knows about one
 * object pointer.
 * @module
 */
import type { BpfMemCache } from "./mem_cache.ts";
import type { MemCacheStats } from "./mem_unit.ts";

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

/** What `BpfMemAlloc.objectInfo()` tells about a pointer. */
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

/** A copy of `c`'s counters with its CPU, unit size and list levels. */
export function memCacheSnapshot(c: BpfMemCache): MemCacheSnapshot {
  return {
    ...c.stats,
    cpu: c.cpu,
    unitSize: c.unitSize,
    freeCnt: c.freeCnt,
    cached: c.cachedUnits(),
  };
}

/** An allocator's statistics: every cache's counters, and the totals. */
export function memAllocStats(
  caches: readonly (readonly BpfMemCache[])[],
  inUse: number,
  slabUnits: number,
  mappedRegions: number,
): MemAllocStats {
  const snapshots: MemCacheSnapshot[] = [];
  for (const perCpu of caches) {
    for (const c of perCpu) snapshots.push(memCacheSnapshot(c));
  }
  return { caches: snapshots, inUse, slabUnits, mappedRegions };
}
