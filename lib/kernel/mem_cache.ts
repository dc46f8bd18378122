/**
 * One `struct bpf_mem_cache`: the per-CPU, per-size-class free list of the
 * BPF memory allocator and the irq_work / RCU machinery that refills and
 * trims it, as in `kernel/bpf/memalloc.c` (Linux 6.18).
 *
 * A *unit* ({@link MemUnit}) is one slab object of `unit_size` bytes, the
 * 8-byte `llist_node` header included. It exists from "kmalloc" (a fresh
 * unit made by `alloc_bulk()`) to "kfree" (`free_one()`), and moves between
 * the lists below exactly as the kernel moves its objects. Memory that a BPF
 * program can touch is a region of the {@link AddressSpace}, mapped only
 * while the unit is handed out (see `mem_alloc.ts` for why).
 *
 * Lists, all LIFO like `llist`:
 * - `free_llist` (+ `free_cnt`): ready for `unit_alloc()`;
 * - `free_llist_extra`: `unit_free()` while `active` was busy (an NMI);
 * - `free_by_rcu` → `waiting_for_gp`: `unit_free_rcu()`, waiting for a
 *   normal RCU GP (the object may still be read by RCU readers);
 *   `free_llist_extra_rcu` is its NMI overflow;
 * - `free_by_rcu_ttrace` → `waiting_for_gp_ttrace`: surplus objects waiting
 *   for an RCU Tasks Trace GP before kfree; `alloc_bulk()` may take them back.
 * @module
 */
import { RCU_TRACE_IMPLIES_RCU_GP, type RcuState } from "./rcu.ts";

/** `sizeof(struct llist_node)`: the header in front of every object. */
export const LLIST_NODE_SZ = 8;

/** Number of size classes of a kmalloc-style allocator (`NUM_CACHES`). */
export const NUM_CACHES = 11;

/** `sizes[]` of `bpf_mem_alloc_init()`: unit size of each cache index. */
export const BPF_MEM_CACHE_SIZES: readonly number[] = [
  96,
  192,
  16,
  32,
  64,
  128,
  256,
  512,
  1024,
  2048,
  4096,
];

/** Largest unit a kmalloc-style allocator serves. */
export const BPF_MEM_ALLOC_MAX_UNIT = 4096;

// `size_index[]`: for (size - 1) / 8 in 0..23, the 1-based cache index
// (no 8-byte bucket: sizes 1..16 share the 16-byte cache).
const SIZE_INDEX: readonly number[] = [
  3,
  3,
  4,
  4,
  5,
  5,
  5,
  5,
  1,
  1,
  1,
  1,
  6,
  6,
  6,
  6,
  2,
  2,
  2,
  2,
  2,
  2,
  2,
  2,
];

/**
 * Cache index for a unit of `size` bytes (header included), or -1 when no
 * cache fits (0 or more than 4096). Mirrors bpf_mem_cache_idx().
 */
export function bpfMemCacheIdx(size: number): number {
  if (size <= 0 || size > BPF_MEM_ALLOC_MAX_UNIT) return -1;
  if (size <= 192) return SIZE_INDEX[(size - 1) >> 3] - 1;
  return fls(size - 1) - 2;
}

/** Find last set bit, 1-based (`fls(0) == 0`), as the kernel's fls(). */
function fls(x: number): number {
  return x === 0 ? 0 : 32 - Math.clz32(x);
}

/** The refill parameters of one cache. */
export interface Watermarks {
  /** Below this `free_cnt` after an alloc, irq_work refills. */
  readonly low: number;
  /** Above this `free_cnt` after a free, irq_work trims. */
  readonly high: number;
  /** Objects one refill adds. */
  readonly batch: number;
}

/**
 * Watermarks for a cache of `unitSize`-byte units. Mirrors init_refill_work():
 * 32/96 up to 256 bytes, else scaled by 256 / unit_size with floors 1 and 3;
 * batch is three quarters of the gap (at least 1). C integer division.
 */
export function refillWatermarks(
  unitSize: number,
  percpu = false,
): Watermarks {
  let low: number;
  let high: number;
  if (percpu) {
    low = 1;
    high = 3;
  } else if (unitSize <= 256) {
    low = 32;
    high = 96;
  } else {
    low = Math.max(Math.trunc(32 * 256 / unitSize), 1);
    high = Math.max(Math.trunc(96 * 256 / unitSize), 3);
  }
  const batch = Math.max(Math.trunc((high - low) / 4) * 3, 1);
  return { low, high, batch };
}

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

