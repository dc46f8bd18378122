/**
 * `__check_ptr_off_reg()` and `check_func_arg_reg_off()`: where a pointer
 * may carry a fixed or variable offset when it is dereferenced or passed
 * to a helper or kfunc.
 * @module
 */
import { EACCES, EINVAL, type Env } from "./env.ts";
import type { RegState } from "./reg_state.ts";
import {
  MEM_ALLOC,
  MEM_RCU,
  MEM_RDONLY,
  MEM_RINGBUF,
  NON_OWN_REF,
  PTR_TO_ARENA,
  PTR_TO_BTF_ID,
  PTR_TO_BUF,
  PTR_TO_MAP_KEY,
  PTR_TO_MAP_VALUE,
  PTR_TO_MEM,
  PTR_TO_PACKET,
  PTR_TO_PACKET_META,
  PTR_TO_STACK,
  PTR_TRUSTED,
  regTypeStr,
  SCALAR_VALUE,
} from "./reg_types.ts";
import { tnumStr } from "./tnum.ts";

/** Mirrors `__check_ptr_off_reg()`: only an unmodified pointer (or, with `fixedOffOk`, a constant non-negative offset). */
export function checkPtrOffReg(
  env: Env,
  reg: RegState,
  regno: number,
  fixedOffOk: boolean,
): void {
  const t = regTypeStr(reg.type);
  if (reg.off < 0) {
    env.fail(
      EACCES,
      `negative offset ${t} ptr R${regno} off=${reg.off} disallowed`,
    );
  }
  if (!fixedOffOk && reg.off) {
    env.fail(
      EACCES,
      `dereference of modified ${t} ptr R${regno} off=${reg.off} disallowed`,
    );
  }
  if (reg.s.varOff.mask !== 0n || reg.s.varOff.value !== 0n) {
    env.fail(
      EACCES,
      `variable ${t} access var_off=${tnumStr(reg.s.varOff)} disallowed`,
    );
  }
}

/** Mirrors `check_func_arg_reg_off()` for an `ARG_DONTCARE` argument (`release`: `OBJ_RELEASE`). */
export function checkArgRegOff(
  env: Env,
  reg: RegState,
  regno: number,
  release: boolean,
): void {
  if (release) {
    if (reg.off) {
      env.fail(
        EINVAL,
        `R${regno} must have zero offset when passed to release func or trusted arg to kfunc`,
      );
    }
    checkPtrOffReg(env, reg, regno, false);
    return;
  }
  if (ANY_OFF_OK.includes(reg.type)) return;
  checkPtrOffReg(env, reg, regno, FIXED_OFF_OK.includes(reg.type));
}

// check_func_arg_reg_off(): pointers with any fixed and variable offset
const ANY_OFF_OK = [
  PTR_TO_STACK,
  PTR_TO_PACKET,
  PTR_TO_PACKET_META,
  PTR_TO_MAP_KEY,
  PTR_TO_MAP_VALUE,
  PTR_TO_MEM,
  PTR_TO_MEM | MEM_RDONLY,
  PTR_TO_MEM | MEM_RINGBUF,
  PTR_TO_BUF,
  PTR_TO_BUF | MEM_RDONLY,
  PTR_TO_ARENA,
  SCALAR_VALUE,
];

// check_func_arg_reg_off(): BTF pointers that may carry a fixed offset
const FIXED_OFF_OK = [
  PTR_TO_BTF_ID,
  PTR_TO_BTF_ID | MEM_ALLOC,
  PTR_TO_BTF_ID | PTR_TRUSTED,
  PTR_TO_BTF_ID | MEM_RCU,
  PTR_TO_BTF_ID | MEM_ALLOC | NON_OWN_REF,
  PTR_TO_BTF_ID | MEM_ALLOC | NON_OWN_REF | MEM_RCU,
];
