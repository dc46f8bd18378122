/**
 * The helpers a loaded object's programs get beyond the kernel's own
 * (`helpers.ts`: time, CPU id, random numbers, spin locks): the map
 * helpers, the generic helpers (`generic_helpers.ts`: more clocks, the
 * current task, strings, probe reads, per-CPU pointers …), the dynptr,
 * timer and map-iteration helpers (`dynptr_helpers.ts`) and the helpers of
 * tracing programs that find nothing to trace here (`tracing_helpers.ts`:
 * no user memory, VMAs, branch records or perf counters), the sk / task /
 * cgroup / inode storage helpers (`local_storage_helpers.ts`), the LSM
 * helpers over the simulated files, inodes and binprms (`lsm_helpers.ts`)
 * and `bpf_user_ringbuf_drain` (`user_ringbuf_helpers.ts`), the syscall
 * programs' `bpf_sys_bpf` and kin (`syscall_helpers.ts`), and the helpers
 * taking a redirect map or cgroup array (`packet_redirect.ts`). One table serves
 * the simulated kernel's CPUs and `BPF_PROG_TEST_RUN` alike.
 * @module
 */
import type { HelperFn } from "../exec/state.ts";
import { btfPrintHelpers } from "./hooks/iter/btf_print_helpers.ts";
import { dynptrHelpers } from "./dynptr_helpers.ts";
import { genericHelpers } from "./generic_helpers.ts";
import { kernelPtrHelpers } from "./kernel_ptr_helpers.ts";
import { localStorageHelpers } from "./local_storage_helpers.ts";
import { lsmHelpers } from "./hooks/lsm/lsm_helpers.ts";
import { type MapHelperLog, mapHelpers } from "./map_helpers.ts";
import type { LoadedObject } from "./object_loader.ts";
import { syscallHelpers } from "./syscall/syscall_helpers.ts";
import { tracingHelpers } from "./tracing_helpers.ts";
import { skbOutputHelpers } from "./hooks/tracing/tracing_skb_output.ts";
import { mapRedirectHelpers } from "./net/packet_redirect.ts";
import { userRingbufHelpers } from "./user_ringbuf_helpers.ts";

/**
 * The object-level helpers of `loaded`, by id; `log` collects what the
 * printing helpers print (a fresh one per run when omitted).
 */
export function objectHelpers(
  loaded: LoadedObject,
  log: MapHelperLog = { printk: [] },
): Map<number, HelperFn> {
  const helpers = new Map(mapHelpers(loaded.registry, log));
  const env = { loaded, log };
  for (const [id, fn] of kernelPtrHelpers(env)) helpers.set(id, fn);
  for (const [id, fn] of genericHelpers(env)) helpers.set(id, fn);
  for (const [id, fn] of dynptrHelpers(env)) helpers.set(id, fn);
  for (const [id, fn] of tracingHelpers(env)) helpers.set(id, fn);
  for (const [id, fn] of skbOutputHelpers(env)) helpers.set(id, fn);
  for (const [id, fn] of localStorageHelpers(env)) helpers.set(id, fn);
  for (const [id, fn] of lsmHelpers(env)) helpers.set(id, fn);
  for (const [id, fn] of userRingbufHelpers(env)) helpers.set(id, fn);
  for (const [id, fn] of syscallHelpers(env)) helpers.set(id, fn);
  for (const [id, fn] of btfPrintHelpers(env)) helpers.set(id, fn);
  for (const [id, fn] of mapRedirectHelpers(loaded.registry)) {
    helpers.set(id, fn);
  }
  return helpers;
}

/** What {@link objectHelpers}' parts get: the loaded object and the print log. */
export interface ObjectHelperEnv {
  /** The object (its kernel, maps by address, callbacks). */
  readonly loaded: LoadedObject;
  /** Where `bpf_trace_printk` and kin print. */
  readonly log: MapHelperLog;
}
