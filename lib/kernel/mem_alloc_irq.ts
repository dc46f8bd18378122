/**
 * The interrupt context of an allocator's CPUs: per-CPU irq_work queues of
 * refill work and the nesting of simulated NMIs.
 *
 * irq_work never runs by itself: `unit_alloc()` / `unit_free()` queue the
 * refill work and the scheduler runs it (`BpfMemAlloc.runIrqWork()`). An NMI
 * is simulated with an {@link ActiveHook}: it runs, as an NMI on that CPU,
 * inside the window where a cache's `active` is held, so its allocations
 * return NULL and its frees go to `free_llist_extra`, as in the kernel.
 * @module
 */
import type { BpfMemCache } from "./mem_cache.ts";

/** Runs inside an `active` window, as an NMI on `cpu`. */
export type ActiveHook = (
  cpu: number,
  cache: BpfMemCache,
  op: "alloc" | "free" | "free_rcu",
) => void;

/** The per-CPU context that decides what an allocator call may do. */
export interface CpuAllocContext {
  /** Inside a (simulated) NMI: irq_work must wait until it returns. */
  readonly inNmi: boolean;
  /** Some cache of the CPU is inside its `active` window (irqs are off). */
  readonly active: boolean;
}

/** Per-CPU irq_work queues and NMI depth of one allocator; CPUs are checked by the caller. */
export class AllocIrqState {
  /** The NMI hook, if installed. */
  hook: ActiveHook | undefined = undefined;
  private readonly queues: BpfMemCache[][];
  private readonly nmiDepth: Int32Array;

  /** Empty queues for `nrCpus` CPUs, none in an NMI. */
  constructor(nrCpus: number) {
    this.queues = Array.from({ length: nrCpus }, () => []);
    this.nmiDepth = new Int32Array(nrCpus);
  }

  /** Runs `fn` as an NMI on `cpu`. */
  nmi<T>(cpu: number, fn: () => T): T {
    this.nmiDepth[cpu]++;
    try {
      return fn();
    } finally {
      this.nmiDepth[cpu]--;
    }
  }

  /** Whether `cpu` is in an NMI and whether one of `caches` (its own) holds `active`. */
  context(cpu: number, caches: readonly BpfMemCache[]): CpuAllocContext {
    return {
      inNmi: this.nmiDepth[cpu] > 0,
      active: caches.some((c) => c.active > 0),
    };
  }

  /** irq_work items queued on `cpu` and not yet run. */
  pending(cpu: number): number {
    return this.queues[cpu].length;
  }

  /** `irq_work_queue()`: queues `c`'s refill on its CPU. */
  queue(c: BpfMemCache): void {
    this.queues[c.cpu].push(c);
  }

  /**
   * Runs `cpu`'s queued refill work in queue order and returns how many
   * ran; refused inside an NMI or an `active` window of `caches` (its own),
   * where the kernel has interrupts off.
   */
  run(cpu: number, caches: readonly BpfMemCache[]): number {
    const ctx = this.context(cpu, caches);
    if (ctx.inNmi || ctx.active) {
      throw new Error(`irq_work cannot run on CPU ${cpu}: interrupts are off`);
    }
    const queue = this.queues[cpu];
    let ran = 0;
    while (queue.length > 0) {
      queue.shift()!.refill();
      ran++;
    }
    return ran;
  }

  /** Drops all queued work (the allocator is being destroyed). */
  clear(): void {
    for (const queue of this.queues) queue.length = 0;
  }

  /** Runs the NMI hook inside `c`'s `active` window, unless already in an NMI. */
  insideActive(c: BpfMemCache, op: "alloc" | "free" | "free_rcu"): void {
    const hook = this.hook;
    if (hook === undefined || this.nmiDepth[c.cpu] > 0) return;
    this.nmi(c.cpu, () => hook(c.cpu, c, op));
  }
}
