/**
 * Execution state of one running program — what a CPU holds while it runs
 * BPF: pc, registers, the frame stack with a 512-byte stack region per
 * frame, and a status. It is a plain object the scheduler can park and
 * resume: `step(state, budget)` in `interp.ts` advances it.
 *
 * The state is also the {@link CallContext} handed to helpers and kfuncs.
 * @module
 */
import type { CompiledProgram } from "./compile.ts";
import type { ExecError, MemoryFault } from "./fault.ts";
import { joinU64, numberHi, numberLo } from "./alu64.ts";
import {
  type AddressSpace,
  REGION_BASE_HI,
  regionAddress,
  splitAddress,
} from "./memory.ts";
import { MAX_BPF_STACK } from "../isa/opcodes.ts";

/** Frames of BPF-to-BPF calls, the main program included (kernel `MAX_CALL_FRAMES`). */
export const MAX_CALL_FRAMES = 8;
/** Initial `may_goto` budget of each frame (kernel `BPF_MAX_LOOPS`, 8M). */
export const BPF_MAX_LOOPS: number = 8 * 1024 * 1024;
/** Tail calls allowed per run (kernel `MAX_TAIL_CALL_CNT`). */
export const MAX_TAIL_CALL_CNT = 33;
/** Words saved per frame: r6–r10 as lo/hi pairs, then the return slot. */
export const FRAME_WORDS = 11;

/** Where a program stands after a call to `step`. */
export type ExecStatus = "running" | "exited" | "faulted" | "blocked";

/** What a helper or kfunc sees: the caller's registers and the memory. */
export interface CallContext {
  /** Argument `i` (1–5), i.e. register r`i`, as an unsigned 64-bit bigint. */
  arg(i: number): bigint;
  /** Low 32 bits of argument `i` (int32), for fast helpers. */
  argLo(i: number): number;
  /** High 32 bits of argument `i` (int32). */
  argHi(i: number): number;
  /** Sets r0 (the return value); a helper may instead return it. */
  setR0(value: bigint): void;
  /** Sets r0 from its halves. */
  setR0Parts(lo: number, hi: number): void;
  /** Slot index of the call instruction. */
  readonly insnIndex: number;
  /** Instructions retired so far in this state. */
  readonly steps: number;
  /**
   * Simulated time in ns (deterministic; never the wall clock), as a safe
   * integer: a number, not a bigint, because 2^53 ns is 104 days.
   */
  nowNs(): number;
  /** The address space, for reading and writing arguments' memory. */
  readonly mem: AddressSpace;
  /**
   * Asks to block (e.g. a spin lock that is taken): the call is not retired,
   * pc stays on it, `step` returns `blocked` and the next `step` retries it.
   */
  block(): void;
  /**
   * Tail call (`bpf_tail_call`): once the helper returns, continue at slot 0
   * of `program` in the current frame. Returns false, changing nothing, when
   * {@link MAX_TAIL_CALL_CNT} tail calls were already made in this run.
   */
  tailCall(program: CompiledProgram): boolean;
  /** Whatever the creator of the state attached (e.g. the simulated CPU). */
  readonly owner: unknown;
}

/** A helper (`call imm`, `callx`): returns r0 (number: safe integer, sign-extended) or void. */
export type HelperFn = (vm: CallContext) => number | bigint | void;
/** A kfunc (`call` with src = BPF_PSEUDO_KFUNC_CALL), keyed by BTF id. */
export type KfuncFn = HelperFn;

/** Options of {@link ExecState}. */
export interface StateOptions {
  /** Helpers by id. */
  readonly helpers?: ReadonlyMap<number, HelperFn>;
  /** Kfuncs by BTF id (the call's imm). */
  readonly kfuncs?: ReadonlyMap<number, KfuncFn>;
  /** Simulated clock in ns; default: one ns per retired instruction. */
  readonly clock?: (state: ExecState) => number;
  /** Region id of the packet that `ld_abs`/`ld_ind` read (0: none). */
  readonly packetRegion?: number;
  /** Initial `may_goto` budget per frame (default {@link BPF_MAX_LOOPS}). */
  readonly mayGotoBudget?: number;
  /** Prefix of the stack regions' names (default `stack`). */
  readonly name?: string;
  /** Attached for helpers to find (see {@link CallContext.owner}). */
  readonly owner?: unknown;
}

