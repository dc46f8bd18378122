/**
 * Context rules of the socket-selection hooks (net/core/filter.c):
 * sk_reuseport (`struct sk_reuseport_md`) and sk_lookup
 * (`struct bpf_sk_lookup`). Both are read-only.
 * @module
 */

import {
  type CtxAccessResult,
  type CtxAccessType,
  DENIED,
  narrowableRead,
  pointerAccess,
  scalarAccess,
} from "./types.ts";

/** `offsetof(struct sk_reuseport_md, field)`. */
export const SK_REUSEPORT_MD_OFFSETS: Readonly<Record<string, number>> = Object
  .freeze({
    data: 0, // __bpf_md_ptr
    data_end: 8, // __bpf_md_ptr
    len: 16,
    eth_protocol: 20,
    ip_protocol: 24,
    bind_inany: 28,
    hash: 32,
    sk: 40, // __bpf_md_ptr
    migrating_sk: 48, // __bpf_md_ptr
  });
/** `sizeof(struct sk_reuseport_md)`. */
export const SK_REUSEPORT_MD_SIZE = 56;

/** `offsetof(struct bpf_sk_lookup, field)`. */
export const BPF_SK_LOOKUP_OFFSETS: Readonly<Record<string, number>> = Object
  .freeze({
    sk: 0, // union { __bpf_md_ptr sk; __u64 cookie; }
    family: 8,
    protocol: 12,
    remote_ip4: 16,
    remote_ip6: 20, // __u32[4]
    remote_port: 36, // __be16, then 2 bytes of zero padding
    local_ip4: 40,
    local_ip6: 44, // __u32[4]
    local_port: 60,
    ingress_ifindex: 64,
  });
/** `sizeof(struct bpf_sk_lookup)`. */
export const BPF_SK_LOOKUP_SIZE = 72;

const within = (off: number, start: number, len: number): boolean =>
  off >= start && off < start + len;

/**
 * Mirrors `sk_reuseport_is_valid_access()`: the pointers and `hash` only at
 * their exact offsets and whole; len, eth_protocol (at least 2 bytes, the
 * width of skb->protocol), ip_protocol and bind_inany may be loaded narrow.
 */
export function skReuseportIsValidAccess(
  off: number,
  size: number,
  type: CtxAccessType,
): CtxAccessResult {
  const o = SK_REUSEPORT_MD_OFFSETS;
  if (
    off < 0 || off >= SK_REUSEPORT_MD_SIZE || off % size !== 0 ||
    type !== "read"
  ) {
    return DENIED;
  }
  const whole = (ok: boolean, r: CtxAccessResult) => (ok ? r : DENIED);
  switch (off) {
    case o.data:
      return whole(size === 8, pointerAccess("PTR_TO_PACKET"));
    case o.data_end:
      return whole(size === 8, pointerAccess("PTR_TO_PACKET_END"));
    case o.hash:
      return whole(size === 4, scalarAccess());
    case o.sk:
      return whole(size === 8, pointerAccess("PTR_TO_SOCKET"));
    case o.migrating_sk:
      return whole(size === 8, pointerAccess("PTR_TO_SOCK_COMMON_OR_NULL"));
  }
  if (within(off, o.eth_protocol, 4) && size < 2) return DENIED;
  if (
    within(off, o.eth_protocol, 4) || within(off, o.ip_protocol, 4) ||
    within(off, o.bind_inany, 4) || within(off, o.len, 4)
  ) return narrowableRead(off, size, 4);
  return DENIED;
}

/**
 * Mirrors `sk_lookup_is_valid_access()`: u32 fields narrowable; remote_port
 * is a __be16 that may still be loaded as a u32 (with its zero padding),
 * and the padding itself may be read as u16/u8 for backward compatibility.
 */
export function skLookupIsValidAccess(
  off: number,
  size: number,
  type: CtxAccessType,
): CtxAccessResult {
  const o = BPF_SK_LOOKUP_OFFSETS;
  if (off < 0 || off >= BPF_SK_LOOKUP_SIZE) return DENIED;
  if (off % size !== 0) return DENIED;
  if (type !== "read") return DENIED;
  if (within(off, o.sk, 8)) {
    return size === 8 ? pointerAccess("PTR_TO_SOCKET_OR_NULL") : DENIED;
  }
  if (
    within(off, o.family, 4) || within(off, o.protocol, 4) ||
    within(off, o.remote_ip4, 4) ||
    within(off, o.local_ip4, 4) || within(off, o.remote_ip6, 16) ||
    within(off, o.local_ip6, 16) || within(off, o.local_port, 4) ||
    within(off, o.ingress_ifindex, 4)
  ) return narrowableRead(off, size, 4);
  if (within(off, o.remote_port, 2)) {
    if (size === 4) return scalarAccess();
    return narrowableRead(off, size, 2);
  }
  if (within(off, o.remote_port + 2, 2)) return narrowableRead(off, size, 2);
  return DENIED;
}
