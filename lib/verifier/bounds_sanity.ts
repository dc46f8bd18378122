/**
 * The invariant check run after bounds are refined on a branch: the kernel's
 * `reg_bounds_sanity_check()` (the `REG INVARIANTS VIOLATION` report and the
 * recovery that opens the scalar's bounds).
 * @module
 */

import { markScalarUnbounded } from "./scalar_mark.ts";
import type { Scalar } from "./scalar.ts";
import { hex } from "./tnum.ts";

const LO32 = 0xffff_ffffn;

/**
 * Mirrors the checks of `reg_bounds_sanity_check()`: returns the kernel's
 * reason (`range bounds violation`, `const tnum out of sync with range
 * bounds`, `const subreg tnum out of sync with range bounds`) or null.
 */
export function regBoundsViolation(s: Scalar): string | null {
  if (
    s.umin > s.umax || s.smin > s.smax || s.u32Min > s.u32Max ||
    s.s32Min > s.s32Max
  ) {
    return "range bounds violation";
  }
  if (s.varOff.mask === 0n) {
    const u = s.varOff.value;
    const sv = BigInt.asIntN(64, u);
    if (s.umin !== u || s.umax !== u || s.smin !== sv || s.smax !== sv) {
      return "const tnum out of sync with range bounds";
    }
  }
  if ((s.varOff.mask & LO32) === 0n) {
    const u32 = Number(s.varOff.value & LO32);
    if (
      s.u32Min !== u32 || s.u32Max !== u32 || s.s32Min !== (u32 | 0) ||
      s.s32Max !== (u32 | 0)
    ) {
      return "const subreg tnum out of sync with range bounds";
    }
  }
  return null;
}

/**
 * The text `reg_bounds_sanity_check()` logs after `verifier bug: `, e.g.
 * `REG INVARIANTS VIOLATION (false_reg1): range bounds violation u64=[0xe01,
 * 0xe00] s64=[…] u32=[…] s32=[…] var_off=(0xe00, 0x0)`.
 */
export function formatInvariantViolation(
  s: Scalar,
  ctx: string,
  reason: string,
): string {
  const h32 = (n: number) => "0x" + (n >>> 0).toString(16);
  return `REG INVARIANTS VIOLATION (${ctx}): ${reason} ` +
    `u64=[${hex(s.umin)}, ${hex(s.umax)}] ` +
    `s64=[${hex(BigInt.asUintN(64, s.smin))}, ${
      hex(BigInt.asUintN(64, s.smax))
    }] ` +
    `u32=[${h32(s.u32Min)}, ${h32(s.u32Max)}] s32=[${h32(s.s32Min)}, ${
      h32(s.s32Max)
    }] ` +
    `var_off=(${hex(s.varOff.value)}, ${hex(s.varOff.mask)})`;
}

/**
 * Mirrors `reg_bounds_sanity_check()` as it behaves without
 * `BPF_F_TEST_REG_INVARIANTS`: on a violated invariant it returns the message
 * (to be logged after `verifier bug: `) and opens all bounds of the scalar,
 * keeping its tnum; the verification then goes on. Returns null when sane.
 */
export function regBoundsSanityCheck(s: Scalar, ctx: string): string | null {
  const reason = regBoundsViolation(s);
  if (reason === null) return null;
  const msg = formatInvariantViolation(s, ctx, reason);
  markScalarUnbounded(s);
  return msg;
}
