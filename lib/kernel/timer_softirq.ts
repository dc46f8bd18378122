/**
 * The timer softirq of the simulated kernel: when the scheduler's clock
 * passes a BPF timer's expiry, its callback starts on the CPU that armed it
 * (`hrtimer_run_softirq()` → `bpf_timer_cb()`) as a context one level above
 * what that CPU runs — a softirq, not an NMI — and from there it is
 * scheduled like any context: interleaved with the other CPUs, spinning on
 * a lock another CPU holds. It cannot start while its CPU has interrupts
 * off (holding or spinning on a `bpf_spin_lock`, taken with irqsave, or in
 * an NMI or another softirq): the timer stays due until it can. The trace
 * shows a `timer` event where the callback starts and `prog_exit` where it
 * returns.
 * @module
 */
import type { CompiledProgram } from "../exec/compile.ts";
import type { BpfCallbacks } from "./graph/callback.ts";
import type { TimerOutlook } from "./contexts.ts";
import type { Kernel, ProgramRuntime } from "./kernel.ts";
import { takeDueTimers, timerKey } from "./timer_fire.ts";
import { type BpfTimer, timersOf } from "./timer_helpers.ts";

/** The runtime of the object a callback table belongs to. */
const CALLBACK_RUNTIMES = new WeakMap<BpfCallbacks, ProgramRuntime>();

/**
 * Records that the callbacks of `callbacks` run with `runtime`'s helpers
 * and kfuncs (the loader does, as it readies the object's programs).
 */
export function registerCallbackRuntime(
  callbacks: BpfCallbacks,
  runtime: ProgramRuntime,
): void {
  CALLBACK_RUNTIMES.set(callbacks, runtime);
}

/**
 * Starts the callbacks of the timers of `kernel` due at `now` whose CPUs
 * can take them, and tells the next expiry after `now` (the scheduler stops
 * its runs there) and whether a due timer still waits for its CPU (then
 * the scheduler looks again after every pick).
 */
export function serviceTimers(kernel: Kernel, now: number): TimerOutlook {
  let outlook = OUTLOOKS.get(kernel);
  if (outlook === undefined) {
    OUTLOOKS.set(kernel, outlook = { next: undefined, waiting: false });
  }
  outlook.next = undefined;
  outlook.waiting = false;
  const timers = timersOf(kernel);
  if (timers.timers.size === 0) return outlook;
  const t = BigInt(now);
  const first = timers.nextExpiry();
  if (first !== null && first <= t) {
    const canFire = (cpu: number) => canTakeSoftirq(kernel, cpu);
    for (const d of takeDueTimers(kernel, now, canFire)) {
      startCallback(kernel, d);
    }
    const still = timers.nextExpiry();
    outlook.waiting = still !== null && still <= t;
  }
  const next = timers.nextExpiry(t);
  outlook.next = next === null ? undefined : Number(next);
  return outlook;
}

/** The outlook object of each kernel (reused: the scheduler asks often). */
const OUTLOOKS = new WeakMap<Kernel, TimerOutlook>();

/**
 * Whether CPU `id` has interrupts on: running nothing, or a task-level
 * program that holds no lock and does not spin on one.
 */
function canTakeSoftirq(kernel: Kernel, id: number): boolean {
  const cpu = kernel.cpus[id];
  if (cpu === undefined || cpu.deadlocked) return false;
  const top = cpu.top;
  if (top === undefined) return true;
  return top.level === 0 && !top.spinning && !kernel.locks.holdsAny(id, 0);
}

/**
 * Pushes `t`'s callback on its CPU: `callback(map, key, value)` from the
 * callback's slot in its program's text, with the object's helpers; the
 * key is mapped read-only until the callback returns.
 */
function startCallback(kernel: Kernel, t: BpfTimer): void {
  const callbacks = t.prog as BpfCallbacks;
  const target = callbacks.resolve(t.callbackFn) as {
    prog: CompiledProgram;
    slot: number;
  };
  const key = timerKey({ mem: kernel.space }, t);
  const timers = timersOf(kernel);
  timers.running.set(t.cpu, t);
  kernel.raiseSoftirq(t.cpu, {
    name: "bpf_timer_cb",
    program: target.prog,
    runtime: CALLBACK_RUNTIMES.get(callbacks),
    entry: target.slot,
    r1: t.mapAddr,
    args: [key.addr, t.value],
    onExit: () => {
      timers.running.delete(t.cpu);
      kernel.space.unmapRegion(key.addr);
    },
  });
}
