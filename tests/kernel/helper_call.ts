/**
 * Calling one helper directly, as a program's `call` would: a CallContext
 * over `args` (r1…r5), the address space and a settable clock, for the
 * helper unit tests.
 * @module
 */
import assert from "node:assert/strict";
import type { AddressSpace } from "../../lib/exec/memory.ts";
import type { CallContext, HelperFn } from "../../lib/exec/state.ts";

/**
 * Calls helper `id` of `helpers` with `args`, owned by `owner`, at the
 * time `now()`; returns r0 as a signed 64-bit bigint.
 */
export function callHelper(
  helpers: ReadonlyMap<number, HelperFn>,
  id: number,
  args: readonly bigint[],
  env: { mem: AddressSpace; now: () => number; owner: unknown },
): bigint {
  const regs = [0n, ...args, 0n, 0n, 0n, 0n, 0n].map((v) =>
    BigInt.asUintN(64, v)
  );
  const vm: CallContext = {
    arg: (i) => regs[i],
    argLo: (i) => Number(regs[i] & 0xffffffffn) | 0,
    argHi: (i) => Number(regs[i] >> 32n) | 0,
    setR0: () => {},
    setR0Parts: () => {},
    insnIndex: 0,
    steps: 0,
    nowNs: env.now,
    mem: env.mem,
    block: () => {},
    tailCall: () => false,
    owner: env.owner,
  };
  const fn = helpers.get(id);
  assert.ok(fn, `helper ${id}`);
  return BigInt.asIntN(64, BigInt(fn(vm) ?? 0));
}
