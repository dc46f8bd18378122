/**
 * Runtime of the generic helpers (kernel/bpf/helpers.c, kernel/trace/
 * bpf_trace.c): to be written.
 * @module
 */
import type { HelperFn } from "../exec/state.ts";
import type { ObjectHelperEnv } from "./object_helpers.ts";

/** The generic helpers, by id. */
export function genericHelpers(_env: ObjectHelperEnv): Map<number, HelperFn> {
  return new Map();
}
