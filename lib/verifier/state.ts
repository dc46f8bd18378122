/**
 * Verifier states: `struct bpf_func_state` (one call frame: registers and
 * stack slots, each byte typed STACK_SPILL / MISC / ZERO / INVALID, with the
 * spilled register) and `struct bpf_verifier_state` (the call frames, the
 * acquired references with the instruction that acquired them, active locks).
 * @module
 */
import { MAX_BPF_REG } from "../isa/opcodes.ts";
import {
  copyReg,
  markRegPointer,
  notInitReg,
  regsEqual,
  type RegState,
} from "./reg_state.ts";
import { PTR_TO_STACK } from "./reg_types.ts";

/** `BPF_REG_SIZE`: a stack slot holds one register, 8 bytes. */
export const BPF_REG_SIZE = 8;

/** `enum bpf_stack_slot_type`. */
export const STACK_INVALID = 0;
/** A spilled register (`spilled_ptr` holds it). */
export const STACK_SPILL = 1;
/** Some unknown bytes were written. */
export const STACK_MISC = 2;
/** Known zero bytes. */
export const STACK_ZERO = 3;
/** Part of a dynptr. */
export const STACK_DYNPTR = 4;
/** Part of an iterator. */
export const STACK_ITER = 5;

/** Letters the log uses for slot types (`slot_type_char`). */
export const SLOT_TYPE_CHAR = "?rm0dif";

/** One 8-byte stack slot; mirrors `struct bpf_stack_state`. */
export interface StackSlot {
  /** Type of each byte; index j is the byte at `-(spi*8) - 1 - j` from fp. */
  slotType: Uint8Array;
  /** The register spilled into the slot (meaningful when byte 7 is STACK_SPILL). */
  spilled: RegState;
}

/** One call frame; mirrors `struct bpf_func_state`. */
export interface FuncState {
  /** R0–R10. */
  regs: RegState[];
  /** Slots from fp-8 downwards (`stack[spi]` covers fp-8*(spi+1) … fp-8*spi-1). */
  stack: StackSlot[];
  /** This frame's number (0 for the main function). */
  frameno: number;
  /** Slot of the call instruction that created the frame (-1 for frame 0). */
  callsite: number;
  /** Index of the subprogram this frame runs. */
  subprogno: number;
  /** The frame runs a callback (`in_callback_fn`): rbtree `less` … */
  inCallbackFn: boolean;
  /**
   * The frame is an async callback's first (`in_async_callback_fn`): a
   * timer callback, verified from a fresh state; it must return 0.
   */
  inAsyncCallbackFn: boolean;
  /** `callback_ret_range`: what R0 must be when the callback returns. */
  callbackRetRange: readonly [number, number];
  /** `callback_depth`: bpf_loop callback visits queued from this frame. */
  callbackDepth: number;
  /**
   * The callback runs any number of times (bpf_loop): its exit goes back to
   * the call, which queues the next visit, until the states converge.
   */
  callbackLoops: boolean;
}

/** An acquired reference or lock; mirrors `struct bpf_reference_state`. */
export interface RefState {
  /** `ptr` (a pointer to release), `lock` (bpf_spin_lock), `irq`. */
  type: "ptr" | "lock" | "irq";
  /** The `ref_obj_id` handed out; for a lock, the locked register's `id`. */
  id: number;
  /** The instruction that acquired it (for leak explanations). */
  insnIdx: number;
  /** A lock's allocation: the map, or the program BTF for allocated objects. */
  ptr?: object | null;
  /** What was acquired, for explanations ("struct node from bpf_obj_new_impl"). */
  what?: string;
}

/**
 * One step of the path a state took, for explanations (bpfsim's own, not
 * the kernel's): a branch edge `from → to`, or an event at `from` that
 * invalidated registers (`regs`, with `why`). Shared by copies: a list
 * that only grows at its head.
 */
export interface TrailNode {
  /** The branching (or invalidating) instruction. */
  readonly from: number;
  /** Where the path went on (equal to `from` for events). */
  readonly to: number;
  /** Registers of the running frame an event invalidated. */
  readonly regs?: readonly number[];
  /** Why they were invalidated. */
  readonly why?: string;
  /** The step before. */
  readonly prev: TrailNode | null;
}

