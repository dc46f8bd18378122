/**
 * Cleaning explored states before they are compared, as Linux 6.18's
 * `clean_live_states()` does: a finished checkpoint's stack slots that no
 * later instruction can read (stack_liveness.ts) become STACK_INVALID, so
 * they match anything. Also the loop bookkeeping that decides when a
 * finished state's marks may still be incomplete (`struct bpf_scc_visit`:
 * `maybe_enter_scc()`, `add_scc_backedge()`, `incomplete_read_marks()`):
 * while a loop closed by a back edge is still being explored from the state
 * that entered it, the states inside it are not cleaned.
 * @module
 */
import type { Env } from "./env.ts";
import { computeScc } from "./liveness.ts";
import { markRegNotInit } from "./reg_state.ts";
import { type Checkpoint, STACK_INVALID, type VerifierState } from "./state.ts";
import { liveStackQueryInit, stackSlotAlive } from "./stack_liveness.ts";

/** One loop visit per call chain (`struct bpf_scc_visit`). */
interface SccVisit {
  /** The checkpoint that entered the loop; null once it finished. */
  entry: Checkpoint | null;
  /** Back edges recorded since (`num_backedges`). */
  backedges: number;
}

/** Per load: each slot's SCC id and the loop visits. */
interface SccInfo {
  readonly scc: Uint32Array;
  readonly visits: Map<string, SccVisit>;
  readonly cleaned: WeakSet<VerifierState>;
}

const SCC = new WeakMap<Env, SccInfo>();

function sccInfo(env: Env): SccInfo {
  let info = SCC.get(env);
  if (!info) {
    // compute_scc(): a call that calls a callback is a loop by itself
    const scc = computeScc(env.insns);
    let next = scc.reduce((a, b) => Math.max(a, b), 0) + 1;
    for (let i = 0; i < scc.length; i++) {
      if (!scc[i] && env.aux.callsCallbackAt(i)) scc[i] = next++;
    }
    info = { scc, visits: new Map(), cleaned: new WeakSet() };
    SCC.set(env, info);
  }
  return info;
}

// frame_insn_idx(): where frame i of `st` is
function frameInsnIdx(st: VerifierState, i: number): number {
  return i === st.curframe ? st.insnIdx : st.frames[i + 1].callsite;
}

// compute_scc_callchain(): the call sites down to the first frame inside
// a loop, and that loop; null when no frame is inside one
function sccCallchain(env: Env, st: VerifierState): string | null {
  const scc = sccInfo(env).scc;
  const sites: number[] = [];
  for (let i = 0; i <= st.curframe; i++) {
    const idx = frameInsnIdx(st, i);
    if (scc[idx]) return `${sites.join(",")}|${scc[idx]}`;
    sites.push(idx);
  }
  return null;
}

// the visit of `st`'s loop, its entry forgotten once that checkpoint has
// finished (maybe_exit_scc() in update_branch_counts(), applied lazily:
// every use settles it first, so the outcome is the same)
function visitOf(env: Env, st: VerifierState, create: boolean) {
  const key = sccCallchain(env, st);
  if (key === null) return null;
  const visits = sccInfo(env).visits;
  let v = visits.get(key);
  if (!v && create) visits.set(key, v = { entry: null, backedges: 0 });
  if (v?.entry && v.entry.branches === 0) {
    v.entry = null;
    v.backedges = 0;
  }
  return v ?? null;
}

/** Mirrors `maybe_enter_scc()` for a checkpoint just recorded. */
export function maybeEnterScc(env: Env, cp: Checkpoint): void {
  const v = visitOf(env, cp.state, true);
  if (v && !v.entry) v.entry = cp;
}

/** Mirrors `add_scc_backedge()`: a loop was closed against `cp`. */
export function addSccBackedge(env: Env, cp: Checkpoint): void {
  const v = visitOf(env, cp.state, false);
  if (v) v.backedges++;
}

/** Mirrors `incomplete_read_marks()`: `st`'s loop still has open back edges. */
export function incompleteReadMarks(env: Env, st: VerifierState): boolean {
  const v = visitOf(env, st, false);
  return v !== null && v.backedges > 0;
}

// same_callsites()
function sameCallsites(a: VerifierState, b: VerifierState): boolean {
  if (a.curframe !== b.curframe) return false;
  for (let f = a.curframe; f >= 0; f--) {
    if (a.frames[f].callsite !== b.frames[f].callsite) return false;
  }
  return true;
}

// clean_verifier_state() / clean_func_state() for the stack (dead
// registers are skipped by statesEqual() through the live-register table)
function cleanVerifierState(env: Env, st: VerifierState): void {
  liveStackQueryInit(env, st);
  for (const f of st.frames) {
    for (let spi = 0; spi < f.stack.length; spi++) {
      if (stackSlotAlive(env, f.frameno, spi)) continue;
      markRegNotInit(f.stack[spi].spilled);
      f.stack[spi].slotType.fill(STACK_INVALID);
    }
  }
}

/**
 * Mirrors `clean_live_states()` at slot `idx`: every finished checkpoint of
 * `list` at `idx` with the current state's call sites, not yet cleaned and
 * not inside a loop still being explored, loses its dead stack slots.
 */
export function cleanLiveStates(
  env: Env,
  idx: number,
  list: readonly Checkpoint[],
): void {
  const cleaned = sccInfo(env).cleaned;
  for (const cp of list) {
    const st = cp.state;
    if (cp.branches || st.insnIdx !== idx || !sameCallsites(st, env.cur)) {
      continue;
    }
    if (cleaned.has(st) || incompleteReadMarks(env, st)) continue;
    cleaned.add(st);
    cleanVerifierState(env, st);
  }
}
