/**
 * Stack-slot liveness, mirroring Linux 6.18's kernel/bpf/liveness.c: a
 * call-chain sensitive analysis fed by the main pass. Every stack read the
 * verifier checks adds to a `may_read` mask and every full-slot write to a
 * `must_write` mask, per (call chain, instruction, frame); the masks of
 * instructions visited several times are joined (reads united, writes
 * intersected). At the kernel's update points — a subprogram's exit and the
 * end of each path — `live_before` (slots some later instruction may read
 * before writing) is recomputed to a fixed point over the instruction
 * successors, and a callee's entry masks flow to its call site in the
 * caller's chain (`propagate_to_outer_instance()`).
 *
 * The result is dynamic, like the kernel's: it reflects the paths verified
 * so far, which is all that matters for a state whose paths have all ended.
 * `stackSlotAlive()` answers for the state given to `liveStackQueryInit()`.
 * @module
 */
import { insnSuccessors } from "./liveness.ts";
import type { Insn } from "../isa/insn.ts";
import type { Env } from "./env.ts";
import type { VerifierState } from "./state.ts";
import { findContainingSubprog } from "./subprog_info.ts";

// per instruction and frame: may_read, must_write, must_write_acc,
// live_before, each a 64-bit slot mask as two 32-bit halves
const MAY_READ = 0, MUST_WRITE = 2, WRITE_ACC = 4, LIVE = 6, WORDS = 8;

/** Call sites leading to a function, then its first slot (`struct callchain`). */
interface Callchain {
  readonly callsites: readonly number[];
  readonly spStarts: readonly number[];
  readonly curframe: number;
}

/** The masks of one function for one call chain (`struct func_instance`). */
class FuncInstance {
  readonly callchain: Callchain;
  readonly start: number;
  readonly insnCnt: number;
  updated = false;
  mustWriteDropped = false;
  /** Per frame of the chain, WORDS words per instruction; null until used. */
  readonly frames: (Uint32Array | null)[] = [];
  readonly mustWriteSet: Uint8Array;

  constructor(callchain: Callchain, insnCnt: number) {
    this.callchain = callchain;
    this.start = callchain.spStarts[callchain.curframe];
    this.insnCnt = insnCnt;
    this.mustWriteSet = new Uint8Array(insnCnt);
  }

  // alloc_frame_masks()
  masks(frame: number): Uint32Array {
    return this.frames[frame] ??= new Uint32Array(this.insnCnt * WORDS);
  }
}

/** `struct bpf_liveness`. */
class Liveness {
  readonly instances: Map<string, FuncInstance> = new Map();
  cur: FuncInstance | null = null;
  readonly writeAcc: Uint32Array = new Uint32Array(2 * 8);
  writeInsnIdx = 0;
  query: FuncInstance[] = [];
  queryCurframe = 0;
  queryInsnIdx = 0;
}

const LIVENESS = new WeakMap<Env, Liveness>();

function liveness(env: Env): Liveness {
  let l = LIVENESS.get(env);
  if (!l) LIVENESS.set(env, l = new Liveness());
  return l;
}

// compute_callchain()
function computeCallchain(
  env: Env,
  st: VerifierState,
  frameno: number,
): Callchain {
  const callsites: number[] = [], spStarts: number[] = [];
  for (let i = 0; i <= frameno; i++) {
    spStarts.push(env.layout.subprogs[st.frames[i].subprogno].start);
    callsites.push(i < frameno ? st.frames[i + 1].callsite : spStarts[i]);
  }
  return { callsites, spStarts, curframe: frameno };
}

// __lookup_instance(): instances live until the load ends
function lookupChain(env: Env, chain: Callchain): FuncInstance {
  const l = liveness(env);
  const key = chain.callsites.join(",");
  let inst = l.instances.get(key);
  if (!inst) {
    const subprogs = env.layout.subprogs;
    const start = chain.spStarts[chain.curframe];
    const sp = subprogs[findContainingSubprog(subprogs, start)];
    inst = new FuncInstance(chain, sp.end - sp.start);
    l.instances.set(key, inst);
  }
  return inst;
}

function lookupInstance(
  env: Env,
  st: VerifierState,
  frameno: number,
): FuncInstance {
  return lookupChain(env, computeCallchain(env, st, frameno));
}

// ensure_cur_instance()
function curInstance(env: Env): FuncInstance {
  const l = liveness(env);
  return l.cur ??= lookupInstance(env, env.cur, env.cur.curframe);
}

/** The 64-bit mask of slot `spi` as [lo, hi]. */
function bit(spi: number): [number, number] {
  return spi < 32 ? [(1 << spi) >>> 0, 0] : [0, (1 << (spi - 32)) >>> 0];
}

