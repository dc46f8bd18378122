/**
 * Per-program-type `get_func_proto` chains (Linux 6.18): which kernel
 * prototype each program type gets for each helper id.
 * @module
 */
import {
  baseFuncProto,
  type Chain,
  type ChainContext,
  extend,
  skBaseFuncProto,
  table,
} from "./helper_table_chains.ts";
import { CGROUP_CHAINS } from "./helper_table_cgroup.ts";

const SKB_EVENT_OUTPUT: [number, string] = [25, "bpf_skb_event_output_proto"];
const EVENT_OUTPUT_DATA: [number, string] = [25, "bpf_event_output_data_proto"];

/** mirrors sk_filter_func_proto() (socket filters). */
const skFilter = extend(
  table([
    SKB_EVENT_OUTPUT,
    [26, "bpf_skb_load_bytes_proto"],
    [46, "bpf_get_socket_cookie_proto"],
    [47, "bpf_get_socket_uid_proto"],
    [68, "bpf_skb_load_bytes_relative_proto"],
    [122, "bpf_get_netns_cookie_proto"],
  ]),
  skBaseFuncProto,
);

/** mirrors tc_cls_act_func_proto() (sched_cls, sched_act). */
const tcClsAct = extend(
  table([
    SKB_EVENT_OUTPUT,
    [9, "bpf_skb_store_bytes_proto"],
    [10, "bpf_l3_csum_replace_proto"],
    [11, "bpf_l4_csum_replace_proto"],
    [13, "bpf_clone_redirect_proto"],
    [17, "bpf_get_cgroup_classid_proto"],
    [18, "bpf_skb_vlan_push_proto"],
    [19, "bpf_skb_vlan_pop_proto"],
    [20, "bpf_skb_get_tunnel_key_proto"],
    [21, "bpf_skb_set_tunnel_key_proto"],
    [23, "bpf_redirect_proto"],
    [24, "bpf_get_route_realm_proto"],
    [26, "bpf_skb_load_bytes_proto"],
    [28, "bpf_csum_diff_proto"],
    [29, "bpf_skb_get_tunnel_opt_proto"],
    [30, "bpf_skb_set_tunnel_opt_proto"],
    [31, "bpf_skb_change_proto_proto"],
    [32, "bpf_skb_change_type_proto"],
    [33, "bpf_skb_under_cgroup_proto"],
    [34, "bpf_get_hash_recalc_proto"],
    [38, "bpf_skb_change_tail_proto"],
    [39, "bpf_skb_pull_data_proto"],
    [40, "bpf_csum_update_proto"],
    [41, "bpf_set_hash_invalid_proto"],
    [43, "bpf_skb_change_head_proto"],
    [46, "bpf_get_socket_cookie_proto"],
    [47, "bpf_get_socket_uid_proto"],
    [48, "bpf_set_hash_proto"],
    [50, "bpf_skb_adjust_room_proto"],
    [66, "bpf_skb_get_xfrm_state_proto"],
    [68, "bpf_skb_load_bytes_relative_proto"],
    [69, "bpf_skb_fib_lookup_proto"],
    [79, "bpf_skb_cgroup_id_proto"],
    [83, "bpf_skb_ancestor_cgroup_id_proto"],
    [84, "bpf_sk_lookup_tcp_proto"],
    [85, "bpf_sk_lookup_udp_proto"],
    [86, "bpf_sk_release_proto"],
    [95, "bpf_sk_fullsock_proto"],
    [96, "bpf_tcp_sock_proto"],
    [97, "bpf_skb_ecn_set_ce_proto"],
    [98, "bpf_get_listener_sock_proto"],
    [99, "bpf_skc_lookup_tcp_proto"],
    [100, "bpf_tcp_check_syncookie_proto"],
    [107, "bpf_sk_storage_get_proto"],
    [108, "bpf_sk_storage_delete_proto"],
    [110, "bpf_tcp_gen_syncookie_proto"],
    [122, "bpf_get_netns_cookie_proto"],
    [124, "bpf_sk_assign_proto"],
    [135, "bpf_csum_level_proto"],
    [151, "bpf_skb_cgroup_classid_proto"],
    [152, "bpf_redirect_neigh_proto"],
    [155, "bpf_redirect_peer_proto"],
    [163, "bpf_skb_check_mtu_proto"],
    [192, "bpf_skb_set_tstamp_proto"],
    [204, "bpf_tcp_raw_gen_syncookie_ipv4_proto"],
    [205, "bpf_tcp_raw_gen_syncookie_ipv6_proto"],
    [206, "bpf_tcp_raw_check_syncookie_ipv4_proto"],
    [207, "bpf_tcp_raw_check_syncookie_ipv6_proto"],
  ]),
  skBaseFuncProto,
);

