/**
 * Runtime of the generic helpers (kernel/bpf/helpers.c, kernel/trace/
 * bpf_trace.c, kernel/bpf/stackmap.c): more clocks and the current task
 * (`generic_helpers_task.ts`), probe reads and per-CPU pointers
 * (`generic_helpers_mem.ts`), strings and printf (`generic_helpers_string.ts`,
 * `generic_helpers_printf.ts`), perf output and stacks
 * (`generic_helpers_perf.ts`). Each part documents what it simulates.
 * @module
 */
import type { HelperFn } from "../exec/state.ts";
import type { ObjectHelperEnv } from "./object_helpers.ts";
import { memHelpers } from "./generic_helpers_mem.ts";
import { perfHelpers } from "./generic_helpers_perf.ts";
import { stringHelpers } from "./generic_helpers_string.ts";
import { taskHelpers } from "./generic_helpers_task.ts";

export { MEM_HELPER } from "./generic_helpers_mem.ts";
export { PERF_HELPER, type PerfSample } from "./generic_helpers_perf.ts";
export { STRING_HELPER } from "./generic_helpers_string.ts";
export { type SentSignal, TASK_HELPER } from "./generic_helpers_task.ts";

/** The generic helpers, by id. */
export function genericHelpers(env: ObjectHelperEnv): Map<number, HelperFn> {
  const { loaded, log } = env;
  return new Map<number, HelperFn>([
    ...taskHelpers(loaded.kernel, log),
    ...memHelpers(loaded.kernel),
    ...stringHelpers(log),
    ...perfHelpers(loaded, log),
  ]);
}
