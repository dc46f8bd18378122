/**
 * Prototypes of the networking helpers: net/core/filter.c, sock_map.c,
 * bpf_sk_storage.c, net/ipv6/seg6_local.c, kernel/bpf/cgroup.c (Linux 6.18).
 * One id may have several prototypes (`bpf_xdp_sk_lookup_tcp_proto` …).
 * @module
 */
import {
  ANY,
  arg,
  BTF_ID,
  BTF_SOCK_COMMON,
  CTX,
  CTX_OR_NULL,
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
  SOCK_COMMON,
  UNINIT_MEM,
  VALUE_OR_NULL,
} from "./helper_table_defs.ts";

const SOCKET_OR_NULL = ret("RET_PTR_TO_SOCKET", ["PTR_MAYBE_NULL"]);
const LOOKUP_ARGS = [CTX, MEM_RO, SIZE, ANY, ANY];
const OUTPUT_ARGS = [CTX, MAP, ANY, MEM_RO, SIZE_OR_ZERO];
const FIXED_INOUT = arg(
  "ARG_PTR_TO_MEM",
  "MEM_FIXED_SIZE",
  "MEM_ALIGNED",
  "MEM_WRITE",
);
const FIXED_IN = arg("ARG_PTR_TO_MEM", "MEM_FIXED_SIZE", "MEM_RDONLY");

