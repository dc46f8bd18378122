/**
 * The units of the BPF memory allocator (one slab object each, see
 * {@link MemUnit}), the counters of a `struct bpf_mem_cache`, and what a
 * cache needs from the allocator that owns it ({@link MemCacheHost}).
 * @module
 */
import type { RcuState } from "./rcu.ts";
import type { BpfMemCache } from "./mem_cache.ts";

/** Where a unit is in its life. */
export type UnitState =
  | "free" // on free_llist / free_llist_extra
  | "allocated" // handed out, region mapped
  | "rcu_wait" // freed with _rcu, region still readable until the RCU GP
  | "ttrace_wait" // on free_by_rcu_ttrace / waiting_for_gp_ttrace
  | "released"; // kfree'd

/** One slab object of a {@link BpfMemCache}. */
export interface MemUnit {
  /** Identity of the memory for this allocator's life (reuse shows as the same slot). */
  readonly slot: number;
  /** The cache that last handed it out: the pointer kept in the llist_node header. */
  owner: BpfMemCache;
  /** The unit's memory, header included; each mapping of the unit shares it. */
  readonly bytes: Uint8Array;
  /** Region id while mapped, 0 otherwise. */
  regionId: number;
  /** Life state. */
  state: UnitState;
  /** Caller-given site of the last allocation (e.g. `prog foo insn 12`). */
  allocSite: string;
  /** CPU of the last allocation. */
  allocCpu: number;
  /** Caller-given site of the last free. */
  freeSite: string;
  /** CPU of the last free. */
  freeCpu: number;
}

/** A fresh ("kmalloc"ed) unit of `owner`'s size, not mapped, with no history. */
export function newMemUnit(slot: number, owner: BpfMemCache): MemUnit {
  return {
    slot,
    owner,
    bytes: new Uint8Array(owner.unitSize),
    regionId: 0,
    state: "free",
    allocSite: "",
    allocCpu: -1,
    freeSite: "",
    freeCpu: -1,
  };
}

/** Counters of one cache. */
export interface MemCacheStats {
  /** Successful unit_alloc() calls. */
  allocs: number;
  /** unit_alloc() calls that returned NULL. */
  nullReturns: number;
  /** … of which because `active` was busy (re-entrant, e.g. from an NMI). */
  nullActive: number;
  /** unit_free() calls (immediate reuse). */
  frees: number;
  /** unit_free_rcu() calls (reuse after an RCU GP). */
  freesRcu: number;
  /** alloc_bulk() runs from irq_work. */
  refills: number;
  /** free_bulk() runs from irq_work. */
  trims: number;
  /** Fresh units made ("kmalloc"). */
  kmallocs: number;
  /** Units given back to slab ("kfree"). */
  kfrees: number;
  /** Units this cache handed out that are still allocated. */
  inUse: number;
}

/** What a cache needs from its allocator. */
export interface MemCacheHost {
  /** RCU flavours that delay reuse and release. */
  readonly rcu: RcuState;
  /** A fresh unit for `c` ("kmalloc"). */
  kmalloc(c: BpfMemCache): MemUnit;
  /** Gives `unit` back to slab ("kfree"), unmapping it if mapped. */
  kfree(unit: MemUnit): void;
  /** Unmaps the region of a unit whose readers are gone (after a GP). */
  poison(unit: MemUnit): void;
  /** `irq_work_queue()` of `c`'s refill work on `c.cpu`. */
  queueIrqWork(c: BpfMemCache): void;
  /** Runs while `active` is held by a unit_alloc/unit_free (NMI window). */
  insideActive(c: BpfMemCache, op: "alloc" | "free" | "free_rcu"): void;
}

/** Fresh, all-zero counters for a new cache. */
export function newMemCacheStats(): MemCacheStats {
  return {
    allocs: 0,
    nullReturns: 0,
    nullActive: 0,
    frees: 0,
    freesRcu: 0,
    refills: 0,
    trims: 0,
    kmallocs: 0,
    kfrees: 0,
    inUse: 0,
  };
}
