/**
 * The verifier's register types: `enum bpf_reg_type` (base types) with the
 * `enum bpf_type_flag` modifiers OR-ed in, and `reg_type_str()` as Linux
 * 6.18 prints them in the log (`map_value_or_null`, `rdonly_mem`, `fp`).
 * @module
 */

/** NOT_INIT: the register holds nothing readable. */
export const NOT_INIT = 0;
/** SCALAR_VALUE: a number, with bounds. */
export const SCALAR_VALUE = 1;
/** PTR_TO_CTX: the program's context (R1 at entry). */
export const PTR_TO_CTX = 2;
/** CONST_PTR_TO_MAP: a map, from an `lddw` of a map. */
export const CONST_PTR_TO_MAP = 3;
/** PTR_TO_MAP_VALUE: into a map element's value. */
export const PTR_TO_MAP_VALUE = 4;
/** PTR_TO_MAP_KEY: into a map key (callbacks). */
export const PTR_TO_MAP_KEY = 5;
/** PTR_TO_STACK: the frame pointer plus an offset. */
export const PTR_TO_STACK = 6;
/** PTR_TO_PACKET_META: `data_meta`. */
export const PTR_TO_PACKET_META = 7;
/** PTR_TO_PACKET: `data` plus an offset. */
export const PTR_TO_PACKET = 8;
/** PTR_TO_PACKET_END: `data_end`. */
export const PTR_TO_PACKET_END = 9;
/** PTR_TO_FLOW_KEYS: flow dissector keys. */
export const PTR_TO_FLOW_KEYS = 10;
/** PTR_TO_SOCKET: a full socket. */
export const PTR_TO_SOCKET = 11;
/** PTR_TO_SOCK_COMMON: `struct sock_common`. */
export const PTR_TO_SOCK_COMMON = 12;
/** PTR_TO_TCP_SOCK: `struct tcp_sock`. */
export const PTR_TO_TCP_SOCK = 13;
/** PTR_TO_TP_BUFFER: a writable tracepoint buffer. */
export const PTR_TO_TP_BUFFER = 14;
/** PTR_TO_XDP_SOCK: an XSK. */
export const PTR_TO_XDP_SOCK = 15;
/** PTR_TO_BTF_ID: a kernel object typed by BTF. */
export const PTR_TO_BTF_ID = 16;
/** PTR_TO_MEM: memory of a known size (`mem_size`). */
export const PTR_TO_MEM = 17;
/** PTR_TO_ARENA: into a BPF arena. */
export const PTR_TO_ARENA = 18;
/** PTR_TO_BUF: a read-only or writable buffer of a context. */
export const PTR_TO_BUF = 19;
/** PTR_TO_FUNC: the address of a BPF function. */
export const PTR_TO_FUNC = 20;
/** CONST_PTR_TO_DYNPTR: a dynptr passed to a callback. */
export const CONST_PTR_TO_DYNPTR = 21;

/** Mask of the base type (`BPF_BASE_TYPE_MASK`). */
export const BASE_TYPE_MASK = 0xff;
/** PTR_MAYBE_NULL: must be checked against NULL before use. */
export const PTR_MAYBE_NULL = 1 << 8;
/** MEM_RDONLY: read-only memory. */
export const MEM_RDONLY = 1 << 9;
/** MEM_RINGBUF: ring buffer memory. */
export const MEM_RINGBUF = 1 << 10;
/** MEM_USER: user memory. */
export const MEM_USER = 1 << 11;
/** MEM_PERCPU: per-CPU memory. */
export const MEM_PERCPU = 1 << 12;
/** OBJ_RELEASE: the argument is released. */
export const OBJ_RELEASE = 1 << 13;
/** PTR_UNTRUSTED: may be read only through probe reads. */
export const PTR_UNTRUSTED = 1 << 14;
/** MEM_UNINIT: may be uninitialised memory. */
export const MEM_UNINIT = 1 << 15;
/** MEM_ALLOC: allocated with bpf_obj_new. */
export const MEM_ALLOC = 1 << 18;
/** PTR_TRUSTED: a trusted kernel pointer. */
export const PTR_TRUSTED = 1 << 19;
/** MEM_RCU: protected by RCU. */
export const MEM_RCU = 1 << 20;
/** NON_OWN_REF: a non-owning reference. */
export const NON_OWN_REF = 1 << 21;

/** `base_type()`. */
export function baseType(t: number): number {
  return t & BASE_TYPE_MASK;
}

/** `type_may_be_null()`. */
export function typeMayBeNull(t: number): boolean {
  return (t & PTR_MAYBE_NULL) !== 0;
}

/** `type_is_pkt_pointer()`: data or data_meta. */
export function typeIsPktPointer(t: number): boolean {
  const b = baseType(t);
  return b === PTR_TO_PACKET || b === PTR_TO_PACKET_META;
}

/** `type_is_map_ptr()`: the types that print `map=…,ks=…,vs=…`. */
export function typeIsMapPtr(t: number): boolean {
  const b = baseType(t);
  return b === CONST_PTR_TO_MAP || b === PTR_TO_MAP_VALUE ||
    b === PTR_TO_MAP_KEY;
}

const BASE_STR: readonly string[] = [
  "?",
  "scalar",
  "ctx",
  "map_ptr",
  "map_value",
  "map_key",
  "fp",
  "pkt_meta",
  "pkt",
  "pkt_end",
  "flow_keys",
  "sock",
  "sock_common",
  "tcp_sock",
  "tp_buffer",
  "xdp_sock",
  "ptr_",
  "mem",
  "arena",
  "buf",
  "func",
  "dynptr_ptr",
];

const PREFIXES: readonly [number, string][] = [
  [MEM_RDONLY, "rdonly_"],
  [MEM_RINGBUF, "ringbuf_"],
  [MEM_USER, "user_"],
  [MEM_PERCPU, "percpu_"],
  [MEM_RCU, "rcu_"],
  [PTR_UNTRUSTED, "untrusted_"],
  [PTR_TRUSTED, "trusted_"],
];

/** Mirrors `reg_type_str()`: flag prefixes, the base name, `_or_null`. */
export function regTypeStr(t: number): string {
  const b = baseType(t);
  let postfix = "";
  if (t & PTR_MAYBE_NULL) {
    postfix = b === PTR_TO_BTF_ID ? "or_null_" : "_or_null";
  }
  let prefix = "";
  for (const [flag, text] of PREFIXES) if (t & flag) prefix += text;
  return prefix + (BASE_STR[b] ?? "?") + postfix;
}

/** Mirrors `reg_not_null()`: pointers that cannot be NULL without a check. */
export function typeIsNeverNull(t: number, trusted = false): boolean {
  if (typeMayBeNull(t)) return false;
  const b = baseType(t);
  return b === PTR_TO_SOCKET || b === PTR_TO_TCP_SOCK ||
    b === PTR_TO_MAP_VALUE || b === PTR_TO_MAP_KEY ||
    b === PTR_TO_SOCK_COMMON || (b === PTR_TO_BTF_ID && trusted) ||
    (b === PTR_TO_MEM && !(t & PTR_UNTRUSTED)) || b === CONST_PTR_TO_MAP;
}