// mark_stack_read()
function markRead(
  inst: FuncInstance,
  frame: number,
  insnIdx: number,
  lo: number,
  hi: number,
): void {
  const m = inst.masks(frame);
  const at = (insnIdx - inst.start) * WORDS;
  const rLo = (m[at + MAY_READ] | lo) >>> 0;
  const rHi = (m[at + MAY_READ + 1] | hi) >>> 0;
  if (
    (rLo !== m[at + MAY_READ] || rHi !== m[at + MAY_READ + 1]) &&
    (((rLo | m[at + LIVE]) >>> 0) !== m[at + LIVE] ||
      ((rHi | m[at + LIVE + 1]) >>> 0) !== m[at + LIVE + 1])
  ) inst.updated = true;
  m[at + MAY_READ] = rLo;
  m[at + MAY_READ + 1] = rHi;
}

/**
 * Mirrors `bpf_mark_stack_read()`: the current instruction may read slot
 * `spi` of frame `frameno`.
 */
export function markStackRead(env: Env, frameno: number, spi: number): void {
  const [lo, hi] = bit(spi);
  markRead(curInstance(env), frameno, env.insnIdx, lo, hi);
}

/**
 * Mirrors `bpf_mark_stack_write()`: the current instruction writes all 8
 * bytes of slot `spi` of frame `frameno` (committed after the instruction).
 */
export function markStackWrite(env: Env, frameno: number, spi: number): void {
  const l = liveness(env);
  const [lo, hi] = bit(spi);
  l.writeAcc[2 * frameno] |= lo;
  l.writeAcc[2 * frameno + 1] |= hi;
}

function resetWriteMarks(l: Liveness, inst: FuncInstance, idx: number): void {
  l.writeInsnIdx = idx;
  l.writeAcc.fill(0, 0, 2 * (inst.callchain.curframe + 1));
}

/** Mirrors `bpf_reset_stack_write_marks()` before instruction `idx`. */
export function resetStackWriteMarks(env: Env, idx: number): void {
  resetWriteMarks(liveness(env), curInstance(env), idx);
}

// commit_stack_write_marks(): must_write is intersected over visits
function commitWriteMarks(l: Liveness, inst: FuncInstance | null): void {
  if (!inst) return;
  const rel = l.writeInsnIdx - inst.start;
  for (let frame = 0; frame <= inst.callchain.curframe; frame++) {
    let lo = l.writeAcc[2 * frame], hi = l.writeAcc[2 * frame + 1];
    if (!lo && !hi && !inst.mustWriteSet[rel]) continue;
    const m = inst.masks(frame);
    const at = rel * WORDS + MUST_WRITE;
    const oLo = m[at], oHi = m[at + 1];
    if (inst.mustWriteSet[rel]) {
      lo = (lo & oLo) >>> 0;
      hi = (hi & oHi) >>> 0;
    }
    if (oLo !== lo || oHi !== hi) {
      m[at] = lo;
      m[at + 1] = hi;
      inst.updated = true;
    }
    if ((oLo & ~lo) || (oHi & ~hi)) inst.mustWriteDropped = true;
  }
  inst.mustWriteSet[rel] = 1;
  l.writeInsnIdx = 0;
}

/** Mirrors `bpf_commit_stack_write_marks()` after an instruction. */
export function commitStackWriteMarks(env: Env): void {
  const l = liveness(env);
  commitWriteMarks(l, l.cur);
}

/**
 * Mirrors `bpf_reset_live_stack_callchain()`: the current state changed
 * its call chain (a static function was entered); marks until the next
 * instruction are dropped, as the kernel's are.
 */
export function resetLiveStackCallchain(env: Env): void {
  liveness(env).cur = null;
}

// update_insn(): one step of the data flow equations
function updateInsn(
  insns: readonly Insn[],
  inst: FuncInstance,
  m: Uint32Array,
  idx: number,
): boolean {
  const succ = insnSuccessors(insns[idx], idx);
  if (!succ.length) return false;
  let aLo = 0, aHi = 0, wLo = 0xffffffff, wHi = 0xffffffff;
  for (const s of succ) {
    const at = (s - inst.start) * WORDS;
    aLo |= m[at + LIVE];
    aHi |= m[at + LIVE + 1];
    wLo &= m[at + WRITE_ACC];
    wHi &= m[at + WRITE_ACC + 1];
  }
  const at = (idx - inst.start) * WORDS;
  wLo = (wLo | m[at + MUST_WRITE]) >>> 0;
  wHi = (wHi | m[at + MUST_WRITE + 1]) >>> 0;
  const bLo = ((aLo & ~m[at + MUST_WRITE]) | m[at + MAY_READ]) >>> 0;
  const bHi = ((aHi & ~m[at + MUST_WRITE + 1]) | m[at + MAY_READ + 1]) >>> 0;
  const changed = bLo !== m[at + LIVE] || bHi !== m[at + LIVE + 1] ||
    wLo !== m[at + WRITE_ACC] || wHi !== m[at + WRITE_ACC + 1];
  m[at + LIVE] = bLo;
  m[at + LIVE + 1] = bHi;
  m[at + WRITE_ACC] = wLo;
  m[at + WRITE_ACC + 1] = wHi;
  return changed;
}

