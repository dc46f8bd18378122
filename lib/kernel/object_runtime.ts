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

import { kfuncBtfId } from "./kfunc_ids.ts";
import { iterKfuncs } from "./iter_kfuncs.ts";
import {
  compileObjectProgram,
  type LoadedObject,
  loadObjectIntoKernel,
} from "./object_loader.ts";
import type { Kernel, LoadedProgram, ProgramRuntime } from "./kernel.ts";
import { mapHelpers } from "./map_helpers.ts";
import type { StateOwner } from "./helpers.ts";

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

/**
 * Loads `object` into `kernel` (see `loadObjectIntoKernel`) with a graph
 * runtime when the object has BTF, `bpf_kptr_xchg`, `bpf_loop` and the
 * verifier-only kfuncs.
 */
export function loadObjectWithRuntime(
  kernel: Kernel,
  object: ObjectFile,
): LoadedObject {
  const space = kernel.space;
  const callbacks = new BpfCallbacks(space);
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
  // mirrors bpf_loop() in kernel/bpf/bpf_iter.c
  helpers.set(BPF_FUNC_loop, (vm) => {
    const nr = vm.arg(1), fn = vm.arg(2), ctx = vm.arg(3), flags = vm.arg(4);
    if (flags !== 0n) return -22; // -EINVAL
    if (nr > BigInt(BPF_LOOP_MAX)) return -7; // -E2BIG
    const n = Number(nr & 0xffffffffn);
    for (let i = 0; i < n; i++) {
      if (callbacks.call(vm, fn, [BigInt(i), ctx]) !== 0n) return i + 1;
    }
    return n;
  });
  return loadObjectIntoKernel(kernel, object, {
    fieldFreer: runtime === undefined ? undefined : graphFieldFreer(runtime),
    callbacks,
    kfuncs,
    helpers,
  });
}

/**
 * Program `name` of an object loaded with {@link loadObjectWithRuntime},
 * ready for `kernel.submit`: compiled, with the object's map helpers, the
 * graph kfuncs and the other runtime helpers attached. Programs of one
 * loaded object share one runtime (so a CPU keeps one state for them).
 */
export function kernelProgram(
  loaded: LoadedObject,
  name: string,
): LoadedProgram {
  let runtime = RUNTIMES.get(loaded);
  if (runtime === undefined) {
    const helpers = new Map(mapHelpers(loaded.registry));
    for (const [id, fn] of loaded.helpers) helpers.set(id, fn);
    runtime = { helpers, kfuncs: loaded.kfuncs };
    RUNTIMES.set(loaded, runtime);
  }
  return { ...compileObjectProgram(loaded, name), runtime };
}

const RUNTIMES = new WeakMap<LoadedObject, ProgramRuntime>();

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