/** skb data and checksum helpers (tc, lwt, socket filters, sk_skb). */
export const SKB_PROTOS: readonly NamedProto[] = [
  proto("bpf_skb_store_bytes_proto", 9, {
    args: [CTX, ANY, MEM_RO, SIZE, ANY],
  }),
  proto("bpf_sk_skb_store_bytes_proto", 9, {
    args: [CTX, ANY, MEM_RO, SIZE, ANY],
  }),
  proto("bpf_skb_load_bytes_proto", 26, { args: [CTX, ANY, UNINIT_MEM, SIZE] }),
  proto("bpf_flow_dissector_load_bytes_proto", 26, {
    args: [CTX, ANY, UNINIT_MEM, SIZE],
  }),
  proto("sk_reuseport_load_bytes_proto", 26, {
    args: [CTX, ANY, UNINIT_MEM, SIZE],
  }),
  proto("bpf_skb_load_bytes_relative_proto", 68, {
    args: [CTX, ANY, UNINIT_MEM, SIZE, ANY],
  }),
  proto("sk_reuseport_load_bytes_relative_proto", 68, {
    args: [CTX, ANY, UNINIT_MEM, SIZE, ANY],
  }),
  proto("bpf_l3_csum_replace_proto", 10, { args: [CTX, ANY, ANY, ANY, ANY] }),
  proto("bpf_l4_csum_replace_proto", 11, { args: [CTX, ANY, ANY, ANY, ANY] }),
  proto("bpf_csum_diff_proto", 28, {
    pkt: true,
    args: [MEM_RO_OR_NULL, SIZE_OR_ZERO, MEM_RO_OR_NULL, SIZE_OR_ZERO, ANY],
  }),
  proto("bpf_csum_update_proto", 40, { args: [CTX, ANY] }),
  proto("bpf_csum_level_proto", 135, { args: [CTX, ANY] }),
  proto("bpf_skb_pull_data_proto", 39, { args: [CTX, ANY] }),
  proto("sk_skb_pull_data_proto", 39, { args: [CTX, ANY] }),
  proto("bpf_skb_change_tail_proto", 38, { args: [CTX, ANY, ANY] }),
  proto("sk_skb_change_tail_proto", 38, { args: [CTX, ANY, ANY] }),
  proto("bpf_skb_change_head_proto", 43, { args: [CTX, ANY, ANY] }),
  proto("sk_skb_change_head_proto", 43, { args: [CTX, ANY, ANY] }),
  proto("bpf_skb_adjust_room_proto", 50, { args: [CTX, ANY, ANY, ANY] }),
  proto("sk_skb_adjust_room_proto", 50, { args: [CTX, ANY, ANY, ANY] }),
  proto("bpf_skb_change_proto_proto", 31, { args: [CTX, ANY, ANY] }),
  proto("bpf_skb_change_type_proto", 32, { args: [CTX, ANY] }),
  proto("bpf_skb_vlan_push_proto", 18, { args: [CTX, ANY, ANY] }),
  proto("bpf_skb_vlan_pop_proto", 19, { args: [CTX] }),
  proto("bpf_skb_get_tunnel_key_proto", 20, {
    args: [CTX, UNINIT_MEM, SIZE, ANY],
  }),
  proto("bpf_skb_set_tunnel_key_proto", 21, { args: [CTX, MEM_RO, SIZE, ANY] }),
  proto("bpf_skb_get_tunnel_opt_proto", 29, { args: [CTX, UNINIT_MEM, SIZE] }),
  proto("bpf_skb_set_tunnel_opt_proto", 30, { args: [CTX, MEM_RO, SIZE] }),
  proto("bpf_skb_under_cgroup_proto", 33, { args: [CTX, MAP, ANY] }),
  proto("bpf_get_hash_recalc_proto", 34, { args: [CTX] }),
  proto("bpf_set_hash_invalid_proto", 41, { args: [CTX] }),
  proto("bpf_set_hash_proto", 48, { args: [CTX, ANY] }),
  proto("bpf_get_route_realm_proto", 24, { args: [CTX] }),
  proto("bpf_get_cgroup_classid_proto", 17, { args: [CTX] }),
  proto("bpf_skb_cgroup_classid_proto", 151, { args: [CTX] }),
  proto("bpf_skb_get_xfrm_state_proto", 66, {
    args: [CTX, ANY, UNINIT_MEM, SIZE, ANY],
  }),
  proto("bpf_skb_cgroup_id_proto", 79, { args: [CTX] }),
  proto("bpf_skb_ancestor_cgroup_id_proto", 83, { args: [CTX, ANY] }),
  proto("bpf_skb_ecn_set_ce_proto", 97, { args: [CTX] }),
  proto("bpf_skb_set_tstamp_proto", 192, { args: [CTX, ANY, ANY] }),
  proto("bpf_get_socket_uid_proto", 47, { args: [CTX] }),
  proto("bpf_skb_event_output_proto", 25, { gpl: true, args: OUTPUT_ARGS }),
  proto("bpf_skb_fib_lookup_proto", 69, {
    gpl: true,
    args: [CTX, MEM_RW, SIZE, ANY],
  }),
  proto("bpf_skb_check_mtu_proto", 163, {
    gpl: true,
    args: [CTX, ANY, FIXED_INOUT, ANY, ANY],
    sizes: { 2: 4 },
  }),
  proto("bpf_lwt_in_push_encap_proto", 73, { args: [CTX, ANY, MEM_RO, SIZE] }),
  proto("bpf_lwt_xmit_push_encap_proto", 73, {
    args: [CTX, ANY, MEM_RO, SIZE],
  }),
  proto("bpf_lwt_seg6_store_bytes_proto", 74, {
    args: [CTX, ANY, MEM_RO, SIZE],
  }),
  proto("bpf_lwt_seg6_adjust_srh_proto", 75, { args: [CTX, ANY, ANY] }),
  proto("bpf_lwt_seg6_action_proto", 76, { args: [CTX, ANY, MEM_RO, SIZE] }),
];

