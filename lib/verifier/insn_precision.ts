/**
 * The precision and history side effects of memory, call and exit
 * instructions, kept beside the main pass rather than inside the checkers:
 * `before()` looks at the state an instruction starts from, `after()`
 * applies what the kernel would have done while checking it —
 *
 * - a fixed-offset spill to / fill from the stack records the slot in the
 *   jump history (`INSN_F_STACK_ACCESS`, from `check_stack_write_fixed_off()`
 *   and `check_stack_read_fixed_off()`), so backtracking can follow a
 *   value through the stack;
 * - a zero written unaligned or through a variable offset keeps STACK_ZERO
 *   only if the zero is precise (`mark_chain_precision(value_regno)`);
 * - a helper's ARG_CONST_SIZE* / ARG_CONST_ALLOC_SIZE_OR_ZERO argument,
 *   a tail call's constant index (`record_func_key()`) and a constant
 *   array-map key read from a spilled slot (`get_constant_map_key()`);
 * - every scalar argument of a kfunc (a superset of its `__k`/`__sz`
 *   arguments, which are known only from BTF);
 * - R0 at the main program's exit when its type restricts the return value
 *   (`check_return_code()`).
 *
 * Doing it after the instruction is equivalent: marking changes only
 * checkpoints, and backtracking starts before the current instruction.
 * @module
 */
import type { Insn } from "../isa/insn.ts";
import type { Env } from "./env.ts";
import { stackAccessFlags } from "./backtrack.ts";
import { returnRange } from "./exit.ts";
import { helperProto } from "./helper_protos.ts";
import {
  markChainPrecision,
  markPrecisionBatch,
  pushJmpHistory,
} from "./precision.ts";
import { registerIsNull, type RegState } from "./reg_state.ts";
import { CONST_PTR_TO_MAP, PTR_TO_STACK, SCALAR_VALUE } from "./reg_types.ts";
import { tnumIsConst } from "./tnum.ts";
import {
  BPF_REG_SIZE,
  isSpilledReg,
  STACK_SPILL,
  STACK_ZERO,
  type VerifierState,
} from "./state.ts";

const BPF_MAP_TYPE_ARRAY = 2;
const BPF_MAP_TYPE_PROG_ARRAY = 3;
const BPF_MAP_TYPE_PERCPU_ARRAY = 6;
const BPF_FUNC_TAIL_CALL = 12;

/** What `after()` must do once the instruction passed its checks. */
export interface PendingPrecision {
  /** History flags to record (0 for none). */
  flags: number;
  /** Registers of the running frame to mark precise (a mask). */
  regs: number;
  /** Stack slots to mark precise, as [frame, spi]. */
  slots: [number, number][];
}

const NONE: PendingPrecision = { flags: 0, regs: 0, slots: [] };
// the main program's exit while something is held: decided afterwards
const EXIT: PendingPrecision = { flags: 0, regs: 0, slots: [] };

// the stack slot a fixed-offset access through `base` touches, if any
// (`existing`: the slot must already be allocated, as for a read)
function fixedSlot(
  vs: VerifierState,
  base: RegState,
  off: number,
  existing = true,
): { frame: number; spi: number; off: number } | null {
  if (base.type !== PTR_TO_STACK || !tnumIsConst(base.s.varOff)) return null;
  const full = off + base.off + Number(BigInt.asIntN(64, base.s.varOff.value));
  const spi = Math.floor((-full - 1) / BPF_REG_SIZE);
  const f = vs.frames[base.frameno];
  if (!f || spi < 0 || spi >= 64) return null;
  if (existing && spi >= f.stack.length) return null;
  return { frame: base.frameno, spi, off: full };
}

