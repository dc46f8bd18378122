/**
 * A minimal, deterministic model of RCU grace periods, enough for the BPF
 * memory allocator (`kernel/bpf/memalloc.c`) and the maps built on it.
 *
 * ## Model
 * A grace period (GP) starts when a callback is queued and none is running.
 * It completes once every CPU has reported a *quiescent state* (QS) after
 * the start; a CPU inside a read-side critical section (`readLock` …
 * `readUnlock`) cannot report one, which is how a reader holds memory alive.
 * A callback queued while a GP is already running waits for the *next* GP,
 * exactly the guarantee `call_rcu()` gives: it runs only after a full GP that
 * began after it was queued. Nothing happens by itself — the scheduler (or a
 * test) drives time by calling {@link RcuFlavor.quiescentState} or
 * {@link RcuFlavor.advance}; there is no clock.
 *
 * Two flavours exist as in the kernel: normal RCU (`call_rcu`, non-sleepable
 * programs) and RCU Tasks Trace (`call_rcu_tasks_trace`, sleepable programs);
 * {@link RcuState} holds both.
 * @module
 */

/** A CPU or read-side section blocked a grace period that was asked to finish. */
export class RcuStallError extends Error {
  /** The flavour that stalled (`rcu` or `rcu_tasks_trace`). */
  readonly flavor: string;
  /** CPUs that never reported a quiescent state. */
  readonly blockingCpus: readonly number[];

  /** Builds the error; the message reads like the kernel's stall warning. */
  constructor(flavor: string, blockingCpus: readonly number[]) {
    super(
      `${flavor}: INFO: ${flavor} detected stalls on CPUs/tasks: { ${
        blockingCpus.join(" ")
      } } (read-side critical section still held)`,
    );
    this.name = "RcuStallError";
    this.flavor = flavor;
    this.blockingCpus = blockingCpus;
  }
}

/**
 * `rcu_trace_implies_rcu_gp()`: in current kernels an RCU Tasks Trace grace
 * period also implies a normal RCU one, so the allocator frees directly
 * from the Tasks Trace callback instead of chaining a `call_rcu()`.
 */
export const RCU_TRACE_IMPLIES_RCU_GP = true;

interface QueuedCallback {
  /** The GP number (see {@link RcuFlavor.gpStarted}) that must complete first. */
  readonly waitFor: number;
  readonly fn: () => void;
}

/** One RCU flavour: grace-period sequence, per-CPU readers, pending callbacks. */
export class RcuFlavor {
  /** `rcu` or `rcu_tasks_trace`, used in reports. */
  readonly name: string;
  /** Number of CPUs that must pass a quiescent state. */
  readonly nrCpus: number;
  /** Grace periods started so far (the current one's number while running). */
  gpStarted = 0;
  /** Grace periods completed so far. */
  gpCompleted = 0;
  /** Read-side nesting depth per CPU. */
  private readonly readerDepth: Int32Array;
  /** 1 for every CPU that still owes the running GP a quiescent state. */
  private readonly owesQs: Uint8Array;
  private owingCount = 0;
  private callbacks: QueuedCallback[] = [];

  /** A flavour with no GP running and no readers. */
  constructor(name: string, nrCpus: number) {
    if (!Number.isInteger(nrCpus) || nrCpus < 1) {
      throw new RangeError(`RCU needs at least one CPU, got ${nrCpus}`);
    }
    this.name = name;
    this.nrCpus = nrCpus;
    this.readerDepth = new Int32Array(nrCpus);
    this.owesQs = new Uint8Array(nrCpus);
  }

  /** True while a grace period has started and not completed. */
  get gpInProgress(): boolean {
    return this.gpStarted !== this.gpCompleted;
  }

  /** Callbacks queued and not yet invoked. */
  get pendingCallbacks(): number {
    return this.callbacks.length;
  }

  /** `rcu_read_lock()` on `cpu`: the CPU cannot report a QS until unlocked. */
  readLock(cpu: number): void {
    this.readerDepth[this.checkCpu(cpu)]++;
  }

  /** `rcu_read_unlock()` on `cpu`. Unbalanced unlocks throw. */
  readUnlock(cpu: number): void {
    if (this.readerDepth[this.checkCpu(cpu)] === 0) {
      throw new Error(`${this.name}: unbalanced read unlock on CPU ${cpu}`);
    }
    this.readerDepth[cpu]--;
  }

  /** True when `cpu` is inside a read-side critical section. */
  inReader(cpu: number): boolean {
    return this.readerDepth[this.checkCpu(cpu)] > 0;
  }

