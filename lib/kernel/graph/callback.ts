/**
 * BPF callbacks (`bpf_callback_t`): the address a program loads with
 * `ld_imm64 rX, BPF_PSEUDO_FUNC` and a kfunc calls back, as
 * `__bpf_rbtree_add()` calls its `less`.
 *
 * ## Function addresses
 * The kernel needs the JIT for callbacks (the interpreter refuses them);
 * the JIT turns the subprogram into machine code and the `ld_imm64` into
 * its address. Here {@link BpfCallbacks.compile} maps, per program, a
 * `kernel` region named `<name>.text` of 8 bytes per slot (no load or store
 * is allowed on it, so reading code faults) and resolves every
 * `BPF_PSEUDO_FUNC` `ld_imm64` to `text + 8 × target slot`.
 *
 * ## Running a callback
 * The interpreter has no nested-call API, so a callback runs on its own
 * {@link ExecState} — same address space, helpers, kfuncs and owner (CPU)
 * as the caller — from the target slot to its `exit`, with r1–r5 set, under
 * a step budget (callback states and their stacks are pooled per CPU
 * context, or per kfunc table outside the kernel). It runs atomically: nothing is scheduled inside it, as in
 * the kernel where `less` runs under the tree's `bpf_spin_lock` anyway. A
 * fault inside the callback is rethrown, so the caller faults at its kfunc
 * call with the callback's report as the cause.
 * @module
 */
import type { LdImm64Insn } from "../../isa/insn.ts";
import type { Insn } from "../../isa/insn.ts";
import { BPF_PSEUDO_FUNC } from "../../isa/opcodes.ts";
import {
  type CompiledProgram,
  type CompileOptions,
  compileProgram,
} from "../../exec/compile.ts";
import { ExecError } from "../../exec/fault.ts";
import { type Engine, stepWith } from "../../exec/jit/step_jit.ts";

type StepFn = ReturnType<typeof stepWith>;
import { type AddressSpace, regionAddress } from "../../exec/memory.ts";
import {
  type CallContext,
  ExecState,
  type HelperFn,
} from "../../exec/state.ts";

/** Default instruction budget of one callback run. */
export const CALLBACK_STEP_BUDGET = 1_000_000;

/** Where a callback address leads. */
export interface CallbackTarget {
  /** The program holding the subprogram. */
  readonly prog: CompiledProgram;
  /** Its first slot. */
  readonly slot: number;
}

/** Programs' text regions, so callback addresses resolve to subprograms. */
export class BpfCallbacks {
  /** The address space text regions are mapped in. */
  readonly space: AddressSpace;
  private readonly texts = new Map<number, CompiledProgram>();
  /** Spare states per caller, reused so callbacks do not map stacks each time. */
  private readonly spare = new WeakMap<object, ExecState[]>();

  /** Runs a callback's instructions (the kernel's engine). */
  private readonly step: StepFn;

  /** An empty table over `space`; callbacks run on `engine` (default interp). */
  constructor(space: AddressSpace, engine: Engine = "interp") {
    this.space = space;
    this.step = stepWith(engine);
  }

  /**
   * Compiles `insns` with its `BPF_PSEUDO_FUNC` constants resolved to text
   * addresses; other `ld_imm64`s go to `opts.ldImm64` (or stay raw).
   */
  compile(
    insns: readonly Insn[],
    name = "prog",
    opts: CompileOptions = {},
  ): CompiledProgram {
    const id = this.space.mapRegionId("kernel", Math.max(insns.length, 1) * 8, {
      name: `${name}.text`,
      read: false,
      write: false,
    });
    const base = regionAddress(id);
    const ldImm64 = (insn: LdImm64Insn, index: number): bigint => {
      if (insn.src === BPF_PSEUDO_FUNC) {
        return base + BigInt((index + insn.imm + 1) * 8);
      }
      return opts.ldImm64?.(insn, index) ?? insn.imm64;
    };
    const prog = compileProgram(insns, { ...opts, ldImm64 });
    this.texts.set(id, prog);
    return prog;
  }

  /** The subprogram at callback address `address`, if it is one. */
  resolve(address: bigint): CallbackTarget | undefined {
    const region = this.space.regionAt(address);
    const prog = region === undefined ? undefined : this.texts.get(region.id);
    if (prog === undefined) return undefined;
    const offset = this.space.offsetOf(address);
    if (offset < 0 || offset % 8 !== 0 || offset / 8 >= prog.length) {
      return undefined;
    }
    return { prog, slot: offset / 8 };
  }

  /**
   * Calls the callback at `address` from the helper or kfunc running on
   * `caller`, with `args` in r1…; returns r0. Throws an {@link ExecError}
   * for a bad address or an exhausted budget, and rethrows a fault.
   */
  call(
    caller: CallContext,
    address: bigint,
    args: readonly bigint[],
    budget: number = CALLBACK_STEP_BUDGET,
  ): bigint {
    const target = this.resolve(address);
    if (target === undefined) {
      throw new ExecError(
        -1,
        `callback address 0x${address.toString(16)} is not a BPF subprogram`,
      );
    }
    const pool = this.pool(caller);
    const state = pool.pop() ?? this.newState(caller, target.prog);
    try {
      state.reset(target.prog);
      state.pc = target.slot;
      args.forEach((value, i) => state.setReg(i + 1, value));
      const status = this.step(state, budget);
      if (status === "running") {
        throw new ExecError(
          -1,
          `callback at slot ${target.slot} ran over ${budget} instructions`,
        );
      }
      if (status === "blocked") {
        throw new ExecError(-1, "callback blocked: it runs atomically");
      }
      if (status === "faulted") {
        const cause = state.error;
        throw new ExecError(-1, `callback faulted: ${cause?.message}`, {
          cause,
        });
      }
      return state.r0;
    } finally {
      pool.push(state);
    }
  }

  /**
   * The spare states for `caller`: per owner (the CPU context in the
   * kernel), else per kfunc table, so that runs which each build a fresh
   * state (runProgram) still reuse callback states and their stacks.
   */
  private pool(caller: CallContext): ExecState[] {
    const owner = caller.owner;
    const key: object = typeof owner === "object" && owner !== null
      ? owner
      : caller instanceof ExecState
      ? caller.kfuncs
      : caller;
    let pool = this.spare.get(key);
    if (pool === undefined) {
      pool = [];
      this.spare.set(key, pool);
    }
    return pool;
  }

  /** A state sharing the caller's helpers, kfuncs and owner. */
  private newState(caller: CallContext, prog: CompiledProgram): ExecState {
    const helpers = new Map<number, HelperFn>();
    let kfuncs = undefined;
    if (caller instanceof ExecState) {
      caller.helpers.forEach((fn, id) => {
        if (fn !== undefined) helpers.set(id, fn);
      });
      kfuncs = caller.kfuncs;
    }
    return new ExecState(prog, caller.mem, {
      helpers,
      kfuncs,
      owner: caller.owner,
      name: "callback-stack",
      // the callback runs inside its caller's helper call: the caller's time
      clock: () => caller.nowNs(),
    });
  }
}