// check_stack_read_fixed_off(): is this load a register fill?
function fillFlags(vs: VerifierState, base: RegState, insn: Insn): number {
  if (insn.kind !== "ldx" && insn.kind !== "atomic") return 0;
  const at = fixedSlot(vs, base, insn.off);
  if (!at) return 0;
  const slot = vs.frames[at.frame].stack[at.spi];
  if (!isSpilledReg(slot)) return 0;
  const st = slot.slotType;
  let spillSize = 1;
  for (let i = BPF_REG_SIZE - 1; i > 0 && st[i - 1] === STACK_SPILL; i--) {
    spillSize++;
  }
  const size = insn.size;
  const flags = stackAccessFlags(at.frame, at.spi);
  if (size === BPF_REG_SIZE && spillSize === BPF_REG_SIZE) return flags;
  if (size <= spillSize && at.off % BPF_REG_SIZE === 0) return flags;
  const slotIdx = -at.off - 1;
  let spills = 0;
  for (let i = 0; i < size; i++) {
    if (st[(slotIdx - i) % BPF_REG_SIZE] === STACK_SPILL) spills++;
  }
  return spills === size && registerIsNull(slot.spilled) ? flags : 0;
}

// check_stack_write_{fixed,var}_off(): spill flags, precise zeros
function storeEffects(env: Env, insn: Insn): PendingPrecision {
  if (insn.kind !== "st" && insn.kind !== "stx" && insn.kind !== "atomic") {
    return NONE;
  }
  const vs = env.cur;
  const regs = vs.frames[vs.curframe].regs;
  const base = regs[insn.dst];
  if (base.type !== PTR_TO_STACK) return NONE;
  const value = insn.kind === "st" ? null : regs[insn.src];
  if (!tnumIsConst(base.s.varOff)) {
    // a zero through a variable offset may keep STACK_ZERO slots
    return value && registerIsNull(value)
      ? { flags: 0, regs: 1 << insn.src, slots: [] }
      : NONE;
  }
  const at = fixedSlot(vs, base, insn.off, false);
  if (!at) return NONE;
  const aligned = at.off % BPF_REG_SIZE === 0;
  const flags = stackAccessFlags(at.frame, at.spi);
  if (!value) return aligned ? { flags, regs: 0, slots: [] } : NONE;
  if (value.type === SCALAR_VALUE) {
    if (aligned) return { flags, regs: 0, slots: [] };
    return registerIsNull(value)
      ? { flags: 0, regs: 1 << insn.src, slots: [] }
      : NONE;
  }
  return { flags, regs: 0, slots: [] };
}

// get_constant_map_key(): a constant key spilled on the stack
function constKeySlot(
  vs: VerifierState,
  key: RegState,
  keySize: number,
): [number, number] | null {
  const at = fixedSlot(vs, key, 0);
  if (!at) return null;
  const slot = vs.frames[at.frame].stack[at.spi];
  const st = slot.slotType;
  const off = (-at.off - 1) % BPF_REG_SIZE;
  let zeros = 0;
  for (let i = off; i >= 0 && st[i] === STACK_ZERO; i--) zeros++;
  if (zeros >= keySize) return null;
  if (!isSpilledReg(slot) || slot.spilled.type !== SCALAR_VALUE) return null;
  let spill = 0;
  for (let i = off; i >= 0 && st[i] === STACK_SPILL; i--) spill++;
  if (spill !== keySize || !tnumIsConst(slot.spilled.s.varOff)) return null;
  return [at.frame, at.spi];
}

// the scalar arguments check_helper_call() relies on exactly
function helperEffects(env: Env, id: number): PendingPrecision {
  const p = helperProto(env.progType, id, {
    attachType: env.prog.expectedAttachType ?? undefined,
  });
  if (!p) return NONE;
  const vs = env.cur;
  const regs = vs.frames[vs.curframe].regs;
  let mask = 0;
  const slots: [number, number][] = [];
  let map: RegState | null = null;
  for (let i = 0; i < p.args.length; i++) {
    const reg = regs[i + 1];
    switch (p.args[i].base) {
      case "ARG_CONST_MAP_PTR":
        if (reg.type === CONST_PTR_TO_MAP) map = reg;
        break;
      case "ARG_CONST_SIZE":
      case "ARG_CONST_SIZE_OR_ZERO":
      case "ARG_CONST_ALLOC_SIZE_OR_ZERO":
        if (reg.type === SCALAR_VALUE) mask |= 1 << (i + 1);
        break;
      case "ARG_PTR_TO_MAP_KEY": {
        const t = map?.map?.typeId;
        if (t !== BPF_MAP_TYPE_ARRAY && t !== BPF_MAP_TYPE_PERCPU_ARRAY) break;
        const s = constKeySlot(vs, reg, map!.map!.keySize);
        if (s) slots.push(s);
        break;
      }
    }
  }
  if (id === BPF_FUNC_TAIL_CALL && map?.map) {
    const idx = regs[3];
    if (
      map.map.typeId === BPF_MAP_TYPE_PROG_ARRAY &&
      idx.type === SCALAR_VALUE && tnumIsConst(idx.s.varOff) &&
      idx.s.varOff.value < BigInt(map.map.maxEntries)
    ) mask |= 1 << 3;
  }
  return mask || slots.length ? { flags: 0, regs: mask, slots } : NONE;
}