/** Redirects (tc, xdp, sockmap, sk_msg). */
export const REDIRECT_PROTOS: readonly NamedProto[] = [
  proto("bpf_redirect_proto", 23, { args: [ANY, ANY] }),
  proto("bpf_clone_redirect_proto", 13, { args: [CTX, ANY, ANY] }),
  proto("bpf_redirect_neigh_proto", 152, {
    args: [ANY, MEM_RO_OR_NULL, SIZE_OR_ZERO, ANY],
  }),
  proto("bpf_redirect_peer_proto", 155, { args: [ANY, ANY] }),
  proto("bpf_xdp_redirect_map_proto", 51, { args: [MAP, ANY, ANY] }),
  proto("bpf_sk_redirect_map_proto", 52, { args: [CTX, MAP, ANY, ANY] }),
  proto("bpf_sk_redirect_hash_proto", 72, { args: [CTX, MAP, KEY, ANY] }),
  proto("bpf_msg_redirect_map_proto", 60, { args: [CTX, MAP, ANY, ANY] }),
  proto("bpf_msg_redirect_hash_proto", 71, { args: [CTX, MAP, KEY, ANY] }),
  proto("bpf_sock_map_update_proto", 53, { args: [CTX, MAP, KEY, ANY] }),
  proto("bpf_sock_hash_update_proto", 70, { args: [CTX, MAP, KEY, ANY] }),
  proto("bpf_msg_apply_bytes_proto", 61, { args: [CTX, ANY] }),
  proto("bpf_msg_cork_bytes_proto", 62, { args: [CTX, ANY] }),
  proto("bpf_msg_pull_data_proto", 63, { args: [CTX, ANY, ANY, ANY] }),
  proto("bpf_msg_push_data_proto", 90, { args: [CTX, ANY, ANY, ANY] }),
  proto("bpf_msg_pop_data_proto", 91, { args: [CTX, ANY, ANY, ANY] }),
  proto("sk_select_reuseport_proto", 82, { args: [CTX, MAP, KEY, ANY] }),
];

/** XDP buffer helpers. */
export const XDP_PROTOS: readonly NamedProto[] = [
  proto("bpf_xdp_adjust_head_proto", 44, { args: [CTX, ANY] }),
  proto("bpf_xdp_adjust_meta_proto", 54, { args: [CTX, ANY] }),
  proto("bpf_xdp_adjust_tail_proto", 65, { args: [CTX, ANY] }),
  proto("bpf_xdp_event_output_proto", 25, { gpl: true, args: OUTPUT_ARGS }),
  proto("bpf_xdp_fib_lookup_proto", 69, {
    gpl: true,
    args: [CTX, MEM_RW, SIZE, ANY],
  }),
  proto("bpf_xdp_check_mtu_proto", 163, {
    gpl: true,
    args: [CTX, ANY, FIXED_INOUT, ANY, ANY],
    sizes: { 2: 4 },
  }),
  proto("bpf_xdp_get_buff_len_proto", 188, { args: [CTX] }),
  proto("bpf_xdp_load_bytes_proto", 189, {
    args: [CTX, ANY, UNINIT_MEM, SIZE],
  }),
  proto("bpf_xdp_store_bytes_proto", 190, { args: [CTX, ANY, MEM_RO, SIZE] }),
];

const SKC = (
  symbol: string,
  id: number,
  struct: string,
  arg1 = BTF_SOCK_COMMON,
) =>
  proto(symbol, id, {
    ret: ret("RET_PTR_TO_BTF_ID", ["PTR_MAYBE_NULL"], struct),
    args: [arg1],
    btf: arg1 === BTF_SOCK_COMMON ? { 0: "sock_common" } : undefined,
  });

