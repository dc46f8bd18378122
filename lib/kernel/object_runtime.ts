/**
 * An object loaded with the runtime its programs need beyond maps: the
 * graph kfuncs (allocated objects, lists, rb-trees, refcounts, kptrs) over
 * `bpf_global_ma`, callbacks (`bpf_loop`, rb-tree `less`), the numeric
 * iterator (`bpf_iter_num_*`), and the trivial
 * kfuncs that only the verifier cares about (`bpf_rcu_read_lock` …).
 * @module
 */
import type { HelperFn, KfuncFn } from "../exec/state.ts";
import type { ObjectFile } from "../elf/types.ts";
import { parseStructMetas } from "../btf/struct_meta.ts";
import {
  BpfCallbacks,
  btfTypes,
  graphFieldFreer,
  graphHelpers,
  graphKfuncs,
  GraphRuntime,
} from "./graph/mod.ts";

import { isKfuncAddrId, kfuncAddrId, kfuncBtfId } from "./kfunc_ids.ts";
import { iterKfuncs } from "./iter_kfuncs.ts";
import {
  compileObjectProgram,
  type LoadedObject,
  loadObjectIntoKernel,
} from "./object_loader.ts";
import type { Kernel, LoadedProgram, ProgramRuntime } from "./kernel.ts";
import { objectHelpers } from "./object_helpers.ts";
import { unwiredFieldFreer } from "./maps/special_fields.ts";
import { timerFieldFreer } from "./timer_fire.ts";
import { registerCallbackRuntime, serviceTimers } from "./timer_softirq.ts";
import type { StateOwner } from "./helpers.ts";
import { formatAddress } from "../exec/fault.ts";
import type { CallContext } from "../exec/state.ts";
import { verifyBeforeRun } from "./load_verify.ts";
import type { VerifyResult } from "../verifier/verify.ts";
import { decodeRaw } from "../isa/decode.ts";
import type { Insn } from "../isa/insn.ts";
import { E2BIG, EINVAL } from "../uapi/errno.ts";

/** Helper id of `bpf_loop`. */
export const BPF_FUNC_loop = 181;
/** `BPF_MAX_LOOPS`: the most iterations `bpf_loop` accepts. */
export const BPF_LOOP_MAX = 1 << 23;

/** Kfuncs whose whole effect is on the verifier's state: no-ops at run time. */
const VERIFIER_ONLY_KFUNCS: readonly string[] = [
  "bpf_rcu_read_lock",
  "bpf_rcu_read_unlock",
  "bpf_preempt_disable",
  "bpf_preempt_enable",
];

/** Options of {@link loadObjectWithRuntime}. */
export interface RuntimeLoadOptions {
  /**
   * Verify each program before it may run ({@link kernelProgram} throws a
   * `ProgramRejectedError` for one the verifier rejects). Default: the
   * kernel's `verify` option (itself true by default); false is the
   * `--no-verify` escape hatch.
   */
  readonly verify?: boolean;
}

/**
 * Loads `object` into `kernel` (see `loadObjectIntoKernel`) with a graph
 * runtime when the object has BTF, `bpf_kptr_xchg`, `bpf_loop` and the
 * verifier-only kfuncs. The graph runtime traces alloc/free/push/pop into
 * the kernel's trace, and list operations made without the head's lock
 * race with other CPUs (see lib/kernel/graph/list.ts).
 */
