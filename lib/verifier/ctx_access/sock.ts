/**
 * Context rules of the socket-level program types (net/core/filter.c):
 * cgroup_sock (`struct bpf_sock`), cgroup_sock_addr (`struct bpf_sock_addr`),
 * sock_ops (`struct bpf_sock_ops`) and sk_msg (`struct sk_msg_md`).
 *
 * Offsets are the UAPI layouts (append-only); `bpf_sock_ops.skb_hwtstamp`
 * (6.2) is newer than Debian's header and was placed by hand after
 * `skb_tcp_flags`, 8-aligned.
 * @module
 */

import {
  type CtxAccessOptions,
  type CtxAccessResult,
  type CtxAccessType,
  DENIED,
  narrowableRead,
  pointerAccess,
  scalarAccess,
} from "./types.ts";

/** `offsetof(struct bpf_sock, field)`. */
export const BPF_SOCK_OFFSETS: Readonly<Record<string, number>> = Object.freeze(
  {
    bound_dev_if: 0,
    family: 4,
    type: 8,
    protocol: 12,
    mark: 16,
    priority: 20,
    src_ip4: 24,
    src_ip6: 28, // __u32[4]
    src_port: 44,
    dst_port: 48, // __be16, then 2 bytes of padding
    dst_ip4: 52,
    dst_ip6: 56, // __u32[4]
    state: 72,
    rx_queue_mapping: 76,
  },
);
/** `sizeof(struct bpf_sock)`. */
export const BPF_SOCK_SIZE = 80;

/** `offsetof(struct bpf_sock_addr, field)`. */
export const BPF_SOCK_ADDR_OFFSETS: Readonly<Record<string, number>> = Object
  .freeze({
    user_family: 0,
    user_ip4: 4,
    user_ip6: 8, // __u32[4]
    user_port: 24,
    family: 28,
    type: 32,
    protocol: 36,
    msg_src_ip4: 40,
    msg_src_ip6: 44, // __u32[4]
    sk: 64, // __bpf_md_ptr
  });
/** `sizeof(struct bpf_sock_addr)`. */
export const BPF_SOCK_ADDR_SIZE = 72;

/** `offsetof(struct bpf_sock_ops, field)` for the fields with rules of their own. */
export const BPF_SOCK_OPS_OFFSETS: Readonly<Record<string, number>> = Object
  .freeze({
    op: 0,
    reply: 4, // union with args[4] / replylong[4]
    family: 20,
    sk_txhash: 164,
    bytes_received: 168, // __u64
    bytes_acked: 176, // __u64
    sk: 184, // __bpf_md_ptr
    skb_data: 192, // __bpf_md_ptr
    skb_data_end: 200, // __bpf_md_ptr
    skb_len: 208,
    skb_tcp_flags: 212,
    skb_hwtstamp: 216, // __u64, 6.2+
  });
/** `sizeof(struct bpf_sock_ops)` in 6.18. */
export const BPF_SOCK_OPS_SIZE = 224;

/** `offsetof(struct sk_msg_md, field)`. */
export const SK_MSG_MD_OFFSETS: Readonly<Record<string, number>> = Object
  .freeze({
    data: 0, // __bpf_md_ptr
    data_end: 8, // __bpf_md_ptr
    family: 16,
    remote_ip4: 20,
    local_ip4: 24,
    remote_ip6: 28, // __u32[4]
    local_ip6: 44, // __u32[4]
    remote_port: 60,
    local_port: 64,
    size: 68,
    sk: 72, // __bpf_md_ptr
  });
/** `sizeof(struct sk_msg_md)`. */
export const SK_MSG_MD_SIZE = 80;

/** `bpf_ctx_range()` / `bpf_ctx_range_till()` / `bpf_ctx_range_ptr()`: off within [start, start+len). */
const within = (off: number, start: number, len: number): boolean =>
  off >= start && off < start + len;

