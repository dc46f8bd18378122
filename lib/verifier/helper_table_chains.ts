/**
 * The `get_func_proto` chains of Linux 6.18, as data: for each program type,
 * which kernel prototype (by symbol) a helper id resolves to. Each table
 * mirrors one kernel function; a chain tries its own table, then its parent.
 * Verified against the real kernel by tests/fixtures/helpers/matrix_*.
 * @module
 */

/** What a chain may look at: the program and the loader (see HelperCallOptions). */
export interface ChainContext {
  /** libbpf program type name. */
  readonly progType: string;
  /** libbpf attach type name, or "" when none. */
  readonly attachType: string;
  /** The BTF attach target (`fentry/NAME`, `lsm/NAME`): NAME, or "" when none. */
  readonly attachTarget: string;
  /** BPF_F_SLEEPABLE. */
  readonly sleepable: boolean;
  /** bpf_token_capable(CAP_BPF). */
  readonly capBpf: boolean;
  /** bpf_token_capable(CAP_PERFMON). */
  readonly capPerfmon: boolean;
  /** security_locked_down(LOCKDOWN_BPF_WRITE_USER) refuses (lockdown=integrity or stricter). */
  readonly lockdownWriteUser: boolean;
  /** security_locked_down(LOCKDOWN_BPF_READ_KERNEL) refuses (lockdown=confidentiality). */
  readonly lockdownReadKernel: boolean;
  /** CONFIG_BPF_KPROBE_OVERRIDE. */
  readonly kprobeOverride: boolean;
}

/** One kernel `switch (func_id)`: helper id → prototype symbol. */
export type Table = Readonly<Record<number, string>>;
/** A `*_func_proto()` function: the prototype symbol for an id, or null (NULL). */
export type Chain = (id: number, c: ChainContext) => string | null;

/** Builds a {@link Table} from `[id, symbol]` pairs. */
export function table(entries: readonly (readonly [number, string])[]): Table {
  return Object.fromEntries(entries);
}

function sym(
  ids: readonly number[],
  name: (id: number) => string,
): [number, string][] {
  return ids.map((id) => [id, name(id)]);
}

