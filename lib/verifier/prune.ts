/**
 * State pruning: `is_state_visited()` at prune points with `states_equal()`
 * / `regsafe()` / `stacksafe()`, the branch counts that say when a
 * checkpoint is fully explored (`update_branch_counts()`), and the
 * `infinite loop detected at insn %d` refusal.
 *
 * Approximations (documented, sound): there is no liveness analysis and no
 * precision tracking, so every register and every scalar counts as live and
 * precise — a state prunes only when it subsumes the current one in every
 * register (ranges and known bits) and stack byte. The kernel prunes more
 * (dead registers and imprecise scalars match anything), so `processed`
 * and the state counts are higher here on programs with branches and loops.
 * @module
 */
import type { Env } from "./env.ts";
import { EINVAL } from "./env.ts";
import { printLineInfo, printVerifierState } from "./log.ts";
import type { RegState } from "./reg_state.ts";
import {
  baseType,
  NOT_INIT,
  PTR_TO_MAP_KEY,
  PTR_TO_MAP_VALUE,
  PTR_TO_MEM,
  SCALAR_VALUE,
  typeIsPktPointer,
} from "./reg_types.ts";
import { scalarsEqual, scalarWithin } from "./scalar.ts";
import {
  BPF_REG_SIZE,
  type Checkpoint,
  copyVerifierState,
  type FuncState,
  type SlotStates,
  STACK_INVALID,
  STACK_MISC,
  STACK_SPILL,
  type VerifierState,
} from "./state.ts";

/** Id correspondence between an old and a current state (`struct bpf_idmap`). */
class IdMap {
  readonly map: Map<number, number> = new Map();
  readonly used: Set<number> = new Set();
  tmp = 1 << 30;

  // mirrors check_ids()
  check(oldId: number, curId: number): boolean {
    if (!oldId && !curId) return true;
    if (!oldId || !curId) return false;
    const m = this.map.get(oldId);
    if (m !== undefined) return m === curId;
    if (this.used.has(curId)) return false;
    this.map.set(oldId, curId);
    this.used.add(curId);
    return true;
  }

  // mirrors check_scalar_ids(): zero ids are unique
  checkScalar(oldId: number, curId: number): boolean {
    return this.check(oldId || ++this.tmp, curId || ++this.tmp);
  }
}

