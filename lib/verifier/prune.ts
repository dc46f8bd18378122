/**
 * State pruning: `is_state_visited()` at prune points with `states_equal()`
 * / `regsafe()` / `stacksafe()`, the branch counts that say when a
 * checkpoint is fully explored (`update_branch_counts()`), and the
 * `infinite loop detected at insn %d` refusal.
 *
 * As in Linux 6.18, a finished state compares only the registers live at
 * its instruction (liveness.ts), only its stack slots still live there
 * (dead ones are cleaned first: clean_states.ts, stack_liveness.ts), and
 * its scalars only where they are marked precise (precision.ts): an
 * imprecise scalar matches any value — unless the state sits in a loop
 * whose back edges are still open, where ranges must be within. A hit
 * propagates the old state's precise marks back along the current path.
 * Loops closed at may_goto, iterator or callback instructions record a
 * back edge, but the kernel's propagation along back edges is not modelled.
 * @module
 */
import type { Env } from "./env.ts";
import { EINVAL } from "./env.ts";
import { liveRegsOf } from "./liveness.ts";
import {
  addSccBackedge,
  cleanLiveStates,
  incompleteReadMarks,
  maybeEnterScc,
} from "./clean_states.ts";
import { evictedCount, updatePeakStates } from "./state_counts.ts";
import { printLineInfo, printVerifierState } from "./log.ts";
import {
  markAllScalarsImprecise,
  propagatePrecision,
  pushJmpHistory,
} from "./precision.ts";
import { IdMap } from "./id_map.ts";
import {
  idAddConst,
  markRegUnknown,
  notInitReg,
  type RegState,
} from "./reg_state.ts";
import {
  baseType,
  NOT_INIT,
  PTR_TO_MAP_KEY,
  PTR_TO_MAP_VALUE,
  PTR_TO_MEM,
  PTR_TO_STACK,
  SCALAR_VALUE,
  typeIsPktPointer,
} from "./reg_types.ts";
import { scalarsEqual, scalarWithin } from "./scalar.ts";
import {
  BPF_REG_SIZE,
  type Checkpoint,
  copyVerifierState,
  type FuncState,
  refsAndLocksEqual,
  STACK_DYNPTR,
  STACK_INVALID,
  STACK_ITER,
  STACK_MISC,
  STACK_SPILL,
  type StackSlot,
  type VerifierState,
} from "./state.ts";

const IDS = new IdMap();
const checkIds = (o: number, c: number): boolean => IDS.check(o, c);

/** `enum exact_level`: how strictly states_equal() compares. */
export type ExactLevel = "not_exact" | "range_within" | "exact";

// mirrors regsafe()
function regsafe(
  old: RegState,
  cur: RegState,
  level: ExactLevel,
  ids: IdMap,
): boolean {
  const exact = level === "exact";
  if (old.type === NOT_INIT) return !exact || cur.type === NOT_INIT;
  if (cur.type === NOT_INIT || old.type !== cur.type) return false;
  if (exact) {
    return old.off === cur.off && old.map === cur.map &&
      old.range === cur.range && old.memSize === cur.memSize &&
      old.frameno === cur.frameno && scalarsEqual(old.s, cur.s) &&
      ids.check(old.id, cur.id) && ids.check(old.refObjId, cur.refObjId);
  }
  if (old.type === SCALAR_VALUE) {
    // an imprecise scalar of a finished state was never relied upon (a loop
    // check, RANGE_WITHIN, compares every scalar's range)
    if (!old.precise && level === "not_exact") return true;
    // a BPF_ADD_CONST link must be the same kind with the same delta
    if (idAddConst(old.id) !== idAddConst(cur.id)) return false;
    if (idAddConst(old.id) && old.off !== cur.off) return false;
    return scalarWithin(old.s, cur.s) && ids.checkScalar(old.id, cur.id);
  }
  const b = baseType(old.type);
  if (b === PTR_TO_MAP_VALUE || b === PTR_TO_MAP_KEY || b === PTR_TO_MEM) {
    return old.off === cur.off && old.map === cur.map &&
      old.memSize === cur.memSize && scalarWithin(old.s, cur.s) &&
      ids.check(old.id, cur.id) && ids.check(old.refObjId, cur.refObjId);
  }
  if (typeIsPktPointer(old.type)) {
    if (old.range > cur.range || old.off !== cur.off) return false;
    return ids.check(old.id, cur.id) && scalarWithin(old.s, cur.s);
  }
  return old.off === cur.off && old.frameno === cur.frameno &&
    old.map === cur.map && old.btfId === cur.btfId &&
    scalarsEqual(old.s, cur.s) && ids.check(old.id, cur.id) &&
    ids.check(old.refObjId, cur.refObjId);
}