/** Mirrors `bpf_sock_is_valid_access()`: reads of `struct bpf_sock` (also used through PTR_TO_SOCKET). */
export function bpfSockIsValidAccess(
  off: number,
  size: number,
  _type: CtxAccessType,
): CtxAccessResult {
  const o = BPF_SOCK_OFFSETS;
  if (off < 0 || off >= BPF_SOCK_SIZE) return DENIED;
  if (off % size !== 0) return DENIED;
  const exact = [
    o.state,
    o.family,
    o.type,
    o.protocol,
    o.src_port,
    o.rx_queue_mapping,
  ];
  if (
    exact.includes(off) || within(off, o.src_ip4, 4) ||
    within(off, o.src_ip6, 16) ||
    within(off, o.dst_ip4, 4) || within(off, o.dst_ip6, 16)
  ) return narrowableRead(off, size, 4);
  if (within(off, o.dst_port, 2)) {
    // A u32 load of the port takes the padding along; narrower ones are of the __be16.
    return narrowableRead(off, size, size === 4 ? 4 : 2);
  }
  if (within(off, o.dst_port + 2, 2)) return DENIED; // the padding after dst_port
  return size === 4 ? scalarAccess() : DENIED;
}

/**
 * Mirrors `sock_filter_is_valid_access()` (BPF_PROG_TYPE_CGROUP_SOCK):
 * bpf_sock_is_valid_access() plus `__sock_filter_check_attach_type()`.
 * bound_dev_if/mark/priority exist (read-write) only at socket create and
 * release; the source address only after bind; everything else is read-only.
 */
export function sockFilterIsValidAccess(
  off: number,
  size: number,
  type: CtxAccessType,
  opts: CtxAccessOptions = {},
): CtxAccessResult {
  const base = bpfSockIsValidAccess(off, size, type);
  if (!base.ok) return base;
  const o = BPF_SOCK_OFFSETS;
  const at = opts.expectedAttachType;
  if (off === o.bound_dev_if || off === o.mark || off === o.priority) {
    const createOrRelease = at === "cgroup_inet_sock_create" ||
      at === "cgroup_inet_sock_release";
    return createOrRelease ? base : DENIED;
  }
  let allowed = true;
  if (within(off, o.src_ip4, 4)) allowed = at === "cgroup_inet4_post_bind";
  else if (within(off, o.src_ip6, 16)) {
    allowed = at === "cgroup_inet6_post_bind";
  } else if (within(off, o.src_port, 4)) {
    allowed = at === "cgroup_inet4_post_bind" ||
      at === "cgroup_inet6_post_bind";
  }
  return allowed && type === "read" ? base : DENIED;
}

const SOCK_ADDR_IP4_HOOKS = ["bind", "connect", "getpeername", "getsockname"]
  .map((h) => `cgroup_inet4_${h}`).concat([
    "cgroup_udp4_sendmsg",
    "cgroup_udp4_recvmsg",
  ]);
const SOCK_ADDR_IP6_HOOKS = SOCK_ADDR_IP4_HOOKS.map((h) => h.replace("4", "6"));

/** Mirrors `bpf_ctx_wide_access_ok()`: an aligned u64 inside a u32 array field. */
function wideAccessOk(
  off: number,
  size: number,
  start: number,
  len: number,
): boolean {
  return size === 8 && off >= start && off + 8 <= start + len && off % 8 === 0;
}

/**
 * Mirrors `sock_addr_is_valid_access()` (BPF_PROG_TYPE_CGROUP_SOCK_ADDR):
 * the user address/port and message source are per-hook, readable narrow
 * or as u64 pairs, writable as u32 (or u64 pairs); `sk` is a PTR_TO_SOCKET.
 */
