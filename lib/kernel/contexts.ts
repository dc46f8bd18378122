/**
 * The life of a running context on a simulated CPU: starting an invocation
 * at a context level (task or NMI) on the execution state that CPU keeps
 * for that level and runtime, and ending it — the trace, the lockdep-style
 * check for locks still held, and what the CPU does between two task-level
 * programs (an RCU quiescent state, queued irq_work).
 * @module
 */
import type { AddressSpace } from "../exec/memory.ts";
import { ExecState, type HelperFn } from "../exec/state.ts";
import type { Cpu, Invocation, PendingNmi, RunningContext } from "./cpu.ts";
import type { Prng } from "./prng.ts";
import type { StateOwner } from "./helpers.ts";
import type { ProgramRuntime } from "./kernel_types.ts";
import type { BpfMemAlloc } from "./mem_alloc.ts";
import type { RcuState } from "./rcu.ts";
import { faultReport } from "./sanitizer.ts";
import type { SpinLocks } from "./spin_lock.ts";
import type { Trace } from "./trace.ts";

/** What starting and ending contexts needs from the kernel. */
export interface ContextHost {
  /** The address space the states' stacks live in. */
  readonly space: AddressSpace;
  /** The kernel's own helpers (a runtime's are merged over them). */
  readonly helpers: ReadonlyMap<number, HelperFn>;
  /** Where program start/exit, NMI enter/exit and faults are recorded. */
  readonly trace: Trace;
  /** The spin locks (a lock still held at exit is reported). */
  readonly locks: SpinLocks;
  /** RCU: a task-level program's end is a quiescent state of its CPU. */
  readonly rcu: RcuState;
  /** Problems found. */
  readonly reports: string[];
  /** `bpf_global_ma`, if created (its irq_work runs between programs). */
  readonly ma: BpfMemAlloc | undefined;
  /** Simulated time. */
  now(): number;
  /**
   * Starts the BPF timers due at `now` whose CPUs can take them (see
   * `timer_softirq.ts`) and tells what is left; unset while no loaded
   * object may arm timers.
   */
  serviceTimers?: (now: number) => TimerOutlook;
}

/** What {@link ContextHost.serviceTimers} leaves: one object, reused. */
export interface TimerOutlook {
  /** The next expiry after now, or undefined. */
  next: number | undefined;
  /** A due timer waits for its CPU to turn interrupts on. */
  waiting: boolean;
}

/**
 * Starts `invocation` at context `level` on `cpu`, reusing the state the
 * CPU keeps for that level and program runtime (created on first use), and
 * records `ev` (`prog_start`, `nmi_enter`, or `timer` for a softirq running
 * a BPF timer's callback).
 */
export function pushContext(
  host: ContextHost,
  cpu: Cpu,
  invocation: Invocation,
  level: number,
  ev: "prog_start" | "nmi_enter" | "timer",
): RunningContext {
  const states = cpu.states[level] ??= new Map();
  const runtime = invocation.runtime as ProgramRuntime | undefined;
  let state = states.get(runtime);
  if (state === undefined) {
    const owner: StateOwner = { cpu, level };
    let helpers: ReadonlyMap<number, HelperFn> = host.helpers;
    if (runtime !== undefined) {
      const merged = new Map(host.helpers);
      for (const [id, fn] of runtime.helpers) merged.set(id, fn);
      helpers = merged;
    }
    // each runtime's state has its own stack regions, named apart
    const n = states.size;
    state = new ExecState(invocation.program, host.space, {
      helpers,
      kfuncs: runtime?.kfuncs,
      owner,
      name: `cpu${cpu.id}.${level === 0 ? "task" : "nmi"}${
        n > 0 ? `#${n}` : ""
      }.stack`,
      clock: () => host.now(),
    });
    states.set(runtime, state);
  } else state.reset(invocation.program);
  const softirq = ev === "timer";
  // one state per level serves NMIs and softirqs alike: say which runs
  (state.owner as { softirq?: boolean }).softirq = softirq;
  if (invocation.entry !== undefined) state.pc = invocation.entry;
  if (invocation.r1 !== undefined) state.setReg(1, invocation.r1);
  invocation.args?.forEach((v, i) => state.setReg(2 + i, v));
  const context: RunningContext = {
    invocation,
    state,
    level,
    softirq,
    spinning: false,
    spinningOn: undefined,
  };
  cpu.contexts.push(context);
  host.trace.emit({ t: host.now(), cpu: cpu.id, ev, prog: invocation.name });
  return context;
}

/** Ends the innermost context of `cpu`, which exited or faulted: trace, lock check, pop. */
export function finishContext(
  host: ContextHost,
  cpu: Cpu,
  context: RunningContext,
  status: "exited" | "faulted",
): void {
  const { invocation, state, level } = context;
  // the events' fields in the order the JSON lines have always had
  const t = () => host.now();
  const where = { cpu: cpu.id, prog: invocation.name };
  const name = invocation.name;
  if (status === "faulted") {
    host.reports.push(
      faultReport(name, cpu.id, state.pc, state.error, host.ma),
    );
    host.trace.emit({
      t: t(),
      ...where,
      ev: "fault",
      insn: state.pc,
      detail: state.error?.message,
    });
  } else {
    for (const [addr, holder] of host.locks.heldBy(cpu.id, level)) {
      host.reports.push(
        `lock 0x${
          addr.toString(16)
        } still held when ${name} exited on CPU ${cpu.id} ` +
          `(taken at insn ${holder.insn})`,
      );
    }
    const r0 = state.r0;
    host.trace.emit({
      t: t(),
      ...where,
      ev: "prog_exit",
      detail: `r0=0x${r0.toString(16)}`,
    });
    invocation.onExit?.(r0);
  }
  cpu.contexts.pop();
  if (level > 0 && !context.softirq) {
    host.trace.emit({ t: t(), ...where, ev: "nmi_exit" });
  } else {
    // between two task-level programs the CPU schedules: a quiescent
    // state for RCU, and interrupts are on, so queued irq_work runs
    host.rcu.quiescentState(cpu.id);
    host.ma?.runIrqWork(cpu.id);
  }
}

/** True when the lock `context` spins on is held by another CPU. */
export function heldElsewhere(cpu: Cpu, context: RunningContext): boolean {
  const lock = context.spinningOn;
  return lock !== undefined && lock.held && lock.cpu !== cpu.id;
}

/**
 * The pending NMI that strikes `cpu` now, running `top`, if any — removed
 * from the CPU's queue; a probabilistic one draws from `prng`.
 */
export function dueNmi(
  cpu: Cpu,
  top: RunningContext,
  prng: Prng,
): PendingNmi | undefined {
  if (cpu.nmis.length === 0 || top.level > 0) return undefined; // NMIs do not nest
  const index = cpu.nmis.findIndex((n) =>
    n.atInsn !== undefined
      ? n.atInsn === top.state.pc
      : prng.chance(n.probability ?? 0)
  );
  return index < 0 ? undefined : cpu.nmis.splice(index, 1)[0];
}
