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
];

const BY_NAME: ReadonlyMap<string, number> = new Map(
  KERNEL_KFUNCS.map((name, i) => [name, KFUNC_ID_BASE + i]),
);

/** The BTF id of kfunc `name`, or undefined when the kernel has no such kfunc. */
export function kfuncBtfId(name: string): number | undefined {
  return BY_NAME.get(name);
}

/** The name of the kfunc with BTF id `id`, or undefined. */
export function kfuncName(id: number): string | undefined {
  return KERNEL_KFUNCS[id - KFUNC_ID_BASE];
}