// bpf_base_func_proto(): three tiers by capability.
const BASE_UNPRIVILEGED: Table = table([
  [1, "bpf_map_lookup_elem_proto"],
  [2, "bpf_map_update_elem_proto"],
  [3, "bpf_map_delete_elem_proto"],
  [87, "bpf_map_push_elem_proto"],
  [88, "bpf_map_pop_elem_proto"],
  [89, "bpf_map_peek_elem_proto"],
  [195, "bpf_map_lookup_percpu_elem_proto"],
  [7, "bpf_get_prandom_u32_proto"],
  [8, "bpf_get_smp_processor_id_proto"],
  [42, "bpf_get_numa_node_id_proto"],
  [12, "bpf_tail_call_proto"],
  [5, "bpf_ktime_get_ns_proto"],
  [125, "bpf_ktime_get_boot_ns_proto"],
  [208, "bpf_ktime_get_tai_ns_proto"],
  [130, "bpf_ringbuf_output_proto"],
  [131, "bpf_ringbuf_reserve_proto"],
  [132, "bpf_ringbuf_submit_proto"],
  [133, "bpf_ringbuf_discard_proto"],
  [134, "bpf_ringbuf_query_proto"],
  [164, "bpf_for_each_map_elem_proto"],
  [181, "bpf_loop_proto"],
  [182, "bpf_strncmp_proto"],
  [105, "bpf_strtol_proto"],
  [106, "bpf_strtoul_proto"],
  [209, "bpf_user_ringbuf_drain_proto"],
  [14, "bpf_get_current_pid_tgid_proto"],
  [120, "bpf_get_ns_current_pid_tgid_proto"],
  [15, "bpf_get_current_uid_gid_proto"],
]);
const BASE_CAP_BPF: Table = table([
  [93, "bpf_spin_lock_proto"],
  [94, "bpf_spin_unlock_proto"],
  [118, "bpf_jiffies64_proto"],
  [153, "bpf_per_cpu_ptr_proto"],
  [154, "bpf_this_cpu_ptr_proto"],
  [169, "bpf_timer_init_proto"],
  [170, "bpf_timer_set_callback_proto"],
  [171, "bpf_timer_start_proto"],
  [172, "bpf_timer_cancel_proto"],
  [194, "bpf_kptr_xchg_proto"],
  [197, "bpf_dynptr_from_mem_proto"],
  [198, "bpf_ringbuf_reserve_dynptr_proto"],
  [199, "bpf_ringbuf_submit_dynptr_proto"],
  [200, "bpf_ringbuf_discard_dynptr_proto"],
  [201, "bpf_dynptr_read_proto"],
  [202, "bpf_dynptr_write_proto"],
  [203, "bpf_dynptr_data_proto"],
  [210, "bpf_cgrp_storage_get_proto"],
  [211, "bpf_cgrp_storage_delete_proto"],
  [80, "bpf_get_current_cgroup_id_proto"],
  [123, "bpf_get_current_ancestor_cgroup_id_proto"],
  [37, "bpf_current_task_under_cgroup_proto"],
  [17, "bpf_get_cgroup_classid_curr_proto"],
  [156, "bpf_task_storage_get_proto"],
  [157, "bpf_task_storage_delete_proto"],
]);
const BASE_CAP_PERFMON: Table = table([
  [6, "bpf_trace_printk_proto"],
  [35, "bpf_get_current_task_proto"],
  [158, "bpf_get_current_task_btf_proto"],
  [16, "bpf_get_current_comm_proto"],
  [112, "bpf_probe_read_user_proto"],
  [114, "bpf_probe_read_user_str_proto"],
  [148, "bpf_copy_from_user_proto"],
  [191, "bpf_copy_from_user_task_proto"],
  [149, "bpf_snprintf_btf_proto"],
  [165, "bpf_snprintf_proto"],
  [175, "bpf_task_pt_regs_proto"],
  [177, "bpf_trace_vprintk_proto"],
  [55, "bpf_perf_event_read_value_proto"],
  [22, "bpf_perf_event_read_proto"],
  [109, "bpf_send_signal_proto"],
  [117, "bpf_send_signal_thread_proto"],
  [176, "bpf_get_branch_snapshot_proto"],
  [180, "bpf_find_vma_proto"],
]);

/** mirrors bpf_base_func_proto(): three tiers, unprivileged / CAP_BPF / CAP_PERFMON. */
export function baseFuncProto(id: number, c: ChainContext): string | null {
  const free = BASE_UNPRIVILEGED[id];
  if (free) return free;
  if (!c.capBpf) return null;
  const bpf = BASE_CAP_BPF[id];
  if (bpf) return bpf;
  if (!c.capPerfmon) return null;
  if (id === 113) {
    return c.lockdownReadKernel ? null : "bpf_probe_read_kernel_proto";
  }
  if (id === 115) {
    return c.lockdownReadKernel ? null : "bpf_probe_read_kernel_str_proto";
  }
  if (id === 141) {
    return c.sleepable
      ? "bpf_get_task_stack_sleepable_proto"
      : "bpf_get_task_stack_proto";
  }
  return BASE_CAP_PERFMON[id] ?? null;
}

const SKC_TO = sym([136, 137, 138, 139, 140, 178, 196], (id) =>
  ({
    136: "bpf_skc_to_tcp6_sock_proto",
    137: "bpf_skc_to_tcp_sock_proto",
    138: "bpf_skc_to_tcp_timewait_sock_proto",
    139: "bpf_skc_to_tcp_request_sock_proto",
    140: "bpf_skc_to_udp6_sock_proto",
    178: "bpf_skc_to_unix_sock_proto",
    196: "bpf_skc_to_mptcp_sock_proto",
  })[id] as string);

/** mirrors bpf_sk_base_func_proto(): socket casts (CAP_PERFMON) + coarse time. */
export function skBaseFuncProto(id: number, c: ChainContext): string | null {
  if (id === 160) return "bpf_ktime_get_coarse_ns_proto";
  const skc = SKC_TO.find(([i]) => i === id);
  if (skc) return c.capPerfmon ? skc[1] : null;
  return baseFuncProto(id, c);
}

/** A chain step: own table first, then the parent chain. */
export function extend(own: Table, parent: Chain): Chain {
  return (id, c) => own[id] ?? parent(id, c);
}
