/**
 * Context rules of the program types whose context is `struct __sk_buff`:
 * socket filters, tc classifiers/actions, cgroup skb, lwt, sk_skb and the
 * flow dissector (net/core/filter.c).
 *
 * Offsets are those of the UAPI `struct __sk_buff` (include/uapi/linux/bpf.h),
 * which is append-only, so the layout Debian's header compiles is the
 * kernel's. tests/verifier/ctx_access_test.ts recomputes them with gcc.
 * @module
 */

import {
  type CtxAccessOptions,
  type CtxAccessResult,
  type CtxAccessType,
  type CtxRegType,
  DENIED,
  narrowAccessOk,
  pointerAccess,
} from "./types.ts";

/** `offsetof(struct __sk_buff, field)` for every field. */
export const SK_BUFF_OFFSETS: Readonly<Record<string, number>> = Object.freeze({
  len: 0,
  pkt_type: 4,
  mark: 8,
  queue_mapping: 12,
  protocol: 16,
  vlan_present: 20,
  vlan_tci: 24,
  vlan_proto: 28,
  priority: 32,
  ingress_ifindex: 36,
  ifindex: 40,
  tc_index: 44,
  cb: 48, // __u32 cb[5]
  hash: 68,
  tc_classid: 72,
  data: 76,
  data_end: 80,
  napi_id: 84,
  family: 88,
  remote_ip4: 92,
  local_ip4: 96,
  remote_ip6: 100, // __u32[4]
  local_ip6: 116, // __u32[4]
  remote_port: 132,
  local_port: 136,
  data_meta: 140,
  flow_keys: 144, // __bpf_md_ptr: 8 bytes
  tstamp: 152, // __u64
  wire_len: 160,
  gso_segs: 164,
  sk: 168, // __bpf_md_ptr: 8 bytes
  gso_size: 176,
  tstamp_type: 180, // __u8, then 3 bytes of padding
  hwtstamp: 184, // __u64
});

/** `sizeof(struct __sk_buff)`. */
export const SK_BUFF_SIZE = 192;

const O = SK_BUFF_OFFSETS;

/** `case bpf_ctx_range(struct __sk_buff, f)`: any byte of a 4-byte field. */
function inField(off: number, field: string, size = 4): boolean {
  const start = O[field];
  return off >= start && off < start + size;
}

/** `case bpf_ctx_range_till(struct __sk_buff, first, last)`: [offsetof(first), offsetofend(last)). */
function inSpan(off: number, from: number, toEnd: number): boolean {
  return off >= from && off < toEnd;
}

const CB_END = O.cb + 20;
const REMOTE_IP6_END = O.remote_ip6 + 16;
const LOCAL_IP6_END = O.local_ip6 + 16;
/** family … local_port: the socket fields only sk_skb may see. */
const SOCK_FIELDS_END = O.local_port + 4;

const isCb = (off: number): boolean => inSpan(off, O.cb, CB_END);
const isData = (off: number): boolean => inField(off, "data");
const isDataEnd = (off: number): boolean => inField(off, "data_end");
const isDataMeta = (off: number): boolean => inField(off, "data_meta");
const isTstamp = (off: number): boolean => inField(off, "tstamp", 8);
const isHwtstamp = (off: number): boolean => inField(off, "hwtstamp", 8);
const isWireLen = (off: number): boolean => inField(off, "wire_len");
const isTcClassid = (off: number): boolean => inField(off, "tc_classid");
const isSockFields = (off: number): boolean =>
  inSpan(off, O.family, SOCK_FIELDS_END);

/**
 * Mirrors `bpf_skb_is_valid_access()`: the rules every `__sk_buff` program
 * type shares after its own filter. `regType` is what the caller's filter
 * chose (the packet pointers) — the base only changes it for `sk`.
 */
