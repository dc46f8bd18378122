/**
 * Runtime of the tracing helpers (kernel/trace/bpf_trace.c,
 * kernel/bpf/helpers.c, kernel/bpf/task_iter.c) whose answer the simulated
 * machine determines without a real attachment.
 *
 * ## What the simulated machine has, and so what they return
 * - No user memory is mapped (`generic_helpers_mem.ts`): every region sits
 *   at a kernel address, which fails `access_ok()`, and the simulated tasks
 *   have an mm with no VMA. So `bpf_probe_write_user` fails with -EFAULT
 *   (-EPERM in interrupt context: an NMI or a timer's softirq),
 *   `bpf_copy_from_user_task` reads nothing (-EFAULT, destination zeroed)
 *   and `bpf_find_vma` finds no VMA (-ENOENT; the callback never runs).
 * - No LBR: `perf_snapshot_branch_stack` is the default static call that
 *   returns 0 entries and no sample carries `PERF_SAMPLE_BRANCH_STACK`, so
 *   `bpf_get_branch_snapshot` and `bpf_read_branch_records` return -ENOENT
 *   once their flags pass, leaving the buffer alone.
 * - `bpf_task_pt_regs`: each task the program names (the simulated tasks
 *   are those of `generic_helpers_task.ts`) gets a zero-filled read-only
 *   `kernel` region of `sizeof(struct pt_regs)` (168 bytes), mapped on first
 *   use: its user registers are not laid out, as `task_struct`'s fields are
 *   not.
 * - Every simulated task lives in the initial pid namespace: inode
 *   {@link SIM_PID_NS_INO} (`PROC_PID_INIT_INO`) on the nsfs device
 *   {@link SIM_NSFS_DEV} (0:4, as `stat -L /proc/self/ns/pid` shows on the
 *   oracle's machine), where its pid and tgid are those of
 *   `bpf_get_current_pid_tgid`.
 * - Perf event arrays follow `generic_helpers_perf.ts`: slots are empty
 *   (-ENOENT) unless the log has `perfOutput`, in which case slot `i` holds
 *   CPU `i`'s BPF-output event (per-CPU, not inherited, not pinned). Such an
 *   event counts nothing (only `perf_event_output()` writes to it) and has
 *   been enabled and running since boot, so a read on its CPU gives counter
 *   0 and enabled = running = the simulated time; from another CPU,
 *   `perf_event_read_local()` refuses a per-CPU event with -EINVAL.
 * - A perf_event program is run by a per-CPU `cpu-clock` software event of
 *   the CPU it runs on, enabled at boot: `bpf_perf_prog_read_value` reads
 *   counter = enabled = running = the simulated time (the clock counts ns).
 * @module
 */
import type { CallContext, HelperFn } from "../exec/state.ts";
import { PT_REGS_SIZE } from "../verifier/ctx_access/tracing.ts";
import { zeroBuffer } from "./generic_helpers_mem.ts";
import { EFAULT, EINVAL, ENOENT, EPERM } from "../uapi/errno.ts";
import { perfArraySlot } from "./generic_helpers_perf.ts";
import { cpuOf, simTaskPid } from "./generic_helpers_task.ts";
import type { StateOwner } from "./helpers.ts";
import type { Kernel } from "./kernel.ts";
import type { ObjectHelperEnv } from "./object_helpers.ts";
import type { LoadedObject } from "./object_loader.ts";

/** Helper ids (include/uapi/linux/bpf.h). */
export const TRACING_HELPER = {
  perf_event_read: 22,
  probe_write_user: 36,
  perf_event_read_value: 55,
  perf_prog_read_value: 56,
  read_branch_records: 119,
  get_ns_current_pid_tgid: 120,
  task_pt_regs: 175,
  get_branch_snapshot: 176,
  find_vma: 180,
  copy_from_user_task: 191,
} as const;

