/**
 * The seeded scheduler of the simulated kernel: it interleaves the CPUs at
 * instruction granularity — at each pick a runnable CPU and a quantum of
 * 1 … maxQuantum instructions, drawn from the kernel's generator (or the
 * explicit schedule) — keeps the simulated clock (one ns per step), lets
 * spinning CPUs burn steps, delivers NMIs and runs queued irq_work where
 * interrupts are on. The same seed gives the same interleaving.
 *
 * Most picks are not made here: the engine draws them itself and runs one
 * CPU's state after another in a single call (`exec/picks.ts`, the slot
 * tables in `pick_slots.ts`), handing back each pick that needs more than
 * running or spinning (`slowPick`). `pickRuns: false` makes every pick
 * here, one engine call each — the same interleaving, the reference the
 * runs are tested against.
 * @module
 */
import type { PickHost } from "../exec/picks.ts";
import type { ExecState, ExecStatus } from "../exec/state.ts";
import type { Cpu, RunningContext } from "./cpu.ts";
import {
  type ContextHost,
  dueNmi,
  finishContext,
  heldElsewhere,
  pushContext,
} from "./contexts.ts";
import type { RunSummary } from "./kernel_types.ts";
import { PickSlots } from "./pick_slots.ts";
import type { Prng } from "./prng.ts";

/** What the scheduler works with. */
export interface SchedulerOptions {
  /** The CPUs. */
  readonly cpus: readonly Cpu[];
  /** The generator behind every choice. */
  readonly prng: Prng;
  /** Longest quantum. */
  readonly maxQuantum: number;
  /** Explicit schedule: CPU ids in turn, one instruction each. */
  readonly schedule: readonly number[];
  /** The engine's stepper. */
  readonly step: (state: ExecState, budget: number) => ExecStatus;
  /** The engine's run of picks (see `exec/picks.ts`). */
  readonly runPicks: (host: PickHost) => void;
  /**
   * False: enter the engine once per pick, never for a run of picks — the
   * reference the runs are tested against (the same interleaving, slower).
   */
  readonly pickRuns?: boolean;
  /** Starting and ending contexts (and the locks, reports, allocator). */
  readonly host: ContextHost;
}

/** {@link Scheduler.runSlice}: the picks are done, the run goes on. */
const SLICE_DONE = 0;
/** {@link Scheduler.runSlice}: every CPU is idle. */
const SLICE_IDLE = 1;
/** {@link Scheduler.runSlice}: every CPU left spins on a lock nobody releases. */
const SLICE_HUNG = 2;
/** {@link Scheduler.runSlice}: the step limit was reached. */
const SLICE_LIMIT = 3;
/** Picks per {@link Scheduler.runSlice} call. */
const SLICE_PICKS = 1024;

/**
 * Interleaves the CPUs of one kernel; see the module documentation. It is
 * the {@link PickHost} of the engine's runs of picks: their inputs and
 * outcome are its public fields.
 */
export class Scheduler extends PickSlots implements PickHost {
  /** Whether the engine's run ended because every CPU spins. */
  private lastSpun = false;
  /** The step at which the current run ends ({@link limit} may stop earlier, at a timer). */
  private runLimit = 0;
  private readonly cpus: readonly Cpu[];
  private readonly schedule: readonly number[];
  private scheduleAt = 0;
  private readonly step: (state: ExecState, budget: number) => ExecStatus;
  private readonly runPicks: (host: PickHost) => void;
  private readonly pickRuns: boolean;
  private readonly host: ContextHost;
  /**
   * Set by whatever may change which CPUs are runnable (a submission, a
   * context ending, a deadlock: see {@link invalidate}): the next pick
   * lists them again. The list is rebuilt at every run's start too,
   * whatever happened in between.
   */
  private runnableStale = true;

  /** A scheduler at time 0. */
  constructor(options: SchedulerOptions) {
    super(options.cpus.length, options.prng, options.maxQuantum);
    this.cpus = options.cpus;
    this.schedule = options.schedule;
    this.step = options.step;
    this.runPicks = options.runPicks;
    this.pickRuns = options.pickRuns ?? true;
    this.host = options.host;
  }

  /** Simulated time in ns: one per scheduler step. */
  now(): number {
    const state = this.runningState;
    return state === undefined ? this.clock : this.runningBase + state.steps;
  }

  /**
   * Tells the scheduler that which CPUs are runnable, or what they need
   * before they run (an NMI, irq_work), may have changed.
   */
  invalidate(): void {
    this.runnableStale = true;
    this.stop = true;
  }

