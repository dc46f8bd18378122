/**
 * `stepJit(state, budget)`: the JIT engine behind the interpreter's
 * contract (`step` in `interp.ts`): at most `budget` instructions, the same
 * statuses, the same state afterwards. Generated code runs whole blocks;
 * where a block is longer than the budget left, or the state stopped in the
 * middle of a block (a budget ran out there, a helper blocked), the
 * program's stepwise translation retires the exact remainder.
 * @module
 */
import { runPicks, step } from "../interp.ts";
import { type PickHost, runPicksStepwise } from "../picks.ts";
import type { ExecState, ExecStatus } from "../state.ts";
import { JIT_BLOCKED, JIT_BUDGET, JIT_EXITED, JIT_FAULTED } from "./codegen.ts";
import { jitCompile, type JitFunction, type JitProgram } from "./jit.ts";

/** Execution engines: the reference interpreter or the JIT. */
export type Engine = "interp" | "jit";

/** Every engine, for tests that run on each (`for (const e of ENGINES)`). */
export const ENGINES: readonly Engine[] = ["interp", "jit"];

/**
 * What `stepJit` keeps on a state for its program: the translation's
 * entries and tables as plain fields of one shape, so that entering the
 * JIT costs a comparison and a few loads (it happens once per scheduler
 * quantum, which may be a single instruction).
 */
class Entry {
  /** The stepwise entry, once translated. */
  stepwiseFn: JitFunction | undefined = undefined;
  /** Entries that needed less than a block before the stepwise entry existed. */
  partials = 0;
  constructor(
    readonly jit: JitProgram,
    readonly run: JitFunction,
    readonly leader: Uint8Array,
    readonly rest: Int32Array,
  ) {}
  /**
   * The stepwise entry once partial entries are frequent enough to pay for
   * translating it ({@link setStepwiseAfter}); until then undefined, and the
   * interpreter retires partial blocks.
   */
  stepwise(): JitFunction | undefined {
    if (++this.partials <= stepwiseAfter) return undefined;
    return this.stepwiseFn = this.jit.stepwise();
  }
}

/**
 * Entries with a small budget or in mid-block after which a program gets
 * its stepwise entry.
 * Translating it (and V8 compiling it on its first call) costs about as
 * much as the interpreter retiring a few thousand instructions, so a
 * program stepped in small quanta only now and then (a fuzzed program, a
 * short test) keeps the interpreter for those, while one the scheduler
 * drives in small quanta switches after a few hundred of them.
 */
export const STEPWISE_AFTER = 256;
/** Budgets up to this many instructions run on the stepwise entry alone (see `stepJit`). */
export const STEPWISE_BUDGET = 64;
let stepwiseAfter = STEPWISE_AFTER;

/**
 * Sets how many partial-block entries a program makes before it gets its
 * stepwise entry (0: at once, as tests of that entry want); returns the
 * previous setting. Programs already past the old threshold keep theirs.
 */
export function setStepwiseAfter(entries: number): number {
  const previous = stepwiseAfter;
  stepwiseAfter = entries;
  return previous;
}

/** The translation of `state.prog`, kept on the state. */
function entryOf(state: ExecState): Entry {
  if (state.engineCacheFor === state.prog) return state.engineCache as Entry;
  const jit = jitCompile(state.prog);
  const entry = new Entry(jit, jit.run, jit.leader, jit.rest);
  state.engineCacheFor = state.prog;
  state.engineCache = entry;
  return entry;
}

/** Same contract as `step`: runs `state` for at most `budget` instructions. */
export function stepJit(state: ExecState, budget: number): ExecStatus {
  if (state.status === "exited" || state.status === "faulted") {
    return state.status;
  }
  // One instruction per entry (the scheduler's budget while an NMI may
  // strike) is the interpreter's best case: it loads no registers into
  // locals and stores none back.
  if (budget === 1) return step(state, 1);
  state.status = "running";
  let left = budget;
  while (left > 0) {
    const entry = entryOf(state);
    const before = state.steps, pc = state.pc;
    // `rest` of a leader is its block's length.
    const rest = entry.rest[pc] ?? 1;
    let code: number;
    const small = left <= STEPWISE_BUDGET;
    if (!small && entry.leader[pc] === 1 && rest <= left) {
      code = entry.run(state, left);
    } else {
      // A small budget (a scheduler quantum) runs whole on the stepwise
      // entry: one call, where block code would need one for the blocks
      // that fit and another for the rest. Mid-block with a large budget,
      // it retires the remainder of the block (or of the budget) and block
      // code takes over at the next leader.
      const stepwise = entry.stepwiseFn ?? entry.stepwise();
      if (stepwise !== undefined) {
        code = stepwise(state, small || rest > left ? left : rest);
      } else if (entry.leader[pc] === 1 && rest <= left) {
        code = entry.run(state, left);
      } else {
        // Until the stepwise entry pays, the interpreter retires partial blocks.
        const status = step(state, rest < left ? rest : left);
        left -= state.steps - before;
        if (status !== "running") return status;
        continue;
      }
    }
    const retired = state.steps - before;
    left -= retired;
    // Otherwise JIT_TAIL (a new program, from slot 0) or JIT_BUDGET (the
    // next block is longer than what is left): go round again.
    switch (code) {
      case JIT_EXITED:
        state.status = "exited";
        return "exited";
      case JIT_FAULTED:
        return "faulted";
      case JIT_BLOCKED:
        return "blocked";
      case JIT_BUDGET:
        // No row to enter at (pc outside the program): the interpreter
        // reports it as it would.
        if (retired === 0) {
          const status = step(state, 1);
          left -= state.steps - before;
          if (status !== "running") return status;
        }
    }
  }
  return "running";
}

/** The stepper of `engine`: `step` (interpreter) or {@link stepJit}. */
export function stepWith(
  engine: Engine,
): (state: ExecState, budget: number) => ExecStatus {
  return engine === "jit" ? stepJit : step;
}

/** One run of scheduler picks on the JIT: a `stepJit` call per pick. */
function runPicksJit(host: PickHost): void {
  runPicksStepwise(host, stepJit);
}

/**
 * Scheduler quanta below this many instructions run their picks on the
 * interpreter's loop even for the JIT engine: that loop goes from one
 * CPU's state to the next without returning, where every pick on the JIT
 * enters generated code again, which costs more than the few
 * instructions it would save (see bench/kernel_bench.ts).
 */
export const JIT_PICKS_MIN_QUANTUM = 16;

/**
 * The run of scheduler picks of `engine` (see `picks.ts`) for quanta of up
 * to `maxQuantum` instructions.
 */
export function picksWith(
  engine: Engine,
  maxQuantum: number,
): (host: PickHost) => void {
  return engine === "jit" && maxQuantum >= JIT_PICKS_MIN_QUANTUM
    ? runPicksJit
    : runPicks;
}
