/**
 * Runtime of the dynptr, timer and map-iteration helpers: to be written.
 * @module
 */
import type { HelperFn } from "../exec/state.ts";
import type { ObjectHelperEnv } from "./object_helpers.ts";

/** The dynptr, timer and map-iteration helpers, by id. */
export function dynptrHelpers(_env: ObjectHelperEnv): Map<number, HelperFn> {
  return new Map();
}