  /**
   * Runs `context`, just pushed on `cpu` in the middle of an engine call
   * (an NMI that interrupted a helper), to completion: its steps count on
   * the clock and the interrupted state resumes after them. Returns how it
   * ended; an exited or faulted context is finished (popped).
   */
  runNested(cpu: Cpu, context: RunningContext): ExecStatus {
    const outerState = this.runningState;
    const outerBase = this.runningBase;
    const before = context.state.steps;
    this.runningBase = this.now() - before;
    this.runningState = context.state;
    let status = this.step(context.state, 1 << 16);
    while (status === "running") status = this.step(context.state, 1 << 16);
    const retired = context.state.steps - before;
    cpu.retired += retired;
    this.clock += retired;
    this.runningState = outerState;
    this.runningBase = outerBase + retired;
    if (status === "exited" || status === "faulted") {
      finishContext(this.host, cpu, context, status);
    }
    this.invalidate();
    return status;
  }

  /**
   * Runs until every CPU is idle or stuck, or `maxSteps` steps pass;
   * returns the steps taken, the picks made and how the run ended.
   */
  run(
    maxSteps: number,
  ): { steps: number; picks: number; outcome: RunSummary["outcome"] } {
    this.runLimit = this.clock + maxSteps;
    this.limit = this.runLimit;
    const start = this.clock, picksBefore = this.picks;
    this.runnableStale = true;
    let code = SLICE_DONE;
    while (code === SLICE_DONE) code = this.runSlice(SLICE_PICKS);
    const outcome = code === SLICE_HUNG
      ? "hung"
      : code === SLICE_LIMIT
      ? "limit"
      : "idle";
    return {
      steps: this.clock - start,
      picks: this.picks - picksBefore,
      outcome,
    };
  }

  /**
   * Up to `picks` rounds of the scheduler loop (a round is one pick, or an
   * engine run of many): returns {@link SLICE_DONE}, or how the run ended.
   * The loop lives here rather than in {@link run}: a function entered
   * again and again stays compiled by V8 from one run (and one kernel) to
   * the next, where one long loop per run would start slow each time and
   * be recompiled on the fly.
   */
  private runSlice(picks: number): number {
    const runnable = this.runnable;
    const prng = this.prng;
    const maxQuantum = this.maxQuantum;
    const schedule = this.schedule;
    // whether every runnable CPU may spin: only after the list changed or
    // the last pick left its CPU spinning (a CPU that ran on does not spin)
    let maySpin = true;
    for (let p = 0; p < picks; p++) {
      // timers due now start (they may make a CPU runnable); runs stop at
      // the next expiry
      let nextTimer: number | undefined = undefined;
      // a due timer waiting for its CPU is looked at again after each pick
      let timerWaits = false;
      if (this.host.serviceTimers !== undefined) {
        const outlook = this.host.serviceTimers(this.clock);
        nextTimer = outlook.next;
        timerWaits = outlook.waiting;
        this.limit = nextTimer === undefined || nextTimer > this.runLimit
          ? this.runLimit
          : nextTimer;
      }
      if (this.runnableStale) {
        this.listRunnable(this.cpus);
        this.runnableStale = false;
        maySpin = true;
      }
      const count = this.count;
      if (count === 0) {
        // idle CPUs still take timer interrupts: time jumps to the next
        // expiry within the run, and the loop starts it
        if (nextTimer === undefined || nextTimer > this.runLimit) {
          return SLICE_IDLE;
        }
        this.clock = nextTimer;
        continue;
      }
      if (
        maySpin && this.allSpinning(count) && this.noneProgresses(count)
      ) {
        this.host.reports.push(
          `hung: CPUs ${
            runnable.slice(0, count).map((c) => c.id).join(", ")
          } spin on locks that are never released`,
        );
        return SLICE_HUNG;
      }
      const left = this.limit - this.clock;
      if (left <= 0) return SLICE_LIMIT;
      if (this.scheduleAt < schedule.length) {
        this.picks++;
        maySpin = this.runCpu(this.pick(runnable, count), 1);
      } else if (this.pickRuns && !timerWaits) {
        maySpin = this.runEnginePicks();
      } else {
        this.picks++;
        const cpu = runnable[prng.below(count)];
        const quantum = 1 + prng.below(maxQuantum);
        maySpin = this.runCpu(cpu, quantum < left ? quantum : left);
      }
    }
    return SLICE_DONE;
  }

  /**
   * Lets the engine run picks until the scheduler must take over again;
   * returns whether the CPU of the last pick may spin (as {@link runCpu}).
   */
  private runEnginePicks(): boolean {
    const count = this.count;
    for (let i = 0; i < count; i++) this.fillSlot(i, this.host.ma);
    this.stop = false;
    this.lastSpun = false;
    this.runPicks(this);
    this.runningState = undefined;
    this.flushSlots();
    return this.lastSpun;
  }

