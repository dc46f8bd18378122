/**
 * Field access through the socket pointers a context load can produce
 * (PTR_TO_SOCK_COMMON, PTR_TO_SOCKET, PTR_TO_TCP_SOCK, PTR_TO_XDP_SOCK) and
 * through PTR_TO_FLOW_KEYS: `check_sock_access()` and
 * `check_flow_keys_access()` in kernel/bpf/verifier.c with the
 * `bpf_*_is_valid_access()` rules of net/core/filter.c.
 * @module
 */

import { BPF_SOCK_OFFSETS, bpfSockIsValidAccess } from "./sock.ts";
import {
  type CtxAccessResult,
  type CtxAccessType,
  DENIED,
  scalarAccess,
} from "./types.ts";

/** The socket pointer types whose pointee the verifier lets programs read. */
export type SockPtrType =
  | "PTR_TO_SOCK_COMMON"
  | "PTR_TO_SOCKET"
  | "PTR_TO_TCP_SOCK"
  | "PTR_TO_XDP_SOCK";

/** `offsetof(struct bpf_tcp_sock, …)` of the u64 counters. */
export const BPF_TCP_SOCK_U64_OFFSETS: readonly number[] = Object.freeze([
  80, // bytes_received
  88, // bytes_acked
]);
/** `offsetofend(struct bpf_tcp_sock, icsk_retransmits)`: the readable part of the struct. */
export const BPF_TCP_SOCK_END = 112;
/** `offsetofend(struct bpf_xdp_sock, queue_id)`. */
export const BPF_XDP_SOCK_END = 4;
/** `sizeof(struct bpf_flow_keys)`. */
export const BPF_FLOW_KEYS_SIZE = 56;

/** `reg_type_str()` of each socket pointer type, as the log prints it. */
const SOCK_TYPE_STR: Readonly<Record<SockPtrType, string>> = Object.freeze({
  PTR_TO_SOCK_COMMON: "sock_common",
  PTR_TO_SOCKET: "sock",
  PTR_TO_TCP_SOCK: "tcp_sock",
  PTR_TO_XDP_SOCK: "xdp_sock",
});

/**
 * Mirrors `bpf_sock_common_is_valid_access()`: a `struct bpf_sock` minus
 * type … priority, which a request or timewait socket does not have.
 */
export function bpfSockCommonIsValidAccess(
  off: number,
  size: number,
  type: CtxAccessType,
): CtxAccessResult {
  const o = BPF_SOCK_OFFSETS;
  if (off >= o.type && off < o.priority + 4) return DENIED;
  return bpfSockIsValidAccess(off, size, type);
}

/** Mirrors `bpf_tcp_sock_is_valid_access()`: u32 fields whole, the two u64 counters whole. */
export function bpfTcpSockIsValidAccess(
  off: number,
  size: number,
  _type: CtxAccessType,
): CtxAccessResult {
  if (off < 0 || off >= BPF_TCP_SOCK_END) return DENIED;
  if (off % size !== 0) return DENIED;
  if (BPF_TCP_SOCK_U64_OFFSETS.includes(off)) {
    return size === 8 ? scalarAccess() : DENIED;
  }
  return size === 4 ? scalarAccess() : DENIED;
}

/** Mirrors `bpf_xdp_sock_is_valid_access()`: only `queue_id`, as a u32. */
export function bpfXdpSockIsValidAccess(
  off: number,
  size: number,
  _type: CtxAccessType,
): CtxAccessResult {
  if (off < 0 || off >= BPF_XDP_SOCK_END) return DENIED;
  if (off % size !== 0) return DENIED;
  return size === 4 ? scalarAccess() : DENIED;
}

/**
 * Mirrors the socket arm of `check_mem_access()` + `check_sock_access()`:
 * stores are refused outright, loads follow the pointee's rule. (The
 * negative-offset check on the register is the caller's.)
 */
export function sockPtrAccess(
  regType: SockPtrType,
  off: number,
  size: number,
  access: CtxAccessType,
): CtxAccessResult {
  if (access === "write") return DENIED;
  switch (regType) {
    case "PTR_TO_SOCK_COMMON":
      return bpfSockCommonIsValidAccess(off, size, access);
    case "PTR_TO_SOCKET":
      return bpfSockIsValidAccess(off, size, access);
    case "PTR_TO_TCP_SOCK":
      return bpfTcpSockIsValidAccess(off, size, access);
    case "PTR_TO_XDP_SOCK":
      return bpfXdpSockIsValidAccess(off, size, access);
  }
}

/**
 * The line the verifier logs when {@link sockPtrAccess} refuses:
 * `R%d cannot write into %s` for a store, else
 * `R%d invalid %s access off=%d size=%d`.
 */
export function sockAccessMessage(
  regno: number,
  regType: SockPtrType,
  off: number,
  size: number,
  access: CtxAccessType,
): string {
  const name = SOCK_TYPE_STR[regType];
  if (access === "write") return `R${regno} cannot write into ${name}`;
  return `R${regno} invalid ${name} access off=${off} size=${size}`;
}

/**
 * Mirrors `check_flow_keys_access()`: any access inside
 * `struct bpf_flow_keys`, loads and stores alike (the flow dissector fills it).
 */
export function flowKeysAccessOk(off: number, size: number): boolean {
  return size >= 0 && off >= 0 && off + size <= BPF_FLOW_KEYS_SIZE;
}

/** check_flow_keys_access()'s refusal line. */
export function flowKeysAccessMessage(off: number, size: number): string {
  return `invalid access to flow keys off=${off} size=${size}`;
}
