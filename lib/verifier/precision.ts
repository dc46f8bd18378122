/**
 * Scalar precision tracking, after Linux 6.18: scalars start imprecise and
 * an explored state's imprecise scalar matches any current value
 * (`regsafe()`), until some instruction relies on the exact value (pointer
 * arithmetic, a branch decided by a constant, a helper's size argument …).
 * Then `mark_chain_precision()` walks the path backwards — through the
 * state's jump history and up the chain of checkpoints (`parent`) — and
 * sets `precise` on every register and spilled slot the value came from,
 * in the checkpoints, so they prune only states with matching values.
 *
 * Also here: the jump history itself (`push_jmp_history()`), the
 * `propagate_precision()` step after a successful prune, the
 * checkpoint-time `mark_all_scalars_imprecise()`, and the collection of
 * registers linked by a scalar id for a conditional jump.
 * @module
 */
import { formatInsn } from "../isa/disasm.ts";
import type { Env } from "./env.ts";
import {
  Backtrack,
  backtrackInsn,
  BtResult,
  fmtRegMask,
  fmtStackMask,
  packLinkedReg,
} from "./backtrack.ts";
import { mapAddress, printVerifierState } from "./log.ts";
import { idBase, type RegState } from "./reg_state.ts";
import { SCALAR_VALUE } from "./reg_types.ts";
import {
  isSpilledReg,
  type JmpHistEntry,
  type VerifierState,
} from "./state.ts";

/** `LINKED_REGS_MAX`. */
const LINKED_REGS_MAX = 6;
/** The kernel's single `env->bt`: the verifier runs one walk at a time. */
const BT = new Backtrack();

/**
 * Mirrors `push_jmp_history()`: records the current instruction in the
 * state's history, or merges `flags`/`linkedRegs` into the entry already
 * recorded for it during this step (`env->cur_hist_ent`).
 */
export function pushJmpHistory(
  env: Env,
  vs: VerifierState,
  flags: number,
  linkedRegs: readonly number[] | null,
): void {
  const h = vs.jmpHistory;
  const last = h.length ? h[h.length - 1] : undefined;
  if (last && last.seq === env.insnProcessed && last.idx === env.insnIdx) {
    // entries may be shared with copies of the state: replace, never mutate
    h[h.length - 1] = { ...last, flags: last.flags | flags, linkedRegs };
    return;
  }
  h.push({
    idx: env.insnIdx,
    prevIdx: env.prevInsnIdx,
    flags,
    linkedRegs,
    seq: env.insnProcessed,
  });
}

// mirrors get_jmp_hist_entry()
function histEntry(
  st: VerifierState,
  end: number,
  idx: number,
): JmpHistEntry | null {
  return end > 0 && st.jmpHistory[end - 1].idx === idx
    ? st.jmpHistory[end - 1]
    : null;
}

/** Mirrors `collect_linked_regs()`: scalars sharing `id`, packed for the history. */
export function collectLinkedRegs(
  vs: VerifierState,
  id: number,
  out: number[],
): void {
  id = idBase(id); // a BPF_ADD_CONST delta links as well
  for (let f = vs.curframe; f >= 0; f--) {
    const fr = vs.frames[f];
    for (let r = 0; r < 10; r++) {
      const reg = fr.regs[r];
      if (reg.type === SCALAR_VALUE && idBase(reg.id) === id) {
        if (out.length < LINKED_REGS_MAX) out.push(packLinkedReg(f, r, true));
      }
    }
    for (let spi = 0; spi < fr.stack.length; spi++) {
      if (!isSpilledReg(fr.stack[spi])) continue;
      const reg = fr.stack[spi].spilled;
      if (reg.type === SCALAR_VALUE && idBase(reg.id) === id) {
        if (out.length < LINKED_REGS_MAX) {
          out.push(packLinkedReg(f, spi, false));
        }
      }
    }
  }
}

function forEachScalar(
  vs: VerifierState,
  fn: (reg: RegState, frame: number, regno: number, spi: number) => void,
): void {
  for (let f = 0; f <= vs.curframe; f++) {
    const fr = vs.frames[f];
    for (let r = 0; r < 10; r++) {
      if (fr.regs[r].type === SCALAR_VALUE) fn(fr.regs[r], f, r, -1);
    }
    for (let spi = 0; spi < fr.stack.length; spi++) {
      const s = fr.stack[spi];
      if (isSpilledReg(s) && s.spilled.type === SCALAR_VALUE) {
        fn(s.spilled, f, -1, spi);
      }
    }
  }
}