/** Socket lookup, release, casts, syncookies and socket storage. */
export const SOCK_PROTOS: readonly NamedProto[] = [
  ...[
    "bpf_sk_lookup_tcp_proto",
    "bpf_xdp_sk_lookup_tcp_proto",
    "bpf_sock_addr_sk_lookup_tcp_proto",
  ]
    .map((s) =>
      proto(s, 84, { pkt: true, ret: SOCKET_OR_NULL, args: LOOKUP_ARGS })
    ),
  ...[
    "bpf_sk_lookup_udp_proto",
    "bpf_xdp_sk_lookup_udp_proto",
    "bpf_sock_addr_sk_lookup_udp_proto",
  ]
    .map((s) =>
      proto(s, 85, { pkt: true, ret: SOCKET_OR_NULL, args: LOOKUP_ARGS })
    ),
  ...[
    "bpf_skc_lookup_tcp_proto",
    "bpf_xdp_skc_lookup_tcp_proto",
    "bpf_sock_addr_skc_lookup_tcp_proto",
  ]
    .map((s) =>
      proto(s, 99, {
        pkt: true,
        ret: ret("RET_PTR_TO_SOCK_COMMON", ["PTR_MAYBE_NULL"]),
        args: LOOKUP_ARGS,
      })
    ),
  proto("bpf_sk_release_proto", 86, {
    args: [arg("ARG_PTR_TO_BTF_ID_SOCK_COMMON", "OBJ_RELEASE")],
  }),
  proto("bpf_sk_fullsock_proto", 95, {
    pkt: true,
    ret: SOCKET_OR_NULL,
    args: [SOCK_COMMON],
  }),
  proto("bpf_tcp_sock_proto", 96, {
    pkt: true,
    ret: ret("RET_PTR_TO_TCP_SOCK", ["PTR_MAYBE_NULL"]),
    args: [SOCK_COMMON],
  }),
  proto("bpf_get_listener_sock_proto", 98, {
    pkt: true,
    ret: SOCKET_OR_NULL,
    args: [SOCK_COMMON],
  }),
  proto("bpf_sk_assign_proto", 124, { args: [CTX, BTF_SOCK_COMMON, ANY] }),
  proto("bpf_sk_lookup_assign_proto", 124, {
    args: [CTX, arg("ARG_PTR_TO_SOCKET", "PTR_MAYBE_NULL"), ANY],
  }),
  ...[100, 110].map((id) =>
    proto(
      id === 100
        ? "bpf_tcp_check_syncookie_proto"
        : "bpf_tcp_gen_syncookie_proto",
      id,
      {
        gpl: true,
        pkt: true,
        args: [BTF_SOCK_COMMON, MEM_RO, SIZE, MEM_RO, SIZE],
      },
    )
  ),
  proto("bpf_tcp_raw_gen_syncookie_ipv4_proto", 204, {
    gpl: true,
    args: [FIXED_IN, MEM_RO, SIZE_OR_ZERO],
    sizes: { 0: 20 },
  }),
  proto("bpf_tcp_raw_gen_syncookie_ipv6_proto", 205, {
    gpl: true,
    args: [FIXED_IN, MEM_RO, SIZE_OR_ZERO],
    sizes: { 0: 40 },
  }),
  proto("bpf_tcp_raw_check_syncookie_ipv4_proto", 206, {
    gpl: true,
    args: [FIXED_IN, FIXED_IN],
    sizes: { 0: 20, 1: 20 },
  }),
  proto("bpf_tcp_raw_check_syncookie_ipv6_proto", 207, {
    gpl: true,
    args: [FIXED_IN, FIXED_IN],
    sizes: { 0: 40, 1: 20 },
  }),
  SKC("bpf_skc_to_tcp6_sock_proto", 136, "tcp6_sock"),
  SKC("bpf_skc_to_tcp_sock_proto", 137, "tcp_sock"),
  SKC("bpf_skc_to_tcp_timewait_sock_proto", 138, "tcp_timewait_sock"),
  SKC("bpf_skc_to_tcp_request_sock_proto", 139, "tcp_request_sock"),
  SKC("bpf_skc_to_udp6_sock_proto", 140, "udp6_sock"),
  SKC("bpf_skc_to_unix_sock_proto", 178, "unix_sock"),
  SKC("bpf_skc_to_mptcp_sock_proto", 196, "mptcp_sock", SOCK_COMMON),
  proto("bpf_sk_cgroup_id_proto", 128, { args: [BTF_SOCK_COMMON] }),
  proto("bpf_sk_ancestor_cgroup_id_proto", 129, {
    args: [BTF_SOCK_COMMON, ANY],
  }),
  proto("bpf_sk_storage_get_proto", 107, {
    ret: ret("RET_PTR_TO_MAP_VALUE", ["PTR_MAYBE_NULL"]),
    args: [MAP, BTF_SOCK_COMMON, VALUE_OR_NULL, ANY],
  }),
  proto("bpf_sk_storage_get_cg_sock_proto", 107, {
    ret: ret("RET_PTR_TO_MAP_VALUE", ["PTR_MAYBE_NULL"]),
    args: [MAP, CTX, VALUE_OR_NULL, ANY],
  }),
  proto("bpf_sk_storage_delete_proto", 108, { args: [MAP, BTF_SOCK_COMMON] }),
  proto("bpf_tcp_send_ack_proto", 116, {
    args: [BTF_ID, ANY],
    btf: { 0: "tcp_sock" },
  }),
];

