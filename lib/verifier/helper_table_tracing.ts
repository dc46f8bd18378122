/**
 * Prototypes of the tracing helpers: kernel/trace/bpf_trace.c,
 * kernel/bpf/bpf_lsm.c, bpf_inode_storage.c, syscall.c (Linux 6.18).
 * Several ids have one prototype per attach point (`_tp`, `_raw_tp`, `_pe`).
 * @module
 */
import {
  ANY,
  arg,
  BTF_ID,
  BTF_ID_OR_NULL,
  CTX,
  FIXED_OUT,
  MAP,
  MEM_RO,
  MEM_RO_OR_NULL,
  MEM_RW,
  type NamedProto,
  proto,
  ret,
  SIZE,
  SIZE_OR_ZERO,
  UNINIT_MEM,
  VALUE_OR_NULL,
} from "./helper_table_defs.ts";

const OUTPUT_ARGS = [CTX, MAP, ANY, MEM_RO, SIZE_OR_ZERO];
const STACKID_ARGS = [CTX, MAP, ANY];
const STACK_ARGS = [CTX, UNINIT_MEM, SIZE_OR_ZERO, ANY];
const SEQ_FILE = { 0: "seq_file" };

/** perf output, stacks and attach-point facts, one variant per program kind. */
export const TRACE_PROTOS: readonly NamedProto[] = [
  proto("bpf_perf_event_output_proto", 25, { gpl: true, args: OUTPUT_ARGS }),
  proto("bpf_perf_event_output_proto_tp", 25, { gpl: true, args: OUTPUT_ARGS }),
  proto("bpf_perf_event_output_proto_raw_tp", 25, {
    gpl: true,
    args: OUTPUT_ARGS,
  }),
  proto("bpf_get_stackid_proto", 27, { gpl: true, args: STACKID_ARGS }),
  proto("bpf_get_stackid_proto_tp", 27, { gpl: true, args: STACKID_ARGS }),
  proto("bpf_get_stackid_proto_raw_tp", 27, { gpl: true, args: STACKID_ARGS }),
  proto("bpf_get_stackid_proto_pe", 27, { gpl: true, args: STACKID_ARGS }),
  proto("bpf_get_stack_proto", 67, { gpl: true, args: STACK_ARGS }),
  proto("bpf_get_stack_proto_tp", 67, { gpl: true, args: STACK_ARGS }),
  proto("bpf_get_stack_proto_raw_tp", 67, { gpl: true, args: STACK_ARGS }),
  proto("bpf_get_stack_proto_pe", 67, { gpl: true, args: STACK_ARGS }),
  proto("bpf_get_stack_sleepable_proto", 67, { gpl: true, args: STACK_ARGS }),
  proto("bpf_perf_prog_read_value_proto", 56, {
    gpl: true,
    args: [CTX, UNINIT_MEM, SIZE],
  }),
  proto("bpf_read_branch_records_proto", 119, {
    gpl: true,
    // buf may be NULL when flags ask only for the size (BPF_F_GET_BRANCH_RECORDS_SIZE)
    args: [
      CTX,
      arg("ARG_PTR_TO_MEM", "PTR_MAYBE_NULL", "MEM_WRITE"),
      SIZE_OR_ZERO,
      ANY,
    ],
  }),
  proto("bpf_override_return_proto", 58, { gpl: true, args: [CTX, ANY] }),
  proto("bpf_get_func_ip_proto_kprobe", 173, { gpl: true, args: [CTX] }),
  proto("bpf_get_func_ip_proto_kprobe_multi", 173, { gpl: true, args: [CTX] }),
  proto("bpf_get_func_ip_proto_uprobe_multi", 173, { gpl: true, args: [CTX] }),
  proto("bpf_get_func_ip_proto_tracing", 173, { gpl: true, args: [CTX] }),
  proto("bpf_get_func_ip_proto_tp", 173, { gpl: true, args: [CTX] }),
  proto("bpf_get_attach_cookie_proto_trace", 174, { args: [CTX] }),
  proto("bpf_get_attach_cookie_proto_kmulti", 174, { args: [CTX] }),
  proto("bpf_get_attach_cookie_proto_umulti", 174, { args: [CTX] }),
  proto("bpf_get_attach_cookie_proto_pe", 174, { args: [CTX] }),
  proto("bpf_get_attach_cookie_proto_tracing", 174, { args: [CTX] }),
  proto("bpf_get_func_arg_proto", 183, {
    args: [CTX, ANY, FIXED_OUT],
    sizes: { 2: 8 },
  }),
  proto("bpf_get_func_ret_proto", 184, {
    args: [CTX, FIXED_OUT],
    sizes: { 1: 8 },
  }),
  proto("bpf_get_func_arg_cnt_proto", 185, { args: [CTX] }),
];

