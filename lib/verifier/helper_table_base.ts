/**
 * Prototypes of the generic helpers: kernel/bpf/helpers.c, ringbuf.c,
 * bpf_task_storage.c, bpf_cgrp_storage.c, stackmap.c and the base part of
 * kernel/trace/bpf_trace.c (Linux 6.18).
 * @module
 */
import {
  ANY,
  arg,
  BTF_ID,
  BTF_ID_OR_NULL,
  FIXED_OUT,
  FUNC,
  KEY,
  MAP,
  MEM_RO,
  MEM_RO_OR_NULL,
  MEM_RW,
  type NamedProto,
  proto,
  ret,
  SIZE,
  SIZE_OR_ZERO,
  STACK_OR_NULL,
  UNINIT_MEM,
  VALUE,
  VALUE_OR_NULL,
  VOID,
} from "./helper_table_defs.ts";

const MAP_VALUE_OR_NULL = ret("RET_PTR_TO_MAP_VALUE", ["PTR_MAYBE_NULL"]);
const TIMER = arg("ARG_PTR_TO_TIMER");
const PERCPU_BTF_ID = arg("ARG_PTR_TO_PERCPU_BTF_ID");

/** Map access and iteration (helpers.c, bpf_iter.c). */
export const MAP_PROTOS: readonly NamedProto[] = [
  proto("bpf_map_lookup_elem_proto", 1, {
    pkt: true,
    ret: MAP_VALUE_OR_NULL,
    args: [MAP, KEY],
  }),
  proto("bpf_map_update_elem_proto", 2, {
    pkt: true,
    args: [MAP, KEY, VALUE, ANY],
  }),
  proto("bpf_map_delete_elem_proto", 3, { pkt: true, args: [MAP, KEY] }),
  proto("bpf_map_push_elem_proto", 87, { pkt: true, args: [MAP, VALUE, ANY] }),
  proto("bpf_map_pop_elem_proto", 88, {
    args: [MAP, arg("ARG_PTR_TO_MAP_VALUE", "MEM_UNINIT", "MEM_WRITE")],
  }),
  proto("bpf_map_peek_elem_proto", 89, {
    args: [MAP, arg("ARG_PTR_TO_MAP_VALUE", "MEM_UNINIT", "MEM_WRITE")],
  }),
  proto("bpf_map_lookup_percpu_elem_proto", 195, {
    pkt: true,
    ret: MAP_VALUE_OR_NULL,
    args: [MAP, KEY, ANY],
  }),
  proto("bpf_for_each_map_elem_proto", 164, {
    args: [MAP, FUNC, STACK_OR_NULL, ANY],
  }),
  proto("bpf_loop_proto", 181, { args: [ANY, FUNC, STACK_OR_NULL, ANY] }),
  proto("bpf_get_local_storage_proto", 81, {
    ret: ret("RET_PTR_TO_MAP_VALUE"),
    args: [MAP, ANY],
  }),
  proto("bpf_tail_call_proto", 12, {
    ret: VOID,
    args: [arg("ARG_PTR_TO_CTX"), MAP, ANY],
  }),
  proto("bpf_task_storage_get_proto", 156, {
    ret: MAP_VALUE_OR_NULL,
    args: [MAP, BTF_ID_OR_NULL, VALUE_OR_NULL, ANY],
    btf: { 1: "task_struct" },
  }),
  proto("bpf_task_storage_delete_proto", 157, {
    args: [MAP, BTF_ID_OR_NULL],
    btf: { 1: "task_struct" },
  }),
  proto("bpf_cgrp_storage_get_proto", 210, {
    ret: MAP_VALUE_OR_NULL,
    args: [MAP, BTF_ID_OR_NULL, VALUE_OR_NULL, ANY],
    btf: { 1: "cgroup" },
  }),
  proto("bpf_cgrp_storage_delete_proto", 211, {
    args: [MAP, BTF_ID_OR_NULL],
    btf: { 1: "cgroup" },
  }),
  proto("bpf_current_task_under_cgroup_proto", 37, { args: [MAP, ANY] }),
];

