/**
 * `bpf_refcount_acquire_impl()`: a second owning reference to a
 * refcounted object (`struct bpf_refcount`, a `refcount_t`).
 * @module
 */
import { ExecError } from "../../exec/fault.ts";
import type { GraphRuntime } from "./objects.ts";
import { GraphCorruption, px } from "./layouts.ts";

/** `REFCOUNT_SATURATED`: where `refcount_t` stops counting (`INT_MIN / 2`). */
export const REFCOUNT_SATURATED = 0xc0000000n;

/**
 * Mirrors bpf_refcount_acquire_impl(): `refcount_inc_not_zero()` on the
 * object's `bpf_refcount`; the object, or 0n when the count was zero.
 */
export function refcountAcquire(rt: GraphRuntime, p: bigint): bigint {
  const entry = rt.objectAt(p);
  const off = entry?.type.record?.refcountOff ?? -1;
  if (entry === undefined || off < 0) {
    throw new ExecError(-1, `0x${px(p)} is not a refcounted object`);
  }
  const at = p + BigInt(off);
  const count = rt.space.read(at, 4);
  if (count === 0n) return 0n;
  if (count >= 0x7fffffffn) {
    throw new GraphCorruption("refcount_t: saturated; leaking memory.");
  }
  rt.space.write(at, 4, count + 1n);
  return p;
}

/** The `bpf_refcount` of object `p`, or undefined when it has none. */
export function refcountOf(rt: GraphRuntime, p: bigint): number | undefined {
  const off = rt.objectAt(p)?.type.record?.refcountOff ?? -1;
  return off < 0 ? undefined : Number(rt.space.read(p + BigInt(off), 4));
}
