/**
 * The timer softirq of the simulated kernel: when the scheduler's clock
 * passes a BPF timer's expiry, its callback runs on the CPU that armed it
 * (`hrtimer_run_softirq()` → `bpf_timer_cb()`), at a pick boundary, as an
 * interrupt of whatever that CPU runs — unless the CPU has interrupts off
 * (it holds or spins on a `bpf_spin_lock`, taken with irqsave, or it is in
 * an NMI): then the timer stays due until it can take it. The callback
 * runs to completion at once, with the object's helpers, one context level
 * above what its CPU runs (a softirq, not an NMI); the trace shows a
 * `timer` event.
 * @module
 */
import { formatAddress } from "../exec/fault.ts";
import { compileProgram } from "../exec/compile.ts";
import { ExecState, type HelperFn } from "../exec/state.ts";
import type { StateOwner } from "./helpers.ts";
import type { Kernel, ProgramRuntime } from "./kernel.ts";
import type { BpfCallbacks } from "./graph/callback.ts";
import { fireDueTimers } from "./timer_fire.ts";
import type { BpfTimer } from "./timer_helpers.ts";
import { timersOf } from "./timer_helpers.ts";

/**
 * Fires the timers of `kernel` due at `now` whose CPUs can take them, and
 * returns the next expiry after `now` (the scheduler stops its runs there),
 * or undefined when no timer is armed for later.
 */
export function serviceTimers(kernel: Kernel, now: number): number | undefined {
  const timers = timersOf(kernel);
  if (timers.timers.size === 0) return undefined;
  const first = timers.nextExpiry();
  if (first !== null && first <= BigInt(now)) {
    fireDueTimers(
      kernel,
      now,
      (cpu, timer) => softirqState(kernel, cpu, timer),
      (cpu) => canTakeSoftirq(kernel, cpu),
    );
  }
  const next = timers.nextExpiry(BigInt(now));
  return next === null ? undefined : Number(next);
}

/** Whether CPU `id` has interrupts on: not in an NMI, holding no lock, not spinning. */
function canTakeSoftirq(kernel: Kernel, id: number): boolean {
  const cpu = kernel.cpus[id];
  if (cpu === undefined || cpu.deadlocked) return false;
  const top = cpu.top;
  if (top === undefined) return true;
  return top.level === 0 && !top.spinning && !kernel.locks.holdsAny(id, 0);
}

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

/** An empty program: the softirq context's state only lends its tables. */
const NO_PROGRAM = compileProgram([]);

/** Softirq states by kernel, CPU and object runtime. */
const STATES = new WeakMap<Kernel, Map<string, ExecState>>();
/** Numbers for runtimes, to key {@link STATES}. */
const RUNTIME_IDS = new WeakMap<ProgramRuntime, number>();
let nextRuntimeId = 1;

/**
 * The state `timer`'s callback is called from on `cpu`: the object's
 * helpers and kfuncs, the CPU at level 1, the kernel's clock; the event is
 * traced as the callback starts.
 */
function softirqState(kernel: Kernel, cpu: number, timer: BpfTimer): ExecState {
  const runtime = timer.prog === null
    ? undefined
    : CALLBACK_RUNTIMES.get(timer.prog);
  let states = STATES.get(kernel);
  if (states === undefined) STATES.set(kernel, states = new Map());
  let rid = 0;
  if (runtime !== undefined) {
    rid = RUNTIME_IDS.get(runtime) ?? 0;
    if (rid === 0) RUNTIME_IDS.set(runtime, rid = nextRuntimeId++);
  }
  // the callback interrupts whatever runs on the CPU: one level above it
  const level = kernel.cpus[cpu].contexts.length;
  const key = `${cpu}/${level}/${rid}`;
  let state = states.get(key);
  if (state === undefined) {
    const helpers = new Map<number, HelperFn>(kernel.helpers);
    for (const [id, fn] of runtime?.helpers ?? []) helpers.set(id, fn);
    const owner: StateOwner = { cpu: kernel.cpus[cpu], level, softirq: true };
    state = new ExecState(NO_PROGRAM, kernel.space, {
      helpers,
      kfuncs: runtime?.kfuncs,
      owner,
      name: `cpu${cpu}.softirq.stack`,
      clock: () => kernel.now(),
    });
    states.set(key, state);
  }
  kernel.trace.record(
    kernel.now(),
    cpu,
    "timer",
    "bpf_timer_cb",
    undefined,
    formatAddress(timer.field),
    `callback 0x${timer.callbackFn.toString(16)}`,
  );
  return state;
}
