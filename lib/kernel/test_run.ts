/**
 * `BPF_PROG_TEST_RUN` on the simulated kernel (net/bpf/test_run.c): builds
 * the context a program type gets — an skb for socket filters, tc,
 * `cgroup_skb` and the LWT types `lwt_in`, `lwt_out`, `lwt_xmit`
 * (`bpf_prog_test_run_skb()`; `lwt_seg6local` has no `.test_run`), an
 * `xdp_buff` for XDP (`bpf_prog_test_run_xdp()`), the caller's bytes for
 * syscall programs (`bpf_prog_test_run_syscall()`) — runs the program
 * `repeat` times on one CPU with the kernel's helpers, the map helpers, the
 * packet helpers of its type and the run's cgroup storages
 * (`bpf_test_run()` → `bpf_cgroup_storage_alloc()`), and returns r0 as the
 * kernel reports it (u32) with the packet after.
 * @module
 */
import { ExecError, type MemoryFault } from "../exec/fault.ts";
import type { Insn } from "../isa/insn.ts";
import type { CompiledProgram } from "../exec/compile.ts";
import type { BpfProgram } from "../elf/types.ts";
import { type Engine, stepWith } from "../exec/jit/step_jit.ts";
import { regionAddress } from "../exec/memory.ts";
import { ExecState, type HelperFn, type KfuncFn } from "../exec/state.ts";
import { kernelHelpers, type StateOwner } from "./helpers.ts";
import type { MapHelperLog } from "./map_helpers.ts";
import { objectHelpers } from "./object_helpers.ts";
import { verifiedRewrite } from "./object_runtime.ts";
import {
  compileObjectProgram,
  findProgram,
  type LoadedObject,
} from "./object_loader.ts";
import { EINVAL, ENOTSUPP } from "./maps/map.ts";
import { BPF_FUNC_tail_call, tailCallHelper } from "./prog_array.ts";
import { ETH_HLEN, SkbContext, XdpContext } from "./test_run_ctx.ts";
import { skbHelpers, xdpHelpers } from "./net/packet_helpers.ts";
import { lwtHelpers } from "./hooks/lwt/lwt_helpers.ts";
import {
  CgroupRunStorages,
  cgroupStorageHelpers,
} from "./cgroup_storage_helpers.ts";
/** The input the oracle uses when given none: 64 zero bytes. */
export const DEFAULT_TEST_DATA_SIZE = 64;
/** Steps one run may take before it is called runaway. */
export const DEFAULT_TEST_MAX_STEPS = 100_000_000;

/**
 * Program types `BPF_PROG_TEST_RUN` runs here: those whose `*_prog_ops`
 * have a `.test_run` the oracle can feed (net/core/filter.c, bpf_trace.c).
 */
export const TEST_RUN_TYPES: readonly string[] = [
  "socket_filter",
  "sched_cls",
  "sched_act",
  "cgroup_skb",
  "lwt_in",
  "lwt_out",
  "lwt_xmit",
  "xdp",
  "syscall",
];

/**
 * The hook runners (lib/kernel/hooks, exported from mod.ts) of each program
 * type the kernel cannot test-run, as {@link testRun}'s refusal names them.
 */
export const HOOK_RUNNERS: Readonly<Record<string, string>> = {
  tracing: "runTracingProgram, runRawTracepointProgram or readIterator",
  lsm: "runLsmProgram",
  kprobe: "runKprobeProgram",
  raw_tracepoint: "runRawTracepointProgram",
  raw_tracepoint_writable: "runRawTracepointProgram",
  cgroup_sysctl: "runSysctlHook",
  cgroup_sock_addr: "runSockAddrProgram",
  lirc_mode2: "runLircProgram",
  sock_ops: "runSockOpsProgram",
  sk_msg: "runSkMsgProgram",
  sk_skb: "runSkSkbProgram",
  sk_reuseport: "runSkReuseportProgram",
  struct_ops: "runStructOpsProgram",
  lwt_seg6local: "runSeg6local",
};

