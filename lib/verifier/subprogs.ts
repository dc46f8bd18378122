/**
 * The subprogram table, as `bpf_check()` builds it before the main pass:
 * `add_subprog_and_kfunc()` finds where functions start, `check_subprogs()`
 * keeps jumps inside them, `check_btf_info()` matches them against BTF
 * `func_info`, and — after the main pass has measured each function's stack —
 * `check_max_stack_depth()` bounds the deepest call chain.
 *
 * Errors are thrown as {@link CfgError}: the kernel's log line(s), the slot
 * they are about, and the kernel's (negative) errno. The verifier proper turns
 * one into its `VerifierError` and log.
 * @module
 */
import type { CallInsn, Insn } from "../isa/insn.ts";
import { MAX_BPF_STACK } from "../isa/opcodes.ts";
import {
  calleeOf,
  type CallTraitsOf,
  helperIdCallTraits,
  isPseudoFunc,
} from "./insn_aux.ts";

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
  EPERM: 1,
  E2BIG: 7,
  EACCES: 13,
  EFAULT: 14,
  EINVAL: 22,
  ENOTSUPP: 524,
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

function fail(insnIndex: number, errno: number, ...lines: string[]): never {
  throw new CfgError(insnIndex, -errno, lines);
}

/** A verifier_bug(): the kernel's own consistency check, -EFAULT. */
function verifierBug(insnIndex: number, what: string): never {
  fail(insnIndex, ERRNO.EFAULT, `verifier bug: ${what}`);
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

// mirrors add_subprog()
function addSubprog(
  subprogs: SubprogInfo[],
  insnCnt: number,
  at: number,
  off: number,
): number {
  if (off >= insnCnt || off < 0) {
    fail(at, ERRNO.EINVAL, "call to invalid destination");
  }
  const found = findSubprog(subprogs, off);
  if (found >= 0) return found;
  if (subprogs.length >= BPF_MAX_SUBPROGS) {
    fail(at, ERRNO.E2BIG, "too many subprograms");
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
      fail(at, ERRNO.ENOTSUPP, "JIT is required for calling kernel function");
    }
    if (opts.gplCompatible === false) {
      fail(
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
    fail(
      at,
      ERRNO.EINVAL,
      "negative offset disallowed for kernel module function call",
      "failed to find BTF for kernel function",
    );
  }
  const key = `${btfId}:${offset}`;
  if (seen.has(key)) return;
  if (seen.size === MAX_KFUNC_DESCS) {
    fail(at, ERRNO.E2BIG, "too many different kernel function calls");
  }
  if (opts.kfuncIsFunction && !opts.kfuncIsFunction(btfId, offset)) {
    fail(at, ERRNO.EINVAL, `kernel btf_id ${btfId} is not a function`);
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
      fail(
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
        fail(
          i,
          ERRNO.EINVAL,
          `jump out of range from insn ${i} to ${insn.target}`,
        );
      }
    }
    if (i === sub.end - 1) {
      // the last slot must not fall through: exit or an unconditional jump
      if (insn.kind !== "exit" && insn.kind !== "ja") {
        fail(i, ERRNO.EINVAL, "last insn is not an exit or jmp");
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
        fail(
          s.start,
          ERRNO.EINVAL,
          "LD_ABS is not allowed in subprogs without BTF",
        );
      }
      if (s.hasTailCall) {
        fail(
          s.start,
          ERRNO.EINVAL,
          "tail_call is not allowed in subprogs without BTF",
        );
      }
    }
    return;
  }
  if (funcInfoInsnOffs.length !== subprogs.length) {
    fail(
      -1,
      ERRNO.EINVAL,
      "number of funcs in func_info doesn't match number of subprogs",
    );
  }
  subprogs.forEach((s, i) => {
    if (s.start !== funcInfoInsnOffs[i]) {
      fail(
        s.start,
        ERRNO.EINVAL,
        "func_info BTF section doesn't match subprog layout in BPF program",
      );
    }
  });
}

/** Options of {@link checkMaxStackDepth}. */
export interface StackDepthOptions {
  /** The program will be JITed: frames round up to 16 bytes, else to 32 (default true). */
  readonly jitRequested?: boolean;
  /**
   * bpf_enable_priv_stack() said PRIV_STACK_ADAPTIVE: the JIT has private
   * stacks and the program type uses them (kprobe, tracepoint, perf_event,
   * raw_tp; recursion-checked tracing, LSM, struct_ops). Default false, as
   * for socket, tc and xdp programs.
   */
  readonly privStackEligible?: boolean;
  /** Recognises `bpf_throw` among kfunc calls (default: none is). */
  readonly callTraits?: CallTraitsOf;
}

/** What {@link checkMaxStackDepth} learned about the whole program. */
export interface StackDepthResult {
  /** The main function reaches a tail call (`prog->aux->tail_call_reachable`). */
  readonly tailCallReachable: boolean;
  /** Some function got a private stack (`prog->aux->jits_use_priv_stack`). */
  readonly jitsUsePrivStack: boolean;
}

/**
 * Walks every static call chain from the main function and from each async
 * callback, with the stack depths the main pass measured (`stackDepth`, 0 for
 * functions it never entered), and refuses chains deeper than 8 frames or 512
 * bytes. Marks tail-call reachability and private stacks on the way. Mirrors
 * check_max_stack_depth(); call it after the main pass.
 */
export function checkMaxStackDepth(
  insns: readonly Insn[],
  layout: SubprogLayout,
  opts: StackDepthOptions = {},
): StackDepthResult {
  const { subprogs } = layout;
  let mode: PrivStackMode = subprogs.some((s) => s.hasTailCall)
    ? "none"
    : "unknown";
  if (mode === "unknown") mode = opts.privStackEligible ? "adaptive" : "none";
  let tailCallReachable = false;
  // async callbacks first, so functions shared with them keep the normal stack
  for (let i = subprogs.length - 1; i >= 0; i--) {
    if (i === 0 || subprogs[i].isAsyncCb) {
      const privSupported = i === 0 && mode === "adaptive";
      tailCallReachable =
        checkSubprogStack(insns, subprogs, i, privSupported, opts) ||
        tailCallReachable;
    }
  }
  const jitsUsePrivStack = subprogs.some((s) => s.privStackMode === "adaptive");
  return {
    tailCallReachable: tailCallReachable || subprogs[0].tailCallReachable,
    jitsUsePrivStack,
  };
}

// mirrors round_up_stack_depth()
function roundUpStackDepth(depth: number, jit: boolean): number {
  if (jit) return Math.ceil(depth / 16) * 16;
  return Math.ceil(Math.max(depth, 1) / 32) * 32;
}

// mirrors check_max_stack_depth_subprog(); the kernel's gotos become the two
// loops: `process` enters a function, the inner scan resumes one after a
// return. Returns whether subprog 0 became tail-call reachable.
function checkSubprogStack(
  insns: readonly Insn[],
  subprogs: SubprogInfo[],
  root: number,
  privSupported: boolean,
  opts: StackDepthOptions,
): boolean {
  const jit = opts.jitRequested ?? true;
  const traitsOf = opts.callTraits ?? helperIdCallTraits;
  const retInsn: number[] = [];
  const retProg: number[] = [];
  let depth = 0;
  let frame = 0;
  let idx = root;
  let i = subprogs[idx].start;
  let tailCallReachable = false;
  if (!privSupported) subprogs[idx].privStackMode = "none";
  for (;;) {
    // entering function idx: a tail call under a deep stack would overflow,
    // since tail calls unwind only their own frame
    const sub = subprogs[idx];
    if (idx && sub.hasTailCall && depth >= 256) {
      fail(
        sub.start,
        ERRNO.EACCES,
        `tail_calls are not allowed when call stack of previous frames is ${depth} bytes. Too large`,
      );
    }
    const subDepth = roundUpStackDepth(sub.stackDepth, jit);
    if (
      privSupported && sub.privStackMode === "unknown" &&
      subDepth >= BPF_PRIV_STACK_MIN_SIZE
    ) {
      sub.privStackMode = "adaptive";
    }
    if (sub.privStackMode === "adaptive") {
      if (subDepth > MAX_BPF_STACK) {
        fail(
          sub.start,
          ERRNO.EACCES,
          `stack size of subprog ${idx} is ${subDepth}. Too large`,
        );
      }
    } else {
      depth += subDepth;
      if (depth > MAX_BPF_STACK) {
        fail(
          sub.start,
          ERRNO.EACCES,
          `combined stack size of ${frame + 1} calls is ${depth}. Too large`,
        );
      }
    }
    let entered = false;
    while (!entered) {
      for (; i < subprogs[idx].end; i++) {
        const insn = insns[i];
        if (insn.kind === "call" && insn.callee === "kfunc" && insn.off === 0) {
          if (!traitsOf(insn, i).bpfThrow) continue;
          const inCb = subprogs[idx].isCb ||
            retProg.slice(0, frame).some((p) => subprogs[p].isCb);
          if (!inCb) continue;
          fail(
            i,
            ERRNO.EINVAL,
            `bpf_throw kfunc (insn ${i}) cannot be called from callback subprog ${idx}`,
          );
        }
        const next = calleeOf(insn, i);
        if (next < 0) continue;
        retInsn[frame] = i + 1;
        retProg[frame] = idx;
        const sidx = findSubprog(subprogs, next);
        if (sidx < 0) verifierBug(i, `callee not found at insn ${next}`);
        if (subprogs[sidx].isAsyncCb) {
          if (subprogs[sidx].hasTailCall) {
            verifierBug(i, "subprog has tail_call and async cb");
          }
          // async callbacks use no stack of the caller unless called directly
          if (insn.kind !== "call") continue;
          if (subprogs[sidx].isExceptionCb) {
            // the kernel's format lacks the newline; the line is as printed
            fail(
              i,
              ERRNO.EINVAL,
              `insn ${i} cannot call exception cb directly`,
            );
          }
        }
        i = next;
        idx = sidx;
        if (!privSupported) subprogs[idx].privStackMode = "none";
        if (subprogs[idx].hasTailCall) tailCallReachable = true;
        frame++;
        if (frame >= MAX_CALL_FRAMES) {
          fail(
            i,
            ERRNO.E2BIG,
            `the call stack of ${frame} frames is too deep !`,
          );
        }
        entered = true;
        break;
      }
      if (entered) break;
      // end of function idx: every frame on the chain reaches the tail call
      if (tailCallReachable) {
        for (let j = 0; j < frame; j++) {
          if (subprogs[retProg[j]].isExceptionCb) {
            fail(
              subprogs[retProg[j]].start,
              ERRNO.EINVAL,
              "cannot tail call within exception cb",
            );
          }
          subprogs[retProg[j]].tailCallReachable = true;
        }
      }
      if (frame === 0) return subprogs[0].tailCallReachable;
      if (subprogs[idx].privStackMode !== "adaptive") {
        depth -= roundUpStackDepth(subprogs[idx].stackDepth, jit);
      }
      frame--;
      i = retInsn[frame];
      idx = retProg[frame];
    }
  }
}