function newStats(): MemCacheStats {
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

/** `struct bpf_mem_cache`: one CPU's cache of one unit size. */
export class BpfMemCache {
  /** The CPU owning the cache. */
  readonly cpu: number;
  /** Bytes per unit, header included. */
  readonly unitSize: number;
  /** Refill thresholds. */
  readonly lowWatermark: number;
  /** Trim threshold. */
  readonly highWatermark: number;
  /** Objects one refill adds. */
  readonly batch: number;
  /** Objects ready for allocation (top = last element). */
  readonly freeLlist: MemUnit[] = [];
  /** Count of {@link freeLlist}, kept separately as the kernel does. */
  freeCnt = 0;
  /** Frees that found `active` busy. */
  readonly freeLlistExtra: MemUnit[] = [];
  /** `_rcu` frees not yet handed to call_rcu(). */
  freeByRcu: MemUnit[] = [];
  /** `_rcu` frees waiting for the RCU GP in flight. */
  waitingForGp: MemUnit[] = [];
  /** `_rcu` frees that found `active` busy. */
  freeLlistExtraRcu: MemUnit[] = [];
  /** True while a call_rcu() of this cache is pending. */
  callRcuInProgress = false;
  /** Surplus objects waiting to enter a Tasks Trace GP. */
  freeByRcuTtrace: MemUnit[] = [];
  /** Surplus objects in the Tasks Trace GP in flight. */
  waitingForGpTtrace: MemUnit[] = [];
  /** True while a call_rcu_tasks_trace() of this cache is pending. */
  callRcuTtraceInProgress = false;
  /** The re-entrancy counter (`local_t active`). */
  active = 0;
  /** Set by destroy: pending callbacks free instead of recycling. */
  draining = false;
  /** Hint: the cache of the last object freed here (free_bulk's target). */
  tgt: BpfMemCache = this;
  /** True while the refill irq_work is queued and has not run. */
  refillPending = false;
  /** Counters. */
  readonly stats: MemCacheStats = newStats();
  private readonly host: MemCacheHost;

  /** A cache with its watermarks set; call {@link prefill} next. */
  constructor(host: MemCacheHost, cpu: number, unitSize: number) {
    this.host = host;
    this.cpu = cpu;
    this.unitSize = unitSize;
    const w = refillWatermarks(unitSize);
    this.lowWatermark = w.low;
    this.highWatermark = w.high;
    this.batch = w.batch;
  }

  /** Mirrors prefill_mem_cache(): 4 units up to 256 bytes, else 1. */
  prefill(): void {
    this.allocBulk(this.unitSize <= 256 ? 4 : 1);
  }

  /**
   * Mirrors unit_alloc(): a unit from free_llist, or undefined (NULL). The
   * NMI window opens before the list is touched; `active` is restored even
   * when the NMI throws (a fault in the NMI's program).
   */
  unitAlloc(): MemUnit | undefined {
    let unit: MemUnit | undefined;
    let cnt = 0;
    try {
      if (++this.active === 1) {
        this.host.insideActive(this, "alloc");
        unit = this.freeLlist.pop();
        if (unit !== undefined) {
          cnt = --this.freeCnt;
          unit.owner = this; // *(struct bpf_mem_cache **)llnode = c
        }
      } else {
        this.stats.nullActive++;
      }
    } finally {
      this.active--;
    }
    if (unit === undefined) this.stats.nullReturns++;
    else {
      this.stats.allocs++;
      this.stats.inUse++;
    }
    if (cnt < this.lowWatermark) this.irqWorkRaise();
    return unit;
  }

  /** The GFP_KERNEL fallback of bpf_mem_cache_alloc_flags(): a fresh unit. */
  allocDirect(): MemUnit {
    const unit = this.host.kmalloc(this);
    this.stats.allocs++;
    this.stats.inUse++;
    return unit;
  }

  /**
   * Mirrors unit_free(): back on free_llist for immediate reuse. The NMI
   * window opens once the unit is listed, so a throwing NMI loses nothing.
   */
  unitFree(unit: MemUnit): void {
    this.tgt = unit.owner;
    unit.owner.stats.inUse--;
    this.stats.frees++;
    unit.state = "free";
    let cnt = 0;
    try {
      if (++this.active === 1) {
        this.freeLlist.push(unit);
        cnt = ++this.freeCnt;
        this.host.insideActive(this, "free");
      } else {
        this.freeLlistExtra.push(unit);
      }
    } finally {
      this.active--;
    }
    if (cnt > this.highWatermark) this.irqWorkRaise();
  }

  /** Mirrors unit_free_rcu(): reusable only after a normal RCU GP. */
  unitFreeRcu(unit: MemUnit): void {
    this.tgt = unit.owner;
    unit.owner.stats.inUse--;
    this.stats.freesRcu++;
    unit.state = "rcu_wait";
    try {
      if (++this.active === 1) {
        this.freeByRcu.push(unit);
        this.host.insideActive(this, "free_rcu");
      } else {
        this.freeLlistExtraRcu.push(unit);
      }
    } finally {
      this.active--;
    }
    if (!this.callRcuInProgress) this.irqWorkRaise();
  }

  /** The refill irq_work body. Mirrors bpf_mem_refill(). */
  refill(): void {
    this.refillPending = false;
    const cnt = this.freeCnt; // racy read in the kernel, exact here
    if (cnt < this.lowWatermark) {
      this.stats.refills++;
      this.allocBulk(this.batch);
    } else if (cnt > this.highWatermark) {
      this.stats.trims++;
      this.freeBulk();
    }
    this.checkFreeByRcu();
  }

  /** Mirrors drain_mem_cache(): every unit on every list goes back to slab. */
  drain(): void {
    this.draining = true;
    this.refillPending = false;
    for (
      const list of [
        this.freeByRcuTtrace,
        this.waitingForGpTtrace,
        this.freeLlist,
        this.freeLlistExtra,
        this.freeByRcu,
        this.waitingForGp,
        this.freeLlistExtraRcu,
      ]
    ) {
      for (const unit of list) this.host.kfree(unit);
      list.length = 0;
    }
    this.freeCnt = 0;
  }

  /** Units this cache holds on any list (not handed out, not released). */
  cachedUnits(): number {
    return this.freeLlist.length + this.freeLlistExtra.length +
      this.freeByRcu.length + this.waitingForGp.length +
      this.freeLlistExtraRcu.length + this.freeByRcuTtrace.length +
      this.waitingForGpTtrace.length;
  }

  /** Mirrors alloc_bulk(): reuse Tasks-Trace-bound objects first, then kmalloc. */
  private allocBulk(cnt: number): void {
    for (let i = 0; i < cnt; i++) {
      const unit = this.freeByRcuTtrace.pop() ??
        this.waitingForGpTtrace.pop() ??
        this.host.kmalloc(this);
      unit.state = "free";
      this.addObjToFreeList(unit);
    }
  }

  /** Mirrors add_obj_to_free_list() with inc_active()'s WARN. */
  private addObjToFreeList(unit: MemUnit): void {
    if (++this.active !== 1) {
      // irq_work never preempts the allocator (irqs are off there)
      throw new Error(`bpf_mem_cache cpu${this.cpu}: refill while active`);
    }
    this.freeLlist.push(unit);
    this.freeCnt++;
    this.active--;
  }

  /** Mirrors free_bulk(): trim to the watermarks' midpoint, to `tgt`. */
  private freeBulk(): void {
    const tgt = this.tgt;
    const mid = Math.trunc((this.highWatermark + this.lowWatermark) / 2);
    let cnt: number;
    do {
      const unit = this.freeLlist.pop();
      cnt = unit === undefined ? 0 : --this.freeCnt;
      if (unit !== undefined) tgt.enqueToFree(unit);
    } while (cnt > mid);
    for (const unit of this.freeLlistExtra.splice(0).reverse()) {
      tgt.enqueToFree(unit);
    }
    tgt.doCallRcuTtrace();
  }

  /** Mirrors enque_to_free(): onto free_by_rcu_ttrace. */
  private enqueToFree(unit: MemUnit): void {
    unit.state = "ttrace_wait";
    this.freeByRcuTtrace.push(unit);
  }

  /** Mirrors do_call_rcu_ttrace(). */
  private doCallRcuTtrace(): void {
    if (this.callRcuTtraceInProgress) {
      if (this.draining) {
        for (const unit of this.freeByRcuTtrace.splice(0)) {
          this.host.kfree(unit);
        }
      }
      return;
    }
    this.callRcuTtraceInProgress = true;
    this.waitingForGpTtrace = this.freeByRcuTtrace.reverse();
    this.freeByRcuTtrace = [];
    if (this.draining) {
      this.freeRcu();
      return;
    }
    this.host.rcu.tasksTrace.callRcu(() => this.freeRcuTasksTrace());
  }

  /** Mirrors __free_rcu_tasks_trace(). */
  private freeRcuTasksTrace(): void {
    if (RCU_TRACE_IMPLIES_RCU_GP) this.freeRcu();
    else this.host.rcu.rcu.callRcu(() => this.freeRcu());
  }

  /** Mirrors __free_rcu(): the objects still waiting go back to slab. */
  private freeRcu(): void {
    for (const unit of this.waitingForGpTtrace.splice(0)) this.host.kfree(unit);
    this.callRcuTtraceInProgress = false;
  }

  /** Mirrors check_free_by_rcu(): start a normal RCU GP for `_rcu` frees. */
  private checkFreeByRcu(): void {
    if (this.freeLlistExtraRcu.length > 0) {
      this.freeByRcu.push(...this.freeLlistExtraRcu.splice(0).reverse());
    }
    if (this.freeByRcu.length === 0 || this.callRcuInProgress) return;
    this.callRcuInProgress = true;
    this.waitingForGp = this.freeByRcu;
    this.freeByRcu = [];
    if (this.draining) {
      for (const unit of this.waitingForGp.splice(0)) this.host.kfree(unit);
      this.callRcuInProgress = false;
      return;
    }
    this.host.rcu.rcu.callRcu(() => this.freeByRcuCallback());
  }

  /** Mirrors __free_by_rcu(): past the RCU GP, objects head for reuse. */
  private freeByRcuCallback(): void {
    const tgt = this.tgt;
    const units = this.waitingForGp.splice(0);
    if (units.length > 0) {
      for (const unit of units) {
        this.host.poison(unit); // readers are gone: now a stale access faults
        tgt.enqueToFree(unit);
      }
      tgt.doCallRcuTtrace();
    }
    this.callRcuInProgress = false;
  }

  /** Mirrors irq_work_raise(): queue the refill unless already pending. */
  private irqWorkRaise(): void {
    if (this.refillPending || this.draining) return;
    this.refillPending = true;
    this.host.queueIrqWork(this);
  }
}