/** Mirrors `mark_all_scalars_imprecise()` (done to a state about to be checkpointed). */
export function markAllScalarsImprecise(vs: VerifierState): void {
  forEachScalar(vs, (reg) => reg.precise = false);
}

// mirrors mark_all_scalars_precise(): the big hammer, on every checkpoint
function markAllScalarsPrecise(env: Env, start: VerifierState): void {
  const log = env.log.level >= 2 ? env.log : null;
  log?.write(
    `mark_precise: frame${start.curframe}: falling back to forcing all scalars precise\n`,
  );
  for (let cp = start.parent; cp; cp = cp.state.parent) {
    forEachScalar(cp.state, (reg, f, r, spi) => {
      if (reg.precise) return;
      reg.precise = true;
      log?.write(
        r >= 0
          ? `force_precise: frame${f}: forcing r${r} to be precise\n`
          : `force_precise: frame${f}: forcing fp${
            -(spi + 1) * 8
          } to be precise\n`,
      );
    });
  }
}

// marks what bt asks for in checkpoint state `st`; false on inconsistency
function markParent(env: Env, st: VerifierState, bt: Backtrack): boolean {
  for (let fr = bt.frame; fr >= 0; fr--) {
    const func = st.frames[fr];
    if (!func) return false;
    for (let m = bt.regs[fr]; m; m &= m - 1) {
      const r = 31 - Math.clz32(m & -m);
      const reg = func.regs[r];
      if (!reg || reg.type !== SCALAR_VALUE || reg.precise) bt.clearReg(fr, r);
      else reg.precise = true;
    }
    for (let spi = 0; bt.hasStack(fr) && spi < 64; spi++) {
      if (!bt.hasSlot(fr, spi)) continue;
      if (spi >= func.stack.length) return false;
      const s = func.stack[spi];
      if (!isSpilledReg(s) || s.spilled.type !== SCALAR_VALUE) {
        bt.clearSlot(fr, spi);
      } else if (s.spilled.precise) bt.clearSlot(fr, spi);
      else s.spilled.precise = true;
    }
    if (env.log.level >= 2) {
      env.log.write(
        `mark_precise: frame${fr}: parent state regs=${
          fmtRegMask(bt.regs[fr])
        } stack=${fmtStackMask(bt.stackLo[fr], bt.stackHi[fr])}: `,
      );
      printVerifierState(env.log, st, fr, true);
    }
  }
  return true;
}

function logBacktrack(env: Env, idx: number, bt: Backtrack): void {
  const insn = env.insns[idx];
  if (insn.kind === "ld_imm64_hi") return;
  env.log.write(
    `mark_precise: frame${bt.frame}: regs=${fmtRegMask(bt.regs[bt.frame])} ` +
      `stack=${
        fmtStackMask(bt.stackLo[bt.frame], bt.stackHi[bt.frame])
      } before ${formatInsn(insn, idx, { immName: mapAddress })}\n`,
  );
}

/**
 * Mirrors `__mark_chain_precision()`: backtracks from `start` (whose
 * current instruction is skipped: it has not changed anything yet) with
 * the registers/slots already set in `bt`, marking checkpoints precise.
 */
