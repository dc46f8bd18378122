/**
 * The stack limit of the whole program: the kernel's
 * `check_max_stack_depth()`, `check_max_stack_depth_subprog()` and
 * `round_up_stack_depth()`. After the main pass has measured each function's
 * stack, every static call chain is walked and refused when it is deeper than
 * `MAX_CALL_FRAMES` frames or `MAX_BPF_STACK` bytes; tail-call reachability
 * and private stacks (`enum priv_stack_mode`) are decided on the way.
 * @module
 */
import type { Insn } from "../isa/insn.ts";
import { MAX_BPF_STACK } from "../isa/opcodes.ts";
import { calleeOf, type CallTraitsOf, helperIdCallTraits } from "./insn_aux.ts";
import {
  BPF_PRIV_STACK_MIN_SIZE,
  ERRNO,
  findSubprog,
  MAX_CALL_FRAMES,
  type PrivStackMode,
  type SubprogInfo,
  type SubprogLayout,
  throwCfgError,
} from "./subprog_info.ts";

/** A verifier_bug(): the kernel's own consistency check, -EFAULT. */
function verifierBug(insnIndex: number, what: string): never {
  throwCfgError(insnIndex, ERRNO.EFAULT, `verifier bug: ${what}`);
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
      throwCfgError(
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
        throwCfgError(
          sub.start,
          ERRNO.EACCES,
          `stack size of subprog ${idx} is ${subDepth}. Too large`,
        );
      }
    } else {
      depth += subDepth;
      if (depth > MAX_BPF_STACK) {
        throwCfgError(
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
          throwCfgError(
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
            throwCfgError(
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
          throwCfgError(
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
            throwCfgError(
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
