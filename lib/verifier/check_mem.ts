/**
 * Memory access: `check_mem_access()` and what it dispatches to — the stack
 * (`check_stack_access_within_bounds()`, spills and fills in
 * `check_stack_write_fixed_off()` / `check_stack_read_fixed_off()`), map
 * values (`check_map_access()` with variable offsets), the context
 * (`check_ctx_access()` through ctx_access/), packets
 * (`check_packet_access()`), and the `R%d invalid mem access '%s'` refusal
 * for everything else. Loads, stores and atomics (`check_load_mem()`,
 * `check_store_reg()`, `check_atomic()`) sit on top.
 *
 * Privileged loader: uninitialised stack may be read (`allow_uninit_stack`)
 * and pointers may be stored anywhere (`allow_ptr_leaks`).
 * @module
 */
import type { AtomicInsn, LoadInsn, StoreInsn } from "../isa/insn.ts";
import { checkAllocObjAccess, isAllocObjAccess } from "./check_btf_access.ts";
import {
  checkMapFieldsAccess,
  checkMapKptrAccess,
  kptrFieldAt,
} from "./kptr.ts";
import { coerceRegToSize, coerceRegToSizeSx } from "./bounds_sync.ts";
import { checkRegArg } from "./check_alu.ts";
import { EACCES, EINVAL, type Env } from "./env.ts";
import {
  checkStackRead,
  checkStackWrite,
  growStackState,
} from "./check_stack.ts";
import {
  markRegKnown,
  markRegPointer,
  markRegUnknown,
  type RegState,
} from "./reg_state.ts";
import {
  baseType,
  PTR_MAYBE_NULL,
  PTR_TO_BTF_ID,
  PTR_TO_CTX,
  PTR_TO_FLOW_KEYS,
  PTR_TO_MAP_KEY,
  PTR_TO_MAP_VALUE,
  PTR_TO_MEM,
  PTR_TO_PACKET,
  PTR_TO_PACKET_END,
  PTR_TO_PACKET_META,
  PTR_TO_SOCK_COMMON,
  PTR_TO_SOCKET,
  PTR_TO_STACK,
  PTR_TO_TCP_SOCK,
  PTR_TO_XDP_SOCK,
  PTR_UNTRUSTED,
  regTypeStr,
  SCALAR_VALUE,
  typeIsPktPointer,
} from "./reg_types.ts";
import { curFrame } from "./state.ts";
import { tnumIsConst, tnumStr } from "./tnum.ts";
import { ctxAccess, type CtxRegType } from "./ctx_access/mod.ts";
import { checkSockAccess } from "./sock_access.ts";
import {
  checkMapAccess,
  checkMemRegionAccess,
  checkPacketAccess,
} from "./check_mem_region.ts";
export {
  checkMapAccess,
  checkMemRegionAccess,
  checkPacketAccess,
} from "./check_mem_region.ts";

/** `BPF_READ` or `BPF_WRITE`. */
export type AccessType = "read" | "write";

const BPF_MAX_VAR_OFF = 1 << 29;
const BPF_F_RDONLY_PROG = 1 << 7;
const BPF_F_WRONLY_PROG = 1 << 8;

// keyed by name so that new ctx_access types degrade to scalars
const CTX_REG_TYPES: Record<string, number> = {
  PTR_TO_TP_BUFFER: 14,
  SCALAR_VALUE,
  PTR_TO_PACKET,
  PTR_TO_PACKET_META,
  PTR_TO_PACKET_END,
  PTR_TO_SOCK_COMMON_OR_NULL: PTR_TO_SOCK_COMMON | PTR_MAYBE_NULL,
  PTR_TO_SOCKET_OR_NULL: PTR_TO_SOCKET | PTR_MAYBE_NULL,
  PTR_TO_SOCKET,
  PTR_TO_FLOW_KEYS,
  PTR_TO_BTF_ID,
  PTR_TO_BTF_ID_OR_NULL: PTR_TO_BTF_ID | PTR_MAYBE_NULL,
  PTR_TO_CTX,
};

