/**
 * Per-helper facts the verifier consults by id rather than through the
 * prototype: which helpers move packet data, acquire references, cast
 * socket pointers or call back into the program (Linux 6.18).
 * @module
 */
import { MAP_TYPE } from "../uapi/bpf.ts";
import type { HelperProto } from "./helper_protos.ts";

/** Helpers that may move or resize packet data (mirrors bpf_helper_changes_pkt_data()). */
const CHANGES_PKT_DATA: ReadonlySet<number> = new Set([
  13, // clone_redirect
  10, // l3_csum_replace
  11, // l4_csum_replace
  73, // lwt_push_encap
  76, // lwt_seg6_action
  75, // lwt_seg6_adjust_srh
  74, // lwt_seg6_store_bytes
  91, // msg_pop_data
  63, // msg_pull_data
  90, // msg_push_data
  50, // skb_adjust_room
  43, // skb_change_head
  31, // skb_change_proto
  38, // skb_change_tail
  39, // skb_pull_data
  9, // skb_store_bytes
  19, // skb_vlan_pop
  18, // skb_vlan_push
  143, // store_hdr_opt
  44, // xdp_adjust_head
  54, // xdp_adjust_meta
  65, // xdp_adjust_tail
  // Not tail_call: on 6.18 a packet pointer survives bpf_tail_call() in the
  // main program (tests/fixtures/helpers/pkt_data.c, tc_12_tail_call).
]);

/**
 * Mirrors bpf_helper_changes_pkt_data(): after such a call every packet
 * pointer (PTR_TO_PACKET, _META, _END) is invalidated.
 */
export function helperChangesPktData(id: number): boolean {
  return CHANGES_PKT_DATA.has(id);
}

/**
 * Mirrors is_acquire_function(): the result carries a new reference
 * (`ref_obj_id`) that must be released before exit. A lookup in a sockmap or
 * sockhash acquires the socket it returns.
 */
export function isAcquireFunction(id: number, mapType?: number): boolean {
  if ([84, 85, 99, 131, 194].includes(id)) return true;
  return id === 1 &&
    (mapType === MAP_TYPE.sockmap || mapType === MAP_TYPE.sockhash);
}

/** Mirrors is_release_function(): some argument is OBJ_RELEASE. */
export function isReleaseFunction(proto: HelperProto): boolean {
  return proto.args.some((a) => a.flags.includes("OBJ_RELEASE"));
}

/**
 * Mirrors is_ptr_cast_function(): the result aliases the argument's
 * reference (same `ref_obj_id`) instead of taking a new one.
 */
export function isPtrCastFunction(id: number): boolean {
  // tcp_sock, sk_fullsock, skc_to_{tcp,tcp6,udp6,mptcp,tcp_timewait,tcp_request}_sock
  return [96, 95, 137, 136, 140, 196, 138, 139].includes(id);
}

/** Mirrors is_dynptr_ref_function(): bpf_dynptr_data's slice shares the dynptr's ref. */
export function isDynptrRefFunction(id: number): boolean {
  return id === 203;
}

/** Mirrors is_sync_callback_calling_function(): for_each_map_elem, find_vma, loop, user_ringbuf_drain. */
export function isSyncCallbackCallingFunction(id: number): boolean {
  return [164, 180, 181, 209].includes(id);
}

/** Mirrors is_async_callback_calling_function(): bpf_timer_set_callback. */
export function isAsyncCallbackCallingFunction(id: number): boolean {
  return id === 170;
}

/** Mirrors is_callback_calling_function(). */
export function isCallbackCallingFunction(id: number): boolean {
  return isSyncCallbackCallingFunction(id) ||
    isAsyncCallbackCallingFunction(id);
}

/** Mirrors is_storage_get_function(): sk/inode/task/cgrp storage_get (flags arg checked). */
export function isStorageGetFunction(id: number): boolean {
  return [107, 145, 156, 210].includes(id);
}
