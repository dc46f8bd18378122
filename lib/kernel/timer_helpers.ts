/**
 * BPF timers (kernel/bpf/helpers.c): `bpf_timer_init`, `_set_callback`,
 * `_start`, `_cancel` on a `struct bpf_timer` inside a map value, and
 * `bpf_timer_cancel_and_free()` when the value is freed or overwritten.
 *
 * The 16-byte `struct bpf_timer` holds `struct bpf_async_kern`: a pointer to
 * the `struct bpf_hrtimer` that `bpf_timer_init()` allocates (here a
 * `kernel` region no program may touch, so the pointer is a real, unique
 * kernel address) and a `bpf_spin_lock`. The state of each timer lives in
 * the kernel's {@link BpfTimers}, keyed by that pointer.
 *
 * Timers fire only when the owner of the simulated clock asks:
 * `fireDueTimers()` (timer_fire.ts) runs the callbacks of the timers whose expiry is
 * due, as `hrtimer_run_softirq()` would. A `BPF_PROG_TEST_RUN` never does,
 * so no timer fires during one.
 * @module
 */
import { ExecError } from "../exec/fault.ts";
import type { CallContext, HelperFn } from "../exec/state.ts";
import type { BpfCallbacks } from "./graph/callback.ts";
import type { StateOwner } from "./helpers.ts";
import type { Kernel } from "./kernel.ts";
import type { BpfMap } from "./maps/map.ts";
import type { ObjectHelperEnv } from "./object_helpers.ts";
import { EBUSY, EDEADLK, EINVAL, EOPNOTSUPP } from "../uapi/errno.ts";

/** Helper ids (include/uapi/linux/bpf.h). */
export const TIMER_HELPER = {
  timer_init: 169,
  timer_set_callback: 170,
  timer_start: 171,
  timer_cancel: 172,
} as const;

/** `BPF_F_TIMER_ABS`: `nsecs` is an absolute expiry. */
export const BPF_F_TIMER_ABS = 1;
/** `BPF_F_TIMER_CPU_PIN`: fire on the CPU that armed the timer. */
export const BPF_F_TIMER_CPU_PIN = 2;
/** `MAX_CLOCKS`: `bpf_timer_init()` flags are a clock id below it. */
export const MAX_CLOCKS = 16;
/** Clock ids `bpf_timer_init()` accepts: REALTIME, MONOTONIC, BOOTTIME. */
const ALLOWED_CLOCKS: ReadonlySet<number> = new Set([0, 1, 7]);
/** Bytes of the `struct bpf_hrtimer` region. */
const BPF_HRTIMER_SIZE = 96;

/** One initialised timer (`struct bpf_hrtimer`). */
export interface BpfTimer {
  /** Address of its `struct bpf_hrtimer` (what the `bpf_timer` holds). */
  readonly hrtimer: bigint;
  /** Address of the `struct bpf_timer` field. */
  readonly field: bigint;
  /** Address of the map value holding it (`cb->value`). */
  readonly value: bigint;
  /** The map given to `bpf_timer_init()`, and its `struct bpf_map` address. */
  readonly map: BpfMap;
  /** `struct bpf_map` address of {@link map}. */
  readonly mapAddr: bigint;
  /** `bpf_timer_init()` flags (the clock id). */
  readonly flags: number;
  /** `cb->prog`: the callback table of the program holding a reference, or null. */
  prog: BpfCallbacks | null;
  /** `cb->callback_fn`: the callback's address, or 0. */
  callbackFn: bigint;
  /** Expiry in ns when armed, or null. */
  expires: bigint | null;
  /** CPU whose hrtimer base holds it (the one that armed it). */
  cpu: number;
  /** `cancelling`: callbacks of other timers waiting for this one. */
  cancelling: number;
  /** Arming order, to fire timers with equal expiry in order. */
  seq: number;
  /** Its CPU had interrupts off when this arming came due (counted once). */
  deferred: boolean;
}

