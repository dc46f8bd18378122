/**
 * The tables a scheduler shares with the engine's runs of picks
 * (`exec/picks.ts`): one slot per runnable CPU, saying whether a pick of
 * it runs a state, spins on a lock, or comes back to the scheduler; the
 * clock and the pick in hand. {@link Scheduler} builds on it.
 * @module
 */
import type { PickWait } from "../exec/picks.ts";
import type { ExecState, ExecStatus } from "../exec/state.ts";
import type { Cpu } from "./cpu.ts";
import type { BpfMemAlloc } from "./mem_alloc.ts";
import type { Prng } from "./prng.ts";

/** The slot tables and clock of a scheduler; see the module documentation. */
export class PickSlots {
  /** Steps taken so far, outside a running engine call. */
  clock = 0;
  /** The generator behind every choice. */
  readonly prng: Prng;
  /** Longest quantum. */
  readonly maxQuantum: number;
  /** The state running now (a helper may read the clock). */
  runningState: ExecState | undefined = undefined;
  /** {@link clock} when {@link runningState}'s step count was 0. */
  runningBase = 0;
  /** Steps of the state of the engine's current pick when it began. */
  pickStart = 0;
  /** Runnable CPUs' states, by slot, for the engine's run of picks. */
  readonly states: (ExecState | undefined)[] = [];
  /** Locks the runnable CPUs spin on, by slot, for the engine's run of picks. */
  readonly waits: (PickWait | undefined)[] = [];
  /** Runnable CPUs' numbers, by slot. */
  readonly ids: Int32Array;
  /** How many runnable CPUs spin. */
  spinningCount = 0;
  /** Runnable CPUs: how many of {@link runnable} are valid. */
  count = 0;
  /** The step at which the current run stops. */
  limit = 0;
  /**
   * Set when the runnable CPUs, or what they need, may have changed: the
   * engine's run of picks ends at the next pick.
   */
  stop = false;
  /** Picks drawn so far, by the engine or the scheduler. */
  picks = 0;
  /** Instructions the engine's run retired, by slot. */
  readonly retired: Float64Array;
  /** Spins in the engine's run, by slot. */
  readonly spins: Float64Array;
  /** The engine's pick in hand: its slot. */
  slot = 0;
  /** The engine's pick in hand: its quantum left. */
  quantum = 0;
  /** How the engine's pick in hand stopped, or `running`: not started. */
  status: ExecStatus = "running";
  /** Runnable CPUs, by slot: the first {@link count} are valid. */
  protected readonly runnable: Cpu[] = [];
  /** Per slot: 1 where the CPU spins (what {@link spinningCount} counts). */
  private readonly spinningSlots: Uint8Array;

  /** Empty tables for `cpus` CPUs. */
  constructor(cpus: number, prng: Prng, maxQuantum: number) {
    this.prng = prng;
    this.maxQuantum = maxQuantum;
    this.ids = new Int32Array(cpus);
    this.retired = new Float64Array(cpus);
    this.spins = new Float64Array(cpus);
    this.spinningSlots = new Uint8Array(cpus);
  }

  /** True when each of the first `count` runnable CPUs spins on a lock. */
  protected allSpinning(count: number): boolean {
    const runnable = this.runnable;
    for (let i = 0; i < count; i++) {
      const contexts = runnable[i].contexts;
      const depth = contexts.length;
      if (depth === 0 || !contexts[depth - 1].spinning) return false;
    }
    return true;
  }

  /**
   * Lists the runnable ones of `cpus`, in CPU order, into {@link runnable}
   * (a reused array whose length is never cut: V8 would drop the backing
   * store).
   */
  protected listRunnable(cpus: readonly Cpu[]): void {
    const runnable = this.runnable;
    let count = 0;
    for (let i = 0; i < cpus.length; i++) {
      const c = cpus[i];
      if (c.runnable) runnable[count++] = c;
    }
    this.count = count;
    this.clearSpinning();
  }

  /** The runnable CPUs changed: no slot spins until filled again. */
  private clearSpinning(): void {
    this.spinningSlots.fill(0);
    this.spinningCount = 0;
  }

  /** Adds what the engine's run counted per slot to the CPUs, and clears it. */
  protected flushSlots(): void {
    const runnable = this.runnable, retired = this.retired;
    const spins = this.spins;
    for (let i = 0; i < this.count; i++) {
      runnable[i].retired += retired[i];
      runnable[i].spins += spins[i];
      retired[i] = 0;
      spins[i] = 0;
    }
  }

  /** See {@link PickHost.unwait}. */
  unwait(slot: number): ExecState {
    const cpu = this.runnable[slot];
    const state = cpu.contexts[cpu.contexts.length - 1].state;
    state.status = "running";
    this.states[slot] = state;
    this.waits[slot] = undefined;
    this.spinningSlots[slot] = 0;
    this.spinningCount--;
    return state;
  }

  /**
   * Fills slot `i` for the engine's run of picks: a CPU simply running
   * (nothing to start, no NMI or irq_work due, not spinning) runs there; one
   * spinning on a lock spins there; any other pick of it comes back to
   * the scheduler (`slowPick`).
   */
  protected fillSlot(i: number, ma: BpfMemAlloc | undefined): void {
    const cpu = this.runnable[i];
    const wasSpinning = this.spinningSlots[i];
    let state: ExecState | undefined = undefined;
    let wait: PickWait | undefined = undefined;
    let spinning = 0;
    const depth = cpu.contexts.length;
    if (depth > 0) {
      const top = cpu.contexts[depth - 1];
      if (top.spinning) spinning = 1;
      if (
        !cpu.deadlocked && cpu.nmis.length === 0 &&
        (ma === undefined || top.level > 0 || ma.pendingIrqWork(cpu.id) === 0)
      ) {
        if (top.spinning) wait = top.spinningOn;
        else if (top.state.status === "running") state = top.state;
      }
    }
    this.ids[i] = cpu.id;
    this.states[i] = state;
    this.waits[i] = wait;
    this.spinningSlots[i] = spinning;
    this.spinningCount += spinning - wasSpinning;
  }
}