export function sockAddrIsValidAccess(
  off: number,
  size: number,
  type: CtxAccessType,
  opts: CtxAccessOptions = {},
): CtxAccessResult {
  const o = BPF_SOCK_ADDR_OFFSETS;
  const at = opts.expectedAttachType ?? "";
  if (off < 0 || off >= BPF_SOCK_ADDR_SIZE) return DENIED;
  if (off % size !== 0) return DENIED;
  // IPv6 fields from an IPv4 hook and vice versa are refused.
  if (within(off, o.user_ip4, 4) && !SOCK_ADDR_IP4_HOOKS.includes(at)) {
    return DENIED;
  }
  if (within(off, o.user_ip6, 16) && !SOCK_ADDR_IP6_HOOKS.includes(at)) {
    return DENIED;
  }
  if (within(off, o.msg_src_ip4, 4) && at !== "cgroup_udp4_sendmsg") {
    return DENIED;
  }
  if (within(off, o.msg_src_ip6, 16) && at !== "cgroup_udp6_sendmsg") {
    return DENIED;
  }

  const addressField = within(off, o.user_ip4, 4) ||
    within(off, o.user_ip6, 16) ||
    within(off, o.msg_src_ip4, 4) || within(off, o.msg_src_ip6, 16) ||
    within(off, o.user_port, 4);
  if (addressField) {
    const wide = wideAccessOk(off, size, o.user_ip6, 16) ||
      wideAccessOk(off, size, o.msg_src_ip6, 16);
    if (type === "read") {
      // The field size is recorded first, so a wide load carries 4 but is not narrow.
      if (wide) {
        return {
          ok: true,
          regType: "SCALAR_VALUE",
          ctxFieldSize: 4,
          narrowAllowed: false,
        };
      }
      return narrowableRead(off, size, 4);
    }
    return wide || size === 4 ? scalarAccess() : DENIED;
  }
  if (within(off, o.sk, 8)) {
    if (type !== "read" || size !== 8) return DENIED;
    return pointerAccess("PTR_TO_SOCKET");
  }
  return type === "read" && size === 4 ? scalarAccess() : DENIED;
}

/**
 * Mirrors `sock_ops_is_valid_access()` (BPF_PROG_TYPE_SOCK_OPS): stores
 * only to reply and sk_txhash; u64 counters and pointers loaded whole.
 */
export function sockOpsIsValidAccess(
  off: number,
  size: number,
  type: CtxAccessType,
): CtxAccessResult {
  const o = BPF_SOCK_OPS_OFFSETS;
  if (off < 0 || off >= BPF_SOCK_OPS_SIZE) return DENIED;
  if (off % size !== 0) return DENIED;
  if (type === "write") {
    if (off !== o.reply && off !== o.sk_txhash) return DENIED;
    return size === 4 ? scalarAccess() : DENIED;
  }
  if (within(off, o.bytes_received, 16) || within(off, o.skb_hwtstamp, 8)) {
    return size === 8 ? scalarAccess() : DENIED;
  }
  if (within(off, o.sk, 8)) {
    return size === 8 ? pointerAccess("PTR_TO_SOCKET_OR_NULL") : DENIED;
  }
  if (within(off, o.skb_data, 8)) {
    return size === 8 ? pointerAccess("PTR_TO_PACKET") : DENIED;
  }
  if (within(off, o.skb_data_end, 8)) {
    return size === 8 ? pointerAccess("PTR_TO_PACKET_END") : DENIED;
  }
  if (off === o.skb_tcp_flags) return narrowableRead(off, size, 4);
  return size === 4 ? scalarAccess() : DENIED;
}

/** Mirrors `sk_msg_is_valid_access()` (BPF_PROG_TYPE_SK_MSG): read-only, whole fields. */
export function skMsgIsValidAccess(
  off: number,
  size: number,
  type: CtxAccessType,
): CtxAccessResult {
  const o = SK_MSG_MD_OFFSETS;
  if (type === "write") return DENIED;
  if (off % size !== 0) return DENIED;
  if (within(off, o.data, 8)) {
    return size === 8 ? pointerAccess("PTR_TO_PACKET") : DENIED;
  }
  if (within(off, o.data_end, 8)) {
    return size === 8 ? pointerAccess("PTR_TO_PACKET_END") : DENIED;
  }
  if (within(off, o.sk, 8)) {
    return size === 8 ? pointerAccess("PTR_TO_SOCKET") : DENIED;
  }
  // family … size: the u32 fields, loaded whole
  if (off >= o.family && off < o.size + 4) {
    return size === 4 ? scalarAccess() : DENIED;
  }
  return DENIED;
}