/** mirrors xdp_func_proto(). */
const xdp = extend(
  table([
    [23, "bpf_redirect_proto"],
    [25, "bpf_xdp_event_output_proto"],
    [28, "bpf_csum_diff_proto"],
    [44, "bpf_xdp_adjust_head_proto"],
    [51, "bpf_xdp_redirect_map_proto"],
    [54, "bpf_xdp_adjust_meta_proto"],
    [65, "bpf_xdp_adjust_tail_proto"],
    [69, "bpf_xdp_fib_lookup_proto"],
    [84, "bpf_xdp_sk_lookup_tcp_proto"],
    [85, "bpf_xdp_sk_lookup_udp_proto"],
    [86, "bpf_sk_release_proto"],
    [99, "bpf_xdp_skc_lookup_tcp_proto"],
    [100, "bpf_tcp_check_syncookie_proto"],
    [110, "bpf_tcp_gen_syncookie_proto"],
    [163, "bpf_xdp_check_mtu_proto"],
    [188, "bpf_xdp_get_buff_len_proto"],
    [189, "bpf_xdp_load_bytes_proto"],
    [190, "bpf_xdp_store_bytes_proto"],
    [204, "bpf_tcp_raw_gen_syncookie_ipv4_proto"],
    [205, "bpf_tcp_raw_gen_syncookie_ipv6_proto"],
    [206, "bpf_tcp_raw_check_syncookie_ipv4_proto"],
    [207, "bpf_tcp_raw_check_syncookie_ipv6_proto"],
  ]),
  skBaseFuncProto,
);

/** mirrors sock_ops_func_proto(). */
const sockOps = extend(
  table([
    EVENT_OUTPUT_DATA,
    [46, "bpf_get_socket_cookie_sock_ops_proto"],
    [49, "bpf_sock_ops_setsockopt_proto"],
    [53, "bpf_sock_map_update_proto"],
    [57, "bpf_sock_ops_getsockopt_proto"],
    [59, "bpf_sock_ops_cb_flags_set_proto"],
    [70, "bpf_sock_hash_update_proto"],
    [81, "bpf_get_local_storage_proto"],
    [96, "bpf_tcp_sock_proto"],
    [107, "bpf_sk_storage_get_proto"],
    [108, "bpf_sk_storage_delete_proto"],
    [122, "bpf_get_netns_cookie_sock_ops_proto"],
    [142, "bpf_sock_ops_load_hdr_opt_proto"],
    [143, "bpf_sock_ops_store_hdr_opt_proto"],
    [144, "bpf_sock_ops_reserve_hdr_opt_proto"],
  ]),
  skBaseFuncProto,
);

/** mirrors sk_skb_func_proto(). */
const skSkb = extend(
  table([
    SKB_EVENT_OUTPUT,
    [9, "bpf_sk_skb_store_bytes_proto"],
    [26, "bpf_skb_load_bytes_proto"],
    [38, "sk_skb_change_tail_proto"],
    [39, "sk_skb_pull_data_proto"],
    [43, "sk_skb_change_head_proto"],
    [46, "bpf_get_socket_cookie_proto"],
    [47, "bpf_get_socket_uid_proto"],
    [50, "sk_skb_adjust_room_proto"],
    [52, "bpf_sk_redirect_map_proto"],
    [72, "bpf_sk_redirect_hash_proto"],
    [84, "bpf_sk_lookup_tcp_proto"],
    [85, "bpf_sk_lookup_udp_proto"],
    [86, "bpf_sk_release_proto"],
    [99, "bpf_skc_lookup_tcp_proto"],
  ]),
  skBaseFuncProto,
);

/** mirrors sk_msg_func_proto(). */
const skMsg = extend(
  table([
    EVENT_OUTPUT_DATA,
    [60, "bpf_msg_redirect_map_proto"],
    [61, "bpf_msg_apply_bytes_proto"],
    [62, "bpf_msg_cork_bytes_proto"],
    [63, "bpf_msg_pull_data_proto"],
    [71, "bpf_msg_redirect_hash_proto"],
    [90, "bpf_msg_push_data_proto"],
    [91, "bpf_msg_pop_data_proto"],
    [107, "bpf_sk_storage_get_proto"],
    [108, "bpf_sk_storage_delete_proto"],
    [122, "bpf_get_netns_cookie_sk_msg_proto"],
  ]),
  skBaseFuncProto,
);

/** mirrors flow_dissector_func_proto(). */
const flowDissector = extend(
  table([[26, "bpf_flow_dissector_load_bytes_proto"]]),
  skBaseFuncProto,
);

