/**
 * A helper's memory argument: the kernel's `check_helper_mem_access()`,
 * which checks a (pointer, size) pair against the region the pointer's type
 * allows — packet, map key or value, `PTR_TO_MEM`, or stack (where a helper
 * that writes leaves the bytes `STACK_MISC`).
 * @module
 */
import {
  checkMapAccess,
  checkMemAccess,
  checkMemRegionAccess,
  checkPacketAccess,
} from "./check_mem.ts";
import { checkStackAccessWithinBounds } from "./check_stack_bounds.ts";
import { markStackRangeRead } from "./check_stack.ts";
import { tnumIsConst } from "./tnum.ts";
import { checkBufferAccess } from "./check_buf_access.ts";
import { EACCES, type Env } from "./env.ts";
import {
  baseType,
  MEM_RDONLY,
  PTR_TO_BTF_ID,
  PTR_TO_BUF,
  PTR_TO_CTX,
  PTR_TO_MAP_KEY,
  PTR_TO_MAP_VALUE,
  PTR_TO_MEM,
  PTR_TO_PACKET,
  PTR_TO_PACKET_META,
  PTR_TO_STACK,
  regTypeStr,
  SCALAR_VALUE,
} from "./reg_types.ts";
import { curFrame } from "./state.ts";

/**
 * Mirrors `check_helper_mem_access()`: `size` bytes at register `regno`,
 * written by the helper when `write`; `zeroOk` allows a zero size (and a NULL
 * scalar). `raw` (a MEM_UNINIT argument, `meta->raw_mode`) means the helper
 * only writes the bytes: stack liveness sees no read of them.
 */
export function checkHelperMem(
  env: Env,
  regno: number,
  size: number,
  write: boolean,
  zeroOk: boolean,
  raw = false,
): void {
  const reg = curFrame(env.cur).regs[regno];
  switch (baseType(reg.type)) {
    case PTR_TO_PACKET:
    case PTR_TO_PACKET_META:
      return checkPacketAccess(env, regno, reg.off, size, zeroOk);
    case PTR_TO_MAP_KEY:
      return checkMemRegionAccess(
        env,
        regno,
        reg.off,
        size,
        reg.map!.keySize,
        false,
      );
    case PTR_TO_MAP_VALUE:
      return checkMapAccess(env, regno, reg.off, size, zeroOk, "helper");
    case PTR_TO_MEM:
      return checkMemRegionAccess(
        env,
        regno,
        reg.off,
        size,
        reg.memSize,
        zeroOk,
      );
    case PTR_TO_STACK:
      if (size === 0 && !zeroOk) env.fail(EACCES, "invalid zero-sized read");
      checkStackAccessWithinBounds(
        env,
        regno,
        reg.off,
        size,
        write ? "write" : "read",
      );
      // check_stack_range_initialized(): unless raw at a constant offset,
      // every slot the helper may touch counts as read
      if (!raw || !tnumIsConst(reg.s.varOff)) {
        markStackRangeRead(env, reg, reg.off, size);
      }
      if (write) {
        // a helper may write anything: the bytes become MISC
        for (let i = 0; i < size; i++) {
          checkMemAccess(env, regno, i, 1, "write", -1, false);
        }
      }
      return;
    case PTR_TO_BUF:
      // mirrors the PTR_TO_BUF arm of check_helper_mem_access()
      if (write && (reg.type & MEM_RDONLY)) {
        env.fail(
          EACCES,
          `R${regno} cannot write into ${regTypeStr(reg.type)}`,
        );
      }
      return checkBufferAccess(env, reg, regno, reg.off, size);
    case PTR_TO_BTF_ID:
    case PTR_TO_CTX:
      return;
    default:
      if (zeroOk && size === 0 && reg.type === SCALAR_VALUE) return;
      env.fail(
        EACCES,
        `R${regno} type=${regTypeStr(reg.type)} expected=${
          regTypeStr(PTR_TO_STACK)
        }`,
      );
  }
}

/**
 * The stack reads of `btf_check_subprog_call()` when the current
 * instruction calls global function `subprog`: each pointer argument is
 * checked as memory of its BTF type's size (`check_mem_reg()`), so stack
 * slots it covers count as read at the call (stack liveness).
 */
export function markGlobalArgStackReads(env: Env, subprog: number): void {
  const btf = env.obj.btf;
  const start = env.layout.subprogs[subprog]?.start;
  const typeId = env.prog.funcInfo?.find((f) => f.insnOff === start)?.typeId;
  if (!btf || !typeId) return;
  const fn = btf.typeById(typeId);
  if (fn.kind !== "FUNC") return;
  const proto = btf.typeById(fn.type);
  if (proto.kind !== "FUNC_PROTO") return;
  const regs = curFrame(env.cur).regs;
  proto.params.forEach((p, i) => {
    const reg = regs[i + 1];
    const t = btf.resolve(p.type).type;
    if (!reg || reg.type !== PTR_TO_STACK || t.kind !== "PTR") return;
    const target = btf.resolve(t.type).type;
    const size = target.kind === "VOID" ? 0 : btf.sizeOf(target.id);
    if (size > 0) markStackRangeRead(env, reg, reg.off, size);
  });
}
