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
 *
 * Size classes and watermarks are in `mem_cache_sizes.ts`; units, counters
 * and the host interface in `mem_unit.ts` (both re-exported here).
 * @module
 */
import { RCU_TRACE_IMPLIES_RCU_GP } from "./rcu.ts";
import { refillWatermarks } from "./mem_cache_sizes.ts";
import {
  type MemCacheHost,
  type MemCacheStats,
  type MemUnit,
  newMemCacheStats,
} from "./mem_unit.ts";

export {
  BPF_MEM_ALLOC_MAX_UNIT,
  BPF_MEM_CACHE_SIZES,
  bpfMemCacheIdx,
  LLIST_NODE_SZ,
  NUM_CACHES,
  refillWatermarks,
  type Watermarks,
} from "./mem_cache_sizes.ts";
export type {
  MemCacheHost,
  MemCacheStats,
  MemUnit,
  UnitState,
} from "./mem_unit.ts";

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
  readonly stats: MemCacheStats = newMemCacheStats();
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