export function bpfSkbIsValidAccess(
  off: number,
  size: number,
  type: CtxAccessType,
  regType: CtxRegType = "SCALAR_VALUE",
  opts: CtxAccessOptions = {},
): CtxAccessResult {
  const sizeDefault = 4;
  if (off < 0 || off >= SK_BUFF_SIZE) return DENIED;
  // The verifier guarantees that size > 0.
  if (off % size !== 0) return DENIED;

  if (isCb(off)) {
    // cb[] is scratch space: any aligned size that stays inside it.
    if (off + size > CB_END) return DENIED;
    return pointerAccess(regType);
  }
  if (
    inSpan(off, O.remote_ip6, REMOTE_IP6_END) ||
    inSpan(off, O.local_ip6, LOCAL_IP6_END) ||
    inField(off, "remote_ip4") || inField(off, "local_ip4")
  ) {
    return size === sizeDefault ? pointerAccess(regType) : DENIED;
  }
  if (isData(off) || isDataMeta(off) || isDataEnd(off)) {
    // A sign-extending load of a packet pointer makes no sense (is_ldsx).
    if (opts.isLdsx || size !== sizeDefault) return DENIED;
    return pointerAccess(regType);
  }
  if (inField(off, "flow_keys", 8)) return DENIED;
  if (isHwtstamp(off)) {
    return type === "write" || size !== 8 ? DENIED : pointerAccess(regType);
  }
  if (isTstamp(off)) return size === 8 ? pointerAccess(regType) : DENIED;
  if (inField(off, "sk", 8)) {
    // The whole pointer or nothing (the kernel refuses its upper half too).
    if (type === "write" || size !== 8) return DENIED;
    return pointerAccess("PTR_TO_SOCK_COMMON_OR_NULL");
  }
  if (off === O.tstamp_type) return DENIED;
  // Explicitly prohibit access to the padding after tstamp_type.
  if (off > O.tstamp_type && off < O.hwtstamp) return DENIED;

  // Default: a u32 field. Stores must be whole; loads may be narrow.
  if (type === "write") {
    return size === sizeDefault ? pointerAccess(regType) : DENIED;
  }
  if (!narrowAccessOk(off, size, sizeDefault)) return DENIED;
  return { ok: true, regType, ctxFieldSize: sizeDefault, narrowAllowed: true };
}

/** Mirrors `sk_filter_is_valid_access()` (BPF_PROG_TYPE_SOCKET_FILTER): no packet pointers, only cb[] writable. */
export function skFilterIsValidAccess(
  off: number,
  size: number,
  type: CtxAccessType,
  opts: CtxAccessOptions = {},
): CtxAccessResult {
  if (
    isTcClassid(off) || isData(off) || isDataMeta(off) || isDataEnd(off) ||
    isSockFields(off) ||
    isTstamp(off) || isWireLen(off) || isHwtstamp(off)
  ) return DENIED;
  if (type === "write" && !isCb(off)) return DENIED;
  return bpfSkbIsValidAccess(off, size, type, "SCALAR_VALUE", opts);
}

/** Mirrors `tc_cls_act_is_valid_access()` (sched_cls, sched_act). */
export function tcClsActIsValidAccess(
  off: number,
  size: number,
  type: CtxAccessType,
  opts: CtxAccessOptions = {},
): CtxAccessResult {
  if (type === "write") {
    const writable = inField(off, "mark") || inField(off, "tc_index") ||
      inField(off, "priority") || isTcClassid(off) || isCb(off) ||
      isTstamp(off) ||
      inField(off, "queue_mapping");
    if (!writable) return DENIED;
  }
  let regType: CtxRegType = "SCALAR_VALUE";
  if (isData(off)) regType = "PTR_TO_PACKET";
  else if (isDataMeta(off)) regType = "PTR_TO_PACKET_META";
  else if (isDataEnd(off)) regType = "PTR_TO_PACKET_END";
  else if (isSockFields(off)) return DENIED;
  else if (off === O.tstamp_type) {
    // tc may read the one-byte tstamp_type (and only as a byte).
    return size === 1 ? pointerAccess("SCALAR_VALUE") : DENIED;
  }
  return bpfSkbIsValidAccess(off, size, type, regType, opts);
}