/** Options of {@link testRun}. */
export interface TestRunOptions {
  /** Packet (skb, xdp) or context (syscall); default 64 zero bytes. */
  readonly data?: Uint8Array;
  /** Runs (`kattr->test.repeat`, 0 meaning 1); syscall programs run once. */
  readonly repeat?: number;
  /** CPU to run on (default 0). */
  readonly cpu?: number;
  /** Step limit per run. */
  readonly maxSteps?: number;
  /** Kfuncs by BTF id; default: the loaded object's. */
  readonly kfuncs?: ReadonlyMap<number, KfuncFn>;
  /** Engine (default `interp`): results are the same on both. */
  readonly engine?: Engine;
  /**
   * The program as the verifier rewrote it (`VerifyResult.xlated`, decoded):
   * run instead of the instructions as loaded, as the kernel runs its
   * xlated program. Default: the verifier's own rewrite when the object
   * was loaded to verify (`loadObjectWithRuntime`'s default; a rejected
   * program throws `ProgramRejectedError`), else the program as loaded.
   */
  readonly rewritten?: readonly Insn[];
}

/** What {@link testRun} reports. */
export interface TestRunResult {
  /** `retval`: r0 truncated to u32, as the kernel returns it. */
  readonly retval: number;
  /** The full 64-bit r0 of the last run. */
  readonly r0: bigint;
  /** Instructions retired by the last run. */
  readonly steps: number;
  /** Runs made. */
  readonly runs: number;
  /** The packet after the run (skb, xdp), or the ctx bytes (syscall). */
  readonly dataOut: Uint8Array | undefined;
  /** Lines `bpf_trace_printk` printed. */
  readonly printk: readonly string[];
  /**
   * Wall-clock ns the runs took together — the runs only, as the kernel's
   * `duration` times its loop (setting up the context is not counted).
   */
  readonly elapsedNs: number;
}

/** A test run the kernel refuses (bad input or program type): carries the errno. */
export class TestRunError extends Error {
  /** Positive errno. */
  readonly errno: number;
  /** Builds the error. */
  constructor(message: string, errno: number) {
    super(message);
    this.name = "TestRunError";
    this.errno = errno;
  }
}

/**
 * The context a program runs with: what r1 points to, the packet (if any)
 * and the helpers bound to that context. {@link testRun} builds the ones
 * `BPF_PROG_TEST_RUN` gives; hooks the kernel cannot test-run (sysctl,
 * lirc, trampolines …) build theirs and run with {@link runInContext}.
 */
export interface RunContext {
  /** Value of r1 at entry (the context's address, or 0). */
  readonly r1: bigint;
  /** Region of the packet `ld_abs`/`ld_ind` read (default 0: none). */
  readonly packetRegion?: number;
  /** Helpers bound to this context, merged over the object's. */
  readonly helpers: ReadonlyMap<number, HelperFn>;
  /** Registers who must learn the packet's new region id after a reshape. */
  onPacketRemap?(listener: (regionId: number) => void): void;
  /** The bytes to report after the run (packet or ctx), if any. */
  dataOut?(): Uint8Array | undefined;
  /** Frees what the context mapped. */
  release(): void;
}

/**
 * Runs program `name` of `loaded` the way `BPF_PROG_TEST_RUN` does. Throws
 * {@link TestRunError} when the kernel would refuse the run, and the
 * `MemoryFault` / `ExecError` that stopped the program.
 */
export function testRun(
  loaded: LoadedObject,
  name: string,
  opts: TestRunOptions = {},
): TestRunResult {
  const prog = findProgram(loaded, name);
  if (!TEST_RUN_TYPES.includes(prog.type)) {
    const runner = HOOK_RUNNERS[prog.type];
    throw new TestRunError(
      `program '${name}' of type ${prog.type} cannot be test-run ` +
        `(only ${TEST_RUN_TYPES.join(", ")} programs)` +
        (runner ? `; run it as its hook would with ${runner} (mod.ts)` : ""),
      ENOTSUPP,
    );
  }
  const data = opts.data ?? new Uint8Array(DEFAULT_TEST_DATA_SIZE);
  const ctx = buildContext(loaded, prog.type, data);
  const runs = prog.type === "syscall" ? 1 : Math.max(1, opts.repeat ?? 1);
  return runInContext(loaded, name, ctx, { ...opts, repeat: runs });
}

/**
 * Program `name` of `loaded`, which a hook runner for `type` programs was
 * asked to run: a program of another type is refused with
 * {@link TestRunError} (-EINVAL), as attaching it to that hook would be.
 */
export function programOfType(
  loaded: LoadedObject,
  name: string,
  type: string,
): BpfProgram {
  const prog = findProgram(loaded, name);
  if (prog.type !== type) {
    throw new TestRunError(
      `program '${name}' is of type ${prog.type}, not ${type}`,
      EINVAL,
    );
  }
  return prog;
}

