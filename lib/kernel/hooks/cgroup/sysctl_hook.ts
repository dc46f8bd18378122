/**
 * The cgroup sysctl hook (kernel/bpf/cgroup.c), which the kernel cannot
 * test-run: {@link runSysctlHook} plays `__cgroup_bpf_run_filter_sysctl()`
 * for one read or write of a sysctl file by a task of the cgroup, running
 * the effective program array with the {@link SysctlContext} the hook
 * builds (sysctl_ctx.ts), the sysctl helpers bound to it
 * (sysctl_helpers.ts) and the cgroup run context's retval
 * (cgroup_run_ctx.ts). The sysctl's proc handler is not simulated: the
 * result says whether it runs, with which bytes and from which position.
 * @module
 */
import { EINVAL } from "../../../uapi/errno.ts";
import {
  cgroupProgDone,
  cgroupRetvalHelpers,
  CgroupRunCtx,
} from "./cgroup_run_ctx.ts";
import { findProgram, type LoadedObject } from "../../object_loader.ts";
import { type SysctlAccess, sysctlBytes, SysctlContext } from "./sysctl_ctx.ts";
import { sysctlHelpers } from "./sysctl_helpers.ts";
import {
  type RunContext,
  runInContext,
  TestRunError,
  type TestRunOptions,
} from "../../test_run.ts";

/** What one {@link runSysctlHook} reports. */
export interface SysctlHookResult {
  /** Each program's r0 as a u32, in array order. */
  readonly verdicts: readonly number[];
  /**
   * What `__cgroup_bpf_run_filter_sysctl()` returns: `run_ctx.retval` after
   * the array — 0 when every program allowed and none set an error, -EPERM
   * after a 0 verdict, or what `bpf_set_retval()` left. Nonzero, it is what
   * read()/write() return as is (`proc_sys_call_handler()`): the proc
   * handler does not run, even for a positive value.
   */
  readonly retval: number;
  /** Whether the proc handler runs (retval 0). */
  readonly proceeds: boolean;
  /**
   * On a write that proceeds: the bytes the proc handler gets — the
   * program's `bpf_sysctl_set_new_value()` bytes when one set them, the
   * written bytes otherwise. Undefined for reads and refused accesses.
   */
  readonly written: Uint8Array | undefined;
  /** Whether `written` is a program's replacement (`new_updated`, retval 0). */
  readonly replaced: boolean;
  /** `*ppos` after the programs: where the handler reads or writes. */
  readonly filePos: bigint;
  /** Lines `bpf_trace_printk` printed. */
  readonly printk: readonly string[];
  /** Instructions retired by all programs. */
  readonly steps: number;
}

/**
 * Runs the cgroup's effective `cgroup_sysctl` programs `names` (in order,
 * every one even after a denial, as `bpf_prog_run_array_cg()` does) for
 * one `access`, as `__cgroup_bpf_run_filter_sysctl()`: retval starts at 0;
 * a program returning 0 makes it -EPERM unless it already holds an error;
 * a write's bytes are replaced by a program's `bpf_sysctl_set_new_value()`
 * only when the final retval is 0 (the 6.18 kernel, with the fix
 * "bpf: cgroup: restore sysctl new-value replacement"). Throws
 * TestRunError (EINVAL) for a program of another type or named twice (the
 * attach would fail), and what stops a program (MemoryFault, ExecError).
 * Like `testRun`, it runs the programs as given: verify them first.
 *
 * @example
 * ```ts
 * const r = runSysctlHook(loaded, "deny_writes", {
 *   name: "net/ipv4/tcp_mem", current: "4096\t16384\t4194304\n",
 *   write: true, newValue: "1 2 3\n",
 * });
 * r.retval; // -1 (-EPERM) when the program returned 0
 * ```
 */
export function runSysctlHook(
  loaded: LoadedObject,
  names: string | readonly string[],
  access: SysctlAccess,
  opts: Pick<TestRunOptions, "cpu" | "maxSteps" | "engine" | "kfuncs"> = {},
): SysctlHookResult {
  const progs = typeof names === "string" ? [names] : names;
  for (const [i, name] of progs.entries()) {
    if (progs.indexOf(name) !== i) {
      // find_attach_entry(): a program is attached once per hook
      throw new TestRunError(`program '${name}' attached twice`, EINVAL);
    }
    const type = findProgram(loaded, name).type;
    if (type !== "cgroup_sysctl") {
      throw new TestRunError(
        `program '${name}' of type ${type} cannot attach to the sysctl hook`,
        EINVAL,
      );
    }
  }
  const ctx = new SysctlContext(loaded.kernel.space, access);
  const runCtx = new CgroupRunCtx(0);
  const helpers = new Map([
    ...sysctlHelpers(ctx),
    ...cgroupRetvalHelpers(runCtx),
  ]);
  const verdicts: number[] = [];
  const printk: string[] = [];
  let steps = 0;
  try {
    for (const name of progs) {
      const run = runInContext(
        loaded,
        name,
        {
          r1: ctx.address,
          helpers,
          release: () => {}, // the context outlives each program
        } satisfies RunContext,
        { ...opts, repeat: 1 },
      );
      cgroupProgDone(runCtx, run.r0);
      verdicts.push(run.retval);
      printk.push(...run.printk);
      steps += run.steps;
    }
  } finally {
    ctx.release();
  }
  const retval = runCtx.retval;
  const proceeds = retval === 0;
  const replaced = proceeds && ctx.newUpdated;
  let written: Uint8Array | undefined = undefined;
  if (proceeds && access.write) {
    written = replaced
      ? ctx.newVal!.slice(0, ctx.newLen)
      : sysctlBytes(access.newValue ?? "").slice();
  }
  return {
    verdicts,
    retval,
    proceeds,
    written,
    replaced,
    filePos: ctx.filePos,
    printk,
    steps,
  };
}