/** Registers, frames, stacks and status of one run; advance it with `step`. */
export class ExecState implements CallContext {
  /** The program running (changes on a tail call). */
  prog: CompiledProgram;
  /** The shared address space. */
  readonly mem: AddressSpace;
  /** Register file: r`i` at [2i] (low half) and [2i+1] (high half). */
  readonly regs: Int32Array = new Int32Array(32);
  /** Slot of the next instruction to execute. */
  pc = 0;
  /** Instructions retired so far. */
  steps = 0;
  /** Current status. */
  status: ExecStatus = "running";
  /** Set when `status` is `faulted`. */
  error: MemoryFault | ExecError | undefined = undefined;
  /** Current frame: 0 is the main program. */
  depth = 0;
  /** Saved r6–r10 and return slot of each caller frame. */
  readonly frames: Int32Array = new Int32Array(MAX_CALL_FRAMES * FRAME_WORDS);
  /** Stack region id per frame depth (0 until first used). */
  readonly stackRegions: Int32Array = new Int32Array(MAX_CALL_FRAMES);
  /** Remaining `may_goto` budget per frame. */
  readonly mayGoto: Int32Array = new Int32Array(MAX_CALL_FRAMES);
  /** Helpers indexed by id (dense, for the hot call path). */
  readonly helpers: (HelperFn | undefined)[];
  /** Kfuncs by BTF id. */
  readonly kfuncs: ReadonlyMap<number, KfuncFn>;
  /** Region id read by `ld_abs` / `ld_ind`. */
  packetRegion: number;
  /** Per-frame `may_goto` budget. */
  readonly mayGotoBudget: number;
  /** Tail calls made so far. */
  tailCalls = 0;
  /** See {@link CallContext.owner}. */
  readonly owner: unknown;
  /** Set by {@link block} during a helper call. */
  blockRequested = false;
  /** Set by {@link tailCall} during a helper call. */
  pendingTailCall: CompiledProgram | undefined = undefined;
  /**
   * The program {@link engineCache} belongs to: an engine keeps what it
   * derived from `prog` here (the JIT its translation), so that entering
   * it costs a comparison rather than a lookup.
   */
  engineCacheFor: CompiledProgram | undefined = undefined;
  /** Engine-private data for {@link engineCacheFor}. */
  engineCache: unknown = undefined;
  private readonly clock: ((state: ExecState) => number) | undefined;
  private readonly stackName: string;

  /** A state at slot 0 of `prog`, with the main frame's stack mapped and r10 at its top. */
  constructor(
    prog: CompiledProgram,
    mem: AddressSpace,
    opts: StateOptions = {},
  ) {
    this.prog = prog;
    this.mem = mem;
    this.helpers = [];
    for (const [id, fn] of opts.helpers ?? []) this.helpers[id] = fn;
    this.kfuncs = opts.kfuncs ?? new Map();
    this.clock = opts.clock;
    this.packetRegion = opts.packetRegion ?? 0;
    this.mayGotoBudget = opts.mayGotoBudget ?? BPF_MAX_LOOPS;
    this.stackName = opts.name ?? "stack";
    this.owner = opts.owner;
    this.enterFrame(0);
  }