/** Device of the nsfs superblock (`MKDEV(0, 4)`), as `bpf_get_ns_current_pid_tgid` expects it. */
export const SIM_NSFS_DEV = 4n;
/** Inode of the initial pid namespace (`PROC_PID_INIT_INO`). */
export const SIM_PID_NS_INO = 0xeffffffcn;
/** `sizeof(struct bpf_pidns_info)`: pid and tgid, two u32. */
export const BPF_PIDNS_INFO_SIZE = 8;
/** `sizeof(struct bpf_perf_event_value)`: counter, enabled, running (u64). */
export const BPF_PERF_EVENT_VALUE_SIZE = 24;
/** `BPF_F_GET_BRANCH_RECORDS_SIZE`: return the bytes the records need. */
export const BPF_F_GET_BRANCH_RECORDS_SIZE = 1n;

/** What `perf_event_read_local()` reads: counter, enabled and running time. */
interface PerfReading {
  readonly counter: bigint;
  readonly enabled: bigint;
  readonly running: bigint;
}

/** Fake `struct pt_regs` regions per kernel, by task address. */
const PT_REGS = new WeakMap<Kernel, Map<bigint, bigint>>();

/** Address of the (zero-filled, read-only) `pt_regs` of the task at `task`. */
export function simTaskPtRegs(
  vm: CallContext,
  kernel: Kernel,
  task: bigint,
): bigint {
  let regs = PT_REGS.get(kernel);
  if (regs === undefined) PT_REGS.set(kernel, regs = new Map());
  let address = regs.get(task);
  if (address === undefined) {
    const owner = vm.mem.regionAt(task)?.name ?? `0x${task.toString(16)}`;
    address = kernel.space.mapRegion("kernel", PT_REGS_SIZE, {
      name: `pt_regs[${owner}]`,
      write: false,
    });
    regs.set(task, address);
  }
  return address;
}

/** The tracing helpers of `env.loaded`, by id. */
export function tracingHelpers(env: ObjectHelperEnv): Map<number, HelperFn> {
  const { loaded, log } = env;
  const kernel = loaded.kernel;
  const H = TRACING_HELPER;
  const perfSlot = (vm: CallContext, map: bigint, flags: bigint) =>
    perfArrayCounter(loaded, log.perfOutput !== undefined, vm, map, flags);
  return new Map<number, HelperFn>([
    [H.probe_write_user, probeWriteUser],
    [H.copy_from_user_task, (vm) => {
      // mirrors bpf_copy_from_user_task(): access_process_vm() finds no
      // VMA and copies 0 bytes, a partial read
      const size = vm.argLo(2) >>> 0;
      if (vm.arg(5) !== 0n) return -EINVAL;
      if (size === 0) return 0;
      zeroBuffer(vm, vm.arg(1), size);
      return -EFAULT;
    }],
    // mirrors bpf_find_vma(): flags, a NULL task, then find_vma() in an
    // mm with no VMA leaves ret at -ENOENT without calling back
    [H.find_vma, (vm) => (vm.arg(5) !== 0n ? -EINVAL : -ENOENT)],
    // mirrors bpf_get_branch_snapshot() on x86 (and its inlined form in
    // do_misc_fixups()): flags first, then 0 entries is -ENOENT
    [H.get_branch_snapshot, (vm) => (vm.arg(3) !== 0n ? -EINVAL : -ENOENT)],
    // mirrors bpf_read_branch_records(): unknown flags, then a sample
    // without PERF_SAMPLE_BRANCH_STACK
    [H.read_branch_records, (vm) => {
      return vm.arg(4) & ~BPF_F_GET_BRANCH_RECORDS_SIZE ? -EINVAL : -ENOENT;
    }],
    // bpf_task_pt_regs(): task_pt_regs(task), a fake region here
    [H.task_pt_regs, (vm) => simTaskPtRegs(vm, kernel, vm.arg(1))],
    [H.get_ns_current_pid_tgid, getNsCurrentPidTgid],
    [H.perf_event_read, (vm) => {
      // mirrors bpf_perf_event_read(): the error, else the counter
      const got = perfSlot(vm, vm.arg(1), vm.arg(2));
      return typeof got === "number" ? got : got.counter;
    }],
    [H.perf_event_read_value, (vm) => {
      const size = vm.argLo(4) >>> 0;
      const got = size === BPF_PERF_EVENT_VALUE_SIZE
        ? perfSlot(vm, vm.arg(1), vm.arg(2))
        : -EINVAL;
      return writePerfValue(vm, vm.arg(3), size, got);
    }],
    [H.perf_prog_read_value, (vm) => {
      const size = vm.argLo(3) >>> 0;
      const now = BigInt(vm.nowNs());
      const got = size === BPF_PERF_EVENT_VALUE_SIZE
        ? { counter: now, enabled: now, running: now }
        : -EINVAL;
      return writePerfValue(vm, vm.arg(2), size, got);
    }],
  ]);
}

