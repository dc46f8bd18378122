/**
 * Runtime of the generic helpers about time and the current task
 * (kernel/bpf/helpers.c, kernel/trace/bpf_trace.c, net/core/filter.c).
 *
 * ## The simulated clocks
 * Every clock derives from the state's simulated time (`vm.nowNs()`):
 * - `CLOCK_MONOTONIC` and `CLOCK_BOOTTIME` are that time (nothing suspends);
 * - the coarse clock is the time of the last tick: {@link SIM_HZ} ticks a
 *   second (Debian's `CONFIG_HZ=250`), so it is the time rounded down to a
 *   multiple of {@link TICK_NS};
 * - jiffies count those ticks from the kernel's `INITIAL_JIFFIES`
 *   (`(unsigned int)(-300 * HZ)`, so that 32-bit jiffies wrap 5 minutes
 *   after boot);
 * - `CLOCK_TAI` is the boot time plus {@link SIM_TAI_OFFSET_NS}: the
 *   simulated machine booted at the Unix epoch, and TAI runs 37 s ahead of
 *   UTC.
 *
 * ## The simulated current task
 * Each CPU runs one user task, the same whatever program runs (a test run
 * or a scheduled invocation, task or NMI level): pid = tgid =
 * {@link SIM_TASK_PID_BASE} + CPU id, uid = gid = 0 (root, as the oracle
 * runs), comm {@link SIM_TASK_COMM}, in the root cgroup of the default
 * hierarchy (id {@link SIM_ROOT_CGROUP_ID}, level 0) and the root net_cls
 * cgroup (classid 0). Its `struct task_struct` is a zero-filled read-only
 * `kernel` region of {@link SIM_TASK_STRUCT_SIZE} bytes, mapped on first
 * use, per kernel and CPU: the fields are not laid out.
 * @module
 */
import { regionAddress } from "../exec/memory.ts";
import type { CallContext, HelperFn } from "../exec/state.ts";
import type { StateOwner } from "./helpers.ts";
import type { Kernel } from "./kernel.ts";
import type { MapHelperLog } from "./map_helpers.ts";
import { EINVAL } from "./maps/map.ts";

/** Ticks per second of the simulated kernel (`CONFIG_HZ`). */
export const SIM_HZ = 250;
/** Nanoseconds per tick (`TICK_NSEC`). */
export const TICK_NS: number = 1_000_000_000 / SIM_HZ;
/** `INITIAL_JIFFIES` of a 64-bit kernel: `(unsigned long)(unsigned int)(-300 * HZ)`. */
export const INITIAL_JIFFIES: bigint = BigInt((-300 * SIM_HZ) >>> 0);
/** `CLOCK_TAI` − `CLOCK_BOOTTIME`: boot at the Unix epoch, plus TAI − UTC (37 s). */
export const SIM_TAI_OFFSET_NS: bigint = 37_000_000_000n;
/** pid (and tgid) of CPU 0's task; CPU `c` runs pid `SIM_TASK_PID_BASE + c`. */
export const SIM_TASK_PID_BASE = 1000;
/** `comm` of every simulated task. */
export const SIM_TASK_COMM = "bpfsim";
/** Id of the root cgroup of the default hierarchy (`cgroup_id(&cgrp_dfl_root.cgrp)`). */
export const SIM_ROOT_CGROUP_ID = 1;
/** Bytes of the fake `struct task_struct` region (at least the real size). */
export const SIM_TASK_STRUCT_SIZE = 16384;
/** `_NSIG`: the highest signal number. */
const NSIG = 64;

/** Helper ids (include/uapi/linux/bpf.h). */
export const TASK_HELPER = {
  get_current_pid_tgid: 14,
  get_current_uid_gid: 15,
  get_current_comm: 16,
  get_cgroup_classid: 17,
  get_current_task: 35,
  get_numa_node_id: 42,
  get_current_cgroup_id: 80,
  send_signal: 109,
  send_signal_thread: 117,
  jiffies64: 118,
  get_current_ancestor_cgroup_id: 123,
  ktime_get_boot_ns: 125,
  get_current_task_btf: 158,
  ktime_get_coarse_ns: 160,
  get_func_ip: 173,
  get_attach_cookie: 174,
  ktime_get_tai_ns: 208,
} as const;

/** A signal `bpf_send_signal*` sent (recorded in `MapHelperLog.signals`). */
export interface SentSignal {
  /** CPU whose current task got it. */
  readonly cpu: number;
  /** That task's pid. */
  readonly pid: number;
  /** Signal number. */
  readonly sig: number;
  /** `PIDTYPE_TGID` (the process, `bpf_send_signal`) or `PIDTYPE_PID` (the thread). */
  readonly target: "process" | "thread";
}

/** The CPU a helper runs on: the state's owner when the kernel runs it, else 0. */
export function cpuOf(vm: CallContext): number {
  const owner = vm.owner as StateOwner | undefined;
  return owner?.cpu?.id ?? 0;
}

