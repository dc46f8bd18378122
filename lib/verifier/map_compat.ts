/**
 * Which helpers may take which map types: check_map_func_compatibility()
 * in kernel/bpf/verifier.c (Linux 6.18), as data. The kernel checks both
 * directions — what a map type allows, then what a helper demands — and
 * reports either failure with the same line.
 * @module
 */
import { MAP_TYPE } from "../uapi/bpf.ts";
import { funcIdName } from "./helper_protos.ts";

const M = MAP_TYPE;

/** Helper ids by name, for readable tables (enum bpf_func_id). */
const F = {
  map_lookup_elem: 1,
  map_update_elem: 2,
  map_delete_elem: 3,
  tail_call: 12,
  perf_event_read: 22,
  perf_event_output: 25,
  get_stackid: 27,
  skb_under_cgroup: 33,
  current_task_under_cgroup: 37,
  redirect_map: 51,
  sk_redirect_map: 52,
  sock_map_update: 53,
  perf_event_read_value: 55,
  msg_redirect_map: 60,
  sock_hash_update: 70,
  msg_redirect_hash: 71,
  sk_redirect_hash: 72,
  get_local_storage: 81,
  sk_select_reuseport: 82,
  map_push_elem: 87,
  map_pop_elem: 88,
  map_peek_elem: 89,
  sk_storage_get: 107,
  sk_storage_delete: 108,
  skb_output: 111,
  xdp_output: 121,
  ringbuf_output: 130,
  ringbuf_reserve: 131,
  ringbuf_query: 134,
  inode_storage_get: 145,
  inode_storage_delete: 146,
  task_storage_get: 156,
  task_storage_delete: 157,
  kptr_xchg: 194,
  map_lookup_percpu_elem: 195,
  ringbuf_reserve_dynptr: 198,
  ringbuf_submit_dynptr: 199,
  ringbuf_discard_dynptr: 200,
  user_ringbuf_drain: 209,
  cgrp_storage_get: 210,
  cgrp_storage_delete: 211,
} as const;

const PERF_EVENT_HELPERS = [
  F.perf_event_read,
  F.perf_event_output,
  F.skb_output,
  F.perf_event_read_value,
  F.xdp_output,
];
const RINGBUF_HELPERS = [
  F.ringbuf_output,
  F.ringbuf_reserve,
  F.ringbuf_query,
  F.ringbuf_reserve_dynptr,
  F.ringbuf_submit_dynptr,
  F.ringbuf_discard_dynptr,
];

/** Map perspective: the only helpers a map of this type may be passed to. */
const MAP_ALLOWS: ReadonlyMap<number, readonly number[]> = new Map<
  number,
  readonly number[]
>([
  [M.prog_array, [F.tail_call]],
  [M.perf_event_array, PERF_EVENT_HELPERS],
  [M.ringbuf, RINGBUF_HELPERS],
  [M.user_ringbuf, [F.user_ringbuf_drain]],
  [M.stack_trace, [F.get_stackid]],
  [M.cgroup_array, [F.skb_under_cgroup, F.current_task_under_cgroup]],
  [M.cgroup_storage, [F.get_local_storage]],
  [M.percpu_cgroup_storage, [F.get_local_storage]],
  [M.devmap, [F.redirect_map, F.map_lookup_elem]],
  [M.devmap_hash, [F.redirect_map, F.map_lookup_elem]],
  [M.cpumap, [F.redirect_map]],
  [M.xskmap, [F.redirect_map, F.map_lookup_elem]],
  [M.array_of_maps, [F.map_lookup_elem]],
  [M.hash_of_maps, [F.map_lookup_elem]],
  [M.sockmap, [
    F.sk_redirect_map,
    F.sock_map_update,
    F.msg_redirect_map,
    F.sk_select_reuseport,
    F.map_lookup_elem,
  ]],
  [M.sockhash, [
    F.sk_redirect_hash,
    F.sock_hash_update,
    F.msg_redirect_hash,
    F.sk_select_reuseport,
    F.map_lookup_elem,
  ]],
  [M.reuseport_sockarray, [F.sk_select_reuseport]],
  [M.queue, [F.map_peek_elem, F.map_pop_elem, F.map_push_elem]],
  [M.stack, [F.map_peek_elem, F.map_pop_elem, F.map_push_elem]],
  [M.sk_storage, [F.sk_storage_get, F.sk_storage_delete, F.kptr_xchg]],
  [M.inode_storage, [F.inode_storage_get, F.inode_storage_delete, F.kptr_xchg]],
  [M.task_storage, [F.task_storage_get, F.task_storage_delete, F.kptr_xchg]],
  [M.cgrp_storage, [F.cgrp_storage_get, F.cgrp_storage_delete, F.kptr_xchg]],
  [M.bloom_filter, [F.map_peek_elem, F.map_push_elem]],
]);