/** Context-bound socket helpers (sock_ops, sock_addr, cgroup hooks). */
export const SOCK_CTX_PROTOS: readonly NamedProto[] = [
  ...[
    "bpf_get_socket_cookie_proto",
    "bpf_get_socket_cookie_sock_proto",
    "bpf_get_socket_cookie_sock_addr_proto",
    "bpf_get_socket_cookie_sock_ops_proto",
  ].map((s) => proto(s, 46, { args: [CTX] })),
  ...[
    "bpf_get_netns_cookie_proto",
    "bpf_get_netns_cookie_sock_proto",
    "bpf_get_netns_cookie_sock_addr_proto",
    "bpf_get_netns_cookie_sock_ops_proto",
    "bpf_get_netns_cookie_sk_msg_proto",
    "bpf_get_netns_cookie_sockopt_proto",
  ].map((s) => proto(s, 122, { args: [CTX_OR_NULL] })),
  proto("bpf_sock_addr_setsockopt_proto", 49, {
    args: [CTX, ANY, ANY, MEM_RO, SIZE],
  }),
  proto("bpf_sock_ops_setsockopt_proto", 49, {
    args: [CTX, ANY, ANY, MEM_RO, SIZE],
  }),
  proto("bpf_sk_setsockopt_proto", 49, {
    args: [BTF_SOCK_COMMON, ANY, ANY, MEM_RO, SIZE],
  }),
  proto("bpf_sock_addr_getsockopt_proto", 57, {
    args: [CTX, ANY, ANY, UNINIT_MEM, SIZE],
  }),
  proto("bpf_sock_ops_getsockopt_proto", 57, {
    args: [CTX, ANY, ANY, UNINIT_MEM, SIZE],
  }),
  proto("bpf_sk_getsockopt_proto", 57, {
    args: [BTF_SOCK_COMMON, ANY, ANY, UNINIT_MEM, SIZE],
  }),
  proto("bpf_bind_proto", 64, { args: [CTX, MEM_RO, SIZE] }),
  proto("bpf_sock_ops_cb_flags_set_proto", 59, { args: [CTX, ANY] }),
  proto("bpf_sock_ops_load_hdr_opt_proto", 142, {
    args: [CTX, MEM_RW, SIZE, ANY],
  }),
  proto("bpf_sock_ops_store_hdr_opt_proto", 143, {
    args: [CTX, MEM_RO, SIZE, ANY],
  }),
  proto("bpf_sock_ops_reserve_hdr_opt_proto", 144, { args: [CTX, ANY, ANY] }),
  proto("bpf_event_output_data_proto", 25, { gpl: true, args: OUTPUT_ARGS }),
  proto("bpf_get_retval_proto", 186),
  proto("bpf_set_retval_proto", 187, { args: [ANY] }),
  proto("bpf_sysctl_get_name_proto", 101, { args: [CTX, MEM_RW, SIZE, ANY] }),
  proto("bpf_sysctl_get_current_value_proto", 102, {
    args: [CTX, UNINIT_MEM, SIZE],
  }),
  proto("bpf_sysctl_get_new_value_proto", 103, {
    args: [CTX, UNINIT_MEM, SIZE],
  }),
  proto("bpf_sysctl_set_new_value_proto", 104, { args: [CTX, MEM_RO, SIZE] }),
  proto("rc_repeat_proto", 77, { gpl: true, args: [CTX] }),
  proto("rc_keydown_proto", 78, { gpl: true, args: [CTX, ANY, ANY, ANY] }),
  proto("rc_pointer_rel_proto", 92, { gpl: true, args: [CTX, ANY, ANY] }),
];