/** Helpers taking BTF pointers, for BTF-enabled tracing (tracing_prog_func_proto). */
export const BTF_TRACE_PROTOS: readonly NamedProto[] = [
  proto("bpf_skb_output_proto", 111, {
    gpl: true,
    args: [BTF_ID, MAP, ANY, MEM_RO, SIZE_OR_ZERO],
    btf: { 0: "sk_buff" },
  }),
  proto("bpf_xdp_output_proto", 121, {
    gpl: true,
    args: [BTF_ID, MAP, ANY, MEM_RO, SIZE_OR_ZERO],
    btf: { 0: "xdp_buff" },
  }),
  proto("bpf_seq_printf_proto", 126, {
    gpl: true,
    args: [BTF_ID, MEM_RO, SIZE, MEM_RO_OR_NULL, SIZE_OR_ZERO],
    btf: SEQ_FILE,
  }),
  proto("bpf_seq_write_proto", 127, {
    gpl: true,
    args: [BTF_ID, MEM_RO, SIZE_OR_ZERO],
    btf: SEQ_FILE,
  }),
  proto("bpf_seq_printf_btf_proto", 150, {
    gpl: true,
    args: [BTF_ID, MEM_RO, SIZE_OR_ZERO, ANY],
    btf: SEQ_FILE,
  }),
  proto("bpf_d_path_proto", 147, {
    args: [BTF_ID, MEM_RW, SIZE_OR_ZERO],
    btf: { 0: "path" },
    allowed: "bpf_d_path_allowed",
  }),
  proto("bpf_sock_from_file_proto", 162, {
    ret: ret("RET_PTR_TO_BTF_ID", ["PTR_MAYBE_NULL"], "socket"),
    args: [BTF_ID],
    btf: { 0: "file" },
  }),
  proto("bpf_xdp_get_buff_len_trace_proto", 188, {
    args: [BTF_ID],
    btf: { 0: "xdp_buff" },
  }),
  // sk may be NULL: the cookie of no socket is 0.
  proto("bpf_get_socket_ptr_cookie_proto", 46, {
    args: [arg("ARG_PTR_TO_BTF_ID_SOCK_COMMON", "PTR_MAYBE_NULL")],
  }),
  proto("bpf_sk_storage_get_tracing_proto", 107, {
    ret: ret("RET_PTR_TO_MAP_VALUE", ["PTR_MAYBE_NULL"]),
    args: [MAP, BTF_ID_OR_NULL, VALUE_OR_NULL, ANY],
    btf: { 1: "sock_common" },
    allowed: "bpf_sk_storage_tracing_allowed",
  }),
  proto("bpf_sk_storage_delete_tracing_proto", 108, {
    args: [MAP, BTF_ID_OR_NULL],
    btf: { 1: "sock_common" },
    allowed: "bpf_sk_storage_tracing_allowed",
  }),
  proto("bpf_sys_bpf_proto", 166, { args: [ANY, MEM_RO, SIZE] }),
  proto("bpf_btf_find_by_name_kind_proto", 167, {
    args: [MEM_RO, SIZE, ANY, ANY],
  }),
  proto("bpf_sys_close_proto", 168, { args: [ANY] }),
  proto("bpf_kallsyms_lookup_name_proto", 179, {
    args: [MEM_RO, SIZE, ANY, FIXED_OUT],
    sizes: { 3: 8 },
  }),
];

/** BPF LSM helpers (bpf_lsm.c, bpf_inode_storage.c). */
export const LSM_PROTOS: readonly NamedProto[] = [
  proto("bpf_inode_storage_get_proto", 145, {
    ret: ret("RET_PTR_TO_MAP_VALUE", ["PTR_MAYBE_NULL"]),
    args: [MAP, BTF_ID_OR_NULL, VALUE_OR_NULL, ANY],
    btf: { 1: "inode" },
  }),
  proto("bpf_inode_storage_delete_proto", 146, {
    args: [MAP, BTF_ID_OR_NULL],
    btf: { 1: "inode" },
  }),
  proto("bpf_bprm_opts_set_proto", 159, {
    args: [BTF_ID, ANY],
    btf: { 0: "linux_binprm" },
  }),
  proto("bpf_ima_inode_hash_proto", 161, {
    sleeps: true,
    args: [BTF_ID, UNINIT_MEM, SIZE],
    btf: { 0: "inode" },
    allowed: "bpf_ima_inode_hash_allowed",
  }),
  proto("bpf_ima_file_hash_proto", 193, {
    sleeps: true,
    args: [BTF_ID, UNINIT_MEM, SIZE],
    btf: { 0: "file" },
    allowed: "bpf_ima_inode_hash_allowed",
  }),
];