export function loadObjectWithRuntime(
  kernel: Kernel,
  object: ObjectFile,
  options: RuntimeLoadOptions = {},
): LoadedObject {
  const space = kernel.space;
  const callbacks = new BpfCallbacks(space, kernel.engine);
  const kfuncs = new Map<number, KfuncFn>();
  const helpers = new Map<number, HelperFn>();
  let runtime: GraphRuntime | undefined;
  if (object.btf !== undefined) {
    const metas = parseStructMetas(object.btf);
    runtime = new GraphRuntime({
      space,
      ma: kernel.globalMa,
      types: btfTypes(object.btf, metas),
      metas,
      callbacks,
      trace: (ev, cpu, vm, address, detail) => {
        const owner = vm?.owner as StateOwner | undefined;
        kernel.trace.record(
          kernel.now(),
          cpu,
          ev,
          owner === undefined ? undefined : progName(owner),
          vm?.insnIndex,
          formatAddress(address),
          detail,
        );
      },
      progOf: (vm) => {
        const owner = vm.owner as StateOwner | undefined;
        return owner === undefined ? undefined : progName(owner);
      },
      lockHeld: (vm, head) => lockHeld(kernel, vm, head),
      onWarn: (message, vm) => {
        const owner = vm?.owner as StateOwner | undefined;
        kernel.reports.push(
          owner === undefined
            ? `WARNING: ${message}`
            : `WARNING: CPU ${owner.cpu.id} ${
              progName(owner)
            } insn ${vm?.insnIndex}: ${message}`,
        );
      },
    });
    for (const [id, fn] of graphKfuncs(runtime)) {
      kfuncs.set(id, withIrqWork(kernel, fn));
    }
    for (const [id, fn] of graphHelpers()) helpers.set(id, fn);
  }
  for (const [id, fn] of iterKfuncs()) kfuncs.set(id, fn);
  for (const name of VERIFIER_ONLY_KFUNCS) {
    const id = kfuncBtfId(name);
    if (id !== undefined) kfuncs.set(id, () => 0);
  }
  // the rewritten program calls kfuncs by address: same arguments unless
  // the graph runtime registered a rewritten form
  for (const [id, fn] of [...kfuncs]) {
    if (isKfuncAddrId(id)) continue;
    const addr = kfuncAddrId(id);
    if (!kfuncs.has(addr)) kfuncs.set(addr, fn);
  }
  // mirrors bpf_loop() in kernel/bpf/bpf_iter.c
  helpers.set(BPF_FUNC_loop, (vm) => {
    const nr = vm.arg(1), fn = vm.arg(2), ctx = vm.arg(3), flags = vm.arg(4);
    if (flags !== 0n) return -EINVAL;
    if (nr > BigInt(BPF_LOOP_MAX)) return -E2BIG;
    const n = Number(nr & 0xffffffffn);
    for (let i = 0; i < n; i++) {
      if (callbacks.call(vm, fn, [BigInt(i), ctx]) !== 0n) return i + 1;
    }
    return n;
  });
  const loaded = loadObjectIntoKernel(kernel, object, {
    // timers are freed here; kptrs, lists and rb-trees by the graph runtime
    fieldFreer: timerFieldFreer(
      kernel,
      runtime === undefined
        ? unwiredFieldFreer("a map without BTF")
        : graphFieldFreer(runtime),
    ),
    callbacks,
    kfuncs,
    helpers,
  });
  if (options.verify ?? kernel.verify) VERIFY.set(loaded, object);
  kernel.enableTimers((now) => serviceTimers(kernel, now));
  return loaded;
}

/** Objects as parsed, of loads that verify their programs before running them. */
const VERIFY = new WeakMap<LoadedObject, ObjectFile>();

/** The name of the program a state runs. */
function progName(owner: StateOwner): string {
  return owner.cpu.contexts[owner.level]?.invocation.name ?? "?";
}

/**
 * Whether the caller holds a `bpf_spin_lock` in the same allocation (map
 * value, global data section, object) as the graph root at `head`, the
 * rule the verifier enforces (a state outside the kernel counts as holding
 * it).
 */
function lockHeld(kernel: Kernel, vm: CallContext, head: bigint): boolean {
  const owner = vm.owner as StateOwner | undefined;
  // nothing can interleave with a program running alone or on one CPU
  if (owner === undefined || owner.alone || kernel.cpus.length < 2) {
    return true;
  }
  return kernel.locks.holdsInRegionOf(
    kernel.space,
    owner.cpu.id,
    owner.level,
    head,
  );
}

