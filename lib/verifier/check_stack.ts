/**
 * Stack slots: spills and fills (`check_stack_write_fixed_off()`,
 * `check_stack_read_fixed_off()`, `mark_reg_stack_read()`), writes and
 * reads at variable offsets, and `grow_stack_state()`, which also records
 * each subprogram's stack depth for the trailer. Each access also tells
 * stack liveness (stack_liveness.ts) which slots it reads or wholly writes.
 * @module
 */
import type { Env } from "./env.ts";
import { destroyIfDynptrSlot } from "./dynptr.ts";
import { EACCES } from "./env.ts";
import {
  assignReg,
  markRegKnown,
  markRegUnknown,
  notInitReg,
  registerIsNull,
  type RegState,
} from "./reg_state.ts";
import { NOT_INIT, PTR_TO_STACK, SCALAR_VALUE } from "./reg_types.ts";
import {
  BPF_REG_SIZE,
  curFrame,
  type FuncState,
  growStack,
  isSpilledReg,
  STACK_DYNPTR,
  STACK_INVALID,
  STACK_ITER,
  STACK_MISC,
  STACK_SPILL,
  STACK_ZERO,
} from "./state.ts";
import { tnumIsConst } from "./tnum.ts";
import { constScalar } from "./scalar.ts";
import { markStackRead, markStackWrite } from "./stack_liveness.ts";

/** Mirrors `grow_stack_state()`; the subprogram's depth is the max seen. */
export function growStackState(env: Env, f: FuncState, size: number): void {
  growStack(f, size);
  const rounded = Math.ceil(size / BPF_REG_SIZE) * BPF_REG_SIZE;
  const sp = env.layout.subprogs[f.subprogno];
  if (sp.stackDepth < rounded) sp.stackDepth = rounded;
}

/** Width in bits a scalar's value needs (`get_reg_width()`). */
function regWidth(r: RegState): number {
  return r.s.umax === 0n ? 0 : r.s.umax.toString(2).length;
}

function isSpillable(t: number): boolean {
  return t !== SCALAR_VALUE && t !== NOT_INIT;
}

// mirrors save_register_state()
function saveRegisterState(
  f: FuncState,
  spi: number,
  reg: RegState,
  size: number,
): void {
  const slot = f.stack[spi];
  assignReg(slot.spilled, reg);
  let i = BPF_REG_SIZE;
  for (; i > BPF_REG_SIZE - size; i--) slot.slotType[i - 1] = STACK_SPILL;
  for (; i; i--) {
    // mark_stack_slot_misc(): zero and uninitialised bytes stay as they are
    const t = slot.slotType[i - 1];
    if (t !== STACK_ZERO && t !== STACK_INVALID) {
      slot.slotType[i - 1] = STACK_MISC;
    }
  }
}

/**
 * Mirrors `check_stack_write()`: a store of `valueRegno` (or of the ST
 * immediate `stImm`, or of unknown bytes) to `reg(regno) + off`.
 */
