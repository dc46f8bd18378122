/**
 * `get_func_proto` chains of the cgroup program types (Linux 6.18):
 * kernel/bpf/cgroup.c and the cgroup parts of net/core/filter.c.
 * @module
 */
import {
  baseFuncProto,
  type Chain,
  extend,
  skBaseFuncProto,
  table,
} from "./helper_table_chains.ts";

const SKB_EVENT_OUTPUT: [number, string] = [25, "bpf_skb_event_output_proto"];
const EVENT_OUTPUT_DATA: [number, string] = [25, "bpf_event_output_data_proto"];

/** mirrors cgroup_common_func_proto() (get_local_storage, get/set_retval). */
const cgroupCommon = table([
  [81, "bpf_get_local_storage_proto"],
  [186, "bpf_get_retval_proto"],
  [187, "bpf_set_retval_proto"],
]);

/** mirrors cg_skb_func_proto(). */
const cgSkb = extend(
  table([
    SKB_EVENT_OUTPUT,
    [26, "bpf_skb_load_bytes_proto"],
    [46, "bpf_get_socket_cookie_proto"],
    [47, "bpf_get_socket_uid_proto"],
    [68, "bpf_skb_load_bytes_relative_proto"],
    [79, "bpf_skb_cgroup_id_proto"],
    [81, "bpf_get_local_storage_proto"],
    [83, "bpf_skb_ancestor_cgroup_id_proto"],
    [84, "bpf_sk_lookup_tcp_proto"],
    [85, "bpf_sk_lookup_udp_proto"],
    [86, "bpf_sk_release_proto"],
    [95, "bpf_sk_fullsock_proto"],
    [96, "bpf_tcp_sock_proto"],
    [97, "bpf_skb_ecn_set_ce_proto"],
    [98, "bpf_get_listener_sock_proto"],
    [99, "bpf_skc_lookup_tcp_proto"],
    [107, "bpf_sk_storage_get_proto"],
    [108, "bpf_sk_storage_delete_proto"],
    [122, "bpf_get_netns_cookie_proto"],
    [128, "bpf_sk_cgroup_id_proto"],
    [129, "bpf_sk_ancestor_cgroup_id_proto"],
  ]),
  skBaseFuncProto,
);

/** mirrors sock_filter_func_proto() (cgroup_sock). */
const sockFilter = extend(
  {
    ...cgroupCommon,
    ...table([
      EVENT_OUTPUT_DATA,
      [46, "bpf_get_socket_cookie_sock_proto"],
      [107, "bpf_sk_storage_get_cg_sock_proto"],
      [122, "bpf_get_netns_cookie_sock_proto"],
      [160, "bpf_ktime_get_coarse_ns_proto"],
    ]),
  },
  baseFuncProto,
);

/** mirrors sock_addr_func_proto() (cgroup_sock_addr); bind() only on connect hooks. */
const sockAddrTable = table([
  EVENT_OUTPUT_DATA,
  [46, "bpf_get_socket_cookie_sock_addr_proto"],
  [49, "bpf_sock_addr_setsockopt_proto"],
  [57, "bpf_sock_addr_getsockopt_proto"],
  [84, "bpf_sock_addr_sk_lookup_tcp_proto"],
  [85, "bpf_sock_addr_sk_lookup_udp_proto"],
  [86, "bpf_sk_release_proto"],
  [99, "bpf_sock_addr_skc_lookup_tcp_proto"],
  [107, "bpf_sk_storage_get_cg_sock_proto"],
  [108, "bpf_sk_storage_delete_proto"],
  [122, "bpf_get_netns_cookie_sock_addr_proto"],
]);
const sockAddr: Chain = (id, c) => {
  if (id === 64) {
    return /^cgroup_(inet[46]|unix)_connect$/.test(c.attachType)
      ? "bpf_bind_proto"
      : null;
  }
  return cgroupCommon[id] ?? sockAddrTable[id] ?? skBaseFuncProto(id, c);
};

/** mirrors cgroup_dev_func_proto(). */
const cgroupDev = extend(
  { ...cgroupCommon, ...table([EVENT_OUTPUT_DATA]) },
  baseFuncProto,
);

/** mirrors sysctl_func_proto(). */
const sysctl = extend(
  {
    ...cgroupCommon,
    ...table([
      EVENT_OUTPUT_DATA,
      [101, "bpf_sysctl_get_name_proto"],
      [102, "bpf_sysctl_get_current_value_proto"],
      [103, "bpf_sysctl_get_new_value_proto"],
      [104, "bpf_sysctl_set_new_value_proto"],
      [160, "bpf_ktime_get_coarse_ns_proto"],
    ]),
  },
  baseFuncProto,
);

/** mirrors cg_sockopt_func_proto(); sk_{set,get}sockopt only on the setsockopt hook. */
const cgSockopt: Chain = (id, c) => {
  if (id === 49 || id === 57) {
    if (c.attachType !== "cgroup_setsockopt") return null;
    return id === 49 ? "bpf_sk_setsockopt_proto" : "bpf_sk_getsockopt_proto";
  }
  const own = table([
    EVENT_OUTPUT_DATA,
    [96, "bpf_tcp_sock_proto"],
    [107, "bpf_sk_storage_get_proto"],
    [108, "bpf_sk_storage_delete_proto"],
    [122, "bpf_get_netns_cookie_sockopt_proto"],
  ]);
  return cgroupCommon[id] ?? own[id] ?? baseFuncProto(id, c);
};

/** Cgroup program types, by libbpf name. */
export const CGROUP_CHAINS: Readonly<Record<string, Chain>> = {
  cgroup_skb: cgSkb,
  cgroup_sock: sockFilter,
  cgroup_sock_addr: sockAddr,
  cgroup_device: cgroupDev,
  cgroup_sysctl: sysctl,
  cgroup_sockopt: cgSockopt,
};
