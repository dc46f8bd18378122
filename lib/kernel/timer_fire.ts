/**
 * Firing BPF timers, and freeing them with their map values: what
 * `hrtimer_run_softirq()` → `bpf_timer_cb()` and `bpf_obj_free_fields()` →
 * `bpf_timer_cancel_and_free()` do in kernel/bpf/helpers.c. The helpers
 * themselves are in timer_helpers.ts.
 * @module
 */
import { BPF_TIMER, type BtfField } from "../btf/field_types.ts";
import { ExecError } from "../exec/fault.ts";
import type { CallContext } from "../exec/state.ts";
import type { Kernel } from "./kernel.ts";
import { ArrayMap } from "./maps/array.ts";
import { HashMap } from "./maps/hash.ts";
import { roundUp8, u32Key } from "./maps/map.ts";
import type { FieldFreer } from "./maps/special_fields.ts";
import type { BpfCallbacks } from "./graph/callback.ts";
import { type BpfTimer, type BpfTimers, timersOf } from "./timer_helpers.ts";

/**
 * Runs the callbacks of `kernel`'s timers due at `nowNs` (expiry ≤ now),
 * earliest first, as `bpf_timer_cb()` does in softirq context: each timer
 * is disarmed, then its callback — if one is still set — is called as
 * `callback(map, key, value)` from `caller` (a state of the CPU the timer
 * fires on: its address space, helpers and owner). A callback that re-arms
 * its timer for a time already due does not run again in this call. With
 * `canFire`, a timer whose CPU cannot take the softirq now (interrupts
 * off) stays due. Returns the number of callbacks run.
 */
export function fireDueTimers(
  kernel: Kernel,
  nowNs: number,
  caller: (cpu: number, timer: BpfTimer) => CallContext,
  canFire: (cpu: number) => boolean = () => true,
): number {
  const timers = timersOf(kernel);
  let fired = 0;
  const outer = timers.firingAt;
  timers.firingAt = nowNs;
  try {
    fired = fireEach(timers, nowNs, caller, canFire);
  } finally {
    timers.firingAt = outer;
  }
  return fired;
}

/** The loop of {@link fireDueTimers}. */
function fireEach(
  timers: BpfTimers,
  nowNs: number,
  caller: (cpu: number, timer: BpfTimer) => CallContext,
  canFire: (cpu: number) => boolean,
): number {
  let fired = 0;
  for (const t of timers.due(nowNs)) {
    if (timers.timers.get(t.hrtimer) !== t || t.expires === null) continue;
    if (t.expires > BigInt(nowNs)) continue; // re-armed by an earlier callback
    if (!claimDue(timers, t, canFire)) continue;
    const vm = caller(t.cpu, t);
    const key = timerKey(vm, t);
    timers.running.set(t.cpu, t);
    try {
      t.prog.call(vm, t.callbackFn, [t.mapAddr, key.addr, t.value, 0n, 0n]);
      fired++;
    } finally {
      timers.running.delete(t.cpu);
      vm.mem.unmapRegion(key.addr);
    }
  }
  return fired;
}

/**
 * Disarms and returns the timers of `kernel` due at `nowNs` whose CPUs can
 * take them now (`canFire`), earliest first, for their callbacks to run as
 * softirqs on those CPUs (see timer_softirq.ts); a due timer whose CPU has
 * interrupts off stays due. Timers without a callback are just disarmed.
 */
export function takeDueTimers(
  kernel: Kernel,
  nowNs: number,
  canFire: (cpu: number) => boolean,
): BpfTimer[] {
  const timers = timersOf(kernel);
  const out: BpfTimer[] = [];
  const busy = new Set<number>(); // one softirq per CPU at a time
  for (const t of timers.due(nowNs)) {
    if (busy.has(t.cpu) || timers.running.has(t.cpu)) continue;
    if (!claimDue(timers, t, canFire)) continue;
    busy.add(t.cpu);
    out.push(t);
  }
  return out;
}

/**
 * Takes due timer `t` as `hrtimer_run_softirq()` does: if its CPU cannot
 * take the softirq now (interrupts off) it stays due, counted once as
 * deferred; otherwise it is disarmed. True when a callback is to run.
 */
function claimDue(
  timers: BpfTimers,
  t: BpfTimer,
  canFire: (cpu: number) => boolean,
): t is BpfTimer & { prog: BpfCallbacks } {
  if (!canFire(t.cpu)) {
    if (!t.deferred) timers.deferrals++;
    t.deferred = true;
    return false;
  }
  t.expires = null;
  return t.prog !== null && t.callbackFn !== 0n;
}

/**
 * The key `bpf_timer_cb()` hands over: for an array the element's index
 * (`(value - array->value) / elem_size`), for a hash the element's key;
 * mapped read-only for the call.
 */
export function timerKey(
  vm: { mem: CallContext["mem"] },
  t: BpfTimer,
): { addr: bigint } {
  const map = t.map;
  let key: Uint8Array | undefined;
  if (map instanceof ArrayMap) {
    const base = map.lookup(u32Key(0), 0)!;
    key = u32Key(
      Number((t.value - base) / BigInt(roundUp8(map.attr.valueSize))),
    );
  } else if (map instanceof HashMap) {
    const table = map.table;
    for (let e = table.first; e !== null && key === undefined; e = e.next) {
      if (e.mem.addrs.includes(t.value)) key = e.key;
    }
  }
  if (key === undefined) {
    throw new ExecError(
      -1,
      `timer of map ${map.attr.name}: its element is gone`,
    );
  }
  const addr = vm.mem.mapRegion("map_key", key.slice(), {
    name: `${map.attr.name} timer key`,
    write: false,
  });
  return { addr };
}

/**
 * A {@link FieldFreer} that handles `bpf_timer` fields with
 * {@link BpfTimers.cancelAndFree} and passes everything else to `inner`:
 * what a loader must give the maps of an object using timers, so that
 * overwriting or deleting a map value frees its timer.
 */
export function timerFieldFreer(kernel: Kernel, inner: FieldFreer): FieldFreer {
  return {
    dropKptr: (p, f) => inner.dropKptr(p, f),
    drainList: (h, f, l) => inner.drainList(h, f, l),
    drainRbRoot: (r, f, l) => inner.drainRbRoot(r, f, l),
    cancelAndFree(addr: bigint, pointer: bigint, field: BtfField): void {
      if (field.type !== BPF_TIMER) {
        inner.cancelAndFree(addr, pointer, field);
        return;
      }
      timersOf(kernel).cancelAndFree(kernel.space, pointer);
    },
  };
}
