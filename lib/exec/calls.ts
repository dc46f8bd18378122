/**
 * The interpreter's colder instructions, kept out of the dispatch loop:
 * BPF-to-BPF calls and returns, helper / kfunc invocation, atomics and the
 * legacy packet loads. Each takes the state and the slot index it runs at.
 * @module
 */
import { helperName } from "../isa/helper_ids.ts";
import { ExecError, MemoryFault } from "./fault.ts";
import {
  BPF_ADD,
  BPF_AND,
  BPF_CMPXCHG,
  BPF_FETCH,
  BPF_OR,
  BPF_XCHG,
  BPF_XOR,
} from "../isa/opcodes.ts";
import { PERM_READ, PERM_RW } from "./memory.ts";
import {
  type ExecState,
  FRAME_WORDS,
  type HelperFn,
  MAX_CALL_FRAMES,
} from "./state.ts";

/** {@link invokeHelper} outcome: retired; continue at pc + 1. */
export const CALL_DONE = 0;
/** {@link invokeHelper} outcome: the helper blocked; retry the same slot. */
export const CALL_BLOCKED = 1;
/** {@link invokeHelper} outcome: a tail call replaced the program; continue at slot 0. */
export const CALL_TAIL = 2;

/**
 * `call local`: saves r6–r10 and the return slot, gives the callee a fresh
 * frame (its own 512-byte stack and r10) and returns the callee's slot.
 * The callee sees the caller's r1–r5. Mirrors the kernel's frame limit
 * (`MAX_CALL_FRAMES`, message as in check_func_call()).
 */
export function callLocal(
  state: ExecState,
  pc: number,
  target: number,
): number {
  const depth = state.depth;
  if (depth + 1 >= MAX_CALL_FRAMES) {
    throw new ExecError(
      pc,
      `the call stack of ${depth + 2} frames is too deep`,
    );
  }
  const base = depth * FRAME_WORDS, frames = state.frames, R = state.regs;
  for (let i = 0; i < 10; i++) frames[base + i] = R[12 + i];
  frames[base + 10] = pc + 1;
  state.depth = depth + 1;
  state.enterFrame(depth + 1);
  return target;
}

/** `exit` from a callee: restores the caller's r6–r10 and returns its return slot. */
export function exitFrame(state: ExecState): number {
  const depth = state.depth - 1;
  const base = depth * FRAME_WORDS, frames = state.frames, R = state.regs;
  for (let i = 0; i < 10; i++) R[12 + i] = frames[base + i];
  state.depth = depth;
  return frames[base + 10];
}

/**
 * Finds helper `id`, or raises an ExecError: the kernel's `invalid func
 * unknown#id` for an id that names no helper, and for a helper this
 * runtime does not provide, its name and that it is not modelled.
 */
export function helperById(state: ExecState, id: number, pc: number): HelperFn {
  const fn = id >= 0 ? state.helpers[id] : undefined;
  if (fn === undefined) throw new ExecError(pc, missingHelper(id));
  return fn;
}

/** Why helper `id` cannot be called here (see {@link helperById}). */
function missingHelper(id: number): string {
  const name = id > 0 ? helperName(id) : undefined;
  return name === undefined
    ? `invalid func unknown#${id}`
    : `helper ${name}#${id} is not modelled by bpfsim's runtime here`;
}

/** Finds kfunc `btfId` or raises an ExecError. */
export function kfuncById(
  state: ExecState,
  btfId: number,
  pc: number,
): HelperFn {
  const fn = state.kfuncs.get(btfId);
  if (fn === undefined) {
    throw new ExecError(pc, `unknown kfunc with BTF id ${btfId}`);
  }
  return fn;
}

/**
 * What a helper or kfunc threw, pinned to the call at slot `pc`: faults it
 * raised without a slot index get `pc`; anything else passes unchanged.
 */
export function pinToInsn(e: unknown, pc: number): unknown {
  if (e instanceof MemoryFault && e.insnIndex < 0) {
    return new MemoryFault(
      pc,
      e.address,
      e.region,
      e.offset,
      e.size,
      e.access,
      e.reason,
    );
  }
  if (e instanceof ExecError && e.insnIndex < 0) {
    return new ExecError(pc, e.reason, { cause: e });
  }
  return e;
}

/**
 * Takes the tail call a helper asked for (`state.pendingTailCall`): the
 * state continues with the new program, whose prologue resets the frame's
 * `may_goto` budget. The caller continues at slot 0.
 */
export function takeTailCall(state: ExecState): void {
  const next = state.pendingTailCall;
  if (next === undefined) return;
  state.pendingTailCall = undefined;
  state.prog = next;
  state.mayGoto[state.depth] = state.mayGotoBudget;
}

/**
 * Calls a helper or kfunc at slot `pc` (state.pc and state.steps must be
 * current). Faults it raises without a slot index are pinned to `pc`.
 * Returns CALL_DONE, CALL_BLOCKED or CALL_TAIL.
 */