  /**
   * Points r10 at the top of frame `depth`'s stack (mapping it on first use)
   * and resets that frame's `may_goto` budget, as each subprogram's prologue
   * does in the kernel. Stacks are reused across calls and not cleared: the
   * verifier guarantees no uninitialised stack reads.
   */
  enterFrame(depth: number): void {
    let id = this.stackRegions[depth];
    if (id === 0) {
      id = this.mem.mapRegionId("stack", MAX_BPF_STACK, {
        name: `${this.stackName}[${depth}]`,
      });
      this.stackRegions[depth] = id;
    }
    this.regs[20] = MAX_BPF_STACK;
    this.regs[21] = REGION_BASE_HI + id;
    this.mayGoto[depth] = this.mayGotoBudget;
  }

  /**
   * Starts `prog` (default: the same program) afresh on this state: slot 0,
   * registers zeroed, one frame, r10 at the top of the same main stack. A
   * CPU keeps one state and resets it per invocation, so stacks are not
   * re-mapped. `steps` keeps counting, so the default clock stays monotonic.
   */
  reset(prog: CompiledProgram = this.prog): void {
    this.prog = prog;
    this.regs.fill(0);
    this.pc = 0;
    this.status = "running";
    this.error = undefined;
    this.depth = 0;
    this.tailCalls = 0;
    this.blockRequested = false;
    this.pendingTailCall = undefined;
    this.enterFrame(0);
  }

  /** Unmaps this state's stack regions (the state must not run again). */
  release(): void {
    for (let depth = 0; depth < MAX_CALL_FRAMES; depth++) {
      const id = this.stackRegions[depth];
      if (id !== 0 && this.mem.regionById(id)?.live) {
        this.mem.unmapRegion(regionAddress(id));
      }
      this.stackRegions[depth] = 0;
    }
  }

  /** Register `i` as an unsigned 64-bit bigint. */
  getReg(i: number): bigint {
    return joinU64(this.regs[2 * i], this.regs[2 * i + 1]);
  }

  /** Sets register `i` from a bigint (taken modulo 2^64). */
  setReg(i: number, value: bigint): void {
    const [lo, hi] = splitAddress(value);
    this.regs[2 * i] = lo;
    this.regs[2 * i + 1] = hi;
  }

  /** r0 as an unsigned 64-bit bigint. */
  get r0(): bigint {
    return this.getReg(0);
  }

  // ---- CallContext ----

  /** See {@link CallContext.arg}. */
  arg(i: number): bigint {
    return this.getReg(i);
  }
  /** See {@link CallContext.argLo}. */
  argLo(i: number): number {
    return this.regs[2 * i];
  }
  /** See {@link CallContext.argHi}. */
  argHi(i: number): number {
    return this.regs[2 * i + 1];
  }
  /** See {@link CallContext.setR0}. */
  setR0(value: bigint): void {
    this.setReg(0, value);
  }
  /** See {@link CallContext.setR0Parts}. */
  setR0Parts(lo: number, hi: number): void {
    this.regs[0] = lo;
    this.regs[1] = hi;
  }
  /** See {@link CallContext.insnIndex}. */
  get insnIndex(): number {
    return this.pc;
  }
  /** See {@link CallContext.nowNs}. */
  nowNs(): number {
    return this.clock ? this.clock(this) : this.steps;
  }
  /** See {@link CallContext.block}. */
  block(): void {
    this.blockRequested = true;
  }
  /** See {@link CallContext.tailCall}. */
  tailCall(program: CompiledProgram): boolean {
    if (this.tailCalls >= MAX_TAIL_CALL_CNT) return false;
    this.tailCalls++;
    this.pendingTailCall = program;
    return true;
  }

  /** Stores a helper's return value in r0 (undefined leaves r0 as set). */
  storeResult(result: number | bigint | void): void {
    // No allocation here: this runs once per helper call.
    if (typeof result === "number") {
      if ((result | 0) === result) {
        this.regs[0] = result;
        this.regs[1] = result >> 31;
      } else this.setR0Parts(numberLo(result), numberHi(result));
    } else if (typeof result === "bigint") {
      const v = BigInt.asUintN(64, result);
      this.regs[0] = Number(v & 0xffffffffn) | 0;
      this.regs[1] = Number(v >> 32n) | 0;
    }
  }
}