/** `unbound_reg`: what a load from all-MISC stack bytes yields. */
const UNBOUND: RegState = (() => {
  const r = notInitReg();
  markRegUnknown(r);
  return r;
})();

// mirrors scalar_reg_for_stack() for a loader allowed uninit stack reads
function scalarRegForStack(slot: StackSlot): RegState | null {
  const t = slot.slotType;
  if (t[0] === STACK_SPILL && slot.spilled.type === SCALAR_VALUE) {
    return slot.spilled;
  }
  for (let j = 0; j < BPF_REG_SIZE; j++) {
    if (t[j] !== STACK_MISC && t[j] !== STACK_INVALID) return null;
  }
  return UNBOUND;
}

// mirrors stacksafe() for a privileged loader (old MISC matches anything)
function stacksafe(
  old: FuncState,
  cur: FuncState,
  level: ExactLevel,
  ids: IdMap,
): boolean {
  const exact = level === "exact";
  const n = old.stack.length * BPF_REG_SIZE;
  const curN = cur.stack.length * BPF_REG_SIZE;
  for (let i = 0; i < n; i++) {
    const spi = i >> 3, j = i & 7;
    const ot = old.stack[spi].slotType[j];
    if (exact && (i >= curN || ot !== cur.stack[spi].slotType[j])) {
      return false;
    }
    if (ot === STACK_INVALID || ot === STACK_MISC) continue;
    if (i >= curN) return false;
    // a 64-bit scalar spill and all-MISC bytes are both "some scalar"
    const oReg = scalarRegForStack(old.stack[spi]);
    const cReg = oReg && scalarRegForStack(cur.stack[spi]);
    if (oReg && cReg) {
      if (!regsafe(oReg, cReg, level, ids)) return false;
      i += BPF_REG_SIZE - 1 - j;
      continue;
    }
    if (ot !== cur.stack[spi].slotType[j]) return false;
    if (j !== BPF_REG_SIZE - 1) continue;
    const o = old.stack[spi].spilled, c = cur.stack[spi].spilled;
    if (ot === STACK_ITER) {
      // the iterator's kind and state, not its depth
      if (
        o.iter?.kind !== c.iter?.kind || o.iter?.state !== c.iter?.state ||
        !ids.check(o.refObjId, c.refObjId)
      ) return false;
      continue;
    }
    if (ot === STACK_DYNPTR) {
      if (
        o.btfName !== c.btfName || o.frameno !== c.frameno ||
        !ids.check(o.refObjId, c.refObjId)
      ) return false;
      continue;
    }
    if (ot !== STACK_SPILL) continue;
    if (!regsafe(o, c, level, ids)) return false;
  }
  return true;
}

/**
 * Mirrors `states_equal()`: `old` covers `cur` (or equals it, when
 * `exact`), comparing in each frame only the registers live at that
 * frame's instruction (`func_states_equal()`).
 */