/** The whole state on one path; mirrors `struct bpf_verifier_state`. */
export interface VerifierState {
  /** Call frames; `frames[curframe]` runs. */
  frames: FuncState[];
  /** Index of the running frame. */
  curframe: number;
  /** Acquired references and locks, in acquisition order. */
  refs: RefState[];
  /** Number of held spin locks (`active_locks`). */
  activeLocks: number;
  /** `active_lock_id`: the `id` of the register the held lock was taken through. */
  activeLockId: number;
  /** `active_lock_ptr`: the held lock's map (or program BTF), null when none. */
  activeLockPtr: object | null;
  /** `active_rcu_lock`: inside bpf_rcu_read_lock(). */
  activeRcuLock: boolean;
  /** `active_preempt_locks`: bpf_preempt_disable() nesting. */
  activePreemptLocks: number;
  /** The slot this state is at (for explored states). */
  insnIdx: number;
  /** `may_goto_depth`: may_goto fall-throughs taken on this path. */
  loopDepth: number;
  /**
   * `callback_unroll_depth`: callback visits queued on this path; states
   * that differ in it are not an infinite loop.
   */
  callbackUnrollDepth: number;
  /** The last checkpoint on this path (`parent`), null at the start. */
  parent: Checkpoint | null;
  /** `first_insn_idx`: where this state started (its checkpoint's slot). */
  firstInsnIdx: number;
  /** `last_insn_idx`: the slot processed before the current one (-1 at entry). */
  lastInsnIdx: number;
  /** `jmp_history`: non-linear steps and stack accesses since the checkpoint. */
  jmpHistory: JmpHistEntry[];
  /** The path so far, newest step first (explanations only; optional). */
  trail?: TrailNode | null;
}

/**
 * One `struct bpf_jmp_history_entry`: how precision backtracking walks a
 * state's instructions backwards (jumps, calls, returns) and which stack
 * slot an instruction spilled or filled. Entries are never mutated once
 * another state may share them.
 */
export interface JmpHistEntry {
  /** The instruction. */
  readonly idx: number;
  /** The instruction processed before it on this path. */
  readonly prevIdx: number;
  /** `INSN_F_*` flags: stack access frame number and slot. */
  readonly flags: number;
  /** Registers/slots linked by a shared scalar id (packed, 0 if none). */
  readonly linkedRegs: readonly number[] | null;
  /** `insn_processed` when recorded (the kernel's `cur_hist_ent`). */
  readonly seq: number;
}

/**
 * A state remembered at a prune point (`struct bpf_verifier_state_list`):
 * `branches` counts paths from it still being explored (0 = all proven
 * safe, so it may prune); hits and misses decide eviction.
 */
export interface Checkpoint {
  /** The state as it was when recorded. */
  readonly state: VerifierState;
  /** Paths from it still being explored. */
  branches: number;
  /** Times it pruned a path (`hit_cnt`). */
  hitCnt: number;
  /** Times it did not match (`miss_cnt`). */
  missCnt: number;
  /** Dropped from its slot's list while paths from it were still running. */
  evicted: boolean;
}

/**
 * The explored states of one slot (`explored_states[idx]`), oldest first;
 * the kernel's list is walked newest first.
 */
export interface SlotStates {
  /** Every remembered state of the slot, finished or not. */
  readonly list: Checkpoint[];
}

/** A fresh frame with R10 = fp0 and every other register NOT_INIT. */
export function newFuncState(
  frameno: number,
  callsite: number,
  subprogno: number,
): FuncState {
  const regs: RegState[] = [];
  for (let i = 0; i < MAX_BPF_REG; i++) regs.push(notInitReg());
  markRegPointer(regs[10], PTR_TO_STACK);
  regs[10].frameno = frameno;
  return {
    regs,
    stack: [],
    frameno,
    callsite,
    subprogno,
    inCallbackFn: false,
    inAsyncCallbackFn: false,
    callbackRetRange: [0, 0],
    callbackDepth: 0,
    callbackLoops: false,
  };
}

function copySlot(s: StackSlot): StackSlot {
  return { slotType: s.slotType.slice(), spilled: copyReg(s.spilled) };
}

/** Mirrors `copy_func_state()`. */
export function copyFuncState(f: FuncState): FuncState {
  return {
    regs: f.regs.map(copyReg),
    stack: f.stack.map(copySlot),
    frameno: f.frameno,
    callsite: f.callsite,
    subprogno: f.subprogno,
    inCallbackFn: f.inCallbackFn,
    inAsyncCallbackFn: f.inAsyncCallbackFn,
    callbackRetRange: f.callbackRetRange,
    callbackDepth: f.callbackDepth,
    callbackLoops: f.callbackLoops,
  };
}

/** A path's first state: one frame, nothing held, at slot `insnIdx`. */
export function newVerifierState(
  frame: FuncState,
  insnIdx: number,
): VerifierState {
  return {
    frames: [frame],
    curframe: 0,
    refs: [],
    activeLocks: 0,
    activeLockId: 0,
    activeLockPtr: null,
    activeRcuLock: false,
    activePreemptLocks: 0,
    insnIdx,
    loopDepth: 0,
    callbackUnrollDepth: 0,
    parent: null,
    firstInsnIdx: insnIdx,
    lastInsnIdx: -1,
    jmpHistory: [],
  };
}

