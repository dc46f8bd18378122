/**
 * The simulated kernel: CPUs, one address space, a seeded scheduler that
 * interleaves the CPUs at instruction granularity, NMI injection, spin locks
 * and a trace. Programs are queued on CPUs; `run` advances the world until
 * every CPU is idle (or stuck), deterministically for a given seed.
 *
 * @example
 * ```ts
 * import { Kernel } from "./kernel.ts";
 * import { assemble } from "../isa/asm.ts";
 * const k = new Kernel({ cpus: 2, seed: 7 });
 * const p = k.load("id", assemble("call 8\nexit"));
 * k.submit(1, p);
 * k.run(); // k.trace.events: prog_start, prog_exit with r0 = 1
 * ```
 * @module
 */
import { type CompiledProgram, compileProgram } from "../exec/compile.ts";
import { AddressSpace } from "../exec/memory.ts";
import { ExecState, type HelperFn, type KfuncFn } from "../exec/state.ts";
import { type Engine, stepWith } from "../exec/jit/step_jit.ts";
import type { Insn } from "../isa/insn.ts";
import {
  Cpu,
  type Invocation,
  type PendingNmi,
  type RunningContext,
} from "./cpu.ts";
import { kernelHelpers, type StateOwner } from "./helpers.ts";
import { type BpfMemAlloc, bpfMemAllocInit } from "./mem_alloc.ts";
import { RcuState } from "./rcu.ts";
import { Prng } from "./prng.ts";
import { SpinLocks } from "./spin_lock.ts";
import { Trace, type TraceEvent } from "./trace.ts";

/** Options of a {@link Kernel}. */
export interface KernelOptions {
  /** Number of CPUs (default 1). */
  readonly cpus?: number;
  /** Seed of every choice the kernel makes (default 0). */
  readonly seed?: number;
  /** Longest run of instructions a CPU gets before the scheduler picks again (default 4). */
  readonly maxQuantum?: number;
  /** Explicit schedule: CPU ids in turn, one instruction each; then seeded choice. */
  readonly schedule?: readonly number[];
  /** Keep trace events in memory (default true); false only hashes them. */
  readonly keepTrace?: boolean;
  /** More helpers, by id (added to the kernel's own). */
  readonly helpers?: ReadonlyMap<number, HelperFn>;
  /**
   * What executes programs: `interp` (default) or `jit`. Both give the same
   * results and the same interleaving for a seed; the JIT pays off with
   * longer quanta (`maxQuantum` ≥ 64).
   */
  readonly engine?: Engine;
}

/** A program ready to run on the kernel. */
export interface LoadedProgram {
  /** Name shown in the trace. */
  readonly name: string;
  /** Its compiled form. */
  readonly program: CompiledProgram;
  /**
   * Helpers and kfuncs this program gets beyond the kernel's own (map
   * helpers of its object, the graph kfuncs …); one object shared by the
   * programs of an object, so their CPUs keep one execution state for it.
   */
  readonly runtime?: ProgramRuntime;
}

/** Helper and kfunc tables of a loaded object's programs. */
export interface ProgramRuntime {
  /** Helpers by id (override the kernel's). */
  readonly helpers: ReadonlyMap<number, HelperFn>;
  /** Kfuncs by BTF id. */
  readonly kfuncs: ReadonlyMap<number, KfuncFn>;
}

/** How a call to {@link Kernel.run} ended. */
export interface RunSummary {
  /** Scheduler steps taken (instructions retired plus steps spent spinning). */
  readonly steps: number;
  /** `idle`: all work done; `hung`: every CPU left is deadlocked or spins forever; `limit`. */
  readonly outcome: "idle" | "hung" | "limit";
  /** Problems found (deadlocks, bad unlocks, faults). */
  readonly reports: readonly string[];
}

/** The simulated kernel. */
export class Kernel {
  /** The CPUs. */
  readonly cpus: readonly Cpu[];
  /** The address space every program and map lives in. */
  readonly space: AddressSpace = new AddressSpace();
  /** Everything that happened. */
  readonly trace: Trace;
  /** The kernel's spin locks. */
  readonly locks: SpinLocks = new SpinLocks();
  /** The seeded generator behind every choice. */
  readonly prng: Prng;
  /** Problems found so far. */
  readonly reports: string[] = [];
  /** RCU: a CPU passes a quiescent state whenever a task-level program ends on it. */
  readonly rcu: RcuState;
  private ma: BpfMemAlloc | undefined;
  private readonly helpers: Map<number, HelperFn>;
  private readonly maxQuantum: number;
  private readonly step: ReturnType<typeof stepWith>;
  private readonly schedule: readonly number[];
  private scheduleAt = 0;
  private clock = 0;
  private running: { cpu: Cpu; state: ExecState; base: number } | undefined;

