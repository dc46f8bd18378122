/**
 * The kernel functions the verifier knows, as the kernel describes them: the
 * BTF prototype (argument names carry meaning: `__k` constant, `__ign`
 * ignored, `__alloc` allocated object, `__refcounted_kptr`; pointer targets
 * such as `struct bpf_list_head` pick the argument kind), the `KF_*` flags of
 * its `BTF_ID_FLAGS()` line (kernel/bpf/helpers.c) and the kfunc id set that
 * decides which program types may call it (`btf_kfunc_id_set_contains()`).
 * @module
 */

/** `KF_ACQUIRE`: returns a new reference. */
export const KF_ACQUIRE = 1 << 0;
/** `KF_RELEASE`: releases its referenced argument. */
export const KF_RELEASE = 1 << 1;
/** `KF_RET_NULL`: the result may be NULL. */
export const KF_RET_NULL = 1 << 2;
/** `KF_TRUSTED_ARGS`: pointer arguments must be trusted. */
export const KF_TRUSTED_ARGS = 1 << 4;
/** `KF_SLEEPABLE`. */
export const KF_SLEEPABLE = 1 << 5;
/** `KF_RCU`: pointer arguments may be RCU-protected. */
export const KF_RCU = 1 << 7;

/**
 * What an argument is, from its BTF type and name suffix
 * (`get_kfunc_ptr_arg_type()` and the scalar cases of `check_kfunc_args()`).
 */
export type KfuncArgKind =
  | "scalar"
  | "constant" // scalar named `…__k`
  | "ignore" // `…__ign`
  | "alloc_obj" // `…__alloc`
  | "refcounted_kptr" // `…__refcounted_kptr`
  | "list_head"
  | "list_node"
  | "rb_root"
  | "rb_node"
  | "callback"
  | "iter"; // an iterator on the stack (`struct bpf_iter_<kind> *`)

/** One parameter of a kfunc's BTF prototype. */
export interface KfuncArg {
  /** The parameter name (the log names arguments by index, this documents them). */
  readonly name: string;
  /** Its kind. */
  readonly kind: KfuncArgKind;
}

/** The return type of a kfunc's prototype. */
export type KfuncRet =
  | "void"
  | "scalar"
  | "void_ptr"
  | "list_node"
  | "rb_node"
  | "rdonly_int_ptr"; // `int *`: PTR_TO_MEM | MEM_RDONLY of 4 bytes

/** Which kfunc id set a kfunc belongs to. */
export type KfuncSet = "generic" | "common";

/** A kfunc as the verifier sees it (`struct bpf_kfunc_call_arg_meta` inputs). */
export interface KfuncDesc {
  /** Name in vmlinux BTF. */
  readonly name: string;
  /** `KF_*` flags. */
  readonly flags: number;
  /** BTF parameters in order. */
  readonly args: readonly KfuncArg[];
  /** Return type. */
  readonly ret: KfuncRet;
  /** `generic_kfunc_set` (some program types) or `common_kfunc_set` (all). */
  readonly set: KfuncSet;
  /** `KF_ITER_NEW` / `KF_ITER_NEXT` / `KF_ITER_DESTROY`, with the iterator type. */
  readonly iter?: {
    readonly op: "new" | "next" | "destroy";
    readonly kind: string;
  };
}

const a = (name: string, kind: KfuncArgKind): KfuncArg => ({ name, kind });
const META = a("meta__ign", "ignore");

function desc(
  name: string,
  flags: number,
  args: KfuncArg[],
  ret: KfuncRet,
  set: KfuncSet = "generic",
): KfuncDesc {
  return { name, flags, args, ret, set };
}

function iterDesc(
  base: KfuncDesc,
  op: "new" | "next" | "destroy",
  kind: string,
): KfuncDesc {
  return { ...base, iter: { op, kind } };
}

const PUSH_ARGS = [
  a("head", "list_head"),
  a("node", "list_node"),
  META,
  a("off", "scalar"),
];

