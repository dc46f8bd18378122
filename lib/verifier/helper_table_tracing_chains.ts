/**
 * Tracing `get_func_proto` chains (Linux 6.18): kprobe, tracepoint,
 * perf_event, raw_tracepoint, tracing (fentry/fexit/iter/tp_btf), syscall,
 * lsm — kernel/trace/bpf_trace.c, kernel/bpf/bpf_lsm.c, syscall.c.
 * @module
 */
import {
  baseFuncProto,
  type Chain,
  type ChainContext,
  extend,
  table,
} from "./helper_table_chains.ts";

const TRAMPOLINE_ATTACH = new Set([
  "trace_fentry",
  "trace_fexit",
  "modify_return",
  "lsm_mac",
  "lsm_cgroup",
]);

/** bpf_prog_has_trampoline(): fentry/fexit/fmod_ret tracing and LSM programs. */
export function hasTrampoline(c: ChainContext): boolean {
  return (c.progType === "tracing" || c.progType === "lsm") &&
    TRAMPOLINE_ATTACH.has(c.attachType);
}

/** mirrors bpf_tracing_func_proto(): shared by every tracing program type. */
const tracingBase: Chain = (id, c) => {
  switch (id) {
    case 4:
      return c.lockdownReadKernel ? null : "bpf_probe_read_compat_proto";
    case 45:
      return c.lockdownReadKernel ? null : "bpf_probe_read_compat_str_proto";
    case 36:
      return c.lockdownWriteUser ? null : "bpf_probe_write_user_proto";
    case 173:
      return "bpf_get_func_ip_proto_tracing";
    default:
      return baseFuncProto(id, c);
  }
};

/** mirrors kprobe_prog_func_proto(). */
const kprobe: Chain = (id, c) => {
  const multi = c.attachType === "trace_kprobe_multi" ||
    c.attachType === "trace_kprobe_session";
  const umulti = c.attachType === "trace_uprobe_multi" ||
    c.attachType === "trace_uprobe_session";
  switch (id) {
    case 25:
      return "bpf_perf_event_output_proto";
    case 27:
      return "bpf_get_stackid_proto";
    case 67:
      return c.sleepable
        ? "bpf_get_stack_sleepable_proto"
        : "bpf_get_stack_proto";
    case 58:
      return c.kprobeOverride ? "bpf_override_return_proto" : null;
    case 173:
      return multi
        ? "bpf_get_func_ip_proto_kprobe_multi"
        : umulti
        ? "bpf_get_func_ip_proto_uprobe_multi"
        : "bpf_get_func_ip_proto_kprobe";
    case 174:
      return multi
        ? "bpf_get_attach_cookie_proto_kmulti"
        : umulti
        ? "bpf_get_attach_cookie_proto_umulti"
        : "bpf_get_attach_cookie_proto_trace";
    default:
      return tracingBase(id, c);
  }
};

/** mirrors tp_prog_func_proto(). */
const tracepoint = extend(
  table([
    [25, "bpf_perf_event_output_proto_tp"],
    [27, "bpf_get_stackid_proto_tp"],
    [67, "bpf_get_stack_proto_tp"],
    [174, "bpf_get_attach_cookie_proto_trace"],
  ]),
  tracingBase,
);

/** mirrors pe_prog_func_proto(). */
const perfEvent = extend(
  table([
    [25, "bpf_perf_event_output_proto_tp"],
    [27, "bpf_get_stackid_proto_pe"],
    [67, "bpf_get_stack_proto_pe"],
    [56, "bpf_perf_prog_read_value_proto"],
    [119, "bpf_read_branch_records_proto"],
    [174, "bpf_get_attach_cookie_proto_pe"],
  ]),
  tracingBase,
);

/** mirrors raw_tp_prog_func_proto() (also raw_tracepoint_writable). */
const rawTp = extend(
  table([
    [25, "bpf_perf_event_output_proto_raw_tp"],
    [27, "bpf_get_stackid_proto_raw_tp"],
    [67, "bpf_get_stack_proto_raw_tp"],
    [174, "bpf_get_attach_cookie_proto_tracing"],
  ]),
  tracingBase,
);