export function checkStackWrite(
  env: Env,
  regno: number,
  off: number,
  size: number,
  valueRegno: number,
  stImm?: number,
): void {
  const ptr = curFrame(env.cur).regs[regno];
  const f = env.cur.frames[ptr.frameno];
  const cur = curFrame(env.cur);
  const reg = valueRegno >= 0 ? cur.regs[valueRegno] : null;
  if (!tnumIsConst(ptr.s.varOff)) {
    writeVarOff(env, f, ptr, off, size, reg, stImm);
    return;
  }
  off += Number(BigInt.asIntN(64, ptr.s.varOff.value));
  const slotIdx = -off - 1;
  const spi = Math.floor(slotIdx / BPF_REG_SIZE);
  destroyIfDynptrSlot(env, f, spi);
  // only a whole-slot write kills the slot for stack liveness
  if (off % BPF_REG_SIZE === 0 && size === BPF_REG_SIZE) {
    markStackWrite(env, f.frameno, spi);
  }
  const slot = f.stack[spi];
  env.log.scratchSlot(spi);
  if (reg && off % BPF_REG_SIZE === 0 && reg.type === SCALAR_VALUE) {
    const fits = regWidth(reg) <= 8 * size;
    if (fits && !reg.id && !tnumIsConst(reg.s.varOff)) reg.id = env.newId();
    saveRegisterState(f, spi, reg, size);
    if (!fits) slot.spilled.id = 0;
  } else if (!reg && off % BPF_REG_SIZE === 0 && stImm !== undefined) {
    const tmp = notInitReg();
    markRegKnown(tmp, BigInt(stImm));
    saveRegisterState(f, spi, tmp, size);
  } else if (reg && isSpillable(reg.type)) {
    if (size !== BPF_REG_SIZE) {
      env.fail(EACCES, "invalid size of register spill");
    }
    if (f !== cur && reg.type === PTR_TO_STACK) {
      env.fail(
        22,
        "cannot spill pointers to stack into stack frame of the caller",
      );
    }
    saveRegisterState(f, spi, reg, size);
  } else {
    let type = STACK_MISC;
    slot.spilled.type = NOT_INIT;
    scrubSpecial(slot.slotType);
    const isNull = reg ? registerIsNull(reg) : stImm === 0;
    if (isNull) type = STACK_ZERO;
    for (let i = 0; i < size; i++) {
      slot.slotType[(slotIdx - i) % BPF_REG_SIZE] = type;
    }
  }
}

// is_stack_slot_special() + scrub_spilled_slot(): spill/dynptr/iter bytes become MISC
function scrubSpecial(types: Uint8Array): void {
  const t = types[BPF_REG_SIZE - 1];
  if (t !== STACK_SPILL && t !== STACK_DYNPTR && t !== STACK_ITER) return;
  for (let i = 0; i < BPF_REG_SIZE; i++) {
    if (types[i] !== STACK_INVALID) types[i] = STACK_MISC;
  }
}

// mirrors check_stack_write_var_off(): every byte that may be written
// becomes MISC (or stays ZERO when writing zero)
function writeVarOff(
  env: Env,
  f: FuncState,
  ptr: RegState,
  off: number,
  size: number,
  reg: RegState | null,
  stImm?: number,
): void {
  const minOff = Number(ptr.s.smin) + off;
  const maxOff = Number(ptr.s.smax) + off + size;
  const zero = reg ? registerIsNull(reg) : stImm === 0;
  for (let i = minOff; i < maxOff; i++) {
    const slotIdx = -i - 1;
    const spi = Math.floor(slotIdx / BPF_REG_SIZE);
    destroyIfDynptrSlot(env, f, spi);
    const slot = f.stack[spi];
    env.log.scratchSlot(spi);
    scrubSpecial(slot.slotType);
    slot.spilled.type = NOT_INIT;
    const j = slotIdx % BPF_REG_SIZE;
    if (!(zero && slot.slotType[j] === STACK_ZERO)) {
      slot.slotType[j] = STACK_MISC;
    }
  }
}

/**
 * Mirrors `check_stack_read()`: a load of `size` bytes at `reg(regno) + off`
 * into `dstRegno` (-1: only checked, as for helper arguments).
 */