/**
 * Runs program `name` of `loaded` `opts.repeat` times (default once) on one
 * CPU with the context `ctx` (released afterwards, whatever happens): the
 * engine of {@link testRun}, for any program type. `opts.data` is ignored:
 * the context holds the input. Like `bpf_test_run()`, it gives the runs
 * cgroup storages of their own for `bpf_get_local_storage()`, zeroed, kept
 * across the repeats and freed at the end (a context's own helper 81, if
 * it brings one, wins).
 */
export function runInContext(
  loaded: LoadedObject,
  name: string,
  ctx: RunContext,
  opts: TestRunOptions = {},
): TestRunResult {
  const { kernel } = loaded;
  let compiled;
  try {
    // a load that verifies runs what the verifier accepted, rewritten
    const rewritten = opts.rewritten ?? verifiedRewrite(loaded, name);
    compiled = compiledFor(loaded, name, rewritten);
  } catch (e) {
    ctx.release();
    throw e;
  }
  const cpu = kernel.cpus[opts.cpu ?? 0];
  if (cpu === undefined) {
    ctx.release();
    throw new TestRunError(`no CPU ${opts.cpu}`, EINVAL);
  }
  // the object's helpers, built once per loaded object: each run starts
  // their print log afresh
  const { helpers: objHelpers, log } = objectHelpersFor(loaded);
  log.printk.length = 0;
  log.perfOutput = undefined;
  log.signals = undefined;
  // bpf_test_run(): the run's cgroup storages, freed with the context
  const storages = new CgroupRunStorages();
  let state: ExecState | undefined = undefined;
  const start = kernel.now();
  const helpers = kernelHelpers({
    prng: kernel.prng,
    locks: kernel.locks,
    now: () => start + (state?.steps ?? 0),
    emit: (ev, cpuId, p, insn, addr, detail) =>
      kernel.trace.emit({
        t: start + (state?.steps ?? 0),
        cpu: cpuId,
        ev,
        prog: p,
        insn,
        addr,
        detail,
      }),
    report: (_cpu, message) => kernel.reports.push(message),
  });
  for (const [id, fn] of objHelpers) helpers.set(id, fn);
  for (const [id, fn] of loaded.helpers) helpers.set(id, fn);
  helpers.set(
    BPF_FUNC_tail_call,
    tailCallHelper(
      (address) => loaded.registry.progArrayAt(address),
      (target) => compileObjectProgram(loaded, target).program,
    ),
  );
  for (const [id, fn] of cgroupStorageHelpers(loaded.registry, storages)) {
    helpers.set(id, fn);
  }
  for (const [id, fn] of ctx.helpers) helpers.set(id, fn);
  const owner: StateOwner = { cpu, level: 0, alone: true };
  state = new ExecState(compiled, kernel.space, {
    helpers,
    kfuncs: opts.kfuncs ?? loaded.kfuncs,
    packetRegion: ctx.packetRegion ?? 0,
    owner,
    name: `cpu${cpu.id}.test_run.stack`,
    clock: (s) => start + s.steps,
  });
  const run = state;
  // helpers that reshape an skb remap its packet: ld_abs must follow
  ctx.onPacketRemap?.((id) => run.packetRegion = id);
  const runs = Math.max(1, opts.repeat ?? 1);
  try {
    let steps = 0;
    const t0 = performance.now();
    for (let i = 0; i < runs; i++) {
      if (i > 0) state.reset(compiled); // `steps` keeps counting across resets
      const before = state.steps;
      state.setReg(1, ctx.r1);
      runToExit(
        state,
        before + (opts.maxSteps ?? DEFAULT_TEST_MAX_STEPS),
        stepWith(opts.engine ?? "interp"),
      );
      steps = state.steps - before;
    }
    const elapsedNs = (performance.now() - t0) * 1e6;
    return {
      retval: Number(state.r0 & 0xffffffffn),
      r0: state.r0,
      steps,
      runs,
      dataOut: ctx.dataOut?.(),
      printk: [...log.printk],
      elapsedNs,
    };
  } finally {
    state.release();
    storages.free();
    ctx.release();
  }
}

/** The object helpers of each loaded object and the log they print to. */
const OBJECT_HELPERS = new WeakMap<
  LoadedObject,
  { helpers: ReadonlyMap<number, HelperFn>; log: MapHelperLog }
>();

