/**
 * The subprogram table, as `bpf_check()` builds it before the main pass:
 * `add_subprog_and_kfunc()` finds where functions start, `check_subprogs()`
 * keeps jumps inside them, and `check_btf_info()` matches them against BTF
 * `func_info`. After the main pass has measured each function's stack,
 * `check_max_stack_depth()` (max_stack_depth.ts, re-exported here) bounds the
 * deepest call chain; the table's types, limits and lookups are in
 * subprog_info.ts and re-exported here too.
 *
 * Errors are thrown as {@link CfgError}: the kernel's log line(s), the slot
 * they are about, and the kernel's (negative) errno. The verifier proper turns
 * one into its `VerifierError` and log.
 * @module
 */
import type { CallInsn, Insn } from "../isa/insn.ts";
import { calleeOf, isPseudoFunc } from "./insn_aux.ts";
import {
  BPF_COMPLEXITY_LIMIT_INSNS,
  BPF_FUNC_TAIL_CALL,
  BPF_MAX_SUBPROGS,
  BPF_MAXINSNS,
  CfgError,
  ERRNO,
  findSubprog,
  MAX_KFUNC_DESCS,
  type SubprogInfo,
  type SubprogLayout,
  throwCfgError,
} from "./subprog_info.ts";

export {
  BPF_COMPLEXITY_LIMIT_INSNS,
  BPF_FUNC_TAIL_CALL,
  BPF_MAX_SUBPROGS,
  BPF_MAXINSNS,
  BPF_PRIV_STACK_MIN_SIZE,
  CfgError,
  ERRNO,
  findContainingSubprog,
  findSubprog,
  MAX_CALL_FRAMES,
  MAX_KFUNC_DESCS,
  type PrivStackMode,
  type SubprogInfo,
  type SubprogLayout,
} from "./subprog_info.ts";
export {
  checkMaxStackDepth,
  type StackDepthOptions,
  type StackDepthResult,
} from "./max_stack_depth.ts";

/**
 * Refuses empty and over-long programs as `bpf_prog_load()` does, with -E2BIG
 * and nothing in the log (the verifier never starts).
 */
export function checkProgLen(insnCnt: number, bpfCapable: boolean): void {
  const limit = bpfCapable ? BPF_COMPLEXITY_LIMIT_INSNS : BPF_MAXINSNS;
  if (insnCnt === 0 || insnCnt > limit) {
    const what = insnCnt === 0
      ? "empty program"
      : `${insnCnt} insns exceed the limit of ${limit}`;
    throw new CfgError(-1, -ERRNO.E2BIG, [], what);
  }
}

/** Options of {@link addSubprogs}. */
export interface AddSubprogsOptions {
  /** The loader has CAP_BPF (default true: bpfsim models a root loader). */
  readonly bpfCapable?: boolean;
  /** The program's license is GPL-compatible (default true). */
  readonly gplCompatible?: boolean;
  /** The program will be JITed (default true). */
  readonly jitRequested?: boolean;
  /** Slot of the exception callback named by BTF (`exception_callback:` tag), if any. */
  readonly exceptionCallbackInsn?: number;
  /** True when `btfId` names a function in the kernel (or module, by `offset`) BTF; default: always. */
  readonly kfuncIsFunction?: (btfId: number, offset: number) => boolean;
}

function newSubprog(start: number): SubprogInfo {
  return {
    start,
    end: start,
    exitIdx: -1,
    hasTailCall: false,
    tailCallReachable: false,
    hasLdAbs: false,
    isCb: false,
    isAsyncCb: false,
    isExceptionCb: false,
    changesPktData: false,
    mightSleep: false,
    stackDepth: 0,
    privStackMode: "unknown",
  };
}

// mirrors add_subprog()
function addSubprog(
  subprogs: SubprogInfo[],
  insnCnt: number,
  at: number,
  off: number,
): number {
  if (off >= insnCnt || off < 0) {
    throwCfgError(at, ERRNO.EINVAL, "call to invalid destination");
  }
  const found = findSubprog(subprogs, off);
  if (found >= 0) return found;
  if (subprogs.length >= BPF_MAX_SUBPROGS) {
    throwCfgError(at, ERRNO.E2BIG, "too many subprograms");
  }
  subprogs.push(newSubprog(off));
  subprogs.sort((a, b) => a.start - b.start);
  return findSubprog(subprogs, off);
}

// mirrors the structural part of add_kfunc_call(): what can be decided
// without the kernel's BTF, plus the kfuncIsFunction hook for the rest
function addKfuncCall(
  insn: CallInsn,
  at: number,
  seen: Set<string>,
  opts: AddSubprogsOptions,
): void {
  if (seen.size === 0) {
    if (opts.jitRequested === false) {
      throwCfgError(
        at,
        ERRNO.ENOTSUPP,
        "JIT is required for calling kernel function",
      );
    }
    if (opts.gplCompatible === false) {
      throwCfgError(
        at,
        ERRNO.EINVAL,
        "cannot call kernel function from non-GPL compatible program",
      );
    }
  }
  const btfId = insn.imm >>> 0;
  const offset = insn.off;
  // a zero call is kept for dead-code elimination to remove
  if (btfId === 0 && offset === 0) return;
  if (offset < 0) {
    throwCfgError(
      at,
      ERRNO.EINVAL,
      "negative offset disallowed for kernel module function call",
      "failed to find BTF for kernel function",
    );
  }
  const key = `${btfId}:${offset}`;
  if (seen.has(key)) return;
  if (seen.size === MAX_KFUNC_DESCS) {
    throwCfgError(at, ERRNO.E2BIG, "too many different kernel function calls");
  }
  if (opts.kfuncIsFunction && !opts.kfuncIsFunction(btfId, offset)) {
    throwCfgError(at, ERRNO.EINVAL, `kernel btf_id ${btfId} is not a function`);
  }
  seen.add(key);
}