export function statesEqual(
  env: Env,
  old: VerifierState,
  cur: VerifierState,
  exact: boolean | ExactLevel,
): boolean {
  const level: ExactLevel = exact === true
    ? "exact"
    : exact === false
    ? "not_exact"
    : exact;
  if (old.curframe !== cur.curframe) return false;
  const ids = IDS;
  ids.reset();
  if (!refsAndLocksEqual(old, cur, checkIds)) return false;
  const live = liveRegsOf(env);
  for (let f = 0; f <= old.curframe; f++) {
    const o = old.frames[f], c = cur.frames[f];
    if (o.callsite !== c.callsite) return false;
    const at = f === old.curframe ? old.insnIdx : old.frames[f + 1].callsite;
    const mask = live[at];
    for (let r = 0; r < o.regs.length; r++) {
      if (!(mask & (1 << r))) continue;
      if (!regsafe(o.regs[r], c.regs[r], level, ids)) return false;
    }
    if (!stacksafe(o, c, level, ids)) return false;
  }
  return true;
}

/**
 * Mirrors `states_maybe_looping()`: the running frame's registers are
 * identical (ids included) — the cheap test before an exact comparison.
 */
function statesMaybeLooping(old: VerifierState, cur: VerifierState): boolean {
  const fr = cur.curframe;
  if (old.curframe !== fr) return false;
  const o = old.frames[fr].regs, c = cur.frames[fr].regs;
  for (let i = 0; i < o.length; i++) {
    const a = o[i], b = c[i];
    if (
      a.type !== b.type || a.off !== b.off || a.id !== b.id ||
      a.refObjId !== b.refObjId || !scalarsEqual(a.s, b.s)
    ) return false;
  }
  return true;
}

// the infinite-loop check against a state still being explored
function checkLooping(env: Env, idx: number, old: VerifierState): void {
  const cur = env.cur;
  if (
    old.loopDepth !== cur.loopDepth ||
    old.callbackUnrollDepth !== cur.callbackUnrollDepth ||
    !statesMaybeLooping(old, cur) ||
    !statesEqual(env, old, cur, true)
  ) return;
  printLineInfo(env.log, env.prog.lineInfo, idx);
  env.log.write(`infinite loop detected at insn ${idx}\n`);
  env.log.write("cur state:");
  printVerifierState(env.log, cur, cur.curframe, true);
  env.log.write("old state:");
  printVerifierState(env.log, old, cur.curframe, true);
  env.abort(EINVAL, env.log.lastLine());
}

// the iterator in R1 (iterator kfuncs take it first) is active
function iterActiveAt(vs: VerifierState): boolean {
  const r1 = vs.frames[vs.curframe].regs[1];
  if (r1.type !== PTR_TO_STACK) return false;
  const off = r1.off + Number(BigInt.asIntN(64, r1.s.varOff.value));
  const slot = vs.frames[r1.frameno]?.stack[Math.floor((-off - 1) / 8)];
  return slot?.spilled.iter?.state === "active";
}

// a finished checkpoint covers `cur` (NOT_EXACT); inside a loop whose marks
// are incomplete (incomplete_read_marks()) ranges must be within, and the
// hit is one more back edge of that loop
function finishedStateCovers(
  env: Env,
  cp: Checkpoint,
  cur: VerifierState,
): boolean {
  const loop = incompleteReadMarks(env, cp.state);
  if (!statesEqual(env, cp.state, cur, loop ? "range_within" : false)) {
    return false;
  }
  if (loop) addSccBackedge(env, cp);
  return true;
}

/** Jump history entries after which a checkpoint is forced. */
const MAX_JMP_HISTORY = 40;

/**
 * Mirrors `is_state_visited()` at slot `idx`: true when an explored,
 * completed state covers the current one (the path can stop, its precise
 * scalars propagated back along the current path); otherwise maybe
 * records a checkpoint. Throws on an infinite loop.
 */
