/**
 * Open-coded iterators (`bpf_iter_num_new/next/destroy`): the iterator's
 * stack slots (STACK_ITER, holding a reference; `mark_stack_slots_iter()`,
 * `unmark_stack_slots_iter()`, `process_iter_arg()`), and `next`, which
 * forks the path (`process_iter_next_call()`): the current path sees the
 * iterator drained (R0 = NULL), a queued one sees it active with R0 not
 * NULL. The queued path's imprecise scalars that changed since the previous
 * iteration are widened (`widen_imprecise_scalars()`), so the loop body
 * converges; prune.ts then stops the loop when an active iteration's state
 * repeats (`is_state_visited()` at iterator `next` instructions).
 * @module
 */
import { EFAULT, EINVAL, type Env } from "./env.ts";
import {
  markRegKnown,
  markRegNotInit,
  markRegUnknown,
  type RegState,
} from "./reg_state.ts";
import { PTR_MAYBE_NULL, PTR_TO_STACK, SCALAR_VALUE } from "./reg_types.ts";
import {
  addTrail,
  BPF_REG_SIZE,
  curFrame,
  type FuncState,
  growStack,
  isSpilledReg,
  STACK_INVALID,
  STACK_ITER,
  type VerifierState,
} from "./state.ts";
import { releaseReference } from "./graph_state.ts";
import { scalarsEqual } from "./scalar.ts";
import { markStackRead, markStackWrite } from "./stack_liveness.ts";

/** Where an iterator argument's slots are. */
export interface IterSlot {
  /** The frame holding the iterator. */
  readonly frameno: number;
  /** Its first slot (`spi`). */
  readonly spi: number;
}

/** Slots of each iterator type (`sizeof(struct bpf_iter_<kind>) / 8`). */
const ITER_SLOTS: Record<string, number> = { num: 1 };

/**
 * Mirrors `stack_slot_obj_get_spi()`: the first slot of a `slots`-slot stack
 * object (`kind`: "iter", "dynptr") that `reg` points to — a constant,
 * 8-byte aligned offset with room for every slot below fp.
 */
export function stackSlotObjSpi(
  env: Env,
  reg: RegState,
  kind: string,
  slots: number,
): number {
  if (reg.s.varOff.mask !== 0n) {
    env.fail(EINVAL, `${kind} has to be at a constant offset`);
  }
  const off = reg.off + Number(BigInt.asIntN(64, reg.s.varOff.value));
  const spi = Math.floor((-off - 1) / BPF_REG_SIZE);
  if (off % BPF_REG_SIZE || spi + 1 < slots) {
    env.fail(EINVAL, `cannot pass in ${kind} at an offset=${off}`);
  }
  return spi;
}

function isIterSlot(f: FuncState, spi: number): boolean {
  return f.stack[spi]?.slotType.every((t) => t === STACK_ITER) ?? false;
}

/**
 * Mirrors `process_iter_arg()` for iterator kfunc `op` (`new`, `next`,
 * `destroy`) of type `kind`, the iterator in register `regno`.
 */