export function invokeHelper(
  state: ExecState,
  fn: HelperFn,
  pc: number,
): number {
  state.blockRequested = false;
  state.pendingTailCall = undefined;
  let result: number | bigint | void;
  try {
    result = fn(state);
  } catch (e) {
    throw pinToInsn(e, pc);
  }
  if (state.blockRequested) {
    state.blockRequested = false;
    return CALL_BLOCKED;
  }
  state.storeResult(result);
  if (state.pendingTailCall !== undefined) {
    takeTailCall(state);
    return CALL_TAIL;
  }
  return CALL_DONE;
}

/**
 * 32-bit atomic `op` on `*(u32 *)(dst + off)` with `src` (and r0 for
 * cmpxchg). Fetched old values are zero-extended into the register.
 */
export function atomic32(
  state: ExecState,
  pc: number,
  d: number,
  s: number,
  off: number,
  op: number,
): void {
  const R = state.regs, mem = state.mem;
  const o = mem.at(R[d], R[d + 1], off, 4, PERM_RW, pc);
  const view = mem.hitView;
  const old = view.getInt32(o, true);
  const val = R[s];
  switch (op & ~BPF_FETCH) {
    case BPF_ADD:
      view.setInt32(o, (old + val) | 0, true);
      break;
    case BPF_OR:
      view.setInt32(o, old | val, true);
      break;
    case BPF_AND:
      view.setInt32(o, old & val, true);
      break;
    case BPF_XOR:
      view.setInt32(o, old ^ val, true);
      break;
    case BPF_XCHG & ~BPF_FETCH:
      view.setInt32(o, val, true);
      break;
    default: // BPF_CMPXCHG: compare with the low half of r0, r0 = old
      if (old === R[0]) view.setInt32(o, val, true);
      R[0] = old;
      R[1] = 0;
      return;
  }
  if (op & BPF_FETCH) {
    R[s] = old;
    R[s + 1] = 0;
  }
}

/** 64-bit atomic `op` on `*(u64 *)(dst + off)` with `src` (and r0 for cmpxchg). */
export function atomic64(
  state: ExecState,
  pc: number,
  d: number,
  s: number,
  off: number,
  op: number,
): void {
  const R = state.regs, mem = state.mem;
  const o = mem.at(R[d], R[d + 1], off, 8, PERM_RW, pc);
  const view = mem.hitView;
  const oldLo = view.getInt32(o, true), oldHi = view.getInt32(o + 4, true);
  const lo = R[s], hi = R[s + 1];
  let newLo = lo, newHi = hi;
  switch (op & ~BPF_FETCH) {
    case BPF_ADD: {
      const sum = (oldLo >>> 0) + (lo >>> 0);
      newLo = sum | 0;
      newHi = (oldHi + hi + (sum > 0xffffffff ? 1 : 0)) | 0;
      break;
    }
    case BPF_OR:
      newLo = oldLo | lo;
      newHi = oldHi | hi;
      break;
    case BPF_AND:
      newLo = oldLo & lo;
      newHi = oldHi & hi;
      break;
    case BPF_XOR:
      newLo = oldLo ^ lo;
      newHi = oldHi ^ hi;
      break;
    case BPF_XCHG & ~BPF_FETCH:
      break;
    default: // BPF_CMPXCHG
      if (op !== BPF_CMPXCHG) {
        throw new ExecError(pc, `invalid atomic operation ${op}`);
      }
      if (oldLo === R[0] && oldHi === R[1]) {
        view.setInt32(o, lo, true);
        view.setInt32(o + 4, hi, true);
      }
      R[0] = oldLo;
      R[1] = oldHi;
      return;
  }
  view.setInt32(o, newLo, true);
  view.setInt32(o + 4, newHi, true);
  if (op & BPF_FETCH || op === BPF_XCHG) {
    R[s] = oldLo;
    R[s + 1] = oldHi;
  }
}

/**
 * Legacy `ld_abs` / `ld_ind`: r0 = the `size` bytes at `offset` of the
 * packet, in network byte order, zero-extended. Returns false when the
 * load is out of the packet: the kernel's rewrite (bpf_gen_ld_abs()) then
 * ends the program with r0 = 0. Negative (SKF_*_OFF ancillary) offsets
 * are treated as out of bounds.
 */
export function loadPacket(
  state: ExecState,
  pc: number,
  offset: number,
  size: number,
): boolean {
  const id = state.packetRegion;
  if (id === 0) throw new ExecError(pc, "BPF_LD_[ABS|IND] without a packet");
  const region = state.mem.regionById(id);
  if (region === undefined || (region.flags & PERM_READ) === 0) {
    throw new ExecError(pc, "BPF_LD_[ABS|IND]: the packet is not readable");
  }
  if (offset < 0 || offset + size > region.size) return false;
  const view = region.view;
  const R = state.regs;
  R[0] = size === 1
    ? view.getUint8(offset)
    : size === 2
    ? view.getUint16(offset, false)
    : view.getInt32(offset, false);
  R[1] = 0;
  return true;
}