/**
 * Mirrors `bpf_probe_write_user()`: -EPERM in interrupt context
 * (`in_interrupt()` counts NMI and softirq), else `copy_to_user_nofault()`
 * fails with -EFAULT: a kernel address fails `access_ok()`, a user one is
 * not mapped. Nothing is written.
 */
function probeWriteUser(vm: CallContext): number {
  const owner = vm.owner as StateOwner | undefined;
  if ((owner?.level ?? 0) > 0 || owner?.softirq) return -EPERM;
  return -EFAULT;
}

/**
 * Mirrors `bpf_get_ns_current_pid_tgid()`: -EINVAL, with `nsdata` zeroed,
 * for a size other than `struct bpf_pidns_info`, a `dev` that does not fit
 * `dev_t` (u32) or a namespace other than the task's (`ns_match()`).
 */
function getNsCurrentPidTgid(vm: CallContext): number {
  const dev = vm.arg(1), ino = vm.arg(2), nsdata = vm.arg(3);
  const size = vm.argLo(4) >>> 0;
  const matches = size === BPF_PIDNS_INFO_SIZE &&
    dev <= 0xffffffffn && dev === SIM_NSFS_DEV && ino === SIM_PID_NS_INO;
  if (!matches) {
    zeroBuffer(vm, nsdata, size);
    return -EINVAL;
  }
  // task_pid_nr_ns() and task_tgid_nr_ns() in the initial namespace
  const pid = simTaskPid(cpuOf(vm));
  const info = new Uint8Array(BPF_PIDNS_INFO_SIZE);
  const view = new DataView(info.buffer);
  view.setUint32(0, pid, true);
  view.setUint32(4, pid, true);
  vm.mem.writeBytes(nsdata, info);
  return 0;
}

/**
 * Mirrors `get_map_perf_counter()` then `perf_event_read_local()` (see the
 * module comment): -EINVAL for flags beyond the index, -E2BIG past the
 * array, -ENOENT for an empty slot, -EINVAL for another CPU's event.
 */
function perfArrayCounter(
  loaded: LoadedObject,
  slotsFilled: boolean,
  vm: CallContext,
  map: bigint,
  flags: bigint,
): PerfReading | number {
  const slot = perfArraySlot(loaded, vm, map, flags);
  if (typeof slot === "number") return slot;
  if (!slotsFilled) return -ENOENT;
  // a per-CPU event must be read on its CPU
  if (slot.index !== BigInt(slot.cpu)) return -EINVAL;
  const now = BigInt(vm.nowNs());
  return { counter: 0n, enabled: now, running: now };
}

/**
 * The tail of `bpf_perf_event_read_value()` / `bpf_perf_prog_read_value()`:
 * on success the three u64 go to `buf`, on error `buf` is zeroed.
 */
function writePerfValue(
  vm: CallContext,
  buf: bigint,
  size: number,
  got: PerfReading | number,
): number {
  if (typeof got === "number") {
    zeroBuffer(vm, buf, size);
    return got;
  }
  const bytes = new Uint8Array(BPF_PERF_EVENT_VALUE_SIZE);
  const view = new DataView(bytes.buffer);
  view.setBigUint64(0, got.counter, true);
  view.setBigUint64(8, got.enabled, true);
  view.setBigUint64(16, got.running, true);
  vm.mem.writeBytes(buf, bytes);
  return 0;
}