// update_instance(): the fixed point, then the transfer to the caller
function updateInstance(env: Env, inst: FuncInstance): void {
  const frames = inst.callchain.curframe + 1;
  if (inst.mustWriteDropped) {
    // a smaller must_write can only shrink must_write_acc: start over
    for (let f = 0; f < frames; f++) {
      const m = inst.frames[f];
      if (!m) continue;
      for (let i = 0; i < inst.insnCnt; i++) {
        m[i * WORDS + WRITE_ACC] = m[i * WORDS + WRITE_ACC + 1] = 0;
      }
    }
  }
  const insns = env.insns, end = inst.start + inst.insnCnt;
  for (let changed = true; changed;) {
    changed = false;
    for (let f = 0; f < frames; f++) {
      const m = inst.frames[f];
      if (!m) continue;
      // backwards, as a postorder would visit them
      for (let i = end - 1; i >= inst.start; i--) {
        if (insns[i].kind === "ld_imm64_hi") continue;
        if (updateInsn(insns, inst, m, i)) changed = true;
      }
    }
  }
  if (inst.callchain.curframe > 0) propagateToOuter(env, inst);
}

// propagate_to_outer_instance(): the callee's entry masks for the
// caller's frames become the call instruction's reads and writes
function propagateToOuter(env: Env, inst: FuncInstance): void {
  const chain = inst.callchain, up = chain.curframe - 1;
  const callsites = chain.callsites.slice(0, up + 1);
  callsites[up] = chain.spStarts[up];
  const outer = lookupChain(env, {
    callsites,
    spStarts: chain.spStarts.slice(0, up + 1),
    curframe: up,
  });
  const callsite = chain.callsites[up];
  const l = liveness(env);
  resetWriteMarks(l, outer, callsite);
  for (let f = 0; f < chain.curframe; f++) {
    const m = inst.frames[f];
    if (!m) continue;
    l.writeAcc[2 * f] |= m[WRITE_ACC];
    l.writeAcc[2 * f + 1] |= m[WRITE_ACC + 1];
    markRead(outer, f, callsite, m[LIVE], m[LIVE + 1]);
  }
  commitWriteMarks(l, outer);
}

/**
 * Mirrors `bpf_update_live_stack()`: brings the masks of every call chain
 * of the current state up to date, callees first. Called where the kernel
 * calls it: at a subprogram's exit and when a path ends.
 */
export function updateLiveStack(env: Env): void {
  resetLiveStackCallchain(env);
  for (let frame = env.cur.curframe; frame >= 0; frame--) {
    const inst = lookupInstance(env, env.cur, frame);
    if (!inst.updated) continue;
    updateInstance(env, inst);
    inst.updated = false;
    inst.mustWriteDropped = false;
  }
}

/** Mirrors `bpf_live_stack_query_init()`: queries now concern `st`. */
export function liveStackQueryInit(env: Env, st: VerifierState): void {
  const l = liveness(env);
  l.query = [];
  for (let f = 0; f <= st.curframe; f++) {
    l.query.push(lookupInstance(env, st, f));
  }
  l.queryCurframe = st.curframe;
  l.queryInsnIdx = st.insnIdx;
}

// is_live_before()
function isLiveBefore(
  inst: FuncInstance,
  idx: number,
  frameno: number,
  spi: number,
): boolean {
  const m = inst.frames[frameno];
  if (!m) return false;
  const at = (idx - inst.start) * WORDS + LIVE;
  return spi < 32
    ? (m[at] & (1 << spi)) !== 0
    : (m[at + 1] & (1 << (spi - 32))) !== 0;
}

/**
 * Mirrors `bpf_stack_slot_alive()`: slot `spi` of frame `frameno` of the
 * queried state may still be read — at its instruction, or in a caller
 * after the call returns (before the call, when it calls a callback that
 * may run again).
 */
export function stackSlotAlive(
  env: Env,
  frameno: number,
  spi: number,
): boolean {
  const l = liveness(env);
  const top = l.query[l.queryCurframe];
  if (isLiveBefore(top, l.queryInsnIdx, frameno, spi)) return true;
  for (let i = frameno; i < l.queryCurframe; i++) {
    const callsite = top.callchain.callsites[i];
    const at = env.aux.callsCallbackAt(callsite) ? callsite : callsite + 1;
    if (isLiveBefore(l.query[i], at, frameno, spi)) return true;
  }
  return false;
}