/**
 * A kfunc relies on its constant (`__k`) and size (`__sz`) arguments; which
 * those are is in its BTF prototype, so every scalar argument is marked —
 * more than the kernel marks, which can only prune less.
 */
function kfuncEffects(env: Env): PendingPrecision {
  const regs = env.cur.frames[env.cur.curframe].regs;
  let mask = 0;
  for (let r = 1; r <= 5; r++) {
    if (regs[r].type === SCALAR_VALUE) mask |= 1 << r;
  }
  return mask ? { flags: 0, regs: mask, slots: [] } : NONE;
}

/** The precision/history work of `insn` as seen from the state before it. */
export function before(env: Env, insn: Insn): PendingPrecision {
  switch (insn.kind) {
    case "ldx":
    case "atomic": {
      if (insn.kind === "atomic" && insn.op === "store_rel") {
        return storeEffects(env, insn);
      }
      // other atomics read the slot at dst (load_acq reads at src)
      const vs = env.cur;
      const base = vs.frames[vs.curframe].regs[insn.src];
      const ptr = insn.kind === "ldx" || insn.op === "load_acq"
        ? base
        : vs.frames[vs.curframe].regs[insn.dst];
      const flags = fillFlags(vs, ptr, insn);
      return flags ? { flags, regs: 0, slots: [] } : NONE;
    }
    case "st":
    case "stx":
      return storeEffects(env, insn);
    case "call":
      if (insn.callee === "helper") return helperEffects(env, insn.imm);
      return insn.callee === "kfunc" ? kfuncEffects(env) : NONE;
    case "exit":
      return exitEffects(env);
    default:
      return NONE;
  }
}

/**
 * check_return_code() relies on R0's exact range: it marks R0 precise after
 * check_resource_leak() passed and before the range check, so its
 * `mark_precise` lines precede a range refusal. Done here, before the
 * instruction, when nothing is held (the leak check will pass).
 */
function exitEffects(env: Env): PendingPrecision {
  const vs = env.cur;
  if (vs.curframe || vs.frames[0].subprogno !== 0) return NONE;
  if (vs.frames[0].regs[0].type !== SCALAR_VALUE) return NONE;
  if (
    vs.refs.length || vs.activeLocks || vs.activeRcuLock ||
    vs.activePreemptLocks
  ) return EXIT;
  let range: [number, number] | null = null;
  const pos = env.log.endPos;
  try {
    range = returnRange(env);
  } catch {
    // check_return_code() will refuse with the same message
    env.log.reset(pos);
    return NONE;
  }
  if (range) markChainPrecision(env, 0);
  return NONE;
}

/** Applies `p` once the instruction succeeded (same step of `do_check()`). */
export function after(env: Env, p: PendingPrecision): void {
  if (p === NONE) return;
  if (p === EXIT) {
    // something was held, yet the exit passed: mark R0 now
    const r0 = env.cur.frames[0].regs[0];
    if (r0.type === SCALAR_VALUE && returnRange(env)) {
      markChainPrecision(env, 0);
    }
    return;
  }
  if (p.flags) pushJmpHistory(env, env.cur, p.flags, null);
  if (!p.regs && !p.slots.length) return;
  if (!p.slots.length && (p.regs & (p.regs - 1)) === 0) {
    const regno = 31 - Math.clz32(p.regs);
    const reg = env.cur.frames[env.cur.curframe].regs[regno];
    if (reg.type === SCALAR_VALUE) {
      markChainPrecision(env, regno);
      return;
    }
  }
  markPrecisionBatch(env, p.regs, p.slots);
}
