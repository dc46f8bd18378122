/**
 * `bpf_perf_event_output` (kernel/trace/bpf_trace.c) and the stack helpers
 * (kernel/bpf/stackmap.c).
 *
 * ## Perf event arrays
 * A `BPF_MAP_TYPE_PERF_EVENT_ARRAY` is not a modelled map: its slots hold
 * perf events user space opened. By default every slot is empty, as in
 * a `BPF_PROG_TEST_RUN` where nobody stored an event, so an output fails
 * with -ENOENT after the flag and index checks. When the log the helpers
 * print to has a `perfOutput` array, slot `i` holds CPU `i`'s BPF-output
 * event (what libbpf's `perf_buffer__new()` sets up): an output on the
 * slot's CPU is appended to `perfOutput` and returns 0; from another CPU
 * it fails with -EOPNOTSUPP (`event->oncpu != cpu`).
 *
 * ## Stacks
 * The simulated CPUs have no call chains to walk: `get_perf_callchain()`
 * finds an empty one (`nr` = 0). So `bpf_get_stack` and
 * `bpf_get_task_stack` zero the buffer and return 0 (-EFAULT when asked
 * to skip frames), and `bpf_get_stackid` returns -EFAULT.
 * @module
 */
import type { CallContext, HelperFn } from "../exec/state.ts";
import type { LoadedObject } from "./object_loader.ts";
import type { MapHelperLog } from "./map_helpers.ts";
import { cpuOf } from "./generic_helpers_task.ts";
import { zeroBuffer } from "./generic_helpers_mem.ts";
import { E2BIG, EFAULT, EINVAL, ENOENT, EOPNOTSUPP } from "../uapi/errno.ts";

/** `BPF_F_INDEX_MASK`: the slot index part of the flags. */
export const BPF_F_INDEX_MASK = 0xffffffffn;
/** `BPF_F_CURRENT_CPU`: the slot of the running CPU. */
export const BPF_F_CURRENT_CPU = 0xffffffffn;
/** `BPF_F_SKIP_FIELD_MASK`: frames to skip. */
const SKIP_MASK = 0xffn;
const USER_STACK = 1n << 8n;
const FAST_STACK_CMP = 1n << 9n;
const REUSE_STACKID = 1n << 10n;
const USER_BUILD_ID = 1n << 11n;
/** `sizeof(struct bpf_stack_build_id)`. */
const BUILD_ID_ELEM = 32;

/** Helper ids (include/uapi/linux/bpf.h). */
export const PERF_HELPER = {
  perf_event_output: 25,
  get_stackid: 27,
  get_stack: 67,
  get_task_stack: 141,
} as const;

/** A sample `bpf_perf_event_output` wrote (see the module comment). */
export interface PerfSample {
  /** Name of the perf event array. */
  readonly map: string;
  /** Slot (= CPU) it went to. */
  readonly cpu: number;
  /** The bytes. */
  readonly data: Uint8Array;
}

/** The perf-output and stack helpers of `loaded`, by id. */
export function perfHelpers(
  loaded: LoadedObject,
  log: MapHelperLog,
): Map<number, HelperFn> {
  const H = PERF_HELPER;
  return new Map<number, HelperFn>([
    [H.perf_event_output, (vm) => perfEventOutput(loaded, log, vm)],
    [H.get_stackid, (vm) => {
      // mirrors bpf_get_stackid(): flags, then an empty chain has nr <= skip
      const flags = vm.arg(3);
      const known = SKIP_MASK | USER_STACK | FAST_STACK_CMP | REUSE_STACKID;
      return flags & ~known ? -EINVAL : -EFAULT;
    }],
    [
      H.get_stack,
      (vm) => getStack(vm, vm.arg(2), vm.argLo(3) >>> 0, vm.arg(4)),
    ],
    // bpf_get_task_stack(): the task's stack is pinned, then as bpf_get_stack
    [
      H.get_task_stack,
      (vm) => getStack(vm, vm.arg(2), vm.argLo(3) >>> 0, vm.arg(4)),
    ],
  ]);
}

/** Mirrors `__bpf_get_stack()` over an empty call chain. */
function getStack(
  vm: CallContext,
  buf: bigint,
  size: number,
  flags: bigint,
): number {
  let err = -EINVAL;
  const user = (flags & USER_STACK) !== 0n;
  const buildId = (flags & USER_BUILD_ID) !== 0n;
  const elemSize = buildId ? BUILD_ID_ELEM : 8;
  const ok = (flags & ~(SKIP_MASK | USER_STACK | USER_BUILD_ID)) === 0n &&
    (user || !buildId) && size % elemSize === 0;
  // an empty chain: trace->nr (0) < skip is a fault, else nothing to copy
  if (ok) err = (flags & SKIP_MASK) > 0n ? -EFAULT : 0;
  zeroBuffer(vm, buf, size);
  return err;
}

/**
 * Mirrors `____bpf_perf_event_output()` and `__bpf_perf_event_output()`:
 * -EINVAL for flags beyond the index, -E2BIG for an index past the array,
 * then the slot's event (see the module comment).
 */
function perfEventOutput(
  loaded: LoadedObject,
  log: MapHelperLog,
  vm: CallContext,
): number {
  const slot = perfArraySlot(loaded, vm, vm.arg(2), vm.arg(3));
  if (typeof slot === "number") return slot;
  if (log.perfOutput === undefined) return -ENOENT;
  if (slot.index !== BigInt(slot.cpu)) return -EOPNOTSUPP;
  const data = vm.mem.readBytes(vm.arg(4), Number(vm.arg(5)));
  log.perfOutput.push({ map: slot.map, cpu: slot.cpu, data });
  return 0;
}

/** A perf event array slot a helper addresses, and the CPU it runs on. */
export interface PerfArraySlot {
  /** Name of the perf event array ("?" when it is not one of the object's). */
  readonly map: string;
  /** The slot index. */
  readonly index: bigint;
  /** The running CPU. */
  readonly cpu: number;
}

/**
 * The checks `__bpf_perf_event_output()` and `get_map_perf_counter()`
 * share on the perf event array at `mapAddress`: -EINVAL for `flags`
 * beyond the index, `BPF_F_CURRENT_CPU` naming the running CPU's slot,
 * -E2BIG for an index past the array.
 */
export function perfArraySlot(
  loaded: LoadedObject,
  vm: CallContext,
  mapAddress: bigint,
  flags: bigint,
): PerfArraySlot | number {
  if (flags & ~BPF_F_INDEX_MASK) return -EINVAL;
  const cpu = cpuOf(vm);
  const index = flags === BPF_F_CURRENT_CPU ? BigInt(cpu) : flags;
  const map = loaded.maps.find((m) => m.address === mapAddress);
  const def = map && loaded.object.maps.find((d) => d.name === map.name);
  // libbpf sizes a perf event array of max_entries 0 to the CPUs
  const maxEntries = def?.maxEntries || loaded.kernel.cpus.length;
  if (index >= BigInt(maxEntries)) return -E2BIG;
  return { map: map?.name ?? "?", index, cpu };
}
