/**
 * `BPF_MAP_TYPE_USER_RINGBUF` (kernel/bpf/ringbuf.c): the same ring as
 * `BPF_MAP_TYPE_RINGBUF` with the roles swapped — user space produces
 * (libbpf's `user_ring_buffer__reserve()` / `__submit()`), programs
 * consume with `bpf_user_ringbuf_drain()`. Nothing in the simulation runs
 * user space, so no sample is ever produced and every drain finds the ring
 * empty; what remains to mirror is the helper's flag check, its wake-up
 * and its return value.
 * @module
 */
import { BPF_RB_FORCE_WAKEUP, BPF_RB_NO_WAKEUP, RingBuf } from "./ringbuf.ts";
import { EINVAL } from "./map.ts";

/** A user ring buffer map (created with `ringbufAllocCheck()`'s checks, as `ringbuf_map_alloc()` serves both). */
export class UserRingBuf extends RingBuf {
  /**
   * Mirrors `bpf_user_ringbuf_drain()` on a ring no one produces into:
   * -EINVAL for flags beyond `BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP`,
   * else `__bpf_user_ringbuf_peek()` finds `consumer_pos == producer_pos`
   * (-ENODATA) at once, the callback is never called, and the count of
   * samples drained, 0, is returned. `BPF_RB_FORCE_WAKEUP` still queues the
   * producer's wake-up (counted in {@link wakeups}); without it a drain of
   * no samples wakes no one.
   */
  drain(flags: bigint): number {
    if (flags & ~BigInt(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP)) {
      return -EINVAL;
    }
    const samples = 0; // cons_pos >= prod_pos: -ENODATA before the first sample
    if (flags & BigInt(BPF_RB_FORCE_WAKEUP)) this.wakeups++;
    else if (!(flags & BigInt(BPF_RB_NO_WAKEUP)) && samples > 0) {
      this.wakeups++;
    }
    return samples;
  }
}
