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
import { compileProgram } from "../exec/compile.ts";
import { AddressSpace } from "../exec/memory.ts";
import type { HelperFn } from "../exec/state.ts";
import { type Engine, picksWith, stepWith } from "../exec/jit/step_jit.ts";
import type { Insn } from "../isa/insn.ts";
import { Cpu, type Invocation } from "./cpu.ts";
import {
  type ContextHost,
  pushContext,
  type TimerOutlook,
} from "./contexts.ts";
import { Scheduler } from "./scheduler.ts";
import { kernelHelpers } from "./helpers.ts";
import { type BpfMemAlloc, bpfMemAllocInit } from "./mem_alloc.ts";
import { RcuState } from "./rcu.ts";
import { Prng } from "./prng.ts";
import { SpinLocks } from "./spin_lock.ts";
import { Trace } from "./trace.ts";
import { leakReports } from "./sanitizer.ts";
import type {
  KernelOptions,
  LoadedProgram,
  RunSummary,
} from "./kernel_types.ts";

export type {
  KernelOptions,
  LoadedProgram,
  ProgramRuntime,
  RunSummary,
} from "./kernel_types.ts";

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
  /** Whether loaded objects' programs are verified before they run. */
  readonly verify: boolean;
  /** The engine programs (and their callbacks) run on. */
  readonly engine: Engine;
  private ma: BpfMemAlloc | undefined;
  /** The kernel's own helpers (and those its options add), by id. */
  readonly helpers: Map<number, HelperFn>;
  /** What starting and ending contexts needs of this kernel. */
  private readonly host: ContextHost & { ma: BpfMemAlloc | undefined };
  /** The interleaving of the CPUs, and the clock. */
  private readonly scheduler: Scheduler;

  /** A kernel with idle CPUs. */
  constructor(options: KernelOptions = {}) {
    const n = options.cpus ?? 1;
    if (!Number.isInteger(n) || n < 1 || n > 64) {
      throw new RangeError(`cpus: 1 … 64, got ${n}`);
    }
    this.cpus = Array.from({ length: n }, (_, i) => new Cpu(i));
    this.prng = new Prng(options.seed ?? 0);
    this.trace = new Trace(options.keepTrace ?? true);
    this.rcu = new RcuState(n);
    this.engine = options.engine ?? "interp";
    this.verify = options.verify ?? true;
    this.helpers = kernelHelpers({
      prng: this.prng,
      locks: this.locks,
      now: () => this.now(),
      emit: (ev, cpu, prog, insn, addr, detail) =>
        this.trace.record(this.now(), cpu, ev, prog, insn, addr, detail),
      report: (cpu, message) => {
        this.reports.push(message);
        if (message.startsWith("deadlock")) {
          cpu.deadlocked = true;
          this.scheduler.invalidate();
        }
      },
    });
    for (const [id, fn] of options.helpers ?? []) this.helpers.set(id, fn);
    // `ma` is a plain field, set with `globalMa`: the scheduler reads it
    // at every pick, where a getter would be a call
    this.host = {
      space: this.space,
      helpers: this.helpers,
      trace: this.trace,
      locks: this.locks,
      rcu: this.rcu,
      reports: this.reports,
      ma: undefined,
      now: () => this.now(),
    };
    const maxQuantum = Math.max(1, options.maxQuantum ?? 16);
    this.scheduler = new Scheduler({
      cpus: this.cpus,
      prng: this.prng,
      maxQuantum,
      schedule: options.schedule ?? [],
      step: stepWith(this.engine),
      runPicks: picksWith(this.engine, maxQuantum),
      pickRuns: options.pickRuns,
      host: this.host,
    });
  }

  /**
   * `bpf_global_ma`: the allocator behind `bpf_obj_new`, created on first
   * use. Its deferred refills (irq_work) run on a CPU when a task-level
   * program ends there, the next point where the CPU has interrupts on.
   */
  get globalMa(): BpfMemAlloc {
    if (this.ma === undefined) {
      this.ma = bpfMemAllocInit({
        space: this.space,
        rcu: this.rcu,
        name: "bpf_global_ma",
      }, 0);
      this.ma.onIrqWork = () => this.scheduler.invalidate();
      this.host.ma = this.ma;
    }
    return this.ma;
  }

  /**
   * The end-of-run leak check: drives RCU until every deferred free is
   * done, then reports (in {@link reports}, and returns) each object of
   * `bpf_global_ma` still allocated, with its allocation site. Call it
   * once the maps that may own objects are destroyed.
   */
  checkLeaks(): string[] {
    if (this.ma === undefined) return [];
    this.rcu.barrier();
    const leaks = leakReports(this.ma);
    this.reports.push(...leaks);
    return leaks;
  }

  /** Simulated time in ns: one per scheduler step. */
  now(): number {
    return this.scheduler.now();
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
    this.scheduler.invalidate();
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
    this.scheduler.invalidate();
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
      const context = pushContext(
        this.host,
        target,
        invocation,
        target.contexts.length,
        "nmi_enter",
      );
      const status = this.scheduler.runNested(target, context);
      if (status === "blocked") {
        this.reports.push(
          `${prog.name}: blocked inside an NMI that interrupted the allocator`,
        );
        target.deadlocked = true;
      }
    });
  }

  /**
   * Runs `invocation` on `cpu` as a softirq — a BPF timer's callback — one
   * context level above what runs there, from the next pick of that CPU.
   */
  raiseSoftirq(cpu: number, invocation: Invocation): void {
    const target = this.cpuAt(cpu);
    pushContext(this.host, target, invocation, target.contexts.length, "timer");
    this.scheduler.invalidate();
  }

  /**
   * Lets BPF timers fire: `service(now)` runs the callbacks due at `now`
   * and returns the next expiry, where the scheduler stops its runs (the
   * loader of objects whose programs may arm timers installs it).
   */
  enableTimers(service: (now: number) => TimerOutlook): void {
    this.host.serviceTimers = service;
  }

  /** Runs until every CPU is idle or stuck, or `maxSteps` scheduler steps pass. */
  run(options: { maxSteps?: number } = {}): RunSummary {
    const { steps, picks, outcome } = this.scheduler.run(
      options.maxSteps ?? 100_000_000,
    );
    return { steps, picks, outcome, reports: [...this.reports] };
  }

  /** The CPU with number `id`, or a RangeError. */
  private cpuAt(id: number): Cpu {
    const cpu = this.cpus[id];
    if (cpu === undefined) {
      throw new RangeError(`no CPU ${id} (the kernel has ${this.cpus.length})`);
    }
    return cpu;
  }
}
