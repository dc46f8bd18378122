/**
 * Callbacks the kernel calls synchronously: the rb-tree's `less`
 * (`push_callback_call()` with `set_rbtree_add_callback_state()`) and the
 * bodies of `bpf_loop` and `bpf_for_each_map_elem`.
 * The callback body is verified as a queued branch that starts in a new
 * frame at the call site: R1 and R2 are non-owning references to nodes of
 * the tree (the lock is held), R0 must be 0 or 1 at its exit.
 *
 * A helper's callback may run any number of times: its exit goes back to
 * the call (check_call.ts), which queues the next visit, with imprecise
 * scalars widened, until prune.ts finds the state at the call repeating
 * (for bpf_loop at most R1 times). `less` gets fresh arguments on every
 * call and cannot reach its caller's state, so its path simply ends.
 * @module
 */
import type { BtfField } from "../btf/field_types.ts";
import { EFAULT, type Env } from "./env.ts";
import { refSetNonOwning } from "./graph_state.ts";
import { isRbtreeApi } from "./kfunc_table.ts";
import { markBtfPtr } from "./check_kfunc.ts";
import { kfuncName } from "../kernel/kfunc_ids.ts";
import {
  assignReg,
  markRegNotInit,
  markRegPointer,
  markRegUnknown,
  type RegState,
} from "./reg_state.ts";
import {
  CONST_PTR_TO_DYNPTR,
  CONST_PTR_TO_MAP,
  MEM_ALLOC,
  PTR_TO_BTF_ID,
  PTR_TO_FUNC,
  PTR_TO_MAP_KEY,
  PTR_TO_MAP_VALUE,
} from "./reg_types.ts";
import { type FuncState, newFuncState, newVerifierState } from "./state.ts";
import { MAX_CALL_FRAMES } from "./subprogs.ts";
import { markChainPrecision } from "./precision.ts";

// mark_reg_graph_node(): a pointer to the tree's element at its node
function markGraphNode(env: Env, r: RegState, root: BtfField): void {
  const g = root.graphRoot!;
  markBtfPtr(r, PTR_TO_BTF_ID | MEM_ALLOC, env, g.valueBtfId);
  r.off = g.nodeOffset;
}

/**
 * Mirrors `push_callback_call()` for `bpf_rbtree_add_impl`'s `less`:
 * queues the callback's first instruction with a callee frame whose R1/R2
 * are non-owning nodes of `root`'s tree.
 */
export function pushRbtreeLessCallback(
  env: Env,
  callIdx: number,
  subprog: number,
  root: BtfField,
): void {
  if (subprog < 0 || !root.graphRoot) {
    env.fail(EFAULT, "verifier internal error: rbtree_add without callback");
  }
  const start = env.layout.subprogs[subprog].start;
  const branch = env.pushStack(start, callIdx);
  branch.callbackUnrollDepth++;
  if (branch.curframe + 1 >= MAX_CALL_FRAMES) {
    env.fail(7, `the call stack of ${branch.curframe + 2} frames is too deep`);
  }
  const caller = branch.frames[branch.curframe];
  const callee = newFuncState(branch.curframe + 1, callIdx, subprog);
  for (let i = 1; i <= 5; i++) assignReg(callee.regs[i], caller.regs[i]);
  callee.inCallbackFn = true;
  callee.callbackRetRange = [0, 1];
  branch.frames.push(callee);
  branch.curframe++;
  const saved = env.cur;
  env.cur = branch;
  try {
    markGraphNode(env, callee.regs[1], root);
    refSetNonOwning(env, callee.regs[1]);
    markGraphNode(env, callee.regs[2], root);
    refSetNonOwning(env, callee.regs[2]);
  } finally {
    env.cur = saved;
  }
  for (const r of [3, 4, 5]) markRegNotInit(callee.regs[r]);
}

/** Mirrors `in_rbtree_lock_required_cb()`: running an rb-tree callback? */
export function inRbtreeCallback(env: Env): boolean {
  const vs = env.cur;
  if (!vs.curframe) return false;
  const callee = vs.frames[vs.curframe];
  if (!callee.inCallbackFn) return false;
  const insn = env.insns[callee.callsite];
  if (insn.kind !== "call" || insn.callee !== "kfunc") return false;
  return isRbtreeApi(kfuncName(insn.imm >>> 0) ?? "");
}

/** Helper ids that call a BPF callback synchronously and how to set it up. */
const BPF_FUNC_FOR_EACH_MAP_ELEM = 164;
const BPF_FUNC_LOOP = 181;
/** The helper that sets an async (timer) callback. */
const BPF_FUNC_TIMER_SET_CALLBACK = 170;
/** Drains a user ring buffer, calling back once per sample. */
const BPF_FUNC_USER_RINGBUF_DRAIN = 209;

