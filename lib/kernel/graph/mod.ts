/**
 * The graph runtime of the simulated kernel: allocated objects, BPF linked
 * lists and rb-trees, refcounts and kptrs (kernel/bpf/helpers.c, Linux
 * 6.18), as kfuncs keyed by their BTF ids (lib/kernel/kfunc_ids.ts) and the
 * `bpf_kptr_xchg` helper.
 *
 * One {@link GraphRuntime} per loaded object (its BTF resolves
 * `bpf_obj_new(type)`); runtimes may share `bpf_global_ma` and, through
 * {@link GraphEnv.objects}, the table of live objects. Programs that pass
 * callbacks must be compiled with {@link BpfCallbacks.compile}. The
 * allocator's refills (irq_work) stay the scheduler's: `ma.runIrqWork(cpu)`.
 *
 * @example
 * ```ts
 * const space = new AddressSpace();
 * const ma = bpfMemAllocInit({ space, rcu: new RcuState(2) }, 0);
 * const callbacks = new BpfCallbacks(space);
 * const rt = new GraphRuntime({
 *   space, ma, callbacks, types: btfTypes(btf, metas), metas,
 * });
 * const prog = callbacks.compile(insns, "my_prog");
 * runProgram(prog, {
 *   space, kfuncs: graphKfuncs(rt), helpers: graphHelpers(),
 * });
 * createMap(space, attr, { record, fieldFreer: graphFieldFreer(rt) });
 * ```
 * @module
 */
import type { CallContext, HelperFn, KfuncFn } from "../../exec/state.ts";
import { kfuncBtfId } from "../kfunc_ids.ts";
import { listAdd, listDel, listPeek } from "./list.ts";
import type { GraphRuntime } from "./objects.ts";
import {
  rbtreeAdd,
  rbtreeChild,
  rbtreeFirst,
  rbtreeRemove,
  rbtreeRoot,
} from "./rbtree.ts";
import { refcountAcquire } from "./refcount.ts";
import { BPF_FUNC_kptr_xchg, bpfKptrXchg } from "./kptr.ts";

export {
  BpfCallbacks,
  CALLBACK_STEP_BUDGET,
  type CallbackTarget,
} from "./callback.ts";
export { graphFieldFreer } from "./field_freer.ts";
export { BPF_FUNC_kptr_xchg, bpfKptrXchg } from "./kptr.ts";
export * from "./layouts.ts";
export { listEntries } from "./list.ts";
export {
  BPF_GLOBAL_PERCPU_MA_MAX_SIZE,
  btfTypes,
  type GraphEnv,
  GraphRuntime,
  type ObjectTable,
  type ObjEntry,
  type ObjType,
} from "./objects.ts";
export { RbTree } from "./rb_core.ts";
export { refcountOf } from "./refcount.ts";

/** `site` text of a call, for allocator reports. */
function site(name: string, vm: CallContext): string {
  return `${name} insn ${vm.insnIndex}`;
}

/**
 * The graph kfuncs over `rt`, by BTF id. Arguments are as the program
 * passes them before the verifier's rewrite: `bpf_obj_new_impl(type_id,
 * meta)` takes the program-local type id; `meta` is ignored, and the `off`
 * of push/add is used when non-zero, else found from the object table.
 */
export function graphKfuncs(rt: GraphRuntime): Map<number, KfuncFn> {
  const fns: [string, KfuncFn][] = [
    ["bpf_obj_new_impl", (vm) => {
      const cpu = rt.enter(vm);
      return rt.objNew(cpu, rt.typeOf(vm.arg(1)), site("bpf_obj_new_impl", vm));
    }],
    ["bpf_percpu_obj_new_impl", (vm) => {
      const cpu = rt.enter(vm);
      const type = rt.typeOf(vm.arg(1));
      return rt.percpuObjNew(cpu, type, site("bpf_percpu_obj_new_impl", vm));
    }],
    ["bpf_obj_drop_impl", (vm) => {
      rt.objDrop(rt.enter(vm), vm.arg(1), site("bpf_obj_drop_impl", vm));
    }],
    ["bpf_percpu_obj_drop_impl", (vm) => {
      const where = site("bpf_percpu_obj_drop_impl", vm);
      rt.objDrop(rt.enter(vm), vm.arg(1), where, null, true);
    }],
    ["bpf_refcount_acquire_impl", (vm) => {
      rt.enter(vm);
      return refcountAcquire(rt, vm.arg(1));
    }],
    ["bpf_list_push_front_impl", (vm) => push(rt, vm, false)],
    ["bpf_list_push_back_impl", (vm) => push(rt, vm, true)],
    ["bpf_list_pop_front", (vm) => listDel(rt, vm.arg(1), false)],
    ["bpf_list_pop_back", (vm) => listDel(rt, vm.arg(1), true)],
    ["bpf_list_front", (vm) => listPeek(rt, vm.arg(1), false)],
    ["bpf_list_back", (vm) => listPeek(rt, vm.arg(1), true)],
    ["bpf_rbtree_add_impl", (vm) => {
      const cpu = rt.enter(vm);
      const where = site("bpf_rbtree_add_impl", vm);
      return rbtreeAdd(
        rt,
        vm,
        cpu,
        vm.arg(1),
        vm.arg(2),
        vm.arg(3),
        vm.arg(5),
        where,
      );
    }],
    ["bpf_rbtree_first", (vm) => rbtreeFirst(rt, vm.arg(1))],
    ["bpf_rbtree_remove", (vm) => rbtreeRemove(rt, vm.arg(1), vm.arg(2))],
    ["bpf_rbtree_root", (vm) => rbtreeRoot(rt, vm.arg(1))],
    ["bpf_rbtree_left", (vm) => rbtreeChild(rt, vm.arg(1), vm.arg(2), false)],
    ["bpf_rbtree_right", (vm) => rbtreeChild(rt, vm.arg(1), vm.arg(2), true)],
  ];
  const out = new Map<number, KfuncFn>();
  for (const [name, fn] of fns) out.set(kfuncBtfId(name)!, fn);
  return out;
}

/** `bpf_list_push_{front,back}_impl(head, node, meta, off)`. */
function push(rt: GraphRuntime, vm: CallContext, tail: boolean): number {
  const cpu = rt.enter(vm);
  const name = tail ? "bpf_list_push_back_impl" : "bpf_list_push_front_impl";
  return listAdd(
    rt,
    cpu,
    vm.arg(1),
    vm.arg(2),
    tail,
    vm.arg(4),
    site(name, vm),
  );
}

/** The graph helpers by id: `bpf_kptr_xchg` (194). */
export function graphHelpers(): Map<number, HelperFn> {
  return new Map<number, HelperFn>([[BPF_FUNC_kptr_xchg, bpfKptrXchg]]);
}