// mirrors __check_ptr_off_reg() with fixed_off_ok = false
function checkPtrOffReg(env: Env, reg: RegState, regno: number): void {
  if (reg.off) {
    env.fail(
      EACCES,
      `dereference of modified ${
        regTypeStr(reg.type)
      } ptr R${regno} off=${reg.off} disallowed`,
    );
  }
  if (!tnumIsConst(reg.s.varOff) || reg.s.varOff.value) {
    env.fail(
      EACCES,
      `variable ${regTypeStr(reg.type)} access var_off=${
        tnumStr(reg.s.varOff)
      } disallowed`,
    );
  }
}

// mirrors check_ctx_access() and the PTR_TO_CTX arm of check_mem_access()
function checkCtxMem(
  env: Env,
  reg: RegState,
  regno: number,
  off: number,
  size: number,
  t: AccessType,
  valueRegno: number,
  isLdsx: boolean,
): void {
  checkPtrOffReg(env, reg, regno);
  const r = ctxAccess(env.progType, off, size, t, {
    expectedAttachType: env.prog.expectedAttachType ?? undefined,
    attachFuncName: env.prog.attachTarget ?? undefined,
    isLdsx,
  });
  if (!r.ok) {
    for (const line of r.log ?? []) env.log.write(line + "\n");
    env.fail(EACCES, `invalid bpf_context access off=${off} size=${size}`);
  }
  if (t !== "read" || valueRegno < 0) return;
  const dst = curFrame(env.cur).regs[valueRegno];
  const type = CTX_REG_TYPES[r.regType as CtxRegType] ?? SCALAR_VALUE;
  if (type === SCALAR_VALUE) {
    markRegUnknown(dst);
    return;
  }
  markRegPointer(dst, type);
  if (type & PTR_MAYBE_NULL) dst.id = env.newId();
  if (r.btfId !== undefined) dst.btfId = r.btfId;
}

/**
 * Mirrors `check_mem_access()`: an access of `size` bytes at `reg + off`
 * through register `regno`; a load writes register `valueRegno` (-1: none).
 */
