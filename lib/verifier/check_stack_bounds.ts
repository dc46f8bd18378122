/**
 * Where a stack access may go: the kernel's
 * `check_stack_access_within_bounds()` (constant and variable offsets, which
 * also grows the frame's stack) and `check_generic_ptr_alignment()` as
 * applied to the stack, where alignment is always strict.
 * @module
 */
import type { AccessType } from "./check_mem.ts";
import { growStackState } from "./check_stack.ts";
import { EACCES, EFAULT, EINVAL, type Env } from "./env.ts";
import type { RegState } from "./reg_state.ts";
import { curFrame } from "./state.ts";
import { tnumIsConst, tnumStr } from "./tnum.ts";

const BPF_MAX_VAR_OFF = 1 << 29;

/** Mirrors `check_generic_ptr_alignment()` for the stack, where accesses are always strict. */
export function checkStackAlignment(
  env: Env,
  reg: RegState,
  off: number,
  size: number,
): void {
  const total = reg.s.varOff.value + BigInt(reg.off + off);
  const aligned = (total & BigInt(size - 1)) === 0n &&
    (reg.s.varOff.mask & BigInt(size - 1)) === 0n;
  if (aligned) return;
  const v = tnumIsConst(reg.s.varOff)
    ? String(BigInt.asIntN(64, reg.s.varOff.value))
    : tnumStr(reg.s.varOff);
  env.fail(
    EACCES,
    `misaligned stack access off ${v}+${reg.off}+${off} size ${size}`,
  );
}

/** Mirrors `check_stack_access_within_bounds()` (grows the stack on success). */
export function checkStackAccessWithinBounds(
  env: Env,
  regno: number,
  off: number,
  size: number,
  t: AccessType,
): void {
  const reg = curFrame(env.cur).regs[regno];
  const state = env.cur.frames[reg.frameno];
  const extra = t === "read" ? " read from" : " write to";
  let minOff: bigint, maxOff: bigint;
  const c = tnumIsConst(reg.s.varOff);
  if (c) {
    minOff = BigInt.asIntN(64, reg.s.varOff.value) + BigInt(off);
    maxOff = minOff + BigInt(size);
  } else {
    const lim = BigInt(BPF_MAX_VAR_OFF);
    if (reg.s.smax >= lim || reg.s.smin <= -lim) {
      env.fail(
        EACCES,
        `invalid unbounded variable-offset${extra} stack R${regno}`,
      );
    }
    minOff = reg.s.smin + BigInt(off);
    maxOff = reg.s.smax + BigInt(off) + BigInt(size);
  }
  // check_stack_slot_within_bounds(): below the stack or at a non-negative
  // first byte is -EACCES; one that starts inside but runs past the frame
  // pointer -EINVAL; a negative size -EFAULT
  const errno = minOff < -512n || minOff > -1n
    ? EACCES
    : maxOff > 0n
    ? EINVAL
    : size < 0
    ? EFAULT
    : 0;
  if (errno) {
    env.fail(
      errno,
      c
        ? `invalid${extra} stack R${regno} off=${off} size=${size}`
        : `invalid variable-offset${extra} stack R${regno} var_off=${
          tnumStr(reg.s.varOff)
        } off=${off} size=${size}`,
    );
  }
  growStackState(env, state, Number(-minOff));
}
