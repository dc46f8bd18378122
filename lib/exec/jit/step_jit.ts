/**
 * `stepJit(state, budget)`: the JIT engine behind the interpreter's
 * contract (`step` in `interp.ts`): at most `budget` instructions, the same
 * statuses, the same state afterwards. Generated code runs whole blocks;
 * where a block is longer than the budget left, or the state stopped in the
 * middle of a block (a budget ran out there, a helper blocked), the
 * interpreter retires the exact remainder.
 * @module
 */
import { step } from "../interp.ts";
import type { ExecState, ExecStatus } from "../state.ts";
import { JIT_BLOCKED, JIT_EXITED, JIT_FAULTED } from "./codegen.ts";
import { jitCompile } from "./jit.ts";

/** Execution engines: the reference interpreter or the JIT. */
export type Engine = "interp" | "jit";

/** Every engine, for tests that run on each (`for (const e of ENGINES)`). */
export const ENGINES: readonly Engine[] = ["interp", "jit"];

/** Same contract as `step`: runs `state` for at most `budget` instructions. */
export function stepJit(state: ExecState, budget: number): ExecStatus {
  if (state.status === "exited" || state.status === "faulted") {
    return state.status;
  }
  state.status = "running";
  let left = budget;
  while (left > 0) {
    const jit = jitCompile(state.prog);
    const before = state.steps, pc = state.pc;
    // `rest` of a leader is its block's length.
    const rest = jit.rest[pc] ?? 1;
    if (jit.leader[pc] !== 1 || rest > left) {
      // Mid-block, or less budget than the block: the interpreter retires
      // the exact remainder of the block (or of the budget).
      const status = step(state, Math.min(left, Math.max(1, rest)));
      left -= state.steps - before;
      if (status !== "running") return status;
      continue;
    }
    const code = jit.run(state, left);
    left -= state.steps - before;
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