/**
 * Program `name` of an object loaded with {@link loadObjectWithRuntime},
 * ready for `kernel.submit`: verified (unless the load said `verify:
 * false`; a rejection throws `ProgramRejectedError`), compiled, with the
 * object's map helpers, the graph kfuncs and the other runtime helpers
 * attached. Programs of one loaded object share one runtime (so a CPU
 * keeps one state for them).
 */
export function kernelProgram(
  loaded: LoadedObject,
  name: string,
): LoadedProgram {
  const rewritten = verifiedRewrite(loaded, name);
  let runtime = RUNTIMES.get(loaded);
  if (runtime === undefined) {
    const helpers = objectHelpers(loaded);
    for (const [id, fn] of loaded.helpers) helpers.set(id, fn);
    runtime = { helpers, kfuncs: loaded.kfuncs };
    RUNTIMES.set(loaded, runtime);
    if (loaded.callbacks) registerCallbackRuntime(loaded.callbacks, runtime);
  }
  return { ...compileObjectProgram(loaded, name, rewritten), runtime };
}

const RUNTIMES = new WeakMap<LoadedObject, ProgramRuntime>();

/** Rewritten programs by loaded object and name (null: runs as loaded). */
/** What the verifier made of a program: see {@link verifiedProgram}. */
export interface VerifiedProgram {
  /** The program as rewritten, or undefined to run it as loaded. */
  readonly rewritten: readonly Insn[] | undefined;
  /** The bytes it reads and writes through `PTR_TO_BUF` (iterators' key and value). */
  readonly bufAccess: VerifyResult["bufAccess"];
}

const VERIFIED = new WeakMap<LoadedObject, Map<string, VerifiedProgram>>();

/**
 * `BPF_PROG_LOAD`'s verification of program `name` of `loaded`, once per
 * loaded object and program: what it accepted, rewritten (as the kernel
 * runs its xlated program), or — for a feature bpfsim's verifier does not
 * model — as loaded. A rejection throws `ProgramRejectedError`.
 */
export function verifiedProgram(
  loaded: LoadedObject,
  name: string,
): VerifiedProgram {
  let byName = VERIFIED.get(loaded);
  if (byName === undefined) VERIFIED.set(loaded, byName = new Map());
  let verified = byName.get(name);
  if (verified === undefined) {
    // the object as parsed, when the load kept it for verification
    const verdict = verifyBeforeRun(VERIFY.get(loaded) ?? loaded.object, name);
    verified = {
      rewritten: verdict.verdict === "accept" && verdict.xlated
        ? decodeRaw(verdict.xlated)
        : undefined,
      bufAccess: verdict.bufAccess,
    };
    byName.set(name, verified);
  }
  return verified;
}

/**
 * Program `name` as {@link verifiedProgram} rewrote it, when `loaded` was
 * loaded to be verified before running (the default); undefined means
 * "as loaded" (verification off, or a feature bpfsim's verifier does not
 * model).
 */
export function verifiedRewrite(
  loaded: LoadedObject,
  name: string,
): readonly Insn[] | undefined {
  return VERIFY.has(loaded)
    ? verifiedProgram(loaded, name).rewritten
    : undefined;
}
/**
 * A graph kfunc followed by the allocator's irq_work, when the kfunc queued
 * some and interrupts are on: in the kernel the allocator raises a self-IPI
 * that runs as soon as the kfunc returns — unless the CPU holds a
 * bpf_spin_lock (interrupts off; the scheduler runs it after the unlock) or
 * is in an NMI.
 */
function withIrqWork(kernel: Kernel, fn: KfuncFn): KfuncFn {
  return (vm) => {
    const result = fn(vm);
    const owner = vm.owner as StateOwner | undefined;
    if (owner !== undefined && owner.level === 0) {
      const ma = kernel.globalMa;
      const cpu = owner.cpu.id;
      if (
        ma.pendingIrqWork(cpu) > 0 && kernel.locks.heldBy(cpu, 0).length === 0
      ) {
        ma.runIrqWork(cpu);
      }
    }
    return result;
  };
}
