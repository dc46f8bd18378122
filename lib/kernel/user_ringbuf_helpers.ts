/**
 * Runtime of `bpf_user_ringbuf_drain()` (kernel/bpf/ringbuf.c) over a
 * {@link UserRingBuf}: user space never produces in the simulation, so the
 * ring is always empty and the callback (r2, with its context r3) is never
 * called; the helper checks its flags and returns the 0 samples drained.
 * @module
 */
import { ExecError } from "../exec/fault.ts";
import type { HelperFn } from "../exec/state.ts";
import { UserRingBuf } from "./maps/user_ringbuf.ts";
import type { ObjectHelperEnv } from "./object_helpers.ts";

/** Helper id of `bpf_user_ringbuf_drain` (include/uapi/linux/bpf.h). */
export const USER_RINGBUF_HELPER = { user_ringbuf_drain: 209 } as const;

/** `bpf_user_ringbuf_drain(map, callback_fn, callback_ctx, flags)`, by id. */
export function userRingbufHelpers(
  env: ObjectHelperEnv,
): Map<number, HelperFn> {
  const { registry } = env.loaded;
  return new Map<number, HelperFn>([
    [USER_RINGBUF_HELPER.user_ringbuf_drain, (vm) => {
      const map = registry.at(vm.arg(1));
      if (!(map instanceof UserRingBuf)) {
        throw new ExecError(
          vm.insnIndex,
          `R1: ${registry.describe(vm.arg(1))} (a user ring buffer)`,
        );
      }
      return map.drain(vm.arg(4));
    }],
  ]);
}
