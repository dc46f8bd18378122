/**
 * The run context of a cgroup hook (`struct bpf_cg_run_ctx`,
 * kernel/bpf/cgroup.c): the `retval` every program of the hook's effective
 * array reads and writes with `bpf_get_retval()` / `bpf_set_retval()`, and
 * how `bpf_prog_run_array_cg()` turns each program's verdict into the
 * hook's result. A hook runner makes one {@link CgroupRunCtx} per
 * invocation (initialised as its `__cgroup_bpf_run_filter_*()` does: 0, or
 * the kernel's own error for getsockopt), gives each program
 * {@link cgroupRetvalHelpers} bound to it, and after each program calls
 * {@link cgroupProgDone}; `retval` is then what the hook returns.
 * @module
 */
import type { HelperFn } from "../../../exec/state.ts";
import { EPERM } from "../../../uapi/errno.ts";

/** Helper ids (include/uapi/linux/bpf.h). */
export const CGROUP_RUN_CTX_HELPER = {
  get_retval: 186,
  set_retval: 187,
} as const;

/** `MAX_ERRNO`: `IS_ERR_VALUE()` is true for -1 … -4095. */
export const MAX_ERRNO = 4095;

/** `IS_ERR_VALUE((long)v)` for an `int`: v is a negative errno. */
export function isErrValue(v: number): boolean {
  return v < 0 && v >= -MAX_ERRNO;
}

/** `struct bpf_cg_run_ctx`: the hook's retval, shared by its programs. */
export class CgroupRunCtx {
  /** `run_ctx.retval` (a C `int`). */
  retval: number;

  /** `run_ctx.retval = retval` at the start of `bpf_prog_run_array_cg()`. */
  constructor(initialRetval = 0) {
    this.retval = initialRetval | 0;
  }
}

/**
 * `bpf_get_retval()` (the run context's retval, sign-extended as the
 * helper's `int` return is) and `bpf_set_retval(int)` (stores the low 32
 * bits of r1 as an `int`, returns 0), bound to `runCtx`. Which program
 * types may call them is the verifier's business (`cgroup_common_func_proto()`).
 */
export function cgroupRetvalHelpers(
  runCtx: CgroupRunCtx,
): Map<number, HelperFn> {
  return new Map<number, HelperFn>([
    [CGROUP_RUN_CTX_HELPER.get_retval, () => runCtx.retval],
    [CGROUP_RUN_CTX_HELPER.set_retval, (vm) => {
      runCtx.retval = vm.argLo(1) | 0;
      return 0;
    }],
  ]);
}

/**
 * One program of the array has returned `r0`: mirrors the loop body of
 * `bpf_prog_run_array_cg()`. `func_ret` is r0 as a u32; with `retFlags`
 * (cgroup_skb egress, the sock_addr hooks that take flags) its bits above
 * bit 0 are the flags to OR in, returned, and only bit 0 is the verdict. A
 * verdict of 0 turns a retval that is not already an error into -EPERM.
 */
export function cgroupProgDone(
  runCtx: CgroupRunCtx,
  r0: bigint,
  retFlags = false,
): number {
  let funcRet = Number(BigInt.asUintN(32, r0));
  let flags = 0;
  if (retFlags) {
    flags = funcRet >>> 1;
    funcRet &= 1;
  }
  if (funcRet === 0 && !isErrValue(runCtx.retval)) runCtx.retval = -EPERM;
  return flags;
}
