/**
 * The types of the simulated kernel's API (lib/kernel/kernel.ts): its
 * options, a program ready to run, the helper and kfunc tables a program
 * brings, and how a run ended.
 * @module
 */
import type { CompiledProgram } from "../exec/compile.ts";
import type { HelperFn, KfuncFn } from "../exec/state.ts";
import type { Engine } from "../exec/jit/step_jit.ts";

/** Options of a {@link Kernel}. */
export interface KernelOptions {
  /** Number of CPUs (default 1). */
  readonly cpus?: number;
  /** Seed of every choice the kernel makes (default 0). */
  readonly seed?: number;
  /**
   * Longest run of instructions a CPU gets before the scheduler picks again
   * (default 16: each pick runs 1 … 16, so a switch may fall between any
   * two instructions — on average every 8.5; scenarios about races pin 4,
   * where one falls every 2.5).
   */
  readonly maxQuantum?: number;
  /** Explicit schedule: CPU ids in turn, one instruction each; then seeded choice. */
  readonly schedule?: readonly number[];
  /** Keep trace events in memory (default true); false only hashes them. */
  readonly keepTrace?: boolean;
  /** More helpers, by id (added to the kernel's own). */
  readonly helpers?: ReadonlyMap<number, HelperFn>;
  /**
   * What executes programs: `interp` (default) or `jit`. Both give the same
   * results and the same interleaving for a seed; the JIT pays off with
   * longer quanta (`maxQuantum` ≥ 64). Below a quantum of 16 the JIT's
   * scheduler picks run on the interpreter's loop, which is faster there
   * (the JIT still runs nested NMI handlers, test runs and picks the
   * scheduler completes itself).
   */
  readonly engine?: Engine;
  /**
   * Whether objects loaded into this kernel have each program verified
   * before it may run (default true; see `loadObjectWithRuntime`). False
   * is the `--no-verify` escape hatch, for teaching what the verifier
   * prevents.
   */
  readonly verify?: boolean;
  /**
   * Whether the engine may run many scheduler picks per call (default
   * true). False enters the engine once per pick: the same interleaving,
   * slower — the reference the runs of picks are tested against.
   */
  readonly pickRuns?: boolean;
}

/** A program ready to run on the kernel. */
export interface LoadedProgram {
  /** Name shown in the trace. */
  readonly name: string;
  /** Its compiled form. */
  readonly program: CompiledProgram;
  /**
   * Helpers and kfuncs this program gets beyond the kernel's own (map
   * helpers of its object, the graph kfuncs …); one object shared by the
   * programs of an object, so their CPUs keep one execution state for it.
   */
  readonly runtime?: ProgramRuntime;
}

/** Helper and kfunc tables of a loaded object's programs. */
export interface ProgramRuntime {
  /** Helpers by id (override the kernel's). */
  readonly helpers: ReadonlyMap<number, HelperFn>;
  /** Kfuncs by BTF id. */
  readonly kfuncs: ReadonlyMap<number, KfuncFn>;
}

/** How a call to {@link Kernel.run} ended. */
export interface RunSummary {
  /**
   * Scheduler steps taken: instructions retired, steps spent spinning, and
   * idle time passed over to the next BPF timer expiry.
   */
  readonly steps: number;
  /** Scheduler picks made: a CPU chosen, for a quantum of up to `maxQuantum` steps. */
  readonly picks: number;
  /** `idle`: all work done; `hung`: every CPU left is deadlocked or spins forever; `limit`. */
  readonly outcome: "idle" | "hung" | "limit";
  /** Problems found (deadlocks, bad unlocks, faults). */
  readonly reports: readonly string[];
}
