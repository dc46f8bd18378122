/**
 * Loads and stores through a `PTR_TO_CTX` register: the kernel's
 * `check_ctx_access()` (the per-program-type `is_valid_access` callbacks,
 * modelled in ctx_access/), the `PTR_TO_CTX` arm of `check_mem_access()` that
 * types the loaded register, and `__check_ptr_off_reg()` with
 * `fixed_off_ok = false`.
 * @module
 */
import type { AccessType } from "./check_mem.ts";
import { ctxAccess, type CtxRegType } from "./ctx_access/mod.ts";
import { EACCES, type Env } from "./env.ts";
import { markRegPointer, markRegUnknown, type RegState } from "./reg_state.ts";
import {
  baseType,
  MEM_RDONLY,
  PTR_MAYBE_NULL,
  PTR_TO_BTF_ID,
  PTR_TO_BUF,
  PTR_TO_CTX,
  PTR_TO_FLOW_KEYS,
  PTR_TO_PACKET,
  PTR_TO_PACKET_END,
  PTR_TO_PACKET_META,
  PTR_TO_SOCK_COMMON,
  PTR_TO_SOCKET,
  PTR_TRUSTED,
  SCALAR_VALUE,
} from "./reg_types.ts";
import { curFrame } from "./state.ts";
import { checkPtrOffReg } from "./ptr_off.ts";

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
  PTR_TO_BUF_OR_NULL: PTR_TO_BUF | PTR_MAYBE_NULL,
  PTR_TO_RDONLY_BUF_OR_NULL: PTR_TO_BUF | MEM_RDONLY | PTR_MAYBE_NULL,
};

/**
 * Mirrors `check_ctx_access()` and the `PTR_TO_CTX` arm of
 * `check_mem_access()`: refuses a modified or variable context pointer and an
 * access the program type does not allow; a load types register `valueRegno`.
 */
export function checkCtxMem(
  env: Env,
  reg: RegState,
  regno: number,
  off: number,
  size: number,
  t: AccessType,
  valueRegno: number,
  isLdsx: boolean,
): void {
  checkPtrOffReg(env, reg, regno, false);
  const structOps = env.prog.structOps;
  const r = ctxAccess(env.progType, off, size, t, {
    expectedAttachType: env.prog.expectedAttachType ?? undefined,
    // a struct_ops program's attach_func_name is its member's name
    attachFuncName: structOps?.member ?? env.prog.attachTarget ?? undefined,
    structOpsName: structOps?.structName,
    isLdsx,
  });
  for (const line of r.log ?? []) env.log.write(line + "\n");
  if (!r.ok) {
    env.fail(EACCES, `invalid bpf_context access off=${off} size=${size}`);
  }
  if (t !== "read" || valueRegno < 0) return;
  const dst = curFrame(env.cur).regs[valueRegno];
  const type = CTX_REG_TYPES[r.regType as CtxRegType] ?? SCALAR_VALUE;
  if (type === SCALAR_VALUE) {
    markRegUnknown(dst);
    return;
  }
  // btf_ctx_access() ors PTR_TRUSTED into a BTF pointer's info->reg_type
  // (prog_args_trusted()); iterator buffers (PTR_TO_BUF) return before that
  const trusted = r.trusted && baseType(type) === PTR_TO_BTF_ID;
  markRegPointer(dst, trusted ? type | PTR_TRUSTED : type);
  if (type & PTR_MAYBE_NULL) dst.id = env.newId();
  if (r.btfId !== undefined) dst.btfId = r.btfId;
  if (r.btfName !== undefined) dst.btfName = r.btfName;
}
