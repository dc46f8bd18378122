/**
 * Run-to-completion convenience for the CLI and the tests, following the
 * conformance harness contract (`shared/conformance/README.md`, "Running a
 * test"): r1 = address of a writable copy of `mem`, r2 = its length,
 * r10 = top of a 512-byte stack, result = the full 64-bit r0.
 * @module
 */
import type { Insn } from "../isa/insn.ts";
import {
  type CompiledProgram,
  type CompileOptions,
  compileProgram,
} from "./compile.ts";
import { ExecError } from "./fault.ts";
import { type Engine, stepWith } from "./jit/step_jit.ts";
import { AddressSpace, regionAddress } from "./memory.ts";
import {
  ExecState,
  type ExecStatus,
  type HelperFn,
  type KfuncFn,
} from "./state.ts";

/** Linux helper id of `bpf_ktime_get_ns`. */
export const BPF_FUNC_ktime_get_ns = 5;
const SLICE = 1 << 16;

/** Default step limit of {@link runProgram}. */
export const DEFAULT_MAX_STEPS = 100_000_000;

/**
 * The helpers every run gets unless replaced: 5 = `bpf_ktime_get_ns`,
 * returning the state's simulated time (deterministic, never wall clock).
 */
export function defaultHelpers(): Map<number, HelperFn> {
  return new Map<number, HelperFn>([
    [BPF_FUNC_ktime_get_ns, (vm) => vm.nowNs()],
  ]);
}

/** Options of {@link runProgram}. */
export interface RunOptions extends CompileOptions {
  /** Input bytes; r1 points at a writable copy (kind `mem`), r2 = their length. */
  readonly mem?: Uint8Array;
  /** Context bytes, mapped read-only (kind `ctx`); r1 points at them instead of `mem`. */
  readonly ctx?: Uint8Array;
  /** Map the ctx writable. */
  readonly ctxWritable?: boolean;
  /** Packet for `ld_abs` / `ld_ind` (kind `packet`); default: the `mem` copy. */
  readonly packet?: Uint8Array;
  /** Helpers by id, added to (and overriding) {@link defaultHelpers}. */
  readonly helpers?: ReadonlyMap<number, HelperFn>;
  /** Kfuncs by BTF id. */
  readonly kfuncs?: ReadonlyMap<number, KfuncFn>;
  /** Step limit (default {@link DEFAULT_MAX_STEPS}); exceeding it is an ExecError. */
  readonly maxSteps?: number;
  /** Per-frame `may_goto` budget (default 8M, as the kernel's BPF_MAX_LOOPS). */
  readonly mayGotoBudget?: number;
  /**
   * Address space to run in (default: a fresh one). When given, the regions
   * this run maps (mem, ctx, packet, stacks) are unmapped when it ends.
   */
  readonly space?: AddressSpace;
  /**
   * Engine that runs the program: `interp` (default, the reference) or
   * `jit` (translated to JavaScript; same results, step counts and faults).
   */
  readonly engine?: Engine;
}

/** Outcome of {@link runProgram}. */
export interface RunResult {
  /** The full 64-bit r0, unsigned. */
  readonly r0: bigint;
  /** Instructions retired (an `lddw` counts once). */
  readonly steps: number;
  /** The `mem` copy after the run, when `mem` was given. */
  readonly memOut?: Uint8Array;
  /** The state after the run, for inspection. */
  readonly state: ExecState;
}

/**
 * Runs a program to its final `exit`. Throws the {@link MemoryFault} or
 * {@link ExecError} that stopped it, or an ExecError when `maxSteps` is
 * exceeded or a helper blocks (nothing could ever unblock it here).
 */
export function runProgram(
  program: readonly Insn[] | CompiledProgram,
  opts: RunOptions = {},
): RunResult {
  const compiled = "code" in program ? program : compileProgram(program, opts);
  const space = opts.space ?? new AddressSpace();
  const memCopy = opts.mem?.slice();
  const memId = memCopy
    ? space.mapRegionId("mem", memCopy, { name: "mem" })
    : 0;
  const ctxId = opts.ctx
    ? space.mapRegionId("ctx", opts.ctx.slice(), {
      name: "ctx",
      write: opts.ctxWritable ?? false,
    })
    : 0;
  const packetId = opts.packet
    ? space.mapRegionId("packet", opts.packet.slice(), {
      name: "packet",
      write: false,
    })
    : memId;
  const helpers = defaultHelpers();
  for (const [id, fn] of opts.helpers ?? []) helpers.set(id, fn);
  const state = new ExecState(compiled, space, {
    helpers,
    kfuncs: opts.kfuncs,
    packetRegion: packetId,
    mayGotoBudget: opts.mayGotoBudget,
  });
  if (ctxId !== 0) state.setReg(1, regionAddress(ctxId));
  else if (memId !== 0) state.setReg(1, regionAddress(memId));
  if (memCopy) state.setReg(2, BigInt(memCopy.length));

  try {
    finish(
      state,
      opts.maxSteps ?? DEFAULT_MAX_STEPS,
      stepWith(opts.engine ?? "interp"),
    );
  } finally {
    // In a caller's long-lived space, give back what this run mapped.
    if (opts.space) {
      state.release();
      for (const id of [memId, ctxId, opts.packet ? packetId : 0]) {
        if (id !== 0) space.unmapRegion(regionAddress(id));
      }
    }
  }
  return { r0: state.r0, steps: state.steps, memOut: memCopy, state };
}

/** Steps `state` to its end; throws what stopped it otherwise. */
function finish(
  state: ExecState,
  maxSteps: number,
  step: (state: ExecState, budget: number) => ExecStatus,
): void {
  // Run in slices of 64K instructions: the stepper is then entered often
  // enough for V8 to optimize the whole function, not only its loop (by
  // on-stack replacement).
  let status = step(state, Math.min(SLICE, maxSteps));
  while (status === "running" && state.steps < maxSteps) {
    status = step(state, Math.min(SLICE, maxSteps - state.steps));
  }
  if (status === "faulted") throw state.error;
  if (status === "blocked") {
    throw new ExecError(
      state.pc,
      "helper blocked with no other CPU to unblock it",
    );
  }
  if (status === "running") {
    throw new ExecError(
      state.pc,
      `step limit of ${maxSteps} instructions exceeded`,
    );
  }
}
