/**
 * Bounds of memory regions: `__check_mem_access()` and
 * `check_mem_region_access()` (both ends of a variable offset), and their
 * users `check_map_access()` and `check_packet_access()`.
 * @module
 */
import { type AccessSrc, checkMapFieldsAccess } from "./kptr.ts";
import { EACCES, EINVAL, type Env } from "./env.ts";
import type { RegState } from "./reg_state.ts";
import {
  baseType,
  PTR_TO_MAP_KEY,
  PTR_TO_MAP_VALUE,
  PTR_TO_PACKET,
  PTR_TO_PACKET_END,
  PTR_TO_PACKET_META,
} from "./reg_types.ts";
import { curFrame } from "./state.ts";
import { S64_MIN } from "./scalar.ts";

const BPF_MAX_VAR_OFF = 1 << 29;

// mirrors __check_mem_access()
function checkMemBounds(
  env: Env,
  regno: number,
  reg: RegState,
  off: bigint,
  size: number,
  memSize: number,
  zeroSizeOk: boolean,
): boolean {
  const sizeOk = size > 0 || (size === 0 && zeroSizeOk);
  if (off >= 0n && sizeOk && off + BigInt(size) <= BigInt(memSize)) return true;
  const o = BigInt.asIntN(32, off);
  switch (baseType(reg.type)) {
    case PTR_TO_MAP_KEY:
      env.log.write(
        `invalid access to map key, key_size=${memSize} off=${o} size=${size}\n`,
      );
      break;
    case PTR_TO_MAP_VALUE:
      env.log.write(
        `invalid access to map value, value_size=${memSize} off=${o} size=${size}\n`,
      );
      break;
    case PTR_TO_PACKET:
    case PTR_TO_PACKET_META:
    case PTR_TO_PACKET_END:
      env.log.write(
        `invalid access to packet, off=${o} size=${size}, R${regno}(id=${reg.id},off=${o},r=${memSize})\n`,
      );
      break;
    default:
      env.log.write(
        `invalid access to memory, mem_size=${memSize} off=${o} size=${size}\n`,
      );
  }
  return false;
}

/** Mirrors `check_mem_region_access()`: both ends of a variable offset. */
export function checkMemRegionAccess(
  env: Env,
  regno: number,
  off: number,
  size: number,
  memSize: number,
  zeroSizeOk: boolean,
): void {
  const reg = curFrame(env.cur).regs[regno];
  const smin = reg.s.smin;
  const o = BigInt(off);
  if (
    smin < 0n &&
    (smin === S64_MIN || o + smin !== BigInt.asIntN(32, o + smin) ||
      smin + o < 0n)
  ) {
    env.fail(
      EACCES,
      `R${regno} min value is negative, either use unsigned index or do a if (index >=0) check.`,
    );
  }
  if (!checkMemBounds(env, regno, reg, smin + o, size, memSize, zeroSizeOk)) {
    env.fail(
      EACCES,
      `R${regno} min value is outside of the allowed memory range`,
    );
  }
  if (reg.s.umax >= BigInt(BPF_MAX_VAR_OFF)) {
    env.fail(
      EACCES,
      `R${regno} unbounded memory access, make sure to bounds check any such access`,
    );
  }
  if (
    !checkMemBounds(env, regno, reg, reg.s.umax + o, size, memSize, zeroSizeOk)
  ) {
    env.fail(
      EACCES,
      `R${regno} max value is outside of the allowed memory range`,
    );
  }
}

/**
 * Mirrors `check_map_access()`: in bounds of the value, and touching no
 * special field except a kptr loaded or stored whole by the program itself
 * (`src`: "direct" load/store or a "helper"'s memory argument).
 */
export function checkMapAccess(
  env: Env,
  regno: number,
  off: number,
  size: number,
  zeroSizeOk: boolean,
  src: AccessSrc,
): void {
  const reg = curFrame(env.cur).regs[regno];
  checkMemRegionAccess(env, regno, off, size, reg.map!.valueSize, zeroSizeOk);
  checkMapFieldsAccess(env, reg, off, size, src);
}

/**
 * Mirrors `check_packet_access()`: only the fixed offset is checked
 * against the range (any variable part was folded into it by the range
 * check), and a negative minimum is refused.
 */
export function checkPacketAccess(
  env: Env,
  regno: number,
  off: number,
  size: number,
  zeroSizeOk: boolean,
): void {
  const reg = curFrame(env.cur).regs[regno];
  if (reg.s.smin < 0n) {
    env.fail(
      EACCES,
      `R${regno} min value is negative, either use unsigned index or do a if (index >=0) check.`,
    );
  }
  if (
    reg.range < 0 ||
    !checkMemBounds(env, regno, reg, BigInt(off), size, reg.range, zeroSizeOk)
  ) {
    env.fail(
      reg.range < 0 ? EINVAL : EACCES,
      `R${regno} offset is outside of the packet`,
    );
  }
}