/**
 * Mirrors `push_callback_call()` for the helpers `bpf_loop` (R1 = the
 * index, R2 = the caller's context argument), `bpf_for_each_map_elem`
 * (R1 = map, R2 = key, R3 = value, R4 = context) and
 * `bpf_user_ringbuf_drain` (R1 = a dynptr over the sample, R2 = context):
 * queues a visit of the callback body from the state at the call (R0 in
 * [0, 1] at its exit); for `bpf_timer_set_callback`, an async callback.
 */
export function pushHelperCallback(
  env: Env,
  callIdx: number,
  helperId: number,
): void {
  if (
    helperId !== BPF_FUNC_LOOP && helperId !== BPF_FUNC_FOR_EACH_MAP_ELEM &&
    helperId !== BPF_FUNC_TIMER_SET_CALLBACK &&
    helperId !== BPF_FUNC_USER_RINGBUF_DRAIN
  ) return;
  const vs = env.cur;
  const caller = vs.frames[vs.curframe];
  const fn = caller.regs[2];
  if (fn.type !== PTR_TO_FUNC) return;
  const start = env.layout.subprogs[fn.subprogno]?.start;
  if (start === undefined) return;
  if (helperId === BPF_FUNC_TIMER_SET_CALLBACK) {
    pushTimerCallback(env, callIdx, fn.subprogno, start);
    return;
  }
  if (helperId === BPF_FUNC_LOOP) {
    // the loop ends when its count is reached: R1 must be precise, and no
    // more visits are queued than it allows (check_helper_call())
    markChainPrecision(env, 1);
    if (caller.callbackDepth >= Number(caller.regs[1].s.umax)) {
      caller.callbackDepth = 0;
      if (env.log.level >= 2) {
        env.log.write(
          `frame${vs.curframe} bpf_loop iteration limit reached\n`,
        );
      }
      return;
    }
  }
  const branch = env.pushStack(start, callIdx);
  branch.callbackUnrollDepth++;
  branch.frames[branch.curframe].callbackDepth++;
  caller.callbackDepth = 0;
  if (branch.curframe + 1 >= MAX_CALL_FRAMES) {
    env.fail(7, `the call stack of ${branch.curframe + 2} frames is too deep`);
  }
  const bcaller = branch.frames[branch.curframe];
  const callee = newFuncState(branch.curframe + 1, callIdx, fn.subprogno);
  callee.inCallbackFn = true;
  callee.callbackRetRange = [0, 1];
  callee.callbackLoops = true; // both run their callback any number of times
  if (helperId === BPF_FUNC_LOOP) {
    markRegUnknown(callee.regs[1]);
    assignReg(callee.regs[2], bcaller.regs[3]);
  } else if (helperId === BPF_FUNC_USER_RINGBUF_DRAIN) {
    // set_user_ringbuf_callback_state(): R1 a local dynptr over the sample
    markRegPointer(callee.regs[1], CONST_PTR_TO_DYNPTR);
    callee.regs[1].btfName = "DYNPTR_TYPE_LOCAL";
    assignReg(callee.regs[2], bcaller.regs[3]);
  } else {
    setMapElemArgs(callee, bcaller.regs[1].map);
    assignReg(callee.regs[4], bcaller.regs[3]);
  }
  branch.frames.push(callee);
  branch.curframe++;
}

/**
 * Mirrors `push_callback_call()` for `bpf_timer_set_callback()`: an async
 * callback, verified from a fresh state of its own (`push_async_cb()`),
 * with `set_timer_callback_state()`'s arguments — R1 the timer's map, R2
 * a key and R3 a value of it — and R0 = 0 at its return.
 */
function pushTimerCallback(
  env: Env,
  callIdx: number,
  subprogno: number,
  start: number,
): void {
  const vs = env.cur;
  const map = vs.frames[vs.curframe].regs[1].map;
  const frame = newFuncState(0, -1, subprogno);
  frame.inAsyncCallbackFn = true;
  frame.callbackRetRange = [0, 0];
  setMapElemArgs(frame, map);
  env.pushAsync(newVerifierState(frame, start), start, callIdx);
}

/** A map element callback's R1–R3: the map, a key and a value of it. */
function setMapElemArgs(
  callee: FuncState,
  map: RegState["map"],
): void {
  markRegPointer(callee.regs[1], CONST_PTR_TO_MAP);
  callee.regs[1].map = map;
  markRegPointer(callee.regs[2], PTR_TO_MAP_KEY);
  callee.regs[2].map = map;
  markRegPointer(callee.regs[3], PTR_TO_MAP_VALUE);
  callee.regs[3].map = map;
}