export function isStateVisited(env: Env, idx: number): boolean {
  const cur = env.cur;
  const force = env.aux.isForceCheckpoint(idx) ||
    cur.jmpHistory.length > MAX_JMP_HISTORY;
  let addNew = force ||
    (env.jmpsProcessed - env.prevJmpsProcessed >= 2 &&
      env.insnProcessed - env.prevInsnProcessed >= 8);
  // explored_state(): one hash bucket per (slot ^ callsite), shared by
  // other slots; they count in max_states_per_insn but are skipped
  const bucket = ((idx ^ cur.frames[cur.curframe].callsite) >>> 0) %
    env.insns.length;
  let ss = env.explored.get(bucket);
  if (!ss) env.explored.set(bucket, ss = { list: [] });
  const list = ss.list;
  cleanLiveStates(env, idx, list);
  const statesCnt = list.length;
  // newest first, as the kernel's list_add() at the head orders them
  for (let k = list.length - 1; k >= 0; k--) {
    const cp = list[k];
    if (cp.state.insnIdx !== idx) continue;
    if (cp.branches && env.aux.isIterNextInsn(idx)) {
      // an open-coded iterator's loop converged: an active iteration
      // repeats a state still being explored (the iterator guarantees the
      // loop ends, so this path needs no more unrolling)
      if (
        statesEqual(env, cp.state, cur, "range_within") && iterActiveAt(cur)
      ) {
        cp.hitCnt++;
        addSccBackedge(env, cp);
        if (env.aux.isJmpPoint(idx)) pushJmpHistory(env, cur, 0, null);
        propagatePrecision(env, cp.state, cur);
        return true;
      }
    } else if (
      cp.branches && env.insns[idx].kind === "may_goto" &&
      cp.state.loopDepth !== cur.loopDepth &&
      statesEqual(env, cp.state, cur, "range_within")
    ) {
      // a may_goto loop converged: one more trip would change nothing
      cp.hitCnt++;
      addSccBackedge(env, cp);
      if (env.aux.isJmpPoint(idx)) pushJmpHistory(env, cur, 0, null);
      propagatePrecision(env, cp.state, cur);
      return true;
    } else if (cp.branches && env.aux.callsCallbackAt(idx)) {
      // a callback loop converged: this visit of the call repeats a state
      // still being explored
      if (statesEqual(env, cp.state, cur, "range_within")) {
        cp.hitCnt++;
        addSccBackedge(env, cp);
        if (env.aux.isJmpPoint(idx)) pushJmpHistory(env, cur, 0, null);
        propagatePrecision(env, cp.state, cur);
        return true;
      }
    } else if (cp.branches) {
      checkLooping(env, idx, cp.state);
      if (
        !force && env.jmpsProcessed - env.prevJmpsProcessed < 20 &&
        env.insnProcessed - env.prevInsnProcessed < 100
      ) addNew = false;
    } else if (finishedStateCovers(env, cp, cur)) {
      cp.hitCnt++;
      if (env.aux.isJmpPoint(idx)) pushJmpHistory(env, cur, 0, null);
      propagatePrecision(env, cp.state, cur);
      return true;
    }
    // miss: only counted when a state would be added (loop iterations
    // must not evict the states recorded before the loop)
    if (addNew) cp.missCnt++;
    const n = env.aux.isForceCheckpoint(idx) && cp.branches > 0 ? 64 : 3;
    if (cp.missCnt > cp.hitCnt * n + n) {
      list.splice(k, 1);
      env.liveStates--;
      if (cp.branches) {
        cp.evicted = true;
        evictedCount(env).size++;
      }
    }
  }
  if (statesCnt > env.maxStatesPerInsn) env.maxStatesPerInsn = statesCnt;
  if (!addNew) return false;
  env.totalStates++;
  env.liveStates++;
  updatePeakStates(env);
  env.prevJmpsProcessed = env.jmpsProcessed;
  env.prevInsnProcessed = env.insnProcessed;
  // forget inherited precision: children will ask again for what they need
  markAllScalarsImprecise(cur);
  const snapshot = copyVerifierState(cur);
  snapshot.insnIdx = idx;
  const cp: Checkpoint = {
    state: snapshot,
    branches: 1,
    hitCnt: 0,
    missCnt: 0,
    evicted: false,
  };
  cur.parent = cp;
  cur.firstInsnIdx = idx;
  cur.jmpHistory = [];
  list.push(cp);
  maybeEnterScc(env, cp);
  return false;
}