export function checkMemAccess(
  env: Env,
  regno: number,
  off: number,
  size: number,
  t: AccessType,
  valueRegno: number,
  isLdsx: boolean,
  stImm?: number,
): void {
  const regs = curFrame(env.cur).regs;
  const reg = regs[regno];
  if (reg.type === PTR_TO_STACK) checkStackAlignment(env, reg, off, size);
  off += reg.off;
  const type = reg.type;
  if (type === PTR_TO_MAP_VALUE) {
    const map = reg.map!;
    if (t === "write" && (map.flags & BPF_F_RDONLY_PROG)) {
      env.fail(
        EACCES,
        `write into map forbidden, value_size=${map.valueSize} off=${off} size=${size}`,
      );
    }
    if (t === "read" && (map.flags & BPF_F_WRONLY_PROG)) {
      env.fail(
        EACCES,
        `read from map forbidden, value_size=${map.valueSize} off=${off} size=${size}`,
      );
    }
    checkMapAccess(env, regno, off, size, false);
    checkMapFieldsAccess(env, reg, off, size, "direct");
    const kptrField = kptrFieldAt(reg, off);
    if (kptrField) {
      checkMapKptrAccess(env, kptrField, t === "read", valueRegno);
    } else if (t === "read" && valueRegno >= 0) {
      markRegUnknown(regs[valueRegno]);
    }
  } else if (type === PTR_TO_MAP_KEY) {
    if (t === "write") {
      env.fail(EACCES, "write to change key R" + regno + " not allowed");
    }
    checkMemRegionAccess(env, regno, off, size, reg.map!.keySize, false);
    if (valueRegno >= 0) markRegUnknown(regs[valueRegno]);
  } else if (baseType(type) === PTR_TO_MEM) {
    if (type & PTR_MAYBE_NULL) {
      env.fail(EACCES, `R${regno} invalid mem access '${regTypeStr(type)}'`);
    }
    checkMemRegionAccess(env, regno, off, size, reg.memSize, false);
    if (t === "read" && valueRegno >= 0) markRegUnknown(regs[valueRegno]);
  } else if (type === PTR_TO_CTX) {
    checkCtxMem(env, reg, regno, off, size, t, valueRegno, isLdsx);
  } else if (type === PTR_TO_STACK) {
    checkStackAccessWithinBounds(env, regno, off, size, t);
    if (t === "read") checkStackRead(env, regno, off, size, valueRegno);
    else checkStackWrite(env, regno, off, size, valueRegno, stImm);
  } else if (typeIsPktPointer(type)) {
    checkPacketAccess(env, regno, off, size, false);
    if (t === "read" && valueRegno >= 0) markRegUnknown(regs[valueRegno]);
  } else if (type === PTR_TO_FLOW_KEYS) {
    // mirrors check_flow_keys_access(): sizeof(struct bpf_flow_keys) is 56
    if (off < 0 || off + size > 56) {
      env.fail(EACCES, `invalid access to flow keys off=${off} size=${size}`);
    }
    if (t === "read" && valueRegno >= 0) markRegUnknown(regs[valueRegno]);
  } else if (
    type === PTR_TO_SOCKET || type === PTR_TO_SOCK_COMMON ||
    type === PTR_TO_TCP_SOCK || type === PTR_TO_XDP_SOCK
  ) {
    checkSockAccess(env, reg, regno, off, size, t);
    if (valueRegno >= 0) markRegUnknown(regs[valueRegno]);
  } else if (isAllocObjAccess(reg) && !(type & PTR_MAYBE_NULL)) {
    checkAllocObjAccess(env, reg, regno, off, size, t === "write", valueRegno);
  } else if (
    type === PTR_TO_SOCKET ||
    type === PTR_TO_SOCK_COMMON || type === PTR_TO_TCP_SOCK ||
    type === PTR_TO_XDP_SOCK ||
    (baseType(type) === PTR_TO_BTF_ID && !(type & PTR_MAYBE_NULL))
  ) {
    // object layouts are not modelled: reads give unknown scalars
    if (t === "write" && baseType(type) === PTR_TO_BTF_ID) {
      if (type & PTR_UNTRUSTED) {
        env.fail(EACCES, `R${regno} cannot write into ${regTypeStr(type)}`);
      }
    }
    if (t === "read" && valueRegno >= 0) markRegUnknown(regs[valueRegno]);
  } else {
    env.fail(
      EACCES,
      `R${regno} invalid mem access '${regTypeStr(type)}'`,
    );
  }
  if (size < 8 && valueRegno >= 0 && t === "read") {
    const v = regs[valueRegno];
    if (v.type === SCALAR_VALUE) {
      if (isLdsx) coerceRegToSizeSx(v.s, size as 1 | 2 | 4);
      else coerceRegToSize(v.s, size as 1 | 2 | 4);
    }
  }
}

// mirrors check_generic_ptr_alignment(): stack accesses are always strict
function checkStackAlignment(
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
  if (minOff < -512n || minOff > -1n || maxOff > 0n || size < 0) {
    env.fail(
      EACCES,
      c
        ? `invalid${extra} stack R${regno} off=${off} size=${size}`
        : `invalid variable-offset${extra} stack R${regno} var_off=${
          tnumStr(reg.s.varOff)
        } off=${off} size=${size}`,
    );
  }
  growStackState(env, state, Number(-minOff));
}