const TRACING_OWN = table([
  [111, "bpf_skb_output_proto"],
  [121, "bpf_xdp_output_proto"],
  [136, "bpf_skc_to_tcp6_sock_proto"],
  [137, "bpf_skc_to_tcp_sock_proto"],
  [138, "bpf_skc_to_tcp_timewait_sock_proto"],
  [139, "bpf_skc_to_tcp_request_sock_proto"],
  [140, "bpf_skc_to_udp6_sock_proto"],
  [178, "bpf_skc_to_unix_sock_proto"],
  [196, "bpf_skc_to_mptcp_sock_proto"],
  [107, "bpf_sk_storage_get_tracing_proto"],
  [108, "bpf_sk_storage_delete_tracing_proto"],
  [162, "bpf_sock_from_file_proto"],
  [46, "bpf_get_socket_ptr_cookie_proto"],
  [188, "bpf_xdp_get_buff_len_trace_proto"],
  [147, "bpf_d_path_proto"],
]);
const ITER_ONLY = table([
  [126, "bpf_seq_printf_proto"],
  [127, "bpf_seq_write_proto"],
  [150, "bpf_seq_printf_btf_proto"],
]);

/** mirrors tracing_prog_func_proto() (BPF_PROG_TYPE_TRACING, and the fallback of syscall/lsm). */
const tracing: Chain = (id, c) => {
  const own = TRACING_OWN[id];
  if (own) return own;
  if (id in ITER_ONLY) {
    return c.attachType === "trace_iter" ? ITER_ONLY[id] : null;
  }
  switch (id) {
    // every trampoline program gets all three; on fentry, do_misc_fixups()
    // inlines get_func_ret as `r0 = -EOPNOTSUPP`
    case 183:
    case 184:
    case 185:
      if (!hasTrampoline(c)) return null;
      return id === 183
        ? "bpf_get_func_arg_proto"
        : id === 184
        ? "bpf_get_func_ret_proto"
        : "bpf_get_func_arg_cnt_proto";
    case 174:
      if (c.progType === "tracing" && c.attachType === "trace_raw_tp") {
        return "bpf_get_attach_cookie_proto_tracing";
      }
      return hasTrampoline(c) ? "bpf_get_attach_cookie_proto_tracing" : null;
    default:
      return rawTp(id, c);
  }
};

/** mirrors syscall_prog_func_proto(). */
const syscall = extend(
  table([
    [166, "bpf_sys_bpf_proto"],
    [167, "bpf_btf_find_by_name_kind_proto"],
    [168, "bpf_sys_close_proto"],
    [179, "bpf_kallsyms_lookup_name_proto"],
  ]),
  tracing,
);

/** mirrors bpf_lsm_func_proto(); lsm_cgroup programs also get cgroup_common_func_proto(). */
const lsm: Chain = (id, c) => {
  if (c.attachType === "lsm_cgroup") {
    const common = ({
      81: "bpf_get_local_storage_proto",
      186: "bpf_get_retval_proto",
      187: "bpf_set_retval_proto",
    } as Record<number, string>)[id];
    if (common) return common;
  }
  const own = ({
    145: "bpf_inode_storage_get_proto",
    146: "bpf_inode_storage_delete_proto",
    107: "bpf_sk_storage_get_proto",
    108: "bpf_sk_storage_delete_proto",
    159: "bpf_bprm_opts_set_proto",
    161: "bpf_ima_inode_hash_proto",
    193: "bpf_ima_file_hash_proto",
  } as Record<number, string>)[id];
  if (own) return own;
  if (id === 174) {
    return hasTrampoline(c) ? "bpf_get_attach_cookie_proto_tracing" : null;
  }
  return tracing(id, c);
};

/** Tracing program types, by libbpf name. */
export const TRACING_CHAINS: Readonly<Record<string, Chain>> = {
  kprobe,
  tracepoint,
  perf_event: perfEvent,
  raw_tracepoint: rawTp,
  raw_tracepoint_writable: rawTp,
  tracing,
  syscall,
  lsm,
};