export function checkStackRead(
  env: Env,
  regno: number,
  off: number,
  size: number,
  dstRegno: number,
): void {
  const ptr = curFrame(env.cur).regs[regno];
  const f = env.cur.frames[ptr.frameno];
  const regs = curFrame(env.cur).regs;
  if (!tnumIsConst(ptr.s.varOff)) {
    // check_stack_read_var_off(): every slot it may touch is read, the
    // result is unknown
    markStackRangeRead(env, ptr, off, size);
    if (dstRegno >= 0) markRegUnknown(regs[dstRegno]);
    return;
  }
  off += Number(BigInt.asIntN(64, ptr.s.varOff.value));
  const slotIdx = -off - 1;
  const spi = Math.floor(slotIdx / BPF_REG_SIZE);
  const slot = f.stack[spi];
  const stype = slot.slotType;
  env.log.scratchSlot(spi);
  markStackRead(env, f.frameno, spi);
  if (isSpilledReg(slot)) {
    let spillSize = 1;
    for (let i = BPF_REG_SIZE - 1; i > 0 && stype[i - 1] === STACK_SPILL; i--) {
      spillSize++;
    }
    const spilled = slot.spilled;
    if (size !== BPF_REG_SIZE || spillSize !== BPF_REG_SIZE) {
      if (spilled.type !== SCALAR_VALUE) {
        env.fail(EACCES, "invalid size of register fill");
      }
      if (dstRegno < 0) return;
      const dst = regs[dstRegno];
      if (size <= spillSize && stackNarrowAccessOk(off, size, spillSize)) {
        if (size === 4 && spillSize === 4 && regWidth(spilled) <= 32) {
          if (!spilled.id && !tnumIsConst(spilled.s.varOff)) {
            spilled.id = env.newId();
          }
        }
        assignReg(dst, spilled);
        if (regWidth(spilled) > size * 8) dst.id = 0;
      } else {
        let spillCnt = 0, zeroCnt = 0;
        for (let i = 0; i < size; i++) {
          const t = stype[(slotIdx - i) % BPF_REG_SIZE];
          if (t === STACK_SPILL) spillCnt++;
          else if (t === STACK_ZERO) zeroCnt++;
          else if (t !== STACK_MISC && t !== STACK_INVALID) {
            env.fail(
              EACCES,
              `invalid read from stack off ${off}+${i} size ${size}`,
            );
          }
        }
        if (
          (spillCnt === size && tnumIsConst(spilled.s.varOff) &&
            spilled.s.varOff.value === 0n) || zeroCnt === size
        ) {
          markRegKnown(dst, 0n);
        } else markRegUnknown(dst);
      }
    } else if (dstRegno >= 0) {
      assignReg(regs[dstRegno], spilled);
    }
    return;
  }
  let zeros = 0;
  for (let i = 0; i < size; i++) {
    const t = stype[(slotIdx - i) % BPF_REG_SIZE];
    if (t === STACK_ZERO) zeros++;
    else if (t !== STACK_MISC && t !== STACK_INVALID) {
      env.fail(EACCES, `invalid read from stack off ${off}+${i} size ${size}`);
    }
  }
  if (dstRegno < 0) return;
  // mark_reg_stack_read(): all-zero bytes read as the constant 0
  const dst = regs[dstRegno];
  if (zeros === size) {
    markRegKnown(dst, 0n);
    dst.s = constScalar(0n);
  } else markRegUnknown(dst);
}

// mirrors bpf_stack_narrow_access_ok() on little-endian
function stackNarrowAccessOk(
  off: number,
  size: number,
  spill: number,
): boolean {
  void spill;
  return ((off % BPF_REG_SIZE) + BPF_REG_SIZE) % BPF_REG_SIZE === 0 ||
    size === spill;
}

/**
 * The read marks of `check_stack_range_initialized()`: every slot holding a
 * byte of `[ptr + off, ptr + off + size)`, for each offset `ptr` may have.
 */
export function markStackRangeRead(
  env: Env,
  ptr: RegState,
  off: number,
  size: number,
): void {
  const c = tnumIsConst(ptr.s.varOff);
  const min = c
    ? Number(BigInt.asIntN(64, ptr.s.varOff.value)) + off
    : Number(ptr.s.smin) + off;
  const max = c ? min : Number(ptr.s.smax) + off;
  let last = -1;
  for (let i = min; i < max + size; i++) {
    const spi = Math.floor((-i - 1) / BPF_REG_SIZE);
    if (spi === last) continue;
    last = spi;
    markStackRead(env, ptr.frameno, spi);
  }
}