/** Mirrors `copy_verifier_state()`. */
export function copyVerifierState(s: VerifierState): VerifierState {
  return {
    frames: s.frames.map(copyFuncState),
    curframe: s.curframe,
    refs: s.refs.map((r) => ({ ...r })),
    activeLocks: s.activeLocks,
    activeLockId: s.activeLockId,
    activeLockPtr: s.activeLockPtr,
    activeRcuLock: s.activeRcuLock,
    activePreemptLocks: s.activePreemptLocks,
    insnIdx: s.insnIdx,
    loopDepth: s.loopDepth,
    callbackUnrollDepth: s.callbackUnrollDepth,
    parent: s.parent,
    firstInsnIdx: s.firstInsnIdx,
    lastInsnIdx: s.lastInsnIdx,
    jmpHistory: s.jmpHistory.slice(),
    trail: s.trail,
  };
}

/** Bytes of stack this frame has touched (`allocated_stack`). */
export function allocatedStack(f: FuncState): number {
  return f.stack.length * BPF_REG_SIZE;
}

/** Mirrors `grow_stack_state()`: make room for `size` bytes below fp. */
export function growStack(f: FuncState, size: number): void {
  const slots = Math.ceil(size / BPF_REG_SIZE);
  while (f.stack.length < slots) {
    f.stack.push({
      slotType: new Uint8Array(BPF_REG_SIZE),
      spilled: notInitReg(),
    });
  }
}

/** True when the slot holds a spilled register (`is_spilled_reg()`). */
export function isSpilledReg(slot: StackSlot): boolean {
  return slot.slotType[BPF_REG_SIZE - 1] === STACK_SPILL;
}

/** Exact equality of two frames (registers and stack). */
export function funcStatesEqual(a: FuncState, b: FuncState): boolean {
  if (a.callsite !== b.callsite || a.stack.length !== b.stack.length) {
    return false;
  }
  for (let i = 0; i < a.regs.length; i++) {
    if (!regsEqual(a.regs[i], b.regs[i])) return false;
  }
  for (let i = 0; i < a.stack.length; i++) {
    const x = a.stack[i], y = b.stack[i];
    for (let j = 0; j < BPF_REG_SIZE; j++) {
      if (x.slotType[j] !== y.slotType[j]) return false;
    }
    if (isSpilledReg(x) && !regsEqual(x.spilled, y.spilled)) return false;
  }
  return true;
}

/**
 * Mirrors `refsafe()`: the references and locks of `old` and `cur` agree,
 * ids matched through `checkIds` (the caller's `check_ids()` map).
 */
export function refsAndLocksEqual(
  old: VerifierState,
  cur: VerifierState,
  checkIds: (oldId: number, curId: number) => boolean,
): boolean {
  if (old.refs.length !== cur.refs.length) return false;
  if (old.activeLocks !== cur.activeLocks) return false;
  if (old.activePreemptLocks !== cur.activePreemptLocks) return false;
  if (old.activeRcuLock !== cur.activeRcuLock) return false;
  if (
    !checkIds(old.activeLockId, cur.activeLockId) ||
    old.activeLockPtr !== cur.activeLockPtr
  ) return false;
  for (let i = 0; i < old.refs.length; i++) {
    const o = old.refs[i], c = cur.refs[i];
    if (!checkIds(o.id, c.id) || o.type !== c.type) return false;
    if (o.type === "lock" && o.ptr !== c.ptr) return false;
  }
  return true;
}

/** Appends a branch edge (or, with `regs`, an invalidation) to `vs`'s trail. */
export function addTrail(
  vs: VerifierState,
  from: number,
  to: number,
  regs?: readonly number[],
  why?: string,
): void {
  vs.trail = { from, to, regs, why, prev: vs.trail ?? null };
}

// same_callsites(): the two states run in the same chain of calls
function sameCallsites(a: VerifierState, b: VerifierState): boolean {
  if (a.curframe !== b.curframe) return false;
  for (let f = a.curframe; f >= 0; f--) {
    if (a.frames[f].callsite !== b.frames[f].callsite) return false;
  }
  return true;
}

/**
 * Mirrors `find_prev_entry()`: walking up the path from checkpoint `from`,
 * the newest state at slot `idx` still being explored with `cur`'s call
 * sites — the same loop's previous trip.
 */
export function findPrevEntry(
  from: Checkpoint | null,
  idx: number,
  cur: VerifierState,
): VerifierState | null {
  for (let cp = from; cp; cp = cp.state.parent) {
    if (
      cp.state.insnIdx === idx && cp.branches > 0 &&
      sameCallsites(cp.state, cur)
    ) return cp.state;
  }
  return null;
}

/**
 * The state `vs` had at `idx` on its previous trip round a loop, from the
 * checkpoint before the one just made at `idx` (iterator `next`, may_goto).
 */
export function prevTrip(
  vs: VerifierState,
  idx: number,
): VerifierState | null {
  return findPrevEntry(vs.parent?.state.parent ?? null, idx, vs);
}

/** The running frame. */
export function curFrame(s: VerifierState): FuncState {
  return s.frames[s.curframe];
}
