/**
 * One simulated CPU: the programs queued to run on it, and the stack of
 * contexts currently running — the task-level program at level 0, and an
 * NMI program on top of it while one is being handled.
 * @module
 */
import type { CompiledProgram } from "../exec/compile.ts";
import type { ExecState } from "../exec/state.ts";
import type { LockState } from "./spin_lock.ts";

/** A program invocation waiting for, or holding, a CPU. */
export interface Invocation {
  /** Program name, for the trace. */
  readonly name: string;
  /** The compiled program. */
  readonly program: CompiledProgram;
  /** Value for r1 (usually the address of the context), or undefined for 0. */
  readonly r1?: bigint;
  /** Called with r0 when the program exits. */
  readonly onExit?: (r0: bigint) => void;
  /** The program's own helper and kfunc tables (see `LoadedProgram.runtime`). */
  readonly runtime?: object;
  /** Slot to start at (a callback inside the program's text); default 0. */
  readonly entry?: number;
  /** Values for r2, r3, … (a callback's further arguments). */
  readonly args?: readonly bigint[];
}

/** An invocation that is running at some context level. */
export interface RunningContext {
  /** What runs. */
  readonly invocation: Invocation;
  /** Its execution state (one per CPU and level, reused across runs). */
  readonly state: ExecState;
  /** 0 for task level, 1+ for an NMI or a softirq above it. */
  readonly level: number;
  /** A softirq (a BPF timer's callback), not an NMI, when above level 0. */
  readonly softirq?: boolean;
  /** True while it spins on a lock (so contention is traced once). */
  spinning: boolean;
  /**
   * The lock it spins on, while {@link spinning}: as long as another CPU
   * holds it, a retry would only block again, so the scheduler spends the
   * step without running the call.
   */
  spinningOn: LockState | undefined;
}

/** An NMI to deliver: which program, and when. */
export interface PendingNmi {
  /** The NMI handler program. */
  readonly invocation: Invocation;
  /** Deliver when the interrupted program is about to execute this slot. */
  readonly atInsn?: number;
  /** Or deliver at each instruction with this probability (seeded). */
  readonly probability?: number;
}

/** Per-CPU state of the simulated kernel. */
export class Cpu {
  /** CPU number, as `bpf_get_smp_processor_id` returns it. */
  readonly id: number;
  /** Invocations waiting to run at task level, in order. */
  readonly queue: Invocation[] = [];
  /** Running contexts, innermost last. */
  readonly contexts: RunningContext[] = [];
  /** NMIs waiting to be delivered. */
  readonly nmis: PendingNmi[] = [];
  /**
   * Execution states kept per level and per program runtime (the helper and
   * kfunc tables a state is built with), reset for each run.
   */
  readonly states: Map<object | undefined, ExecState>[] = [];
  /** Set when the CPU can never make progress again (a self-deadlock). */
  deadlocked = false;
  /** Instructions retired on this CPU. */
  retired = 0;
  /** Steps spent spinning on a lock. */
  spins = 0;

  /** A CPU with nothing to do. */
  constructor(id: number) {
    this.id = id;
  }

  /** The innermost running context, if any. */
  get top(): RunningContext | undefined {
    // never index -1: that is a property lookup by name, off the fast path
    const n = this.contexts.length;
    return n === 0 ? undefined : this.contexts[n - 1];
  }

  /** True when the CPU has (or could start) something to run. */
  get runnable(): boolean {
    return !this.deadlocked &&
      (this.contexts.length > 0 || this.queue.length > 0);
  }
}