  /**
   * `call_rcu()`: `fn` runs after a full grace period that starts after this
   * call. Starts a GP if none is running.
   */
  callRcu(fn: () => void): void {
    if (this.gpInProgress) {
      // mirrors rcu_segcblist: a callback queued mid-GP waits for the next one
      this.callbacks.push({ waitFor: this.gpStarted + 1, fn });
      return;
    }
    this.startGp();
    this.callbacks.push({ waitFor: this.gpStarted, fn });
  }

  /**
   * `cpu` passes a quiescent state (a context switch, the end of a program,
   * idle). Ignored inside a read-side section. May complete the GP and run
   * callbacks; returns true when it did.
   */
  quiescentState(cpu: number): boolean {
    this.checkCpu(cpu);
    if (this.readerDepth[cpu] > 0 || this.owesQs[cpu] === 0) return false;
    this.owesQs[cpu] = 0;
    if (--this.owingCount > 0) return false;
    this.completeGp();
    return true;
  }

  /**
   * Every CPU outside a read-side section reports a quiescent state, in CPU
   * order. Returns true when a grace period completed.
   */
  advance(): boolean {
    let completed = false;
    for (let cpu = 0; cpu < this.nrCpus; cpu++) {
      if (this.quiescentState(cpu)) completed = true;
    }
    return completed;
  }

  /**
   * `rcu_barrier()`: drives grace periods until no callback is pending.
   * Throws {@link RcuStallError} when a reader blocks progress.
   */
  barrier(): void {
    while (this.callbacks.length > 0) {
      if (!this.advance()) throw new RcuStallError(this.name, this.blocking());
    }
  }

  /** `synchronize_rcu()`: waits (by driving GPs) for one full grace period. */
  synchronize(): void {
    let done = false;
    this.callRcu(() => {
      done = true;
    });
    while (!done) {
      if (!this.advance()) throw new RcuStallError(this.name, this.blocking());
    }
  }

  /** CPUs that owe the running GP a quiescent state. */
  blocking(): number[] {
    const cpus: number[] = [];
    for (let cpu = 0; cpu < this.nrCpus; cpu++) {
      if (this.owesQs[cpu] !== 0) cpus.push(cpu);
    }
    return cpus;
  }

  /** A new GP: every CPU owes a quiescent state. */
  private startGp(): void {
    this.gpStarted++;
    this.owesQs.fill(1);
    this.owingCount = this.nrCpus;
  }

  /** Ends the GP and runs the callbacks it was waited for. */
  private completeGp(): void {
    this.gpCompleted = this.gpStarted;
    const ready = this.callbacks.filter((cb) => cb.waitFor <= this.gpCompleted);
    this.callbacks = this.callbacks.filter((cb) =>
      cb.waitFor > this.gpCompleted
    );
    for (const cb of ready) cb.fn();
    // callbacks queued before this GP ended still need one; callRcu() from a
    // callback may already have started it
    if (this.callbacks.length > 0 && !this.gpInProgress) this.startGp();
  }

  /** Validates a CPU number. */
  private checkCpu(cpu: number): number {
    if (!Number.isInteger(cpu) || cpu < 0 || cpu >= this.nrCpus) {
      throw new RangeError(`${this.name}: no CPU ${cpu} (have ${this.nrCpus})`);
    }
    return cpu;
  }
}

/** Both RCU flavours of one simulated machine. */
export class RcuState {
  /** Normal RCU: `call_rcu()`, `rcu_read_lock()`. */
  readonly rcu: RcuFlavor;
  /** RCU Tasks Trace: `call_rcu_tasks_trace()`, `rcu_read_lock_trace()`. */
  readonly tasksTrace: RcuFlavor;

  /** Both flavours for `nrCpus` CPUs. */
  constructor(nrCpus: number) {
    this.rcu = new RcuFlavor("rcu", nrCpus);
    this.tasksTrace = new RcuFlavor("rcu_tasks_trace", nrCpus);
  }

  /** `cpu` passes a quiescent state for both flavours. */
  quiescentState(cpu: number): void {
    this.rcu.quiescentState(cpu);
    this.tasksTrace.quiescentState(cpu);
  }

  /** Every CPU reports a QS in both flavours; true when any GP completed. */
  advance(): boolean {
    const a = this.rcu.advance();
    const b = this.tasksTrace.advance();
    return a || b;
  }

  /** `rcu_barrier()` on both flavours until neither has callbacks left. */
  barrier(): void {
    while (this.rcu.pendingCallbacks + this.tasksTrace.pendingCallbacks > 0) {
      this.rcu.barrier();
      this.tasksTrace.barrier();
    }
  }
}
