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
 * scalar).
 */
export function checkHelperMem(
  env: Env,
  regno: number,
  size: number,
  write: boolean,
  zeroOk: boolean,
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