  /** A kernel with idle CPUs. */
  constructor(options: KernelOptions = {}) {
    const n = options.cpus ?? 1;
    if (!Number.isInteger(n) || n < 1 || n > 64) {
      throw new RangeError(`cpus: 1 … 64, got ${n}`);
    }
    this.cpus = Array.from({ length: n }, (_, i) => new Cpu(i));
    this.prng = new Prng(options.seed ?? 0);
    this.trace = new Trace(options.keepTrace ?? true);
    this.maxQuantum = Math.max(1, options.maxQuantum ?? 4);
    this.rcu = new RcuState(n);
    this.step = stepWith(options.engine ?? "interp");
    this.schedule = options.schedule ?? [];
    this.helpers = kernelHelpers({
      prng: this.prng,
      locks: this.locks,
      now: () => this.now(),
      emit: (ev, cpu, prog, insn, addr, detail) =>
        this.trace.emit({ t: this.now(), cpu, ev, prog, insn, addr, detail }),
      report: (cpu, message) => {
        this.reports.push(message);
        if (message.startsWith("deadlock")) cpu.deadlocked = true;
      },
    });
    for (const [id, fn] of options.helpers ?? []) this.helpers.set(id, fn);
  }

  /**
   * `bpf_global_ma`: the allocator behind `bpf_obj_new`, created on first
   * use. Its deferred refills (irq_work) run on a CPU when a task-level
   * program ends there, the next point where the CPU has interrupts on.
   */
  get globalMa(): BpfMemAlloc {
    this.ma ??= bpfMemAllocInit({
      space: this.space,
      rcu: this.rcu,
      name: "bpf_global_ma",
    }, 0);
    return this.ma;
  }

  /** Simulated time in ns: one per scheduler step. */
  now(): number {
    const r = this.running;
    return r === undefined ? this.clock : r.base + r.state.steps;
  }

  /** Compiles a program for this kernel. */
  load(name: string, insns: readonly Insn[]): LoadedProgram {
    return { name, program: compileProgram(insns) };
  }

  /** Queues `prog` to run on `cpu` at task level, with r1 = `options.r1`. */
  submit(
    cpu: number,
    prog: LoadedProgram,
    options: { r1?: bigint; onExit?: (r0: bigint) => void } = {},
  ): void {
    this.cpuAt(cpu).queue.push({
      name: prog.name,
      program: prog.program,
      runtime: prog.runtime,
      ...options,
    });
  }

  /**
   * Arranges an NMI on `cpu` running `prog`: when the program running there
   * reaches slot `atInsn`, or at any instruction with `probability`.
   */
  injectNmi(
    cpu: number,
    prog: LoadedProgram,
    when: { atInsn?: number; probability?: number; r1?: bigint },
  ): void {
    const invocation: Invocation = {
      name: prog.name,
      program: prog.program,
      runtime: prog.runtime,
      r1: when.r1,
    };
    this.cpuAt(cpu).nmis.push({
      invocation,
      atInsn: when.atInsn,
      probability: when.probability,
    });
  }

  /**
   * Arranges an NMI on `cpu` at the worst moment for the allocator: the
   * next time a program on that CPU is inside `bpf_mem_alloc` (its cache's
   * `active` counter held), `prog` runs there as an NMI, to completion,
   * before the interrupted allocation finishes — so its own allocations
   * find the cache busy and get NULL, as in the kernel.
   */
  injectNmiInAllocator(
    cpu: number,
    prog: LoadedProgram,
    options: { r1?: bigint } = {},
  ): void {
    const target = this.cpuAt(cpu);
    let fired = false;
    this.globalMa.onActive((c, _cache, op) => {
      if (
        fired || c !== cpu || op !== "alloc" || target.contexts.length === 0
      ) return;
      fired = true;
      const invocation: Invocation = {
        name: prog.name,
        program: prog.program,
        runtime: prog.runtime,
        r1: options.r1,
      };
      const context = this.push(
        target,
        invocation,
        target.contexts.length,
        "nmi_enter",
      );
      const outer = this.running;
      const before = context.state.steps;
      this.running = {
        cpu: target,
        state: context.state,
        base: this.now() - before,
      };
      let status = this.step(context.state, 1 << 16);
      while (status === "running") status = this.step(context.state, 1 << 16);
      const retired = context.state.steps - before;
      target.retired += retired;
      this.clock += retired;
      this.running = outer === undefined
        ? undefined
        : { ...outer, base: outer.base + retired };
      if (status === "blocked") {
        this.reports.push(
          `${prog.name}: blocked inside an NMI that interrupted the allocator`,
        );
        target.deadlocked = true;
        return;
      }
      this.finish(target, context, status);
    });
  }

