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
import { KFUNC_ALIASES, kfuncAddrId, kfuncBtfId } from "../kfunc_ids.ts";
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
  type GraphEventKind,
  GraphRuntime,
  type GraphTrace,
  type ObjectTable,
  type ObjEntry,
  type ObjType,
  type RacingListOp,
  type RacingOp,
  type RacingRbOp,
  typeLabel,
} from "./objects.ts";
export { RbTree } from "./rb_core.ts";
export { refcountOf } from "./refcount.ts";

/**
 * The graph kfuncs over `rt`, by BTF id — arguments as the program passes
 * them before the verifier's rewrite: `bpf_obj_new_impl(type_id, meta)`
 * takes the program-local type id; `meta` is ignored, and the `off` of
 * push/add is used when non-zero, else found from the object table — and
 * by address id (`kfuncAddrId`), as the rewritten program calls them:
 * `bpf_obj_new_impl(size, struct_meta)`, push/add with the node offset.
 * Each call is entered in `rt` (its CPU, program and insn name the sites
 * of allocations and frees, and the trace events) and left when it returns.
 */
export function graphKfuncs(rt: GraphRuntime): Map<number, KfuncFn> {
  const fns: [
    string,
    (vm: CallContext, cpu: number) => number | bigint | void,
  ][] = [
    [
      "bpf_obj_new_impl",
      (vm, cpu) =>
        rt.objNew(cpu, rt.typeOf(vm.arg(1)), rt.site("bpf_obj_new_impl")),
    ],
    ["bpf_percpu_obj_new_impl", (vm, cpu) =>
      rt.percpuObjNew(
        cpu,
        rt.typeOf(vm.arg(1)),
        rt.site("bpf_percpu_obj_new_impl"),
      )],
    ["bpf_obj_drop_impl", (vm, cpu) => {
      rt.objDrop(cpu, vm.arg(1), rt.site("bpf_obj_drop_impl"));
    }],
    ["bpf_percpu_obj_drop_impl", (vm, cpu) => {
      const where = rt.site("bpf_percpu_obj_drop_impl");
      rt.objDrop(cpu, vm.arg(1), where, null, true);
    }],
    ["bpf_refcount_acquire_impl", (vm) => refcountAcquire(rt, vm.arg(1))],
    ["bpf_list_push_front_impl", (vm, cpu) => push(rt, vm, cpu, false)],
    ["bpf_list_push_back_impl", (vm, cpu) => push(rt, vm, cpu, true)],
    ["bpf_list_pop_front", (vm) => listDel(rt, vm.arg(1), false)],
    ["bpf_list_pop_back", (vm) => listDel(rt, vm.arg(1), true)],
    ["bpf_list_front", (vm) => listPeek(rt, vm.arg(1), false)],
    ["bpf_list_back", (vm) => listPeek(rt, vm.arg(1), true)],
    ["bpf_rbtree_add_impl", (vm, cpu) =>
      rbtreeAdd(
        rt,
        vm,
        cpu,
        vm.arg(1),
        vm.arg(2),
        vm.arg(3),
        vm.arg(5),
        rt.site("bpf_rbtree_add_impl"),
      )],
    ["bpf_rbtree_first", (vm) => rbtreeFirst(rt, vm.arg(1))],
    ["bpf_rbtree_remove", (vm) => rbtreeRemove(rt, vm.arg(1), vm.arg(2))],
    ["bpf_rbtree_root", (vm) => rbtreeRoot(rt, vm.arg(1))],
    ["bpf_rbtree_left", (vm) => rbtreeChild(rt, vm.arg(1), vm.arg(2), false)],
    ["bpf_rbtree_right", (vm) => rbtreeChild(rt, vm.arg(1), vm.arg(2), true)],
  ];
  // after the verifier's rewrite (fixup_kfunc_call()), obj_new gets the
  // object's size and its struct meta (0 for a type without special fields)
  const rewritten: typeof fns = [
    ["bpf_obj_new_impl", (vm, cpu) =>
      rt.objNew(
        cpu,
        rt.typeFromFixup(vm.arg(1), vm.arg(2)),
        rt.site("bpf_obj_new_impl"),
      )],
    ["bpf_percpu_obj_new_impl", (vm, cpu) =>
      rt.percpuObjNew(
        cpu,
        rt.typeFromFixup(vm.arg(1), vm.arg(2)),
        rt.site("bpf_percpu_obj_new_impl"),
      )],
  ];
  const out = new Map<number, KfuncFn>();
  const wrap =
    (fn: (vm: CallContext, cpu: number) => number | bigint | void) =>
    (vm: CallContext) => {
      const outer = rt.vm; // a callback's kfunc nests inside its caller's
      const cpu = rt.enter(vm);
      try {
        return fn(vm, cpu);
      } finally {
        rt.leave(outer);
      }
    };
  const byName = new Map(fns);
  const rewrittenByName = new Map(rewritten);
  for (const [name, fn] of fns) {
    const id = kfuncBtfId(name)!;
    out.set(id, wrap(fn));
    out.set(kfuncAddrId(id), wrap(rewrittenByName.get(name) ?? fn));
  }
  // bpfsim's aliases (bpf_kptr_new …) run their kfunc
  for (const [alias, name] of KFUNC_ALIASES) {
    const id = kfuncBtfId(alias)!;
    out.set(id, wrap(byName.get(name)!));
    out.set(
      kfuncAddrId(id),
      wrap(rewrittenByName.get(name) ?? byName.get(name)!),
    );
  }
  return out;
}

/** `bpf_list_push_{front,back}_impl(head, node, meta, off)`. */
function push(
  rt: GraphRuntime,
  vm: CallContext,
  cpu: number,
  tail: boolean,
): number {
  const name = tail ? "bpf_list_push_back_impl" : "bpf_list_push_front_impl";
  return listAdd(rt, cpu, vm.arg(1), vm.arg(2), tail, vm.arg(4), rt.site(name));
}

/** The graph helpers by id: `bpf_kptr_xchg` (194). */
export function graphHelpers(): Map<number, HelperFn> {
  return new Map<number, HelperFn>([[BPF_FUNC_kptr_xchg, bpfKptrXchg]]);
}