/**
 * Mirrors `cg_skb_is_valid_access()` (BPF_PROG_TYPE_CGROUP_SKB). Packet
 * pointers and tstamp stores need `bpf_capable()`: `opts` cannot say
 * otherwise yet, so the loader is taken to be privileged (the oracle is root).
 */
export function cgSkbIsValidAccess(
  off: number,
  size: number,
  type: CtxAccessType,
  opts: CtxAccessOptions = {},
): CtxAccessResult {
  const bpfCapable = opts.bpfCapable ?? true;
  if (isTcClassid(off) || isDataMeta(off) || isWireLen(off)) return DENIED;
  if ((isData(off) || isDataEnd(off)) && !bpfCapable) return DENIED;
  if (type === "write") {
    if (isTstamp(off)) {
      if (!bpfCapable) return DENIED;
    } else if (
      !(inField(off, "mark") || inField(off, "priority") || isCb(off))
    ) {
      return DENIED;
    }
  }
  return bpfSkbIsValidAccess(off, size, type, packetRegType(off), opts);
}

/** Mirrors `lwt_is_valid_access()` (lwt_in, lwt_out, lwt_xmit, lwt_seg6local). */
export function lwtIsValidAccess(
  off: number,
  size: number,
  type: CtxAccessType,
  opts: CtxAccessOptions = {},
): CtxAccessResult {
  if (
    isTcClassid(off) || isSockFields(off) || isDataMeta(off) || isTstamp(off) ||
    isWireLen(off) ||
    isHwtstamp(off)
  ) return DENIED;
  if (
    type === "write" &&
    !(inField(off, "mark") || inField(off, "priority") || isCb(off))
  ) {
    return DENIED;
  }
  return bpfSkbIsValidAccess(off, size, type, packetRegType(off), opts);
}

/** Mirrors `sk_skb_is_valid_access()` (BPF_PROG_TYPE_SK_SKB): tc_index and priority writable, mark hidden. */
export function skSkbIsValidAccess(
  off: number,
  size: number,
  type: CtxAccessType,
  opts: CtxAccessOptions = {},
): CtxAccessResult {
  if (
    isTcClassid(off) || isDataMeta(off) || isTstamp(off) || isWireLen(off) ||
    isHwtstamp(off)
  ) {
    return DENIED;
  }
  if (
    type === "write" && !(inField(off, "tc_index") || inField(off, "priority"))
  ) return DENIED;
  if (inField(off, "mark")) return DENIED;
  return bpfSkbIsValidAccess(off, size, type, packetRegType(off), opts);
}

/**
 * Mirrors `flow_dissector_is_valid_access()`: read-only, and only data,
 * data_end (u32) and flow_keys (u64). (The alignment check came late, in
 * 2025, after syzbot found unaligned loads reaching convert_ctx_access.)
 */
export function flowDissectorIsValidAccess(
  off: number,
  size: number,
  type: CtxAccessType,
  opts: CtxAccessOptions = {},
): CtxAccessResult {
  if (off < 0 || off >= SK_BUFF_SIZE) return DENIED;
  if (off % size !== 0) return DENIED;
  if (type === "write") return DENIED;
  if (isData(off) || isDataEnd(off)) {
    if (opts.isLdsx || size !== 4) return DENIED;
    return pointerAccess(isData(off) ? "PTR_TO_PACKET" : "PTR_TO_PACKET_END");
  }
  if (inField(off, "flow_keys", 8)) {
    return size === 8 ? pointerAccess("PTR_TO_FLOW_KEYS") : DENIED;
  }
  return DENIED;
}

/** data → PTR_TO_PACKET, data_end → PTR_TO_PACKET_END, anything else a scalar. */
function packetRegType(off: number): CtxRegType {
  if (isData(off)) return "PTR_TO_PACKET";
  if (isDataEnd(off)) return "PTR_TO_PACKET_END";
  return "SCALAR_VALUE";
}