function markChain(env: Env, start: VerifierState, bt: Backtrack): void {
  if (bt.empty()) return;
  let st = start;
  let firstIdx = st.firstInsnIdx, lastIdx = start.insnIdx, subseq = -1;
  let skipFirst = true;
  const level2 = env.log.level >= 2;
  for (;;) {
    let history = st.jmpHistory.length;
    if (level2) {
      env.log.write(
        `mark_precise: frame${bt.frame}: last_idx ${lastIdx} first_idx ${firstIdx} subseq_idx ${subseq} \n`,
      );
    }
    if (lastIdx < 0) {
      // the entry of a global function: its scalar arguments become precise
      const f0 = st.frames[0];
      if (
        st.curframe === 0 && f0.subprogno > 0 && f0.callsite === -1 &&
        !bt.hasStack(0) && (bt.regs[0] & ~0x3e) === 0
      ) {
        for (let r = 1; r <= 5; r++) {
          if (!bt.hasReg(0, r)) continue;
          bt.clearReg(0, r);
          if (f0.regs[r].type === SCALAR_VALUE) f0.regs[r].precise = true;
        }
        return;
      }
      break;
    }
    for (let i = lastIdx;;) {
      let res = BtResult.Ok;
      if (skipFirst) skipFirst = false;
      else {
        if (level2) logBacktrack(env, i, bt);
        res = backtrackInsn(env, i, subseq, histEntry(st, history, i), bt);
      }
      if (res !== BtResult.Ok) {
        markAllScalarsPrecise(env, start);
        bt.reset();
        return;
      }
      if (bt.empty()) return;
      subseq = i;
      // get_prev_insn_idx(): follow the history, else the previous slot
      const h = st.jmpHistory;
      if (
        i === st.firstInsnIdx &&
        (history === 0 || (history === 1 && h[0].idx === i))
      ) break;
      if (history && h[history - 1].idx === i) i = h[--history].prevIdx;
      else i--;
      if (i < 0 || i >= env.insns.length) {
        markAllScalarsPrecise(env, start);
        bt.reset();
        return;
      }
    }
    const parent = st.parent;
    if (!parent) break;
    st = parent.state;
    if (!markParent(env, st, bt)) break;
    if (bt.empty()) return;
    subseq = firstIdx;
    lastIdx = st.lastInsnIdx;
    firstIdx = st.firstInsnIdx;
  }
  // something was missed (e.g. a stack access through another register)
  if (!bt.empty()) {
    markAllScalarsPrecise(env, start);
    bt.reset();
  }
}

/** Mirrors `mark_chain_precision()`: register `regno` of the running frame. */
export function markChainPrecision(env: Env, regno: number): void {
  const cur = env.cur;
  const reg = cur.frames[cur.curframe].regs[regno];
  if (!reg || reg.type !== SCALAR_VALUE) return;
  BT.reset();
  BT.frame = cur.curframe;
  BT.setReg(cur.curframe, regno);
  markChain(env, cur, BT);
}

/**
 * Mirrors `mark_chain_precision_batch()` on the current state: registers
 * (`regs`, a mask) and stack slots (`slots`, as [frame, spi]) of the
 * running frame's view, whatever their type now (used after a call whose
 * arguments were already clobbered).
 */
export function markPrecisionBatch(
  env: Env,
  regs: number,
  slots: readonly (readonly [number, number])[],
): void {
  const cur = env.cur;
  BT.reset();
  BT.frame = cur.curframe;
  BT.regs[cur.curframe] = regs;
  for (const [f, spi] of slots) BT.setSlot(f, spi);
  markChain(env, cur, BT);
}

/**
 * Mirrors `propagate_precision()`: after `cur` was pruned by the explored
 * state `old`, whatever is precise in `old` must become precise along
 * `cur`'s own checkpoint chain.
 */
export function propagatePrecision(
  env: Env,
  old: VerifierState,
  cur: VerifierState,
): void {
  BT.reset();
  const level2 = env.log.level >= 2;
  for (let fr = old.curframe; fr >= 0; fr--) {
    const func = old.frames[fr];
    let first = true;
    const note = (what: string) => {
      if (level2) {
        env.log.write(
          first ? `frame ${fr}: propagating ${what}` : `,${what}`,
        );
      }
      first = false;
    };
    for (let r = 0; r < 10; r++) {
      const reg = func.regs[r];
      if (reg.type !== SCALAR_VALUE || !reg.precise) continue;
      note(`r${r}`);
      BT.setReg(fr, r);
    }
    for (let spi = 0; spi < func.stack.length; spi++) {
      const s = func.stack[spi];
      if (!isSpilledReg(s)) continue;
      if (s.spilled.type !== SCALAR_VALUE || !s.spilled.precise) continue;
      note(`fp${(-spi - 1) * 8}`);
      BT.setSlot(fr, spi);
    }
    if (!first && env.log.level) env.log.write("\n");
  }
  BT.frame = cur.curframe;
  markChain(env, cur, BT);
}