/** BPF ring buffer (kernel/bpf/ringbuf.c). */
export const RINGBUF_PROTOS: readonly NamedProto[] = [
  proto("bpf_ringbuf_output_proto", 130, {
    args: [MAP, MEM_RO, SIZE_OR_ZERO, ANY],
  }),
  proto("bpf_ringbuf_reserve_proto", 131, {
    ret: ret("RET_PTR_TO_MEM", ["PTR_MAYBE_NULL", "MEM_RINGBUF"]),
    args: [MAP, arg("ARG_CONST_ALLOC_SIZE_OR_ZERO"), ANY],
  }),
  proto("bpf_ringbuf_submit_proto", 132, {
    ret: VOID,
    args: [arg("ARG_PTR_TO_RINGBUF_MEM", "OBJ_RELEASE"), ANY],
  }),
  proto("bpf_ringbuf_discard_proto", 133, {
    ret: VOID,
    args: [arg("ARG_PTR_TO_RINGBUF_MEM", "OBJ_RELEASE"), ANY],
  }),
  proto("bpf_ringbuf_query_proto", 134, { args: [MAP, ANY] }),
  proto("bpf_ringbuf_reserve_dynptr_proto", 198, {
    args: [
      MAP,
      ANY,
      ANY,
      arg("ARG_PTR_TO_DYNPTR", "DYNPTR_TYPE_RINGBUF", "MEM_UNINIT"),
    ],
  }),
  proto("bpf_ringbuf_submit_dynptr_proto", 199, {
    ret: VOID,
    args: [arg("ARG_PTR_TO_DYNPTR", "DYNPTR_TYPE_RINGBUF", "OBJ_RELEASE"), ANY],
  }),
  proto("bpf_ringbuf_discard_dynptr_proto", 200, {
    ret: VOID,
    args: [arg("ARG_PTR_TO_DYNPTR", "DYNPTR_TYPE_RINGBUF", "OBJ_RELEASE"), ANY],
  }),
  proto("bpf_user_ringbuf_drain_proto", 209, {
    args: [MAP, FUNC, STACK_OR_NULL, ANY],
  }),
];

/** Dynptrs, locks, timers, kptrs, per-CPU pointers (helpers.c). */
export const OBJECT_PROTOS: readonly NamedProto[] = [
  proto("bpf_spin_lock_proto", 93, {
    ret: VOID,
    args: [arg("ARG_PTR_TO_SPIN_LOCK")],
  }),
  proto("bpf_spin_unlock_proto", 94, {
    ret: VOID,
    args: [arg("ARG_PTR_TO_SPIN_LOCK")],
  }),
  proto("bpf_timer_init_proto", 169, { gpl: true, args: [TIMER, MAP, ANY] }),
  proto("bpf_timer_set_callback_proto", 170, {
    gpl: true,
    args: [TIMER, FUNC],
  }),
  proto("bpf_timer_start_proto", 171, { gpl: true, args: [TIMER, ANY, ANY] }),
  proto("bpf_timer_cancel_proto", 172, { gpl: true, args: [TIMER] }),
  proto("bpf_kptr_xchg_proto", 194, {
    // ret_btf_id and arg2_btf_id are BPF_PTR_POISON: the verifier takes the
    // type from the kptr field that arg1 points to.
    ret: ret("RET_PTR_TO_BTF_ID", ["PTR_MAYBE_NULL"]),
    args: [
      arg("ARG_KPTR_XCHG_DEST"),
      arg("ARG_PTR_TO_BTF_ID", "PTR_MAYBE_NULL", "OBJ_RELEASE"),
    ],
  }),
  proto("bpf_per_cpu_ptr_proto", 153, {
    ret: ret("RET_PTR_TO_MEM_OR_BTF_ID", ["PTR_MAYBE_NULL", "MEM_RDONLY"]),
    args: [PERCPU_BTF_ID, ANY],
  }),
  proto("bpf_this_cpu_ptr_proto", 154, {
    ret: ret("RET_PTR_TO_MEM_OR_BTF_ID", ["MEM_RDONLY"]),
    args: [PERCPU_BTF_ID],
  }),
  proto("bpf_dynptr_from_mem_proto", 197, {
    args: [
      UNINIT_MEM,
      SIZE_OR_ZERO,
      ANY,
      arg("ARG_PTR_TO_DYNPTR", "DYNPTR_TYPE_LOCAL", "MEM_UNINIT"),
    ],
  }),
  proto("bpf_dynptr_read_proto", 201, {
    args: [
      UNINIT_MEM,
      SIZE_OR_ZERO,
      arg("ARG_PTR_TO_DYNPTR", "MEM_RDONLY"),
      ANY,
      ANY,
    ],
  }),
  proto("bpf_dynptr_write_proto", 202, {
    args: [arg("ARG_PTR_TO_DYNPTR"), ANY, MEM_RO, SIZE_OR_ZERO, ANY],
  }),
  proto("bpf_dynptr_data_proto", 203, {
    ret: ret("RET_PTR_TO_MEM", ["PTR_MAYBE_NULL"]),
    args: [
      arg("ARG_PTR_TO_DYNPTR", "MEM_RDONLY"),
      ANY,
      arg("ARG_CONST_ALLOC_SIZE_OR_ZERO"),
    ],
  }),
];