  /** Runs until every CPU is idle or stuck, or `maxSteps` scheduler steps pass. */
  run(options: { maxSteps?: number } = {}): RunSummary {
    const limit = this.clock + (options.maxSteps ?? 100_000_000);
    let outcome: RunSummary["outcome"] = "idle";
    const start = this.clock;
    for (;;) {
      const runnable = this.cpus.filter((c) => c.runnable);
      if (runnable.length === 0) break;
      if (
        runnable.every((c) => c.top?.spinning) && this.noneProgresses(runnable)
      ) {
        outcome = "hung";
        this.reports.push(
          `hung: CPUs ${
            runnable.map((c) => c.id).join(", ")
          } spin on locks that are never released`,
        );
        break;
      }
      if (this.clock >= limit) {
        outcome = "limit";
        break;
      }
      const explicit = this.scheduleAt < this.schedule.length;
      const cpu = this.pick(runnable);
      const quantum = explicit ? 1 : 1 + this.prng.below(this.maxQuantum);
      this.runCpu(cpu, Math.min(quantum, limit - this.clock));
    }
    return { steps: this.clock - start, outcome, reports: [...this.reports] };
  }

  /** Gives every spinning CPU one retry; true when none of them got anywhere. */
  private noneProgresses(spinning: Cpu[]): boolean {
    const before = spinning.map((c) => c.retired);
    for (const c of spinning) this.runCpu(c, 1);
    return spinning.every((c, i) =>
      c.retired === before[i] && c.top?.spinning === true
    );
  }

  /** The CPU with number `id`, or a RangeError. */
  private cpuAt(id: number): Cpu {
    const cpu = this.cpus[id];
    if (cpu === undefined) {
      throw new RangeError(`no CPU ${id} (the kernel has ${this.cpus.length})`);
    }
    return cpu;
  }

  /** The CPU to run next: the explicit schedule first, then the seeded choice. */
  private pick(runnable: Cpu[]): Cpu {
    while (this.scheduleAt < this.schedule.length) {
      const id = this.schedule[this.scheduleAt++];
      const cpu = runnable.find((c) => c.id === id);
      if (cpu !== undefined) return cpu;
    }
    return runnable[this.prng.below(runnable.length)];
  }

  /** Records a trace event stamped with the current time. */
  private emit(event: Omit<TraceEvent, "t">): void {
    this.trace.emit({ t: this.now(), ...event });
  }

  /** Runs up to `quantum` steps on `cpu`, one instruction at a time while an NMI may strike. */
  private runCpu(cpu: Cpu, quantum: number): void {
    let left = quantum;
    while (left > 0 && !cpu.deadlocked) {
      const top = cpu.top ?? this.start(cpu);
      if (top === undefined) return;
      this.irqWorkIfEnabled(cpu, top);
      const nmi = this.dueNmi(cpu, top);
      const current = nmi === undefined ? top : this.enterNmi(cpu, nmi);
      const budget = cpu.nmis.length > 0 ? 1 : left;
      const before = current.state.steps;
      this.running = { cpu, state: current.state, base: this.clock - before };
      const status = this.step(current.state, budget);
      this.running = undefined;
      const retired = current.state.steps - before;
      cpu.retired += retired;
      this.clock += retired;
      left -= retired;
      if (status === "blocked") {
        cpu.spins++;
        this.clock++;
        return; // spinning burns the rest of this quantum
      }
      if (status === "exited" || status === "faulted") {
        this.finish(cpu, current, status);
      }
    }
  }