/** The timers of one simulated kernel. */
export class BpfTimers {
  /** Live timers by `struct bpf_hrtimer` address. */
  readonly timers: Map<bigint, BpfTimer> = new Map();
  /** `hrtimer_running`: the timer whose callback each CPU is running. */
  readonly running: Map<number, BpfTimer> = new Map();
  /**
   * While `fireDueTimers()` runs callbacks: the time they fire at, the
   * clock `bpf_timer_start()` counts from (a callback's own state has no
   * clock of the kernel's).
   */
  firingAt: number | null = null;
  /**
   * Expiries that found their CPU with interrupts off (holding or spinning
   * on a bpf_spin_lock, in an NMI) and fired later: the softirq waits.
   */
  deferrals = 0;
  private seq = 0;

  /** The timer the `struct bpf_timer` at `field` holds, or undefined (uninitialised). */
  at(vm: CallContext, field: bigint): BpfTimer | undefined {
    const ptr = vm.mem.read(field, 8);
    if (ptr === 0n) return undefined;
    const t = this.timers.get(ptr);
    if (t === undefined) {
      throw new ExecError(
        -1,
        `bpf_timer at 0x${field.toString(16)} holds an unknown pointer`,
      );
    }
    return t;
  }

  /** Arms `t` to expire at `expires` on `cpu` (`hrtimer_start()`). */
  arm(t: BpfTimer, expires: bigint, cpu: number): void {
    t.expires = expires;
    t.cpu = cpu;
    t.seq = this.seq++;
    t.deferred = false;
  }

  /** Armed timers due at `nowNs`, earliest first. */
  due(nowNs: number): BpfTimer[] {
    const now = BigInt(nowNs);
    return [...this.timers.values()]
      .filter((t) => t.expires !== null && t.expires <= now)
      .sort((a, b) =>
        a.expires! < b.expires!
          ? -1
          : a.expires! > b.expires!
          ? 1
          : a.seq - b.seq
      );
  }

  /** The earliest expiry of an armed timer (after `after`, when given), or null. */
  nextExpiry(after?: bigint): bigint | null {
    let next: bigint | null = null;
    for (const t of this.timers.values()) {
      const e = t.expires;
      if (e === null || (after !== undefined && e <= after)) continue;
      if (next === null || e < next) next = e;
    }
    return next;
  }

  /**
   * `bpf_timer_cancel_and_free()`: the `bpf_timer` was cleared by the map
   * (value freed or overwritten); disarm and forget the timer.
   */
  cancelAndFree(
    vmSpace: { unmapRegion(a: bigint): void },
    pointer: bigint,
  ): void {
    const t = this.timers.get(pointer);
    if (t === undefined) return;
    t.prog = null;
    t.callbackFn = 0n;
    t.expires = null;
    this.timers.delete(pointer);
    vmSpace.unmapRegion(pointer);
  }
}

const TIMERS = new WeakMap<Kernel, BpfTimers>();

/** The timers of `kernel` (created on first use). */
export function timersOf(kernel: Kernel): BpfTimers {
  let t = TIMERS.get(kernel);
  if (t === undefined) {
    t = new BpfTimers();
    TIMERS.set(kernel, t);
  }
  return t;
}

/** CPU and NMI-ness of the caller. */
function where(vm: CallContext): { cpu: number; nmi: boolean } {
  const owner = vm.owner as StateOwner | undefined;
  const nmi = (owner?.level ?? 0) > 0 && owner?.softirq !== true;
  return { cpu: owner?.cpu?.id ?? 0, nmi };
}

