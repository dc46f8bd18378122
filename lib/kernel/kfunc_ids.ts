/**
 * The kernel functions the simulated kernel exports, with the BTF ids its
 * (simulated) vmlinux BTF gives them. libbpf resolves a program's `__ksym`
 * kfunc externs against this table, as it does against
 * `/sys/kernel/btf/vmlinux` (see `resolveKsyms` in lib/elf).
 *
 * Ids are stable: a kfunc's id is its position here plus `KFUNC_ID_BASE`,
 * so append new kfuncs at the end.
 * @module
 */

/** First id; far above any type id of a program's own BTF, so the two never mix. */
export const KFUNC_ID_BASE = 100_000;

/**
 * First "address" of a kfunc: after verification the kernel replaces a
 * kfunc call's BTF id by the function's address (`fixup_kfunc_call()`) and
 * has filled in the arguments the program left as placeholders; the
 * simulated kernel calls the rewritten form through these ids.
 */
export const KFUNC_ADDR_BASE = 200_000;

/** Kfunc names in id order (append only). */
export const KERNEL_KFUNCS: readonly string[] = [
  // allocated objects (kernel/bpf/helpers.c)
  "bpf_obj_new_impl",
  "bpf_obj_drop_impl",
  "bpf_percpu_obj_new_impl",
  "bpf_percpu_obj_drop_impl",
  "bpf_refcount_acquire_impl",
  // linked lists
  "bpf_list_push_front_impl",
  "bpf_list_push_back_impl",
  "bpf_list_pop_front",
  "bpf_list_pop_back",
  "bpf_list_front",
  "bpf_list_back",
  // rb-trees
  "bpf_rbtree_add_impl",
  "bpf_rbtree_first",
  "bpf_rbtree_remove",
  "bpf_rbtree_root",
  "bpf_rbtree_left",
  "bpf_rbtree_right",
  // RCU and casts
  "bpf_rcu_read_lock",
  "bpf_rcu_read_unlock",
  "bpf_cast_to_kern_ctx",
  "bpf_rdonly_cast",
  // preemption and IRQ state
  "bpf_preempt_disable",
  "bpf_preempt_enable",
  "bpf_local_irq_save",
  "bpf_local_irq_restore",
  // open-coded numeric iterator (kernel/bpf/bpf_iter.c)
  "bpf_iter_num_new",
  "bpf_iter_num_next",
  "bpf_iter_num_destroy",
  // the names "Local kptrs, BPF linked lists" first proposed for
  // bpf_obj_new_impl / bpf_obj_drop_impl (bpfsim aliases; Linux has none)
  "bpf_kptr_new",
  "bpf_kptr_drop",
];

/** bpfsim's aliases of kernel kfuncs: alias name → the kfunc it stands for. */
export const KFUNC_ALIASES: ReadonlyMap<string, string> = new Map([
  ["bpf_kptr_new", "bpf_obj_new_impl"],
  ["bpf_kptr_drop", "bpf_obj_drop_impl"],
]);

const BY_NAME: ReadonlyMap<string, number> = new Map(
  KERNEL_KFUNCS.map((name, i) => [name, KFUNC_ID_BASE + i]),
);

/** The BTF id of kfunc `name`, or undefined when the kernel has no such kfunc. */
export function kfuncBtfId(name: string): number | undefined {
  return BY_NAME.get(name);
}

/**
 * The name of the kfunc with BTF id `id` — or, after rewriting, with
 * address id `id` ({@link kfuncAddrId}) — or undefined.
 */
export function kfuncName(id: number): string | undefined {
  if (id >= KFUNC_ADDR_BASE) return KERNEL_KFUNCS[id - KFUNC_ADDR_BASE];
  return KERNEL_KFUNCS[id - KFUNC_ID_BASE];
}

/** The address id a rewritten call of the kfunc with BTF id `btfId` uses. */
export function kfuncAddrId(btfId: number): number {
  return btfId - KFUNC_ID_BASE + KFUNC_ADDR_BASE;
}

/** True for an address id (a call the verifier has rewritten). */
export function isKfuncAddrId(id: number): boolean {
  return id >= KFUNC_ADDR_BASE && id < KFUNC_ADDR_BASE + KERNEL_KFUNCS.length;
}
