/**
 * Runtime of the helpers the simulated kernel itself provides: CPU id,
 * time, random numbers (all deterministic) and spin locks with contention
 * and self-deadlock detection.
 * @module
 */
import type { CallContext, HelperFn } from "../exec/state.ts";
import { formatAddress } from "../exec/fault.ts";
import type { Cpu } from "./cpu.ts";
import type { Prng } from "./prng.ts";
import type { SpinLocks } from "./spin_lock.ts";
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

const addressTexts = new Map<bigint, string>();

/** The hex text of a lock address, cached: the same few locks are traced again and again. */
function addressText(addr: bigint): string {
  let text = addressTexts.get(addr);
  if (text === undefined) {
    text = formatAddress(addr);
    if (addressTexts.size < 4096) addressTexts.set(addr, text);
  }
  return text;
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
  const addr = vm.arg(1);
  const prog = progName(owner);
  const cpu = owner.cpu.id;
  const insn = vm.insnIndex;
  const context = owner.cpu.contexts[owner.level];
  const result = host.locks.lock(vm.mem, addr, {
    cpu,
    level: owner.level,
    prog,
    insn,
  });
  if (result.kind === "acquired") {
    if (context) context.spinning = false;
    host.emit("lock_acquire", cpu, prog, insn, addressText(addr));
    return 0;
  }
  if (result.kind === "contended") {
    if (context && !context.spinning) {
      context.spinning = true;
      const detail = `held by CPU ${result.holder.cpu}`;
      host.emit("lock_contend", cpu, prog, insn, addressText(addr), detail);
    }
    vm.block();
    return;
  }
  const h = result.holder;
  const where = addressText(addr);
  const message =
    `deadlock: CPU ${cpu} ${owner.level > 0 ? "in NMI " : ""}program ${prog} ` +
    `insn ${insn} spins on lock ${where}, which CPU ${h.cpu} already holds at level ` +
    `${h.level} (program ${h.prog}, insn ${h.insn}) — the holder cannot run again until ` +
    `this context returns`;
  host.emit("deadlock", cpu, prog, insn, where, message);
  host.report(owner.cpu, message);
  vm.block();
}

function spinUnlock(host: HelperHost, vm: CallContext): number {
  const owner = ownerOf(vm);
  const addr = vm.arg(1);
  const prog = progName(owner);
  const result = host.locks.unlock(vm.mem, addr, {
    cpu: owner.cpu.id,
    level: owner.level,
  });
  const where = addressText(addr);
  if (result.kind === "released") {
    host.emit("lock_release", owner.cpu.id, prog, vm.insnIndex, where);
  } else {
    const message = result.kind === "not_held"
      ? `bad unlock: lock ${where} is not held (program ${prog} insn ${vm.insnIndex})`
      : `bad unlock: lock ${where} is held by CPU ${result.holder.cpu} level ${result.holder.level}`;
    host.report(owner.cpu, message);
  }
  return 0;
}
