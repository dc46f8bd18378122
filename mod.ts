/**
 * bpfsim: a scriptable simulator of the Linux BPF subsystem.
 *
 * This module is the public API. It re-exports what a user script needs:
 * the instruction set (typed instructions, decoder, assembler, disassembler,
 * the kernel's field checks), the interpreter and its memory model, and BTF
 * parsing; later the object loader, the verifier and the simulated kernel.
 *
 * @example
 * ```ts
 * import { assemble, disassemble, runProgram } from "./mod.ts";
 * const prog = assemble("r0 = 6\nr0 *= 7\nexit");
 * console.log(disassemble(prog).join("\n")); // 0: (b7) r0 = 6 …
 * console.log(runProgram(prog).r0); // 42n
 * ```
 * @module
 */

// The instruction set
export * from "./lib/isa/opcodes.ts";
export type {
  AluInsn,
  AluOp,
  AtomicInsn,
  AtomicOp,
  CallInsn,
  CondJmpInsn,
  EndianInsn,
  ExitInsn,
  Insn,
  JaInsn,
  JmpOp,
  LdImm64HiInsn,
  LdImm64Insn,
  LoadInsn,
  MayGotoInsn,
  PacketLoadInsn,
  RawInsn,
  Source,
  StoreInsn,
} from "./lib/isa/insn.ts";
export { IsaError } from "./lib/isa/insn.ts";
export {
  decodeProgram,
  decodeRaw,
  encodeProgram,
  rawInsn,
  readRawInsn,
  readRawProgram,
} from "./lib/isa/decode.ts";
export {
  type AsmDialect,
  AsmError,
  assemble,
  type AssembleOptions,
  assembleRaw,
  detectDialect,
  type SourcePos,
} from "./lib/isa/asm.ts";
export {
  type DisasmOptions,
  disassemble,
  formatInsn,
} from "./lib/isa/disasm.ts";
export {
  opcodeInInsnTable,
  type ProgramIssue,
  reservedFieldError,
  validateProgram,
} from "./lib/isa/validate.ts";
export {
  type DataFile,
  DataFileError,
  dataFileProgram,
  parseDataFile,
} from "./lib/isa/conformance_data.ts";
export { helperId, helperName } from "./lib/isa/helper_ids.ts";

// The interpreter
export * from "./lib/exec/mod.ts";

// BTF
export * from "./lib/btf/mod.ts";

// The verifier
export * from "./lib/verifier/mod.ts";

// Objects: ELF as libbpf reads it
export * from "./lib/elf/mod.ts";

// The simulated kernel
export {
  Kernel,
  type KernelOptions,
  type LoadedProgram,
  type ProgramRuntime,
  type RunSummary,
} from "./lib/kernel/kernel.ts";
export { Prng } from "./lib/kernel/prng.ts";
export { Trace, type TraceEvent, type TraceKind } from "./lib/kernel/trace.ts";
export {
  type LockHolder,
  type LockResult,
  type LockState,
  SpinLocks,
  type UnlockResult,
} from "./lib/kernel/spin_lock.ts";
export {
  Cpu,
  type Invocation,
  type PendingNmi,
  type RunningContext,
} from "./lib/kernel/cpu.ts";
export {
  isKfuncAddrId,
  KERNEL_KFUNCS,
  KFUNC_ADDR_BASE,
  KFUNC_ALIASES,
  KFUNC_ID_BASE,
  kfuncAddrId,
  kfuncBtfId,
  kfuncName,
} from "./lib/kernel/kfunc_ids.ts";

// Maps and the allocator of the simulated kernel
export * from "./lib/kernel/maps/mod.ts";
export {
  BpfMemAlloc,
  type BpfMemAllocEnv,
  bpfMemAllocInit,
} from "./lib/kernel/mem_alloc.ts";
export type {
  ActiveHook,
  CpuAllocContext,
} from "./lib/kernel/mem_alloc_irq.ts";
export {
  MemAllocError,
  type MemAllocErrorKind,
  type MemAllocErrorSites,
} from "./lib/kernel/mem_alloc_error.ts";
export type {
  MemAllocStats,
  MemCacheSnapshot,
  ObjectInfo,
} from "./lib/kernel/mem_alloc_stats.ts";
export {
  BPF_MEM_ALLOC_MAX_UNIT,
  BPF_MEM_CACHE_SIZES,
  BpfMemCache,
  bpfMemCacheIdx,
  LLIST_NODE_SZ,
  type MemCacheHost,
  type MemCacheStats,
  type MemUnit,
  refillWatermarks,
  type UnitState,
  type Watermarks,
} from "./lib/kernel/mem_cache.ts";
export { RcuFlavor, RcuStallError, RcuState } from "./lib/kernel/rcu.ts";

export * from "./lib/kernel/graph/mod.ts";
export {
  compileObjectProgram,
  findProgram,
  type LoadedMap,
  type LoadedObject,
  loadObjectIntoKernel,
  MapRegistry,
  type ObjectLoadOptions,
  ProgramLoadError,
} from "./lib/kernel/object_loader.ts";
export {
  kernelProgram,
  loadObjectWithRuntime,
  type RuntimeLoadOptions,
} from "./lib/kernel/object_runtime.ts";
export {
  isUnmodelled,
  ProgramRejectedError,
  verifyBeforeRun,
} from "./lib/kernel/load_verify.ts";
export { faultReport, leakReports } from "./lib/kernel/sanitizer.ts";
export {
  STRUCT_META_BASE,
  structMetaAddress,
  structMetaTypeId,
} from "./lib/kernel/struct_meta_addr.ts";
export { type MapHelperLog, mapHelpers } from "./lib/kernel/map_helpers.ts";
export { ProgArray } from "./lib/kernel/prog_array.ts";
export {
  type RunContext,
  runInContext,
  testRun,
  TestRunError,
  type TestRunOptions,
  type TestRunResult,
} from "./lib/kernel/test_run.ts";
export * from "./lib/kernel/hooks/mod.ts";
export {
  type FdFile,
  type MapHandle,
  openMapFd,
  type OpenMapFdOptions,
  type SimProcess,
  simProcess,
} from "./lib/kernel/syscall/syscall_fds.ts";
export type { BtfTargetProto } from "./lib/verifier/ctx_access/btf_targets.ts";
export type { BtfCtxArg } from "./lib/verifier/ctx_access/types.ts";
export {
  ethTypeTrans,
  PacketBuffer,
  SkbContext,
  type SkbRunKind,
  XdpContext,
} from "./lib/kernel/test_run_ctx.ts";
export type { TunnelInfo } from "./lib/kernel/net/packet_tunnel.ts";
export { TestRunSock } from "./lib/kernel/net/packet_sock.ts";
export {
  type BpfTimer,
  BpfTimers,
  timersOf,
} from "./lib/kernel/timer_helpers.ts";
export type { TimerOutlook } from "./lib/kernel/contexts.ts";
export type { PerfSample, SentSignal } from "./lib/kernel/generic_helpers.ts";
export { NOT_MODELLED_HELPERS } from "./lib/kernel/helper_coverage.ts";

// Scenarios
export { renderTimeline, timelineModel } from "./lib/scenario/timeline.ts";
export type {
  TimelineMark,
  TimelineModel,
  TimelineSpan,
} from "./lib/scenario/timeline.ts";
export {
  type Claim,
  defineScenario,
  formatScenarioResult,
  runScenario,
  type RunScenarioOptions,
  type Scenario,
  type ScenarioContext,
  scenarioMain,
  type ScenarioResult,
} from "./lib/scenario/scenario.ts";