export function processIterArg(
  env: Env,
  regno: number,
  kind: string,
  op: "new" | "next" | "destroy",
): IterSlot {
  const reg = curFrame(env.cur).regs[regno];
  if (reg.type !== PTR_TO_STACK) {
    env.fail(
      EINVAL,
      `arg#${regno - 1} expected pointer to an iterator on stack`,
    );
  }
  const slots = ITER_SLOTS[kind] ?? 1;
  const f = env.cur.frames[reg.frameno];
  const spi = stackSlotObjSpi(env, reg, "iter", slots);
  if (op === "new") {
    growStack(f, (spi + 1) * BPF_REG_SIZE);
    for (let i = 0; i < slots; i++) {
      if (f.stack[spi - i].slotType.some((t) => t === STACK_ITER)) {
        env.fail(
          EINVAL,
          `expected uninitialized iter_${kind} as arg #${regno - 1}`,
        );
      }
    }
    const id = env.newId();
    env.cur.refs.push({
      type: "ptr",
      id,
      insnIdx: env.insnIdx,
      what: `the iterator iter_${kind}`,
    });
    addTrail(env.cur, env.insnIdx, env.insnIdx, [], `acquire:${id}`);
    for (let i = 0; i < slots; i++) {
      const slot = f.stack[spi - i];
      slot.slotType.fill(STACK_ITER);
      markRegNotInit(slot.spilled);
      slot.spilled.type = PTR_TO_STACK;
      slot.spilled.refObjId = i === 0 ? id : 0;
      slot.spilled.iter = { kind, state: "active", depth: 0 };
      env.log.scratchSlot(spi - i);
      markStackWrite(env, reg.frameno, spi - i);
    }
    return { frameno: reg.frameno, spi };
  }
  const first = f.stack[spi]?.spilled;
  if (
    !isIterSlot(f, spi) || !first?.refObjId || first.iter?.kind !== kind
  ) {
    env.fail(
      EINVAL,
      `expected an initialized iter_${kind} as arg #${regno - 1}`,
    );
  }
  // mark_iter_read()
  for (let i = 0; i < slots; i++) markStackRead(env, reg.frameno, spi - i);
  if (op === "destroy") {
    const ref = first.refObjId;
    for (let i = 0; i < slots; i++) {
      f.stack[spi - i].slotType.fill(STACK_INVALID);
      markRegNotInit(f.stack[spi - i].spilled);
      markStackWrite(env, reg.frameno, spi - i);
    }
    releaseReference(env, ref);
  }
  return { frameno: reg.frameno, spi };
}

function iterAt(vs: VerifierState, at: IterSlot): RegState {
  return vs.frames[at.frameno].stack[at.spi].spilled;
}

// maybe_widen_reg(): an imprecise scalar that changed since the previous
// iteration becomes unknown
function maybeWiden(old: RegState, cur: RegState): void {
  if (old.type !== SCALAR_VALUE || cur.type !== SCALAR_VALUE) return;
  if (old.precise || cur.precise) return;
  if (old.id === cur.id && scalarsEqual(old.s, cur.s)) return;
  markRegUnknown(cur);
}

/** Mirrors `widen_imprecise_scalars()`. */
export function widenImpreciseScalars(
  old: VerifierState,
  cur: VerifierState,
): void {
  for (let fr = old.curframe; fr >= 0; fr--) {
    const fo = old.frames[fr], fc = cur.frames[fr];
    if (!fo || !fc) continue;
    for (let i = 0; i < fo.regs.length; i++) maybeWiden(fo.regs[i], fc.regs[i]);
    const n = Math.min(fo.stack.length, fc.stack.length);
    for (let i = 0; i < n; i++) {
      if (!isSpilledReg(fo.stack[i]) || !isSpilledReg(fc.stack[i])) continue;
      maybeWiden(fo.stack[i].spilled, fc.stack[i].spilled);
    }
  }
}

/**
 * Mirrors `process_iter_next_call()` after `next`'s R0 was set (a maybe-NULL
 * pointer): an active iterator queues the path where `next` returned an
 * element (one level deeper, widened against `prev`, the state of the
 * previous iteration at this instruction), and the current path continues
 * with the iterator drained and R0 = NULL.
 */
export function processIterNextCall(
  env: Env,
  idx: number,
  at: IterSlot,
  prev: VerifierState | null,
): void {
  const cur = env.cur;
  const it = iterAt(cur, at);
  if (!it.iter) env.fail(EFAULT, "verifier internal error: no iterator state");
  if (it.iter.state === "active") {
    const queued = env.pushStack(idx + 1, idx);
    const qit = iterAt(queued, at);
    qit.iter = { ...it.iter, state: "active", depth: it.iter.depth + 1 };
    if (prev) widenImpreciseScalars(prev, queued);
    const r0 = queued.frames[queued.curframe].regs[0];
    r0.type &= ~PTR_MAYBE_NULL;
  }
  it.iter = { ...it.iter, state: "drained" };
  const r0 = curFrame(cur).regs[0];
  markRegKnown(r0, 0n);
}