// mirrors regsafe()
function regsafe(
  old: RegState,
  cur: RegState,
  exact: boolean,
  ids: IdMap,
): boolean {
  if (old.type === NOT_INIT) return !exact || cur.type === NOT_INIT;
  if (cur.type === NOT_INIT || old.type !== cur.type) return false;
  if (exact) {
    return old.off === cur.off && old.map === cur.map &&
      old.range === cur.range && old.memSize === cur.memSize &&
      old.frameno === cur.frameno && scalarsEqual(old.s, cur.s) &&
      ids.check(old.id, cur.id) && ids.check(old.refObjId, cur.refObjId);
  }
  if (old.type === SCALAR_VALUE) {
    return ids.checkScalar(old.id, cur.id) && scalarWithin(old.s, cur.s);
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

// mirrors stacksafe() for a privileged loader (old MISC matches anything)
function stacksafe(
  old: FuncState,
  cur: FuncState,
  exact: boolean,
  ids: IdMap,
): boolean {
  const n = old.stack.length * BPF_REG_SIZE;
  for (let i = 0; i < n; i++) {
    const spi = Math.floor(i / BPF_REG_SIZE);
    const j = i % BPF_REG_SIZE;
    const ot = old.stack[spi].slotType[j];
    const ct = spi < cur.stack.length
      ? cur.stack[spi].slotType[j]
      : STACK_INVALID;
    if (exact) {
      if (ot !== ct) return false;
    } else {
      if (ot === STACK_INVALID || ot === STACK_MISC) continue;
      if (spi >= cur.stack.length || ot !== ct) return false;
    }
    if (j !== BPF_REG_SIZE - 1 || ot !== STACK_SPILL) continue;
    if (!regsafe(old.stack[spi].spilled, cur.stack[spi].spilled, exact, ids)) {
      return false;
    }
  }
  if (exact && old.stack.length !== cur.stack.length) {
    for (let spi = old.stack.length; spi < cur.stack.length; spi++) {
      if (cur.stack[spi].slotType.some((t) => t !== STACK_INVALID)) {
        return false;
      }
    }
  }
  return true;
}

/** Mirrors `states_equal()`: `old` covers `cur` (or equals it, when `exact`). */
export function statesEqual(
  old: VerifierState,
  cur: VerifierState,
  exact: boolean,
): boolean {
  if (old.curframe !== cur.curframe) return false;
  if (old.activeLocks !== cur.activeLocks) return false;
  if (old.refs.length !== cur.refs.length) return false;
  const ids = new IdMap();
  for (let i = 0; i < old.refs.length; i++) {
    if (!ids.check(old.refs[i].id, cur.refs[i].id)) return false;
  }
  for (let f = 0; f <= old.curframe; f++) {
    const o = old.frames[f], c = cur.frames[f];
    if (o.callsite !== c.callsite) return false;
    for (let r = 0; r < o.regs.length; r++) {
      if (!regsafe(o.regs[r], c.regs[r], exact, ids)) return false;
    }
    if (!stacksafe(o, c, exact, ids)) return false;
  }
  return true;
}

/**
 * A cheap fingerprint of the running frame's registers (ids left out), so
 * the infinite-loop check compares strings before whole states — the
 * kernel's `states_maybe_looping()` memcmp.
 */
function loopKey(vs: VerifierState): string {
  const f = vs.frames[vs.curframe];
  let k = `${vs.curframe}|`;
  for (const r of f.regs) {
    k +=
      `${r.type},${r.off},${r.s.varOff.value},${r.s.varOff.mask},${r.s.smin},${r.s.smax},${r.s.umin},${r.s.umax},${r.s.s32Min},${r.s.s32Max},${r.s.u32Min},${r.s.u32Max};`;
  }
  return k;
}

function slotStates(env: Env, idx: number): SlotStates {
  let ss = env.explored.get(idx);
  if (!ss) {
    ss = { done: [], active: new Map(), activeCount: 0 };
    env.explored.set(idx, ss);
  }
  return ss;
}

// a checkpoint's last path finished: it may prune from now on
function complete(env: Env, cp: Checkpoint): void {
  const ss = slotStates(env, cp.state.insnIdx);
  const same = ss.active.get(cp.loopKey);
  if (same) {
    const k = same.indexOf(cp);
    if (k >= 0) same.splice(k, 1);
    if (same.length === 0) ss.active.delete(cp.loopKey);
  }
  ss.activeCount--;
  ss.done.push(cp);
}

/** Mirrors `update_branch_counts()`: one path from `vs` has finished. */
export function updateBranchCounts(env: Env, vs: VerifierState): void {
  let st = vs.parent;
  while (st) {
    st.branches--;
    if (st.branches > 0) break;
    complete(env, st);
    st = st.state.parent;
  }
}

/**
 * Mirrors `is_state_visited()` at slot `idx`: true when an explored,
 * completed state covers the current one (the path can stop); otherwise
 * maybe records a checkpoint. Throws on an infinite loop.
 */
export function isStateVisited(env: Env, idx: number): boolean {
  const cur = env.cur;
  const force = env.aux.isForceCheckpoint(idx);
  let addNew = force ||
    (env.jmpsProcessed - env.prevJmpsProcessed >= 2 &&
      env.insnProcessed - env.prevInsnProcessed >= 8);
  const ss = slotStates(env, idx);
  const curKey = loopKey(cur);
  if (ss.activeCount > 0) {
    for (const cp of ss.active.get(curKey) ?? []) {
      const old = cp.state;
      if (old.loopDepth === cur.loopDepth && statesEqual(old, cur, true)) {
        printLineInfo(env.log, env.prog.lineInfo, idx);
        env.log.write(`infinite loop detected at insn ${idx}\n`);
        env.log.write("cur state:");
        printVerifierState(env.log, cur, cur.curframe, true);
        env.log.write("old state:");
        printVerifierState(env.log, old, cur.curframe, true);
        env.abort(EINVAL, env.log.lastLine());
      }
    }
    if (
      !force && env.jmpsProcessed - env.prevJmpsProcessed < 20 &&
      env.insnProcessed - env.prevInsnProcessed < 100
    ) addNew = false;
  }
  const list = ss.done;
  for (let k = 0; k < list.length; k++) {
    const cp = list[k];
    if (statesEqual(cp.state, cur, false)) {
      cp.hitCnt++;
      return true;
    }
    cp.missCnt++;
    if (cp.missCnt > cp.hitCnt * 3 + 3) {
      // evict states that keep missing (as the kernel does)
      list.splice(k--, 1);
      env.liveStates--;
    }
  }
  if (!addNew) return false;
  env.totalStates++;
  env.liveStates++;
  if (env.liveStates > env.peakStates) env.peakStates = env.liveStates;
  env.prevJmpsProcessed = env.jmpsProcessed;
  env.prevInsnProcessed = env.insnProcessed;
  const snapshot = copyVerifierState(cur);
  snapshot.insnIdx = idx;
  const cp: Checkpoint = {
    state: snapshot,
    branches: 1,
    hitCnt: 0,
    missCnt: 0,
    loopKey: curKey,
  };
  cur.parent = cp;
  const same = ss.active.get(curKey);
  if (same) same.push(cp);
  else ss.active.set(curKey, [cp]);
  ss.activeCount++;
  const n = ss.activeCount + ss.done.length;
  if (n > env.maxStatesPerInsn) env.maxStatesPerInsn = n;
  return false;
}
