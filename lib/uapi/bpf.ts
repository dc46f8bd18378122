/**
 * Program and attach types: libbpf's names (`prog_type_name[]`,
 * `attach_type_name[]` in libbpf.c) and the numbers of
 * `enum bpf_prog_type` / `enum bpf_attach_type` in include/uapi/linux/bpf.h.
 * @module
 */

/** `enum bpf_prog_type`, by libbpf's name for each. */
export const PROG_TYPE = {
  unspec: 0,
  socket_filter: 1,
  kprobe: 2,
  sched_cls: 3,
  sched_act: 4,
  tracepoint: 5,
  xdp: 6,
  perf_event: 7,
  cgroup_skb: 8,
  cgroup_sock: 9,
  lwt_in: 10,
  lwt_out: 11,
  lwt_xmit: 12,
  sock_ops: 13,
  sk_skb: 14,
  cgroup_device: 15,
  sk_msg: 16,
  raw_tracepoint: 17,
  cgroup_sock_addr: 18,
  lwt_seg6local: 19,
  lirc_mode2: 20,
  sk_reuseport: 21,
  flow_dissector: 22,
  cgroup_sysctl: 23,
  raw_tracepoint_writable: 24,
  cgroup_sockopt: 25,
  tracing: 26,
  struct_ops: 27,
  ext: 28,
  lsm: 29,
  sk_lookup: 30,
  syscall: 31,
  netfilter: 32,
} as const;

/** A program type, named as libbpf names it (`"sched_cls"`, `"xdp"` …). */
export type ProgType = keyof typeof PROG_TYPE;

/** `enum bpf_attach_type`, by libbpf's name for each. */
export const ATTACH_TYPE = {
  cgroup_inet_ingress: 0,
  cgroup_inet_egress: 1,
  cgroup_inet_sock_create: 2,
  cgroup_sock_ops: 3,
  sk_skb_stream_parser: 4,
  sk_skb_stream_verdict: 5,
  cgroup_device: 6,
  sk_msg_verdict: 7,
  cgroup_inet4_bind: 8,
  cgroup_inet6_bind: 9,
  cgroup_inet4_connect: 10,
  cgroup_inet6_connect: 11,
  cgroup_inet4_post_bind: 12,
  cgroup_inet6_post_bind: 13,
  cgroup_udp4_sendmsg: 14,
  cgroup_udp6_sendmsg: 15,
  lirc_mode2: 16,
  flow_dissector: 17,
  cgroup_sysctl: 18,
  cgroup_udp4_recvmsg: 19,
  cgroup_udp6_recvmsg: 20,
  cgroup_getsockopt: 21,
  cgroup_setsockopt: 22,
  trace_raw_tp: 23,
  trace_fentry: 24,
  trace_fexit: 25,
  modify_return: 26,
  lsm_mac: 27,
  trace_iter: 28,
  cgroup_inet4_getpeername: 29,
  cgroup_inet6_getpeername: 30,
  cgroup_inet4_getsockname: 31,
  cgroup_inet6_getsockname: 32,
  xdp_devmap: 33,
  cgroup_inet_sock_release: 34,
  xdp_cpumap: 35,
  sk_lookup: 36,
  xdp: 37,
  sk_skb_verdict: 38,
  sk_reuseport_select: 39,
  sk_reuseport_select_or_migrate: 40,
  perf_event: 41,
  trace_kprobe_multi: 42,
  lsm_cgroup: 43,
  struct_ops: 44,
  netfilter: 45,
  tcx_ingress: 46,
  tcx_egress: 47,
  trace_uprobe_multi: 48,
  cgroup_unix_connect: 49,
  cgroup_unix_sendmsg: 50,
  cgroup_unix_recvmsg: 51,
  cgroup_unix_getpeername: 52,
  cgroup_unix_getsockname: 53,
  netkit_primary: 54,
  netkit_peer: 55,
  trace_kprobe_session: 56,
  trace_uprobe_session: 57,
} as const;

/** An attach type, named as libbpf names it (`"xdp"`, `"tcx_ingress"` …). */
export type AttachType = keyof typeof ATTACH_TYPE;

/** `enum bpf_map_type`, by libbpf's name for each (`map_type_name[]`). */
export const MAP_TYPE = {
  unspec: 0,
  hash: 1,
  array: 2,
  prog_array: 3,
  perf_event_array: 4,
  percpu_hash: 5,
  percpu_array: 6,
  stack_trace: 7,
  cgroup_array: 8,
  lru_hash: 9,
  lru_percpu_hash: 10,
  lpm_trie: 11,
  array_of_maps: 12,
  hash_of_maps: 13,
  devmap: 14,
  sockmap: 15,
  cpumap: 16,
  xskmap: 17,
  sockhash: 18,
  cgroup_storage: 19,
  reuseport_sockarray: 20,
  percpu_cgroup_storage: 21,
  queue: 22,
  stack: 23,
  sk_storage: 24,
  devmap_hash: 25,
  struct_ops: 26,
  ringbuf: 27,
  inode_storage: 28,
  task_storage: 29,
  bloom_filter: 30,
  user_ringbuf: 31,
  cgrp_storage: 32,
  arena: 33,
} as const;

/** A map type, named as libbpf names it (`"hash"`, `"array_of_maps"` …). */
export type MapType = keyof typeof MAP_TYPE;

const MAP_TYPE_NAMES: readonly (MapType | undefined)[] = (() => {
  const names: (MapType | undefined)[] = [];
  for (const [name, value] of Object.entries(MAP_TYPE)) {
    names[value] = name as MapType;
  }
  return names;
})();

/** Name of a map type number; `unknown(N)` for numbers this table lacks. */
export function mapTypeName(id: number): MapType | `unknown(${number})` {
  return MAP_TYPE_NAMES[id] ?? `unknown(${id})`;
}

/** Map flag: the program may not write the map (set on `.rodata` and `.kconfig`). */
export const BPF_F_RDONLY_PROG = 1 << 7;
/** Map flag: user space may mmap() the array (global data exposed to skeletons). */
export const BPF_F_MMAPABLE = 1 << 10;
/** Map flag: a struct_ops map attached through a BPF link (`.struct_ops.link`). */
export const BPF_F_LINK = 1 << 13;
