/**
 * Memory access: `check_mem_access()` and what it dispatches to — the stack
 * (`check_stack_access_within_bounds()` in check_stack_bounds.ts, spills and
 * fills in `check_stack_write_fixed_off()` / `check_stack_read_fixed_off()`),
 * map values (`check_map_access()` with variable offsets), the context
 * (`check_ctx_access()` in check_ctx_mem.ts, through ctx_access/), packets
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
import { checkMapKptrAccess, kptrFieldAt } from "./kptr.ts";
import { coerceRegToSize, coerceRegToSizeSx } from "./scalar_coerce.ts";
import { checkRegArg } from "./check_alu.ts";
import { EACCES, EINVAL, type Env } from "./env.ts";
import { checkStackRead, checkStackWrite } from "./check_stack.ts";
import { markRegKnown, markRegUnknown, type RegState } from "./reg_state.ts";
import {
  baseType,
  MEM_PERCPU,
  MEM_USER,
  PTR_MAYBE_NULL,
  PTR_TO_BTF_ID,
  PTR_TO_BUF,
  PTR_TO_CTX,
  PTR_TO_FLOW_KEYS,
  PTR_TO_MAP_KEY,
  PTR_TO_MAP_VALUE,
  PTR_TO_MEM,
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
import { checkSockAccess } from "./sock_access.ts";
import { checkCtxMem } from "./check_ctx_mem.ts";
import { tcpCaBtfStructAccess } from "./ctx_access/struct_ops.ts";
import { checkBufMemAccess, checkIterMetaAccess } from "./check_buf_access.ts";
import {
  checkStackAccessWithinBounds,
  checkStackAlignment,
} from "./check_stack_bounds.ts";
import {
  checkMapAccess,
  checkMemRegionAccess,
  checkPacketAccess,
} from "./check_mem_region.ts";
import { BPF_F_RDONLY_PROG, BPF_F_WRONLY_PROG } from "../kernel/maps/map.ts";
export {
  checkMapAccess,
  checkMemRegionAccess,
  checkPacketAccess,
} from "./check_mem_region.ts";
export { checkStackAccessWithinBounds } from "./check_stack_bounds.ts";

/** `BPF_READ` or `BPF_WRITE`. */
export type AccessType = "read" | "write";

/**
 * Program types with a `btf_struct_access` callback, which decides the
 * stores into kernel objects they may make (tc and XDP: nf_conn's mark;
 * struct_ops: its own fields); every other type may only read.
 */
const BTF_STRUCT_ACCESS_TYPES: ReadonlySet<string> = new Set([
  "sched_cls",
  "sched_act",
  "xdp",
  "struct_ops",
]);

/**
 * The opening checks of `check_ptr_to_btf_access()` on a pointer to a
 * kernel object: a GPL-compatible program, a non-negative constant
 * offset, no user or per-CPU memory, and no store unless the program
 * type's `btf_struct_access` decides it.
 */
function checkKernelBtfAccess(
  env: Env,
  reg: RegState,
  regno: number,
  off: number,
  size: number,
  t: AccessType,
): void {
  const tname = reg.btfName;
  if (!env.gplCompatible) {
    env.fail(
      EINVAL,
      `Cannot access kernel 'struct ${tname}' from non-GPL compatible program`,
    );
  }
  const what = `R${regno} is ptr_${tname}`;
  if (off < 0) env.fail(EACCES, `${what} invalid negative access: off=${off}`);
  if (!tnumIsConst(reg.s.varOff) || reg.s.varOff.value !== 0n) {
    env.fail(
      EACCES,
      `${what} invalid variable offset: off=${off}, var_off=${
        tnumStr(reg.s.varOff)
      }`,
    );
  }
  if (reg.type & MEM_USER) {
    env.fail(EACCES, `${what} access user memory: off=${off}`);
  }
  if (reg.type & MEM_PERCPU) {
    env.fail(EACCES, `${what} access percpu memory: off=${off}`);
  }
  if (t === "write" && !BTF_STRUCT_ACCESS_TYPES.has(env.progType)) {
    env.fail(EACCES, "only read is supported");
  }
  // bpf_tcp_ca_btf_struct_access(): the other struct_ops types are not modelled
  if (
    t === "write" && env.progType === "struct_ops" &&
    env.prog.structOps?.structName === "tcp_congestion_ops"
  ) {
    const refusal = tcpCaBtfStructAccess(reg.btfName, off, size);
    if (refusal !== undefined) env.fail(EACCES, refusal);
  }
}

/** Program types that read their packet directly but may not store into it. */
const PKT_READ_ONLY_TYPES: ReadonlySet<string> = new Set([
  "lwt_in",
  "lwt_out",
  "lwt_seg6local",
  "sk_reuseport",
  "flow_dissector",
  "cgroup_skb",
]);
/** Program types that read and store into their packet directly. */
const PKT_READ_WRITE_TYPES: ReadonlySet<string> = new Set([
  "sched_cls",
  "sched_act",
  "xdp",
  "lwt_xmit",
  "sk_skb",
  "sk_msg",
]);

/**
 * Mirrors `may_access_direct_pkt_data()`: whether a program of `progType`
 * may make an access `t` to its packet — directly (`helperPktAccess`
 * undefined), or through a helper argument, where the helper's
 * `pkt_access` decides for the packet program types.
 */
export function mayAccessDirectPktData(
  progType: string,
  t: AccessType,
  helperPktAccess?: boolean,
): boolean {
  if (progType === "cgroup_sockopt") return true;
  const readOnly = PKT_READ_ONLY_TYPES.has(progType);
  if (!readOnly && !PKT_READ_WRITE_TYPES.has(progType)) return false;
  if (readOnly && t === "write") return false;
  return helperPktAccess ?? true;
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
    checkMapAccess(env, regno, off, size, false, "direct");
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
    if (t === "write" && !mayAccessDirectPktData(env.progType, "write")) {
      env.fail(EACCES, "cannot write into packet");
    }
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
  } else if (baseType(type) === PTR_TO_BUF && !(type & PTR_MAYBE_NULL)) {
    checkBufMemAccess(env, reg, regno, off, size, t, valueRegno);
  } else if (
    baseType(type) === PTR_TO_BTF_ID && !(type & PTR_MAYBE_NULL) &&
    reg.btfName === "bpf_iter_meta"
  ) {
    checkIterMetaAccess(env, reg, regno, off, size, t, valueRegno);
  } else if (baseType(type) === PTR_TO_BTF_ID && !(type & PTR_MAYBE_NULL)) {
    if (t === "write" && (type & PTR_UNTRUSTED)) {
      env.fail(EACCES, `R${regno} cannot write into ${regTypeStr(type)}`);
    }
    checkKernelBtfAccess(env, reg, regno, off, size, t);
    // kernel object layouts (vmlinux BTF) are not modelled: reads give
    // unknown scalars
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
