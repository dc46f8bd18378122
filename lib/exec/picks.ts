/**
 * Runs of scheduler picks inside one engine call. A scheduler that
 * interleaves CPUs a few instructions at a time would otherwise enter the
 * engine once per pick, and entering it (loading a state's registers and
 * program, setting up the loop) costs as much as the few instructions a
 * pick runs. Here the engine draws the picks itself — the same draws, in
 * the same order, as the scheduler's own loop — and switches between the
 * states of the runnable CPUs. A pick of a CPU that spins on a lock held
 * elsewhere is spent here too, and one whose lock came free runs its call
 * again. Any other pick (a CPU with an NMI or irq_work due, a program to
 * start) and any state that blocks, exits or faults is handed to the
 * scheduler ({@link PickHost.slowPick}), which says whether the run goes
 * on.
 * @module
 */
import type { ExecState, ExecStatus } from "./state.ts";

/** The draws behind each pick: a uniform integer in [0, n). */
export interface PickDraws {
  /** A uniform integer in [0, n). */
  below(n: number): number;
}

/** A lock a CPU spins on, as much of it as the run of picks reads. */
export interface PickWait {
  /** Whether some CPU holds it now. */
  readonly held: boolean;
  /** The CPU holding it, while {@link held}. */
  readonly cpu: number;
}

/**
 * What a run of picks shares with its scheduler: the slots (one per
 * runnable CPU) and the draws, the clock, and the pick in hand.
 */
export interface PickHost {
  /**
   * The state each runnable CPU (by slot) runs if picked, or undefined
   * where its pick spins or needs the scheduler.
   */
  readonly states: (ExecState | undefined)[];
  /**
   * Per slot: the lock its CPU spins on — a pick of it spends one step and
   * runs nothing while another CPU holds the lock — or undefined.
   */
  readonly waits: (PickWait | undefined)[];
  /** Per slot: its CPU's number. */
  readonly ids: Int32Array;
  /**
   * How many slots spin. When all do, a spin is left to the scheduler,
   * which then looks for a CPU that can progress (or declares the run hung).
   */
  readonly spinningCount: number;
  /** Slots in use: how many CPUs are runnable. */
  readonly count: number;
  /** The generator: the slot is drawn first, then the quantum. */
  readonly prng: PickDraws;
  /** Longest quantum. */
  readonly maxQuantum: number;
  /** Steps at which the run stops. */
  readonly limit: number;
  /** Simulated time: one step per retired instruction or spin. */
  clock: number;
  /** The state of the pick being run (helpers read the clock through it). */
  runningState: ExecState | undefined;
  /** {@link clock} minus {@link runningState}'s steps at its pick's start. */
  runningBase: number;
  /** {@link runningState}'s steps when its pick began. */
  pickStart: number;
  /** Set (by the scheduler) to end the run at the next pick. */
  stop: boolean;
  /** Picks drawn so far (a statistic: the engine's and the scheduler's). */
  picks: number;
  /** Instructions retired per slot during the run. */
  readonly retired: Float64Array;
  /** Spins per slot during the run. */
  readonly spins: Float64Array;
  /** The pick in hand: its slot. */
  slot: number;
  /** The pick in hand: what is left of its quantum. */
  quantum: number;
  /**
   * The pick in hand: how its state stopped (`blocked`, `exited`,
   * `faulted`), or `running` when it has not started.
   */
  status: ExecStatus;
  /**
   * Completes the pick in hand the way the scheduler's own loop would;
   * returns whether the run goes on (false: the scheduler takes over at
   * its next pick).
   */
  slowPick(): boolean;
  /**
   * Slot `slot` spun on a lock that is free now: it no longer spins (its
   * call is about to run again), and runs the returned state when picked.
   */
  unwait(slot: number): ExecState;
}

/**
 * Draws picks until one has a state to run (returned; its slot and
 * quantum are in `host`), or the run ends (undefined). The draws are those
 * of the scheduler's own loop: the slot among `count`, then 1 + a draw
 * below `maxQuantum`, cut at the limit. Picks that only spin are spent
 * here, others that are not plain runs go to {@link PickHost.slowPick}.
 * (Small, so that the engine's loop takes it in; the rest is
 * {@link otherPicks}.)
 */
export function drawPick(host: PickHost): ExecState | undefined {
  if (!draw(host)) return undefined;
  const state = host.states[host.slot];
  if (state === undefined) return otherPicks(host);
  begin(host, state);
  return state;
}

/** Draws the next pick's slot and quantum into `host`; false when the run ends. */
function draw(host: PickHost): boolean {
  const left = host.limit - host.clock;
  if (host.stop || left <= 0) return false;
  host.picks++;
  host.slot = host.prng.below(host.count);
  const quantum = 1 + host.prng.below(host.maxQuantum);
  host.quantum = quantum < left ? quantum : left;
  return true;
}

/** Makes `state` the running one for the pick in hand. */
function begin(host: PickHost, state: ExecState): void {
  host.runningState = state;
  host.runningBase = host.clock - state.steps;
  host.pickStart = state.steps;
}

/**
 * The pick in hand has no state to run: spends it (a spin), retries a call
 * whose lock came free, or hands it to the scheduler — and draws again,
 * until a pick runs a state or the run ends.
 */
function otherPicks(host: PickHost): ExecState | undefined {
  for (;;) {
    const slot = host.slot;
    const wait = host.waits[slot];
    if (wait !== undefined && !wait.held) {
      // the lock came free: the call that blocked runs again
      const retry = host.unwait(slot);
      begin(host, retry);
      return retry;
    }
    if (
      wait !== undefined && wait.cpu !== host.ids[slot] &&
      host.spinningCount !== host.count
    ) {
      host.clock++;
      host.spins[slot]++;
    } else {
      host.status = "running";
      if (!host.slowPick()) return undefined;
    }
    if (!draw(host)) return undefined;
    const state = host.states[host.slot];
    if (state !== undefined) {
      begin(host, state);
      return state;
    }
  }
}

/**
 * Counts `retired` instructions of the pick in hand: the clock, the slot's
 * total, and what is left of the quantum.
 */
export function retirePick(host: PickHost, retired: number): void {
  host.clock += retired;
  host.retired[host.slot] += retired;
  host.quantum -= retired;
}

/** The pick in hand ran its whole quantum, `retired` instructions. */
export function endPick(host: PickHost, retired: number): void {
  host.clock += retired;
  host.retired[host.slot] += retired;
}

/**
 * The pick in hand's state stopped with `status` (`blocked`, `exited`,
 * `faulted`): counts what it retired and lets the scheduler complete the
 * pick; returns whether the run goes on.
 */
export function stopPick(host: PickHost, status: ExecStatus): boolean {
  const state = host.runningState as ExecState;
  retirePick(host, state.steps - host.pickStart);
  host.status = status;
  return host.slowPick();
}

/**
 * A run of picks for an engine without a run of its own: one `step` call
 * per pick.
 */
export function runPicksStepwise(
  host: PickHost,
  step: (state: ExecState, budget: number) => ExecStatus,
): void {
  for (;;) {
    const state = drawPick(host);
    if (state === undefined) return;
    const status = step(state, host.quantum);
    if (status === "running") endPick(host, state.steps - host.pickStart);
    else if (!stopPick(host, status)) return;
  }
}
