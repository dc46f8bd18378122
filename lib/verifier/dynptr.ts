/**
 * Dynptrs on the stack (`struct bpf_dynptr`, 16 bytes = two slots typed
 * STACK_DYNPTR): creating one from helper arguments marked MEM_UNINIT
 * (`mark_stack_slots_dynptr()`; a ring buffer dynptr holds a reference),
 * using an initialised one, releasing it (`unmark_stack_slots_dynptr()`),
 * and what a plain store over its slots does (`destroy_if_dynptr_stack_slot()`).
 * Reads of its slots as memory are refused by check_stack.ts.
 * @module
 */
import { EFAULT, EINVAL, type Env } from "./env.ts";
import type { ArgType } from "./helper_protos.ts";
import { markRegNotInit, type RegState } from "./reg_state.ts";
import { CONST_PTR_TO_DYNPTR, PTR_TO_STACK } from "./reg_types.ts";
import {
  addTrail,
  BPF_REG_SIZE,
  curFrame,
  type FuncState,
  growStack,
  STACK_DYNPTR,
  STACK_INVALID,
} from "./state.ts";
import { releaseReference } from "./graph_state.ts";
import { stackSlotObjSpi } from "./iter.ts";
import { markStackRead, markStackWrite } from "./stack_liveness.ts";

/** The dynptr kind an argument names (`DYNPTR_TYPE_*`), or "" for any. */
function dynptrTypeOf(arg: ArgType): string {
  return arg.flags.find((f) => f.startsWith("DYNPTR_TYPE_")) ?? "";
}

// dynptr_get_spi(): a dynptr takes two slots
function dynptrSpi(env: Env, reg: RegState): number {
  return stackSlotObjSpi(env, reg, "dynptr", 2);
}

function isDynptrSlot(f: FuncState, spi: number): boolean {
  return f.stack[spi]?.slotType[0] === STACK_DYNPTR;
}

/**
 * Mirrors `destroy_if_dynptr_stack_slot()` before a store to slot `spi` of
 * frame `f`: a referenced dynptr may not be overwritten; an unreferenced
 * one is destroyed (both slots).
 */
export function destroyIfDynptrSlot(env: Env, f: FuncState, spi: number): void {
  if (!isDynptrSlot(f, spi)) return;
  const first = f.stack[spi].spilled.frameno === 1 ? spi : spi + 1;
  if (f.stack[first].spilled.refObjId) {
    env.fail(EINVAL, "cannot overwrite referenced dynptr");
  }
  invalidateSlots(env, f, first);
}

// invalidate_dynptr(): both slots are written (stack liveness)
function invalidateSlots(env: Env, f: FuncState, first: number): void {
  for (const s of [first, first - 1]) {
    f.stack[s].slotType.fill(STACK_INVALID);
    markRegNotInit(f.stack[s].spilled);
    markStackWrite(env, f.frameno, s);
  }
}

/**
 * Mirrors `process_dynptr_func()` for helper argument `regno`. Returns the
 * dynptr's `ref_obj_id` for a release argument (0 when it holds none).
 */
export function processDynptrArg(
  env: Env,
  regno: number,
  arg: ArgType,
): number {
  const reg = curFrame(env.cur).regs[regno];
  if (reg.type !== PTR_TO_STACK && reg.type !== CONST_PTR_TO_DYNPTR) {
    env.fail(
      EINVAL,
      `arg#${regno - 1} expected pointer to stack or const struct bpf_dynptr`,
    );
  }
  if (reg.type === CONST_PTR_TO_DYNPTR) return 0;
  const f = env.cur.frames[reg.frameno];
  const spi = dynptrSpi(env, reg);
  const kind = dynptrTypeOf(arg);
  if (arg.flags.includes("MEM_UNINIT")) {
    growStack(f, (spi + 1) * BPF_REG_SIZE);
    destroyIfDynptrSlot(env, f, spi);
    destroyIfDynptrSlot(env, f, spi - 1);
    const id = env.newId();
    let refObjId = 0;
    if (kind === "DYNPTR_TYPE_RINGBUF") {
      refObjId = env.newId();
      env.cur.refs.push({
        type: "ptr",
        id: refObjId,
        insnIdx: env.insnIdx,
        what: "the ring buffer dynptr",
      });
      addTrail(env.cur, env.insnIdx, env.insnIdx, [], `acquire:${refObjId}`);
    }
    for (const s of [spi, spi - 1]) {
      const slot = f.stack[s];
      slot.slotType.fill(STACK_DYNPTR);
      markRegNotInit(slot.spilled);
      slot.spilled.id = id;
      slot.spilled.refObjId = refObjId;
      // frameno marks the first slot (`dynptr.first_slot`)
      slot.spilled.frameno = s === spi ? 1 : 0;
      slot.spilled.btfName = kind;
    }
    env.log.scratchSlot(spi);
    env.log.scratchSlot(spi - 1);
    markStackWrite(env, f.frameno, spi);
    markStackWrite(env, f.frameno, spi - 1);
    return 0;
  }
  if (!isDynptrSlot(f, spi) || f.stack[spi].spilled.frameno !== 1) {
    env.fail(EINVAL, `Expected an initialized dynptr as arg #${regno - 1}`);
  }
  const have = f.stack[spi].spilled.btfName;
  if (kind && have !== kind) {
    env.fail(
      EINVAL,
      `Expected a dynptr of type ${
        kind.replace("DYNPTR_TYPE_", "").toLowerCase()
      } as arg #${regno - 1}`,
    );
  }
  // mark_dynptr_read()
  markStackRead(env, f.frameno, spi);
  markStackRead(env, f.frameno, spi - 1);
  return f.stack[spi].spilled.refObjId;
}

/** Mirrors `unmark_stack_slots_dynptr()`: releases the dynptr `reg` points to. */
export function releaseDynptr(env: Env, regno: number): void {
  const reg = curFrame(env.cur).regs[regno];
  const f = env.cur.frames[reg.frameno];
  const spi = dynptrSpi(env, reg);
  const ref = f.stack[spi].spilled.refObjId;
  if (!ref) {
    env.fail(EFAULT, "verifier internal error: dynptr without reference");
  }
  invalidateSlots(env, f, spi);
  releaseReference(env, ref);
}