// mirrors save_aux_ptr_type() / reg_type_mismatch_ok()
function saveAuxPtrType(env: Env, type: number): void {
  const prev = env.ptrTypes[env.insnIdx];
  const mismatchOk = (t: number) => {
    const b = baseType(t);
    return !(b === PTR_TO_CTX || b === PTR_TO_SOCKET ||
      b === PTR_TO_SOCK_COMMON || b === PTR_TO_TCP_SOCK ||
      b === PTR_TO_XDP_SOCK || b === PTR_TO_BTF_ID);
  };
  if (prev === -1) env.ptrTypes[env.insnIdx] = type;
  else if (prev !== type && (!mismatchOk(type) || !mismatchOk(prev))) {
    env.fail(EINVAL, "same insn cannot be used with different pointers");
  }
}

/** `dst = *(size *)(src + off)`; mirrors `check_load_mem()`. */
export function checkLoad(env: Env, insn: LoadInsn): void {
  const src = checkRegArg(env, insn.src, "src");
  checkRegArg(env, insn.dst, "dst_no_mark");
  const srcType = src.type;
  checkMemAccess(
    env,
    insn.src,
    insn.off,
    insn.size,
    "read",
    insn.dst,
    insn.signExtend,
  );
  saveAuxPtrType(env, srcType);
}

/** `*(size *)(dst + off) = src|imm`; mirrors `check_store_reg()` and the ST arm. */
export function checkStore(env: Env, insn: StoreInsn): void {
  if (insn.kind === "stx") checkRegArg(env, insn.src, "src");
  const dst = checkRegArg(env, insn.dst, "src");
  const dstType = dst.type;
  if (insn.kind === "stx") {
    checkMemAccess(
      env,
      insn.dst,
      insn.off,
      insn.size,
      "write",
      insn.src,
      false,
    );
  } else {
    checkMemAccess(
      env,
      insn.dst,
      insn.off,
      insn.size,
      "write",
      -1,
      false,
      insn.imm,
    );
  }
  saveAuxPtrType(env, dstType);
}

/** Mirrors `check_atomic()` for the read-modify-write operations. */
export function checkAtomic(env: Env, insn: AtomicInsn): void {
  if (insn.op === "load_acq") {
    checkLoad(env, { ...insn, kind: "ldx", signExtend: false, imm: 0 });
    return;
  }
  if (insn.op === "store_rel") {
    checkStore(env, { ...insn, kind: "stx", imm: 0 });
    return;
  }
  if (insn.size !== 4 && insn.size !== 8) {
    env.fail(EINVAL, "invalid atomic operand size");
  }
  checkRegArg(env, insn.src, "src");
  const dst = checkRegArg(env, insn.dst, "src");
  if (insn.op === "cmpxchg") checkRegArg(env, 0, "src");
  const b = baseType(dst.type);
  if (
    b === PTR_TO_CTX || typeIsPktPointer(dst.type) || b === PTR_TO_FLOW_KEYS ||
    b === PTR_TO_SOCKET || b === PTR_TO_SOCK_COMMON || b === PTR_TO_TCP_SOCK ||
    b === PTR_TO_XDP_SOCK
  ) {
    env.fail(
      EACCES,
      `BPF_ATOMIC stores into R${insn.dst} ${
        regTypeStr(dst.type)
      } is not allowed`,
    );
  }
  const loadReg = insn.fetch ? (insn.op === "cmpxchg" ? 0 : insn.src) : -1;
  if (loadReg >= 0) checkRegArg(env, loadReg, "dst");
  checkMemAccess(env, insn.dst, insn.off, insn.size, "read", -1, false);
  if (loadReg >= 0) {
    checkMemAccess(env, insn.dst, insn.off, insn.size, "read", loadReg, false);
  }
  checkMemAccess(env, insn.dst, insn.off, insn.size, "write", -1, false);
}

/** A scalar constant into `reg` (for `lddw` of plain numbers). */
export function loadImm64(reg: RegState, v: bigint): void {
  markRegKnown(reg, v);
}