/**
 * Finds every function start: slot 0, each local call's and function
 * address's target, and the exception callback. Mirrors add_subprog_and_kfunc().
 */
export function addSubprogs(
  insns: readonly Insn[],
  opts: AddSubprogsOptions = {},
): SubprogLayout {
  const insnCnt = insns.length;
  const subprogs: SubprogInfo[] = [];
  const kfuncs = new Set<string>();
  addSubprog(subprogs, insnCnt, 0, 0);
  insns.forEach((insn, i) => {
    const callee = calleeOf(insn, i);
    const isKfunc = insn.kind === "call" && insn.callee === "kfunc";
    if (
      !isKfunc && !isPseudoFunc(insn) &&
      !(insn.kind === "call" && insn.callee === "local")
    ) {
      return;
    }
    if (opts.bpfCapable === false) {
      throwCfgError(
        i,
        ERRNO.EPERM,
        "loading/calling other bpf or kernel functions are allowed for CAP_BPF and CAP_SYS_ADMIN",
      );
    }
    if (isKfunc) addKfuncCall(insn, i, kfuncs, opts);
    else addSubprog(subprogs, insnCnt, i, callee);
  });
  let exceptionCallbackSubprog = 0;
  const exCb = opts.exceptionCallbackInsn ?? 0;
  if (exCb > 0) {
    exceptionCallbackSubprog = addSubprog(subprogs, insnCnt, -1, exCb);
    const info = subprogs[exceptionCallbackSubprog];
    // mirrors mark_subprog_exc_cb()
    info.isCb = info.isAsyncCb = info.isExceptionCb = true;
  }
  subprogs.forEach((s, i) => s.end = subprogs[i + 1]?.start ?? insnCnt);
  return { subprogs, exceptionCallbackSubprog, kfuncCount: kfuncs.size };
}

/**
 * Keeps every jump inside its function and forbids falling from one function
 * into the next; records tail calls, `ld_abs` and the exit slot per function.
 * Mirrors check_subprogs().
 */
export function checkSubprogs(
  insns: readonly Insn[],
  layout: SubprogLayout,
): void {
  const { subprogs } = layout;
  let cur = 0;
  for (let i = 0; i < insns.length; i++) {
    const insn = insns[i];
    const sub = subprogs[cur];
    if (
      insn.kind === "call" && insn.callee === "helper" &&
      insn.imm === BPF_FUNC_TAIL_CALL
    ) {
      sub.hasTailCall = true;
      sub.tailCallReachable = true;
    }
    if (insn.kind === "ld_abs" || insn.kind === "ld_ind") sub.hasLdAbs = true;
    if (insn.kind === "exit") sub.exitIdx = i;
    if (
      insn.kind === "ja" || insn.kind === "jcond" || insn.kind === "may_goto"
    ) {
      if (insn.target < sub.start || insn.target >= sub.end) {
        throwCfgError(
          i,
          ERRNO.EINVAL,
          `jump out of range from insn ${i} to ${insn.target}`,
        );
      }
    }
    if (i === sub.end - 1) {
      // the last slot must not fall through: exit or an unconditional jump
      if (insn.kind !== "exit" && insn.kind !== "ja") {
        throwCfgError(i, ERRNO.EINVAL, "last insn is not an exit or jmp");
      }
      cur++;
    }
  }
}

/**
 * The structural part of check_btf_info(): without BTF `func_info`, only the
 * main function may use `ld_abs` or tail calls (check_abnormal_return());
 * with it, its records must start exactly where the functions do
 * (check_btf_func()). `funcInfoInsnOffs` holds each record's `insn_off`.
 */
export function checkFuncInfo(
  layout: SubprogLayout,
  funcInfoInsnOffs?: readonly number[],
): void {
  const { subprogs } = layout;
  if (funcInfoInsnOffs === undefined || funcInfoInsnOffs.length === 0) {
    for (let i = 1; i < subprogs.length; i++) {
      const s = subprogs[i];
      if (s.hasLdAbs) {
        throwCfgError(
          s.start,
          ERRNO.EINVAL,
          "LD_ABS is not allowed in subprogs without BTF",
        );
      }
      if (s.hasTailCall) {
        throwCfgError(
          s.start,
          ERRNO.EINVAL,
          "tail_call is not allowed in subprogs without BTF",
        );
      }
    }
    return;
  }
  if (funcInfoInsnOffs.length !== subprogs.length) {
    throwCfgError(
      -1,
      ERRNO.EINVAL,
      "number of funcs in func_info doesn't match number of subprogs",
    );
  }
  subprogs.forEach((s, i) => {
    if (s.start !== funcInfoInsnOffs[i]) {
      throwCfgError(
        s.start,
        ERRNO.EINVAL,
        "func_info BTF section doesn't match subprog layout in BPF program",
      );
    }
  });
}