/** pid of the simulated task on `cpu`. */
export function simTaskPid(cpu: number): number {
  return SIM_TASK_PID_BASE + cpu;
}

/** Fake `task_struct` addresses per kernel, by CPU. */
const TASKS = new WeakMap<Kernel, bigint[]>();

/** Address of the simulated `struct task_struct` current on `cpu`. */
export function simTaskAddress(kernel: Kernel, cpu: number): bigint {
  let tasks = TASKS.get(kernel);
  if (tasks === undefined) TASKS.set(kernel, tasks = []);
  return tasks[cpu] ??= regionAddress(
    kernel.space.mapRegionId("kernel", SIM_TASK_STRUCT_SIZE, {
      name: `task_struct[cpu${cpu}]`,
      write: false,
    }),
  );
}

/** The time and current-task helpers of a kernel, by id. */
export function taskHelpers(
  kernel: Kernel,
  log: MapHelperLog,
): Map<number, HelperFn> {
  const H = TASK_HELPER;
  const send = (vm: CallContext, target: SentSignal["target"]): number => {
    // mirrors bpf_send_signal_common(): the task is a user task, not
    // init; valid_signal() refuses sig > _NSIG (check_kill_permission()
    // or the early check before irq_work), sig 0 only checks permission
    const sig = vm.argLo(1) >>> 0;
    if (sig > NSIG) return -EINVAL;
    if (sig === 0) return 0;
    const cpu = cpuOf(vm);
    (log.signals ??= []).push({ cpu, pid: simTaskPid(cpu), sig, target });
    return 0;
  };
  return new Map<number, HelperFn>([
    // bpf_ktime_get_boot_ns(): ktime_get_boot_fast_ns(), nothing suspends
    [H.ktime_get_boot_ns, (vm) => vm.nowNs()],
    // bpf_ktime_get_coarse_ns(): ktime_get_coarse_ns(), the last tick
    [H.ktime_get_coarse_ns, (vm) => coarseNs(vm.nowNs())],
    // bpf_ktime_get_tai_ns(): ktime_get_tai_fast_ns()
    [H.ktime_get_tai_ns, (vm) => BigInt(vm.nowNs()) + SIM_TAI_OFFSET_NS],
    // bpf_jiffies64(): get_jiffies_64()
    [H.jiffies64, (vm) => jiffies64(vm.nowNs())],
    // bpf_get_numa_node_id(): numa_node_id(), one node
    [H.get_numa_node_id, () => 0],
    // bpf_get_current_pid_tgid(): tgid << 32 | pid
    [H.get_current_pid_tgid, (vm) => {
      const pid = BigInt(simTaskPid(cpuOf(vm)));
      return (pid << 32n) | pid;
    }],
    // bpf_get_current_uid_gid(): gid << 32 | uid, root
    [H.get_current_uid_gid, () => 0],
    [H.get_current_comm, (vm) => {
      // bpf_get_current_comm(): strscpy_pad(buf, current->comm, size)
      const size = vm.argLo(2) >>> 0;
      const buf = new Uint8Array(size);
      const comm = new TextEncoder().encode(SIM_TASK_COMM);
      buf.set(comm.subarray(0, Math.max(0, size - 1)));
      vm.mem.writeBytes(vm.arg(1), buf);
      return 0;
    }],
    // task_get_classid(): the task's net_cls classid (root: 0); a test run
    // is not in softirq, so the skb's socket is not consulted
    [H.get_cgroup_classid, () => 0],
    // bpf_get_current_cgroup_id(): cgroup_id(task_dfl_cgroup(current))
    [H.get_current_cgroup_id, () => SIM_ROOT_CGROUP_ID],
    // bpf_get_current_ancestor_cgroup_id(): cgroup_ancestor() or 0; the
    // task's cgroup is the root, at level 0 (the level is an int)
    [H.get_current_ancestor_cgroup_id, (vm) => {
      return vm.argLo(1) === 0 ? SIM_ROOT_CGROUP_ID : 0;
    }],
    // bpf_get_current_task() / _btf(): (long)current
    [H.get_current_task, (vm) => simTaskAddress(kernel, cpuOf(vm))],
    [H.get_current_task_btf, (vm) => simTaskAddress(kernel, cpuOf(vm))],
    // bpf_get_func_ip_kprobe(): 0 when no kprobe at a function entry runs
    // (nothing is attached in the simulation)
    [H.get_func_ip, () => 0],
    // bpf_get_attach_cookie_*(): the link's cookie, 0 without one
    [H.get_attach_cookie, () => 0],
    [H.send_signal, (vm) => send(vm, "process")],
    [H.send_signal_thread, (vm) => send(vm, "thread")],
  ]);
}

/** `ktime_get_coarse_ns()` at simulated time `ns`: the last tick's time. */
export function coarseNs(ns: number): number {
  return ns - (ns % TICK_NS);
}

/** `get_jiffies_64()` at simulated time `ns`. */
export function jiffies64(ns: number): bigint {
  return INITIAL_JIFFIES + BigInt(Math.floor(ns / TICK_NS));
}
