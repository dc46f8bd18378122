/**
 * The BPF interpreter: a bounds-checked region memory model, a compiler
 * from typed instructions to a dense row form, and a resumable stepper.
 *
 * @example
 * ```ts
 * import { runProgram } from "./mod.ts";
 * import { decodeProgram } from "../isa/decode.ts";
 * const insns = decodeProgram(new Uint8Array([0xb7, 0, 0, 0, 42, 0, 0, 0, 0x95, 0, 0, 0, 0, 0, 0, 0]));
 * runProgram(insns).r0; // 42n
 * ```
 * @module
 */
export {
  type AccessKind,
  ExecError,
  type FaultReason,
  type FaultRegionInfo,
  formatAddress,
  MemoryFault,
} from "./fault.ts";
export {
  addressHi,
  addressLo,
  AddressSpace,
  type MapRegionOptions,
  MAX_REGION_ID,
  MAX_REGION_SIZE,
  PERM_READ,
  PERM_RW,
  PERM_WRITE,
  Region,
  REGION_BASE_HI,
  type RegionAccessHook,
  regionAddress,
  type RegionKind,
  splitAddress,
} from "./memory.ts";
export {
  type CompiledProgram,
  type CompileOptions,
  compileProgram,
} from "./compile.ts";
export {
  BPF_MAX_LOOPS,
  type CallContext,
  ExecState,
  type ExecStatus,
  type HelperFn,
  type KfuncFn,
  MAX_CALL_FRAMES,
  MAX_TAIL_CALL_CNT,
  type StateOptions,
} from "./state.ts";
export { step } from "./interp.ts";
export {
  BPF_FUNC_ktime_get_ns,
  DEFAULT_MAX_STEPS,
  defaultHelpers,
  type RunOptions,
  runProgram,
  type RunResult,
} from "./run.ts";
export {
  type Engine,
  ENGINES,
  setStepwiseAfter,
  stepJit,
  STEPWISE_AFTER,
  STEPWISE_BUDGET,
  stepWith,
} from "./jit/step_jit.ts";
export { jitCompile, type JitFunction, type JitProgram } from "./jit/jit.ts";
export { fuzzEngines, type FuzzFinding, type Observer } from "./jit/fuzz.ts";