  /**
   * Completes the engine's pick in hand as {@link runSlice} would, then
   * looks ahead to what the loop checks before its next draw: the run
   * goes on unless the runnable CPUs changed or all of them spin.
   */
  slowPick(): boolean {
    this.runningState = undefined;
    const slot = this.slot, cpu = this.runnable[slot];
    const status = this.status;
    let maySpin: boolean;
    if (status === "running") maySpin = this.runCpu(cpu, this.quantum);
    else {
      const top = cpu.contexts[cpu.contexts.length - 1];
      const left = this.settle(cpu, top, status, this.quantum);
      maySpin = left < 0 || this.runCpu(cpu, left);
    }
    if (this.runnableStale) return false;
    this.fillSlot(slot, this.host.ma);
    // every runnable CPU spins: the slots count them (each slot's count is
    // refreshed whenever its CPU's spinning can change: here, and unwait)
    if (maySpin && this.spinningCount === this.count) {
      this.lastSpun = true;
      return false;
    }
    return true;
  }

  /**
   * Gives each of the first `count` runnable CPUs (all spinning) one retry;
   * true when none of them got anywhere.
   */
  private noneProgresses(count: number): boolean {
    const spinning = this.runnable.slice(0, count);
    const before = spinning.map((c) => c.retired);
    for (const c of spinning) this.runCpu(c, 1);
    return spinning.every((c, i) =>
      c.retired === before[i] && c.top?.spinning === true
    );
  }

  /**
   * The CPU to run next among the first `count` of `runnable`: the
   * explicit schedule first, then the seeded choice.
   */
  private pick(runnable: Cpu[], count: number): Cpu {
    while (this.scheduleAt < this.schedule.length) {
      const id = this.schedule[this.scheduleAt++];
      for (let i = 0; i < count; i++) {
        if (runnable[i].id === id) return runnable[i];
      }
    }
    return runnable[this.prng.below(count)];
  }

  /**
   * Runs up to `quantum` steps on `cpu`: in one engine call, unless an NMI
   * may strike (then one instruction at a time, as it may strike at any).
   * Returns false when the quantum ran out with `cpu` running on (so it is
   * not spinning), true otherwise.
   */
  private runCpu(cpu: Cpu, quantum: number): boolean {
    let left = quantum;
    const contexts = cpu.contexts;
    const host = this.host;
    while (left > 0 && !cpu.deadlocked) {
      const depth = contexts.length;
      const top = depth > 0 ? contexts[depth - 1] : this.start(cpu);
      if (top === undefined) return true;
      if (host.ma !== undefined) this.irqWorkIfEnabled(cpu, top);
      let current = top, budget = left;
      if (cpu.nmis.length > 0) {
        const nmi = dueNmi(cpu, top, this.prng);
        if (nmi !== undefined) {
          current = pushContext(host, cpu, nmi.invocation, 1, "nmi_enter");
        }
        if (cpu.nmis.length > 0) budget = 1;
      }
      const state = current.state;
      if (current.spinning && heldElsewhere(cpu, current)) {
        // the retry would find the lock taken and block again, changing
        // nothing: spend the step without running the call
        cpu.spins++;
        this.clock++;
        return true;
      }
      const before = state.steps;
      this.runningState = state;
      this.runningBase = this.clock - before;
      const status = this.step(state, budget);
      this.runningState = undefined;
      const retired = state.steps - before;
      cpu.retired += retired;
      // (an NMI run inside the step, see injectNmiInAllocator, has
      // advanced the clock too)
      this.clock += retired;
      left = this.settle(cpu, current, status, left - retired);
      if (left < 0) return true;
    }
    return left > 0;
  }

  /**
   * What a step that ended with `status` means for the pick of `cpu`, with
   * `left` steps of its quantum unused: the quantum left to run on, or -1
   * when the CPU spins (a blocked call burns the rest of the quantum). A
   * context that exited or faulted is finished here.
   */
  private settle(
    cpu: Cpu,
    context: RunningContext,
    status: ExecStatus,
    left: number,
  ): number {
    if (status === "running") return left;
    if (status === "blocked") {
      cpu.spins++;
      this.clock++;
      return -1;
    }
    finishContext(this.host, cpu, context, status);
    this.runnableStale = true;
    return left;
  }

  /**
   * Runs the allocator's queued irq_work on `cpu` if interrupts are on
   * there: the kernel raises a self-IPI, so it runs at the next instruction
   * boundary — unless the CPU is in an NMI or holds a bpf_spin_lock (taken
   * with interrupts off).
   */
  private irqWorkIfEnabled(cpu: Cpu, top: RunningContext): void {
    const ma = this.host.ma;
    if (ma === undefined || top.level > 0 || ma.pendingIrqWork(cpu.id) === 0) {
      return;
    }
    if (this.host.locks.holdsAny(cpu.id, 0)) return;
    ma.runIrqWork(cpu.id);
  }

  /** Starts the next queued task-level invocation on `cpu`, if any. */
  private start(cpu: Cpu): RunningContext | undefined {
    const invocation = cpu.queue.shift();
    if (invocation === undefined) return undefined;
    return pushContext(this.host, cpu, invocation, 0, "prog_start");
  }
}
