/**
 * The BPF-to-JavaScript JIT: translates a {@link CompiledProgram} once into
 * a JS function (via `new Function`, from source made only of fixed text and
 * integer literals, see `emit_insn.ts`) and caches it per program. The
 * function is compiled eagerly (an immediately parenthesised function), so
 * `translateMs` holds V8's compile too and the first run pays nothing more;
 * programs with equal source share V8's work. A second, stepwise entry for
 * small budgets is translated only when asked for.
 * @module
 */
import {
  arsh64,
  bswap16,
  bswap32,
  div32,
  div64,
  lsh64,
  mod32,
  mod64,
  mulHiU32,
  rsh64,
  sdiv32,
  sdiv64,
  smod32,
  smod64,
} from "../alu64.ts";
import {
  atomic32,
  atomic64,
  callLocal,
  helperById,
  invokeHelper,
  kfuncById,
  loadPacket,
  pinToInsn,
  takeTailCall,
} from "../calls.ts";
import type { CompiledProgram } from "../compile.ts";
import { ExecError, MemoryFault } from "../fault.ts";
import type { ExecState } from "../state.ts";
import { findBlocks } from "./blocks.ts";
import { coldLoad, coldStore } from "./cold.ts";
import { generateSource, RUNTIME_NAMES } from "./codegen.ts";

/** A translated program's entry: runs `state` for at most `budget` instructions, returns a `JIT_*` code. */
export type JitFunction = (state: ExecState, budget: number) => number;

/** A program translated by {@link jitCompile}. */
export interface JitProgram {
  /** The generated function. */
  readonly run: JitFunction;
  /** 1 where a row starts a block (where generated code can be entered). */
  readonly leader: Uint8Array;
  /** Per row: instructions to the end of its block, itself included. */
  readonly rest: Int32Array;
  /** The generated source (for inspection and debugging). */
  readonly source: string;
  /** Wall-clock ms spent translating (source generation and `new Function`). */
  readonly translateMs: number;
  /**
   * The stepwise entry: the same code with every instruction a block of its
   * own, so it can start at any instruction and stop after any number —
   * what small scheduler quanta and the tail of a budget need. Translated
   * on first use (programs run with large budgets never pay for it).
   */
  stepwise(): JitFunction;
}

/**
 * What a run threw, as the failure it records; mirrors the interpreter's
 * own conversion: a helper's stray exception becomes an ExecError at `pc`.
 */
export function asFailure(e: unknown, pc: number): MemoryFault | ExecError {
  if (e instanceof MemoryFault || e instanceof ExecError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new ExecError(pc, `helper raised: ${message}`, { cause: e });
}

const cache = new WeakMap<CompiledProgram, JitProgram>();

/** Translates `prog` (or returns the cached translation). */
export function jitCompile(prog: CompiledProgram): JitProgram {
  const hit = cache.get(prog);
  if (hit !== undefined) return hit;
  const t0 = performance.now();
  const map = findBlocks(prog);
  const source = generateSource(prog, map);
  const run = instantiate(source, map.rest, prog);
  let stepwise: JitFunction | undefined;
  const jit: JitProgram = {
    run,
    leader: map.leader,
    rest: map.rest,
    source,
    translateMs: performance.now() - t0,
    stepwise: () => {
      if (stepwise === undefined) {
        const single = findBlocks(prog, true);
        stepwise = instantiate(
          generateSource(prog, single),
          single.rest,
          prog,
        );
      }
      return stepwise;
    },
  };
  cache.set(prog, jit);
  return jit;
}

/** The function of `source` (from `generateSource`) bound to its runtime. */
function instantiate(
  source: string,
  rest: Int32Array,
  prog: CompiledProgram,
): JitFunction {
  const runtime: Record<string, unknown> = {
    mulHiU32,
    div64,
    mod64,
    sdiv64,
    smod64,
    div32,
    mod32,
    sdiv32,
    smod32,
    lsh64,
    rsh64,
    arsh64,
    bswap16,
    bswap32,
    atomic32,
    atomic64,
    callLocal,
    helperById,
    kfuncById,
    invokeHelper,
    pinToInsn,
    takeTailCall,
    loadPacket,
    coldLoad,
    coldStore,
    ExecError,
    asFailure,
    traps: prog.traps,
    rest,
    S: new Int32Array(2), // scratch pair for the alu64.ts helpers
  };
  for (const name of RUNTIME_NAMES) {
    if (!(name in runtime)) throw new Error(`JIT runtime lacks ${name}`);
  }
  return factoryOf(source)(runtime);
}

type Factory = (rt: Record<string, unknown>) => JitFunction;
/** Factories by source, most recently used last (bounded: see {@link factoryOf}). */
const factories = new Map<string, Factory>();
const MAX_FACTORIES = 512;

/**
 * The factory of `source`. Equal programs (tests and fuzzers compile the
 * same program many times; CPUs each load the same object) have equal
 * source: they share one factory, so V8 parses and compiles it once and
 * each translation only binds a fresh runtime to it.
 */
function factoryOf(source: string): Factory {
  let factory = factories.get(source);
  if (factory !== undefined) {
    factories.delete(source); // re-inserted below as the most recent
  } else {
    factory = new Function("rt", source) as Factory;
    if (factories.size >= MAX_FACTORIES) {
      factories.delete(factories.keys().next().value as string);
    }
  }
  factories.set(source, factory);
  return factory;
}