  /**
   * Runs the allocator's queued irq_work on `cpu` if interrupts are on
   * there: the kernel raises a self-IPI, so it runs at the next instruction
   * boundary — unless the CPU is in an NMI or holds a bpf_spin_lock (taken
   * with interrupts off).
   */
  private irqWorkIfEnabled(cpu: Cpu, top: RunningContext): void {
    const ma = this.ma;
    if (ma === undefined || top.level > 0 || ma.pendingIrqWork(cpu.id) === 0) {
      return;
    }
    if (this.locks.heldBy(cpu.id, 0).length > 0) return;
    ma.runIrqWork(cpu.id);
  }

  /** Starts the next queued task-level invocation on `cpu`, if any. */
  private start(cpu: Cpu): RunningContext | undefined {
    const invocation = cpu.queue.shift();
    if (invocation === undefined) return undefined;
    return this.push(cpu, invocation, 0, "prog_start");
  }

  /** Starts an invocation at a context level on `cpu`, reusing that level's state. */
  private push(
    cpu: Cpu,
    invocation: Invocation,
    level: number,
    ev: "prog_start" | "nmi_enter",
  ): RunningContext {
    const states = cpu.states[level] ??= new Map();
    const runtime = invocation.runtime as ProgramRuntime | undefined;
    let state = states.get(runtime);
    if (state === undefined) {
      const owner: StateOwner = { cpu, level };
      let helpers: ReadonlyMap<number, HelperFn> = this.helpers;
      if (runtime !== undefined) {
        const merged = new Map(this.helpers);
        for (const [id, fn] of runtime.helpers) merged.set(id, fn);
        helpers = merged;
      }
      // each runtime's state has its own stack regions, named apart
      const n = states.size;
      state = new ExecState(invocation.program, this.space, {
        helpers,
        kfuncs: runtime?.kfuncs,
        owner,
        name: `cpu${cpu.id}.${level === 0 ? "task" : "nmi"}${
          n > 0 ? `#${n}` : ""
        }.stack`,
        clock: () => this.now(),
      });
      states.set(runtime, state);
    } else state.reset(invocation.program);
    if (invocation.r1 !== undefined) state.setReg(1, invocation.r1);
    const context: RunningContext = {
      invocation,
      state,
      level,
      spinning: false,
    };
    cpu.contexts.push(context);
    this.emit({ cpu: cpu.id, ev, prog: invocation.name });
    return context;
  }

  /** The pending NMI that strikes now on `cpu`, if any (removed from the queue). */
  private dueNmi(cpu: Cpu, top: RunningContext): PendingNmi | undefined {
    if (cpu.nmis.length === 0 || top.level > 0) return undefined; // NMIs do not nest
    const index = cpu.nmis.findIndex((n) =>
      n.atInsn !== undefined
        ? n.atInsn === top.state.pc
        : this.prng.chance(n.probability ?? 0)
    );
    return index < 0 ? undefined : cpu.nmis.splice(index, 1)[0];
  }

  /** Pushes an NMI context on top of what runs on `cpu`. */
  private enterNmi(cpu: Cpu, nmi: PendingNmi): RunningContext {
    return this.push(cpu, nmi.invocation, 1, "nmi_enter");
  }

  /** Ends a context that exited or faulted: trace, lock check, pop. */
  private finish(
    cpu: Cpu,
    context: RunningContext,
    status: "exited" | "faulted",
  ): void {
    const { invocation, state, level } = context;
    const where = { cpu: cpu.id, prog: invocation.name };
    if (status === "faulted") {
      const message =
        `${invocation.name} on CPU ${cpu.id}: ${state.error?.message}`;
      this.reports.push(message);
      this.emit({
        ...where,
        ev: "fault",
        insn: state.pc,
        detail: state.error?.message,
      });
    } else {
      for (const [addr, holder] of this.locks.heldBy(cpu.id, level)) {
        this.reports.push(
          `lock 0x${
            addr.toString(16)
          } still held when ${invocation.name} exited on CPU ${cpu.id} ` +
            `(taken at insn ${holder.insn})`,
        );
      }
      this.emit({
        ...where,
        ev: "prog_exit",
        detail: `r0=0x${state.r0.toString(16)}`,
      });
      invocation.onExit?.(state.r0);
    }
    cpu.contexts.pop();
    if (level > 0) this.emit({ ...where, ev: "nmi_exit" });
    else {
      // between two task-level programs the CPU schedules: a quiescent
      // state for RCU, and interrupts are on, so queued irq_work runs
      this.rcu.quiescentState(cpu.id);
      this.ma?.runIrqWork(cpu.id);
    }
  }
}