/** Time, ids, strings and the current task (helpers.c, bpf_trace.c). */
export const MISC_PROTOS: readonly NamedProto[] = [
  proto("bpf_get_prandom_u32_proto", 7),
  proto("bpf_get_smp_processor_id_proto", 8, { fastcall: true }),
  proto("bpf_get_numa_node_id_proto", 42),
  proto("bpf_ktime_get_ns_proto", 5),
  proto("bpf_ktime_get_boot_ns_proto", 125),
  proto("bpf_ktime_get_coarse_ns_proto", 160),
  proto("bpf_ktime_get_tai_ns_proto", 208),
  proto("bpf_jiffies64_proto", 118),
  proto("bpf_get_current_pid_tgid_proto", 14),
  proto("bpf_get_current_uid_gid_proto", 15),
  proto("bpf_get_current_comm_proto", 16, { args: [UNINIT_MEM, SIZE] }),
  proto("bpf_get_ns_current_pid_tgid_proto", 120, {
    args: [ANY, ANY, UNINIT_MEM, SIZE],
  }),
  proto("bpf_get_current_cgroup_id_proto", 80),
  proto("bpf_get_current_ancestor_cgroup_id_proto", 123, { args: [ANY] }),
  proto("bpf_get_cgroup_classid_curr_proto", 17),
  proto("bpf_strtol_proto", 105, {
    args: [MEM_RO, SIZE, ANY, FIXED_OUT],
    sizes: { 3: 8 },
  }),
  proto("bpf_strtoul_proto", 106, {
    args: [MEM_RO, SIZE, ANY, FIXED_OUT],
    sizes: { 3: 8 },
  }),
  proto("bpf_strncmp_proto", 182, {
    args: [MEM_RO, SIZE, arg("ARG_PTR_TO_CONST_STR")],
  }),
  proto("bpf_snprintf_proto", 165, {
    gpl: true,
    args: [
      arg("ARG_PTR_TO_MEM", "PTR_MAYBE_NULL", "MEM_WRITE"),
      SIZE_OR_ZERO,
      arg("ARG_PTR_TO_CONST_STR"),
      MEM_RO_OR_NULL,
      SIZE_OR_ZERO,
    ],
  }),
  proto("bpf_trace_printk_proto", 6, { gpl: true, args: [MEM_RO, SIZE] }),
  proto("bpf_trace_vprintk_proto", 177, {
    gpl: true,
    args: [MEM_RO, SIZE, MEM_RO_OR_NULL, SIZE_OR_ZERO],
  }),
  proto("bpf_snprintf_btf_proto", 149, {
    args: [MEM_RW, SIZE, MEM_RO, SIZE, ANY],
  }),
  proto("bpf_get_current_task_proto", 35, { gpl: true }),
  proto("bpf_get_current_task_btf_proto", 158, {
    gpl: true,
    ret: ret("RET_PTR_TO_BTF_ID", ["PTR_TRUSTED"], "task_struct"),
  }),
  proto("bpf_task_pt_regs_proto", 175, {
    gpl: true,
    ret: ret("RET_PTR_TO_BTF_ID", ["PTR_TRUSTED"], "pt_regs"),
    args: [BTF_ID],
    btf: { 0: "task_struct" },
  }),
  proto("bpf_send_signal_proto", 109, { args: [ANY] }),
  proto("bpf_send_signal_thread_proto", 117, { args: [ANY] }),
  proto("bpf_perf_event_read_proto", 22, { gpl: true, args: [MAP, ANY] }),
  proto("bpf_perf_event_read_value_proto", 55, {
    gpl: true,
    args: [MAP, ANY, UNINIT_MEM, SIZE],
  }),
  proto("bpf_get_task_stack_proto", 141, {
    args: [BTF_ID, UNINIT_MEM, SIZE_OR_ZERO, ANY],
    btf: { 0: "task_struct" },
  }),
  proto("bpf_get_task_stack_sleepable_proto", 141, {
    args: [BTF_ID, UNINIT_MEM, SIZE_OR_ZERO, ANY],
    btf: { 0: "task_struct" },
  }),
  proto("bpf_get_branch_snapshot_proto", 176, {
    gpl: true,
    args: [UNINIT_MEM, SIZE_OR_ZERO, ANY],
  }),
  proto("bpf_find_vma_proto", 180, {
    args: [BTF_ID, ANY, FUNC, STACK_OR_NULL, ANY],
    btf: { 0: "task_struct" },
  }),
];