/** The object helpers of `loaded` (see `objectHelpers`), built on first use. */
function objectHelpersFor(
  loaded: LoadedObject,
): { helpers: ReadonlyMap<number, HelperFn>; log: MapHelperLog } {
  let cached = OBJECT_HELPERS.get(loaded);
  if (cached === undefined) {
    const log: MapHelperLog = { printk: [] };
    cached = { helpers: objectHelpers(loaded, log), log };
    OBJECT_HELPERS.set(loaded, cached);
  }
  return cached;
}

/** Compiled programs by loaded object, name and instructions (as loaded or rewritten). */
const COMPILED = new WeakMap<
  LoadedObject,
  Map<string, { insns: readonly Insn[] | undefined; program: CompiledProgram }>
>();

/**
 * Program `name` of `loaded` compiled (from `rewritten` when given):
 * compiled once and reused while the same instructions are asked for, as
 * the kernel keeps a loaded program's image across runs.
 */
function compiledFor(
  loaded: LoadedObject,
  name: string,
  rewritten: readonly Insn[] | undefined,
): CompiledProgram {
  let byName = COMPILED.get(loaded);
  if (byName === undefined) COMPILED.set(loaded, byName = new Map());
  const hit = byName.get(name);
  if (hit !== undefined && hit.insns === rewritten) return hit.program;
  const program = compileObjectProgram(loaded, name, rewritten).program;
  byName.set(name, { insns: rewritten, program });
  return program;
}

/** Steps `state` to its exit (or `maxSteps` retired in all); throws what stopped it. */
function runToExit(
  state: ExecState,
  maxSteps: number,
  step: ReturnType<typeof stepWith>,
): void {
  let status = step(state, Math.min(1 << 16, maxSteps));
  while (status === "running" && state.steps < maxSteps) {
    status = step(state, Math.min(1 << 16, maxSteps - state.steps));
  }
  if (status === "faulted") throw state.error as MemoryFault | ExecError;
  if (status === "blocked") {
    throw new ExecError(state.pc, "helper blocked on a test run (one CPU)");
  }
  if (status === "running") {
    throw new ExecError(state.pc, `step limit of ${maxSteps} exceeded`);
  }
}

/** The context of `type` over `data`, checked as the kernel checks it. */
function buildContext(
  loaded: LoadedObject,
  type: string,
  data: Uint8Array,
): RunContext {
  const space = loaded.kernel.space;
  if (type === "syscall") {
    // bpf_prog_test_run_syscall(): ctx = a kernel copy of ctx_in, copied back
    const bytes = data.slice();
    const id = bytes.length > 0
      ? space.mapRegionId("ctx", bytes, { name: "syscall ctx" })
      : 0;
    return {
      r1: id === 0 ? 0n : regionAddress(id),
      packetRegion: 0,
      helpers: new Map(),
      onPacketRemap: () => {},
      dataOut: () => undefined,
      release: () => {
        if (id !== 0) space.unmapRegion(regionAddress(id));
      },
    };
  }
  if (data.length < ETH_HLEN) {
    // bpf_test_init(): the packet must hold an Ethernet header
    throw new TestRunError(
      `data of ${data.length} bytes: a test run needs at least ${ETH_HLEN}`,
      EINVAL,
    );
  }
  if (type === "xdp") {
    const xdp = new XdpContext(space, data);
    return {
      r1: xdp.address,
      packetRegion: 0,
      helpers: xdpHelpers(xdp),
      onPacketRemap: () => {}, // XDP programs cannot use ld_abs
      dataOut: () => xdp.dataOut(),
      release: () => {
        xdp.packet.release();
        space.unmapRegion(xdp.address);
      },
    };
  }
  // bpf_prog_test_run_skb(): tc sees the MAC header; the others start at
  // the network header. The verifier's per-type chain decides which of the
  // skb helpers a program reaches, so one table serves them all.
  const isL2 = type === "sched_cls" || type === "sched_act";
  const skb = new SkbContext(space, data, {
    isL2,
    writable: isL2 || type === "lwt_xmit",
  });
  const helpers = skbHelpers(skb);
  if (type === "lwt_in" || type === "lwt_xmit") {
    for (const [id, fn] of lwtHelpers(skb, type === "lwt_in")) {
      helpers.set(id, fn);
    }
  }
  return {
    r1: skb.address,
    packetRegion: skb.packet.regionId,
    helpers,
    onPacketRemap: (listener) => skb.packet.onRemap = listener,
    dataOut: () => skb.dataOut(),
    release: () => skb.release(),
  };
}
