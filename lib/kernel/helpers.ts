/**
 * Runtime of the helpers the simulated kernel itself provides: CPU id,
 * time, random numbers (all deterministic) and spin locks with contention
 * and self-deadlock detection.
 * @module
 */
import type { CallContext, HelperFn } from "../exec/state.ts";
import type { Cpu } from "./cpu.ts";
import type { Prng } from "./prng.ts";
import {
  LOCK_ACQUIRED,
  LOCK_CONTENDED,
  type LockHolder,
  type SpinLocks,
  UNLOCK_RELEASED,
} from "./spin_lock.ts";
import type { TraceKind } from "./trace.ts";

/** Helper ids (include/uapi/linux/bpf.h). */
export const HELPER = {
  ktime_get_ns: 5,
  get_prandom_u32: 7,
  get_smp_processor_id: 8,
  spin_lock: 93,
  spin_unlock: 94,
} as const;

/** What an execution state's `owner` is inside the simulated kernel. */
export interface StateOwner {
  /** The CPU running the state. */
  readonly cpu: Cpu;
  /** Its context level (0 task, 1 NMI). */
  readonly level: number;
  /**
   * Runs alone to completion (BPF_PROG_TEST_RUN): no other CPU can run in
   * the middle of one of its helper calls.
   */
  readonly alone?: boolean;
  /**
   * Runs a timer callback in softirq context (`timer_softirq.ts`): above
   * the CPU's running contexts, but not an NMI.
   */
  softirq?: boolean;
}

/** What the helpers need from the kernel. */
export interface HelperHost {
  /** The kernel's generator (for bpf_get_prandom_u32). */
  readonly prng: Prng;
  /** The spin locks. */
  readonly locks: SpinLocks;
  /** Simulated time in ns. */
  now(): number;
  /** Records a trace event stamped with the current time (positional: no object spreads on the hot path). */
  emit(
    ev: TraceKind,
    cpu: number,
    prog?: string,
    insn?: number,
    addr?: string,
    detail?: string,
  ): void;
  /** Reports a bug the sanitizer found (deadlock, bad unlock) on a CPU. */
  report(cpu: Cpu, message: string): void;
}

function ownerOf(vm: CallContext): StateOwner {
  return vm.owner as StateOwner;
}

function progName(owner: StateOwner): string {
  return owner.cpu.contexts[owner.level]?.invocation.name ?? "?";
}

/** The kernel's built-in helpers, by id. */
export function kernelHelpers(host: HelperHost): Map<number, HelperFn> {
  return new Map<number, HelperFn>([
    [HELPER.ktime_get_ns, () => host.now()],
    [HELPER.get_prandom_u32, () => host.prng.nextU32()],
    [HELPER.get_smp_processor_id, (vm) => ownerOf(vm).cpu.id],
    [HELPER.spin_lock, (vm) => spinLock(host, vm)],
    [HELPER.spin_unlock, (vm) => spinUnlock(host, vm)],
  ]);
}

function spinLock(host: HelperHost, vm: CallContext): number | void {
  const owner = ownerOf(vm);
  const cpu = owner.cpu;
  const level = owner.level;
  const context = cpu.contexts[level];
  const prog = context?.invocation.name ?? "?";
  const insn = vm.insnIndex;
  const lo = vm.argLo(1), hi = vm.argHi(1);
  const locks = host.locks;
  const code = locks.tryLock(vm.mem, lo, hi, cpu.id, level, prog, insn);
  if (code === LOCK_ACQUIRED) {
    if (context) context.spinning = false;
    host.emit("lock_acquire", cpu.id, prog, insn, locks.textOf(lo, hi));
    return 0;
  }
  const h = locks.conflict as LockHolder;
  if (code === LOCK_CONTENDED) {
    if (context && !context.spinning) {
      context.spinning = true;
      context.spinningOn = locks.stateOf(lo, hi);
      const detail = heldByText(h.cpu);
      const where = locks.textOf(lo, hi);
      host.emit("lock_contend", cpu.id, prog, insn, where, detail);
    }
    vm.block();
    return;
  }
  const where = locks.textOf(lo, hi);
  const message =
    `deadlock: CPU ${cpu.id} ${level > 0 ? "in NMI " : ""}program ${prog} ` +
    `insn ${insn} spins on lock ${where}, which CPU ${h.cpu} already holds at level ` +
    `${h.level} (program ${h.prog}, insn ${h.insn}) — the holder cannot run again until ` +
    `this context returns`;
  host.emit("deadlock", cpu.id, prog, insn, where, message);
  host.report(cpu, message);
  vm.block();
}

const heldByTexts: string[] = [];

/** `held by CPU n`, built once per CPU: contention is traced often. */
function heldByText(cpu: number): string {
  return heldByTexts[cpu] ??= `held by CPU ${cpu}`;
}

function spinUnlock(host: HelperHost, vm: CallContext): number {
  const owner = ownerOf(vm);
  const cpu = owner.cpu;
  const prog = progName(owner);
  const locks = host.locks;
  const lo = vm.argLo(1), hi = vm.argHi(1);
  const code = locks.release(vm.mem, lo, hi, cpu.id, owner.level);
  const where = locks.textOf(lo, hi);
  if (code === UNLOCK_RELEASED) {
    host.emit("lock_release", cpu.id, prog, vm.insnIndex, where);
  } else {
    const h = locks.conflict;
    const message = h === undefined
      ? `bad unlock: lock ${where} is not held (program ${prog} insn ${vm.insnIndex})`
      : `bad unlock: lock ${where} is held by CPU ${h.cpu} level ${h.level}`;
    host.report(cpu, message);
  }
  return 0;
}