/** mirrors sk_reuseport_func_proto(): no socket casts. */
const skReuseport = extend(
  table([
    [26, "sk_reuseport_load_bytes_proto"],
    [46, "bpf_get_socket_ptr_cookie_proto"],
    [68, "sk_reuseport_load_bytes_relative_proto"],
    [82, "sk_select_reuseport_proto"],
    [160, "bpf_ktime_get_coarse_ns_proto"],
  ]),
  baseFuncProto,
);

/** mirrors sk_lookup_func_proto(). */
const skLookup = extend(
  table([EVENT_OUTPUT_DATA, [86, "bpf_sk_release_proto"], [
    124,
    "bpf_sk_lookup_assign_proto",
  ]]),
  skBaseFuncProto,
);

/** mirrors lwt_out_func_proto(). */
const lwtOutTable = table([
  SKB_EVENT_OUTPUT,
  [24, "bpf_get_route_realm_proto"],
  [26, "bpf_skb_load_bytes_proto"],
  [28, "bpf_csum_diff_proto"],
  [33, "bpf_skb_under_cgroup_proto"],
  [34, "bpf_get_hash_recalc_proto"],
  [39, "bpf_skb_pull_data_proto"],
]);
const lwtOut = extend(lwtOutTable, skBaseFuncProto);
/** mirrors lwt_in_func_proto(). */
const lwtIn = extend(table([[73, "bpf_lwt_in_push_encap_proto"]]), lwtOut);
/** mirrors lwt_seg6local_func_proto(). */
const lwtSeg6local = extend(
  table([
    [74, "bpf_lwt_seg6_store_bytes_proto"],
    [75, "bpf_lwt_seg6_adjust_srh_proto"],
    [76, "bpf_lwt_seg6_action_proto"],
  ]),
  lwtOut,
);
/** mirrors lwt_xmit_func_proto(). */
const lwtXmit = extend(
  table([
    [9, "bpf_skb_store_bytes_proto"],
    [10, "bpf_l3_csum_replace_proto"],
    [11, "bpf_l4_csum_replace_proto"],
    [13, "bpf_clone_redirect_proto"],
    [20, "bpf_skb_get_tunnel_key_proto"],
    [21, "bpf_skb_set_tunnel_key_proto"],
    [23, "bpf_redirect_proto"],
    [29, "bpf_skb_get_tunnel_opt_proto"],
    [30, "bpf_skb_set_tunnel_opt_proto"],
    [38, "bpf_skb_change_tail_proto"],
    [40, "bpf_csum_update_proto"],
    [41, "bpf_set_hash_invalid_proto"],
    [43, "bpf_skb_change_head_proto"],
    [73, "bpf_lwt_xmit_push_encap_proto"],
    [135, "bpf_csum_level_proto"],
  ]),
  lwtOut,
);

/** mirrors lirc_mode2_func_proto(). */
const lircMode2 = extend(
  table([[77, "rc_repeat_proto"], [78, "rc_keydown_proto"], [
    92,
    "rc_pointer_rel_proto",
  ]]),
  baseFuncProto,
);

const tcpCa = extend(
  table([
    [116, "bpf_tcp_send_ack_proto"],
    [107, "bpf_sk_storage_get_proto"],
    [108, "bpf_sk_storage_delete_proto"],
    [49, "bpf_sk_setsockopt_proto"],
    [57, "bpf_sk_getsockopt_proto"],
    [160, "bpf_ktime_get_coarse_ns_proto"],
  ]),
  baseFuncProto,
);

/**
 * mirrors bpf_tcp_ca_get_func_proto() (struct_ops for tcp_congestion_ops):
 * `release` gets neither setsockopt nor getsockopt (attachTarget is the
 * member's name).
 */
const structOps: Chain = (id, c) =>
  (id === 49 || id === 57) && c.attachTarget === "release"
    ? null
    : tcpCa(id, c);

/** Network program types, by libbpf name. */
export const NET_CHAINS: Readonly<Record<string, Chain>> = {
  ...CGROUP_CHAINS,
  socket_filter: skFilter,
  sched_cls: tcClsAct,
  sched_act: tcClsAct,
  xdp,
  sock_ops: sockOps,
  sk_skb: skSkb,
  sk_msg: skMsg,
  flow_dissector: flowDissector,
  sk_reuseport: skReuseport,
  sk_lookup: skLookup,
  lwt_in: lwtIn,
  lwt_out: lwtOut,
  lwt_xmit: lwtXmit,
  lwt_seg6local: lwtSeg6local,
  lirc_mode2: lircMode2,
  struct_ops: structOps,
  netfilter: baseFuncProto,
};

export type { ChainContext };