/** Helper perspective: the only map types this helper accepts. */
const HELPER_DEMANDS: ReadonlyMap<number, readonly number[]> = (() => {
  const m = new Map<number, readonly number[]>();
  const put = (ids: readonly number[], maps: readonly number[]) =>
    ids.forEach((id) => m.set(id, maps));
  put([F.tail_call], [M.prog_array]);
  put(PERF_EVENT_HELPERS, [M.perf_event_array]);
  put(RINGBUF_HELPERS, [M.ringbuf]);
  put([F.user_ringbuf_drain], [M.user_ringbuf]);
  put([F.get_stackid], [M.stack_trace]);
  put([F.current_task_under_cgroup, F.skb_under_cgroup], [M.cgroup_array]);
  put([F.redirect_map], [M.devmap, M.devmap_hash, M.cpumap, M.xskmap]);
  put([F.sk_redirect_map, F.msg_redirect_map, F.sock_map_update], [M.sockmap]);
  put([F.sk_redirect_hash, F.msg_redirect_hash, F.sock_hash_update], [
    M.sockhash,
  ]);
  put([F.get_local_storage], [M.cgroup_storage, M.percpu_cgroup_storage]);
  put([F.sk_select_reuseport], [M.reuseport_sockarray, M.sockmap, M.sockhash]);
  put([F.map_pop_elem], [M.queue, M.stack]);
  put([F.map_peek_elem, F.map_push_elem], [M.queue, M.stack, M.bloom_filter]);
  put([F.map_lookup_percpu_elem], [
    M.percpu_array,
    M.percpu_hash,
    M.lru_percpu_hash,
  ]);
  put([F.sk_storage_get, F.sk_storage_delete], [M.sk_storage]);
  put([F.inode_storage_get, F.inode_storage_delete], [M.inode_storage]);
  put([F.task_storage_get, F.task_storage_delete], [M.task_storage]);
  put([F.cgrp_storage_get, F.cgrp_storage_delete], [M.cgrp_storage]);
  return m;
})();

/** The program, for may_update_sockmap(). */
export interface MapCompatContext {
  /** libbpf program type name (`"sched_cls"` …). */
  readonly progType: string;
  /** libbpf attach type name, if any (`"trace_iter"` …). */
  readonly attachType?: string;
}

/** Program types that may update or delete sockmap/sockhash entries directly. */
const SOCKMAP_WRITERS = new Set([
  "socket_filter",
  "sched_cls",
  "sched_act",
  "xdp",
  "sk_reuseport",
  "flow_dissector",
  "sk_lookup",
]);

/**
 * Mirrors may_update_sockmap(): map_update_elem/map_delete_elem on a sockmap
 * or sockhash only where no locked socket can be in hand. The kernel logs
 * `cannot update sockmap in this context` before the compatibility error.
 */
export function mayUpdateSockmap(
  helperId: number,
  ctx?: MapCompatContext,
): boolean {
  if (helperId !== F.map_update_elem && helperId !== F.map_delete_elem) {
    return false;
  }
  if (!ctx) return false;
  if (ctx.progType === "tracing") return ctx.attachType === "trace_iter";
  if (ctx.progType === "sock_ops") return helperId === F.map_delete_elem;
  return SOCKMAP_WRITERS.has(ctx.progType);
}

/**
 * Mirrors check_map_func_compatibility(): null when a map of `mapType`
 * (enum bpf_map_type number) may be passed to helper `helperId`, else the
 * kernel's log line `cannot pass map_type %d into func %s#%d`. `ctx` is the
 * program, needed only for sockmap/sockhash updates (without it they fail).
 * @example
 * checkMapFuncCompatibility(27, 1);
 * // "cannot pass map_type 27 into func bpf_map_lookup_elem#1"
 */
export function checkMapFuncCompatibility(
  mapType: number,
  helperId: number,
  ctx?: MapCompatContext,
): string | null {
  const error = `cannot pass map_type ${mapType} into func ${
    funcIdName(helperId)
  }#${helperId}`;
  const allows = MAP_ALLOWS.get(mapType);
  if (allows && !allows.includes(helperId)) {
    const sockmap = mapType === M.sockmap || mapType === M.sockhash;
    if (!(sockmap && mayUpdateSockmap(helperId, ctx))) return error;
  }
  const demands = HELPER_DEMANDS.get(helperId);
  if (demands && !demands.includes(mapType)) return error;
  return null;
}

/**
 * The map check check_func_arg() makes while reading an ARG_CONST_MAP_PTR,
 * before check_map_func_compatibility() runs: bpf_tail_call takes only a
 * prog array. Null when the map passes.
 */
export function checkMapArg(mapType: number, helperId: number): string | null {
  if (helperId === F.tail_call && mapType !== M.prog_array) {
    return "expected prog array map for tail call";
  }
  return null;
}
