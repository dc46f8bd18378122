/**
 * The subprogram table's vocabulary: `struct bpf_subprog_info` and the
 * limits around it (`BPF_MAX_SUBPROGS`, `MAX_CALL_FRAMES`, `BPF_MAXINSNS` …),
 * the errno values of the pre-pass, the {@link CfgError} it throws, and the
 * lookups `find_subprog()` and `bpf_find_containing_subprog()`.
 *
 * Shared by subprogs.ts (`add_subprog_and_kfunc()`, `check_subprogs()`,
 * `check_btf_info()`) and max_stack_depth.ts (`check_max_stack_depth()`).
 * @module
 */
import {
  E2BIG,
  EACCES,
  EFAULT,
  EINVAL,
  ENOTSUPP,
  EPERM,
} from "../uapi/errno.ts";

/** At most this many functions in one program (`BPF_MAX_SUBPROGS`). */
export const BPF_MAX_SUBPROGS = 256;
/** At most this many frames on a bpf-to-bpf call chain (`MAX_CALL_FRAMES`). */
export const MAX_CALL_FRAMES = 8;
/** Longest program an unprivileged loader may submit (`BPF_MAXINSNS`). */
export const BPF_MAXINSNS = 4096;
/** Longest program a `bpf_capable` loader may submit (`BPF_COMPLEXITY_LIMIT_INSNS`). */
export const BPF_COMPLEXITY_LIMIT_INSNS = 1_000_000;
/** At most this many distinct (btf_id, offset) kfuncs per program (`MAX_KFUNC_DESCS`). */
export const MAX_KFUNC_DESCS = 256;
/** Helper id of `bpf_tail_call` (`BPF_FUNC_tail_call`). */
export const BPF_FUNC_TAIL_CALL = 12;
/** Subprograms requesting a private stack need at least this much (`BPF_PRIV_STACK_MIN_SIZE`). */
export const BPF_PRIV_STACK_MIN_SIZE = 64;

/** The kernel's errno values used by the pre-pass (positive; errors carry them negated). */
export const ERRNO = {
  EPERM,
  E2BIG,
  EACCES,
  EFAULT,
  EINVAL,
  ENOTSUPP,
} as const;

/** A program refused before (or right after) the main pass. */
export class CfgError extends Error {
  /** Slot the error is about, or -1 when it is about the whole program. */
  readonly insnIndex: number;
  /** The load's return value as the kernel gives it: -22 for -EINVAL, -7 for -E2BIG … */
  readonly errno: number;
  /** Lines the kernel writes to the verifier log, in order (may be empty). */
  readonly logLines: readonly string[];

  /**
   * `logLines` are the kernel's log lines; the message is the last (the
   * decisive line the oracle reports), or `what` when the kernel logs nothing.
   */
  constructor(
    insnIndex: number,
    errno: number,
    logLines: readonly string[],
    what?: string,
  ) {
    super(logLines.at(-1) ?? what ?? `error ${errno}`);
    this.name = "CfgError";
    this.insnIndex = insnIndex;
    this.errno = errno;
    this.logLines = logLines;
  }
}

/** Throws the pre-pass error: `lines` are the kernel's log lines, `errno` positive. */
export function throwCfgError(
  insnIndex: number,
  errno: number,
  ...lines: string[]
): never {
  throw new CfgError(insnIndex, -errno, lines);
}

/** Private-stack decision for one subprogram (`enum priv_stack_mode`). */
export type PrivStackMode = "unknown" | "none" | "adaptive";

/** One function of the program; mirrors `struct bpf_subprog_info`. */
export interface SubprogInfo {
  /** First slot. */
  start: number;
  /** One past the last slot (the next function's start, or the program length). */
  end: number;
  /** Last `exit` slot seen in the function, -1 if none. */
  exitIdx: number;
  /** Calls `bpf_tail_call` directly. */
  hasTailCall: boolean;
  /** A tail call is reachable from here through bpf-to-bpf calls. */
  tailCallReachable: boolean;
  /** Uses the legacy `ld_abs` / `ld_ind` packet loads. */
  hasLdAbs: boolean;
  /** Used as a callback (set by the main pass). */
  isCb: boolean;
  /** Used as an asynchronous callback, e.g. of `bpf_timer_set_callback` (set by the main pass). */
  isAsyncCb: boolean;
  /** The exception callback named by the main function's BTF decl tag. */
  isExceptionCb: boolean;
  /** Calls something that may change packet data (itself or through callees). */
  changesPktData: boolean;
  /** Calls something that may sleep (itself or through callees). */
  mightSleep: boolean;
  /** Bytes of stack the main pass found this function to use (0 until then). */
  stackDepth: number;
  /** Private stack choice made by {@link checkMaxStackDepth}. */
  privStackMode: PrivStackMode;
}

/** The subprogram table of a program. */
export interface SubprogLayout {
  /** Functions sorted by start; `subprogs[0]` is the main function at slot 0. */
  readonly subprogs: SubprogInfo[];
  /** Index of the exception callback, or 0 when there is none (kernel convention). */
  readonly exceptionCallbackSubprog: number;
  /** Distinct (btf_id, offset) kfuncs the program calls. */
  readonly kfuncCount: number;
}

/** Index of the function containing `slot`; mirrors bpf_find_containing_subprog(). */
export function findContainingSubprog(
  subprogs: readonly SubprogInfo[],
  slot: number,
): number {
  if (subprogs.length === 0 || slot < 0) return -1;
  let lo = 0;
  let hi = subprogs.length - 1;
  while (lo < hi) {
    const mid = lo + ((hi - lo + 1) >> 1);
    if (subprogs[mid].start <= slot) lo = mid;
    else hi = mid - 1;
  }
  return lo;
}

/** Index of the function starting exactly at `slot`, or -1; mirrors find_subprog(). */
export function findSubprog(
  subprogs: readonly SubprogInfo[],
  slot: number,
): number {
  const i = findContainingSubprog(subprogs, slot);
  return i >= 0 && subprogs[i].start === slot ? i : -1;
}