/** The timer helpers, by id, over the timers of `env.loaded.kernel`. */
export function timerHelpers(env: ObjectHelperEnv): Map<number, HelperFn> {
  const kernel = env.loaded.kernel;
  const H = TIMER_HELPER;
  return new Map<number, HelperFn>([
    [H.timer_init, (vm) => {
      // mirrors bpf_timer_init() and __bpf_async_init()
      const flags = vm.arg(3);
      const clock = Number(flags & BigInt(MAX_CLOCKS - 1));
      if (flags >= BigInt(MAX_CLOCKS) || !ALLOWED_CLOCKS.has(clock)) {
        return -EINVAL;
      }
      if (where(vm).nmi) return -EOPNOTSUPP;
      const timers = timersOf(kernel);
      const field = vm.arg(1);
      if (timers.at(vm, field) !== undefined) return -EBUSY;
      const mapAddr = vm.arg(2);
      const map = env.loaded.registry.at(mapAddr);
      const timerOff = map?.record?.timerOff ?? -1;
      if (map === undefined || timerOff < 0) {
        throw new ExecError(
          -1,
          `bpf_timer_init: R2 is no map with a bpf_timer`,
        );
      }
      const hrtimer = vm.mem.mapRegion("kernel", BPF_HRTIMER_SIZE, {
        name: `bpf_hrtimer:${map.attr.name}`,
        read: false,
        write: false,
      });
      timers.timers.set(hrtimer, {
        hrtimer,
        field,
        value: field - BigInt(timerOff),
        map,
        mapAddr,
        flags: Number(flags),
        prog: null,
        callbackFn: 0n,
        expires: null,
        cpu: 0,
        cancelling: 0,
        seq: 0,
        deferred: false,
      });
      vm.mem.write(field, 8, hrtimer);
      return 0;
    }],
    [H.timer_set_callback, (vm) => {
      // mirrors __bpf_async_set_callback()
      if (where(vm).nmi) return -EOPNOTSUPP;
      const t = timersOf(kernel).at(vm, vm.arg(1));
      if (t === undefined) return -EINVAL;
      const callbacks = env.loaded.callbacks;
      if (callbacks === undefined) {
        throw new ExecError(-1, "bpf_timer_set_callback: no callback table");
      }
      t.prog = callbacks;
      t.callbackFn = vm.arg(2);
      return 0;
    }],
    [H.timer_start, (vm) => {
      // mirrors bpf_timer_start()
      const { cpu, nmi } = where(vm);
      if (nmi) return -EOPNOTSUPP;
      const flags = vm.arg(3);
      if (flags & ~BigInt(BPF_F_TIMER_ABS | BPF_F_TIMER_CPU_PIN)) {
        return -EINVAL;
      }
      const timers = timersOf(kernel);
      const t = timers.at(vm, vm.arg(1));
      if (t === undefined || t.prog === null) return -EINVAL;
      // ns_to_ktime() of a u64: ktime_t is s64
      const nsecs = BigInt.asIntN(64, vm.arg(2));
      const expires = flags & BigInt(BPF_F_TIMER_ABS)
        ? nsecs
        : BigInt(timers.firingAt ?? vm.nowNs()) + nsecs;
      timers.arm(t, expires, cpu);
      return 0;
    }],
    [H.timer_cancel, (vm) => timerCancel(vm, timersOf(kernel))],
  ]);
}

/** `bpf_timer_cancel()`: 1 if the timer was armed, 0 if not, or a negative errno. */
function timerCancel(vm: CallContext, timers: BpfTimers): number {
  const { cpu, nmi } = where(vm);
  if (nmi) return -EOPNOTSUPP;
  const t = timers.at(vm, vm.arg(1));
  if (t === undefined) return -EINVAL;
  const cur = timers.running.get(cpu);
  // its own callback would wait for itself in hrtimer_cancel()
  if (cur === t) return -EDEADLK;
  if (cur !== undefined) {
    // another timer's callback cancelling t while someone cancels that timer
    t.cancelling++;
    try {
      if (cur.cancelling > 0) return -EDEADLK;
      return dropAndCancel(t);
    } finally {
      t.cancelling--;
    }
  }
  return dropAndCancel(t);
}

/** `drop_prog_refcnt()` then `hrtimer_cancel()`. */
function dropAndCancel(t: BpfTimer): number {
  t.prog = null;
  t.callbackFn = 0n;
  const wasArmed = t.expires !== null;
  t.expires = null;
  return wasArmed ? 1 : 0;
}