/** Every kfunc the verifier models, by name. */
export const KFUNCS: ReadonlyMap<string, KfuncDesc> = new Map(
  [
    desc("bpf_obj_new_impl", KF_ACQUIRE | KF_RET_NULL, [
      a("local_type_id__k", "constant"),
      META,
    ], "void_ptr"),
    desc("bpf_percpu_obj_new_impl", KF_ACQUIRE | KF_RET_NULL, [
      a("local_type_id__k", "constant"),
      META,
    ], "void_ptr"),
    // 6.18 marks the drops KF_TRUSTED_ARGS ("R1 must be referenced or trusted")
    desc("bpf_obj_drop_impl", KF_RELEASE | KF_TRUSTED_ARGS, [
      a("p__alloc", "alloc_obj"),
      META,
    ], "void"),
    desc("bpf_percpu_obj_drop_impl", KF_RELEASE | KF_TRUSTED_ARGS, [
      a("p__alloc", "alloc_obj"),
      META,
    ], "void"),
    desc("bpf_refcount_acquire_impl", KF_ACQUIRE | KF_RET_NULL | KF_RCU, [
      a("p__refcounted_kptr", "refcounted_kptr"),
      META,
    ], "void_ptr"),
    desc("bpf_list_push_front_impl", 0, PUSH_ARGS, "scalar"),
    desc("bpf_list_push_back_impl", 0, PUSH_ARGS, "scalar"),
    desc("bpf_list_pop_front", KF_ACQUIRE | KF_RET_NULL, [
      a("head", "list_head"),
    ], "list_node"),
    desc("bpf_list_pop_back", KF_ACQUIRE | KF_RET_NULL, [
      a("head", "list_head"),
    ], "list_node"),
    desc("bpf_list_front", KF_RET_NULL, [a("head", "list_head")], "list_node"),
    desc("bpf_list_back", KF_RET_NULL, [a("head", "list_head")], "list_node"),
    desc("bpf_rbtree_remove", KF_ACQUIRE | KF_RET_NULL, [
      a("root", "rb_root"),
      a("node", "rb_node"),
    ], "rb_node"),
    desc("bpf_rbtree_add_impl", 0, [
      a("root", "rb_root"),
      a("node", "rb_node"),
      a("less", "callback"),
      META,
      a("off", "scalar"),
    ], "scalar"),
    desc("bpf_rbtree_first", KF_RET_NULL, [a("root", "rb_root")], "rb_node"),
    desc("bpf_rbtree_root", KF_RET_NULL, [a("root", "rb_root")], "rb_node"),
    desc("bpf_rbtree_left", KF_RET_NULL, [
      a("root", "rb_root"),
      a("node", "rb_node"),
    ], "rb_node"),
    desc("bpf_rbtree_right", KF_RET_NULL, [
      a("root", "rb_root"),
      a("node", "rb_node"),
    ], "rb_node"),
    // open-coded iterators (kernel/bpf/bpf_iter.c), common_kfunc_set
    iterDesc(
      desc(
        "bpf_iter_num_new",
        0,
        [
          a("it", "iter"),
          a("start", "scalar"),
          a("end", "scalar"),
        ],
        "scalar",
        "common",
      ),
      "new",
      "num",
    ),
    iterDesc(
      desc(
        "bpf_iter_num_next",
        KF_RET_NULL,
        [a("it", "iter")],
        "rdonly_int_ptr",
        "common",
      ),
      "next",
      "num",
    ),
    iterDesc(
      desc("bpf_iter_num_destroy", 0, [a("it", "iter")], "void", "common"),
      "destroy",
      "num",
    ),
    desc("bpf_rcu_read_lock", 0, [], "void", "common"),
    desc("bpf_rcu_read_unlock", 0, [], "void", "common"),
    desc("bpf_preempt_disable", 0, [], "void", "common"),
    desc("bpf_preempt_enable", 0, [], "void", "common"),
  ].map((d) => [d.name, d]),
);

/**
 * Program types that registered `generic_kfunc_set` in Linux 6.18 (libbpf
 * type names; `tracing` covers fentry/fexit/tp_btf/iter).
 */
const GENERIC_PROG_TYPES: ReadonlySet<string> = new Set([
  "tracing",
  "sched_cls",
  "xdp",
  "struct_ops",
  "syscall",
  "cgroup_skb",
  "perf_event",
  "tracepoint",
]);

/** Mirrors `btf_kfunc_id_set_contains()`: may `progType` call `k`? */
export function kfuncAllowed(k: KfuncDesc, progType: string): boolean {
  return k.set === "common" || GENERIC_PROG_TYPES.has(progType);
}

/** The graph kfuncs callable while a bpf_spin_lock is held (`kfunc_spin_allowed()`). */
export function kfuncSpinAllowed(name: string): boolean {
  return /^bpf_(list|rbtree)_/.test(name) ||
    name === "bpf_refcount_acquire_impl";
}

/** Kfuncs of `is_bpf_rbtree_api_kfunc()` (they need the rbtree's lock). */
export function isRbtreeApi(name: string): boolean {
  return name.startsWith("bpf_rbtree_");
}