/** Reading other address spaces (bpf_trace.c, helpers.c). */
export const PROBE_PROTOS: readonly NamedProto[] = [
  proto("bpf_probe_read_user_proto", 112, {
    gpl: true,
    args: [UNINIT_MEM, SIZE_OR_ZERO, ANY],
  }),
  proto("bpf_probe_read_kernel_proto", 113, {
    gpl: true,
    args: [UNINIT_MEM, SIZE_OR_ZERO, ANY],
  }),
  proto("bpf_probe_read_user_str_proto", 114, {
    gpl: true,
    args: [UNINIT_MEM, SIZE_OR_ZERO, ANY],
  }),
  proto("bpf_probe_read_kernel_str_proto", 115, {
    gpl: true,
    args: [UNINIT_MEM, SIZE_OR_ZERO, ANY],
  }),
  proto("bpf_probe_read_compat_proto", 4, {
    gpl: true,
    args: [UNINIT_MEM, SIZE_OR_ZERO, ANY],
  }),
  proto("bpf_probe_read_compat_str_proto", 45, {
    gpl: true,
    args: [UNINIT_MEM, SIZE_OR_ZERO, ANY],
  }),
  proto("bpf_copy_from_user_proto", 148, {
    sleeps: true,
    args: [UNINIT_MEM, SIZE_OR_ZERO, ANY],
  }),
  proto("bpf_copy_from_user_task_proto", 191, {
    gpl: true,
    sleeps: true,
    args: [UNINIT_MEM, SIZE_OR_ZERO, ANY, BTF_ID, ANY],
    btf: { 3: "task_struct" },
  }),
  proto("bpf_probe_write_user_proto", 36, {
    gpl: true,
    args: [ANY, MEM_RO, SIZE],
  }),
];
