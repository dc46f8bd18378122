/**
 * TCP header options for sock_ops programs (net/core/filter.c):
 * `bpf_search_tcp_opt()` and the cores of `bpf_load_hdr_opt()`,
 * `bpf_store_hdr_opt()` and `bpf_reserve_hdr_opt()` over the simulated
 * skb of a header-option callback ({@link HdrOptSkb}): its bytes start at
 * the TCP header, `dataEnd` is `bpf_sock_ops_kern.skb_data_end`, and a
 * store appends at `dataEnd` in the room the earlier `HDR_OPT_LEN_CB`
 * reserved (`remainingOptLen`).
 * @module
 */
import { EEXIST, EFAULT, EINVAL, ENOSPC } from "../../../uapi/errno.ts";
import { ENOMSG } from "../../../uapi/errno.ts";
export { ENOMSG } from "../../../uapi/errno.ts";

/** `TCPOPT_EOL`, `TCPOPT_NOP`, `TCPOPT_EXP` (254); 253 is the other experimental kind. */
export const TCPOPT = { EOL: 0, NOP: 1, EXP: 254, EXP2: 253 } as const;
/** `sizeof(struct tcphdr)`: options start after it. */
export const TCPHDR_LEN = 20;

/** The skb a header-option callback sees, from its TCP header on. */
export interface HdrOptSkb {
  /** Backing bytes: TCP header, options, and room for stored options. */
  readonly bytes: Uint8Array;
  /** `skb_data_end` as an offset into {@link bytes}. */
  dataEnd: number;
}

/** Where {@link searchTcpOpt} found the option, or why not (negative errno). */
export type TcpOptSearch =
  | { readonly at: number }
  | { readonly err: number; readonly eol: boolean };

/**
 * Mirrors `bpf_search_tcp_opt()`: walks the options in `bytes[start, end)`
 * for `kind` (and, for the experimental kinds, `magic`): -ENOMSG when
 * absent (`eol` when an EOL ended the walk), -EFAULT on a malformed option.
 */
export function searchTcpOpt(
  bytes: Uint8Array,
  start: number,
  end: number,
  kind: number,
  magic: Uint8Array,
): TcpOptSearch {
  let op = start;
  while (op < end) {
    const k = bytes[op];
    if (k === TCPOPT.EOL) return { err: -ENOMSG, eol: true };
    if (k === TCPOPT.NOP) {
      op++;
      continue;
    }
    const left = end - op;
    if (left < 2 || left < bytes[op + 1] || bytes[op + 1] < 2) {
      return { err: -EFAULT, eol: false }; // as tcp_parse_options() bails
    }
    const kindLen = bytes[op + 1];
    if (k === kind) {
      if (magic.length === 0) return { at: op };
      if (magic.length > kindLen - 2) return { err: -ENOMSG, eol: false };
      if (magic.every((b, i) => bytes[op + 2 + i] === b)) return { at: op };
    }
    op += kindLen;
  }
  return { err: -ENOMSG, eol: false };
}

/**
 * The search key of `bpf_load_hdr_opt()`: kind and magic from the first
 * bytes of the caller's buffer, or -EINVAL (mirrors its checks).
 */
export function loadSearchKey(
  search: Uint8Array,
): { kind: number; magic: Uint8Array } | number {
  const kind = search[0], len = search[1];
  if (len > search.length || kind === TCPOPT.NOP || kind === TCPOPT.EOL) {
    return -EINVAL;
  }
  if (kind === TCPOPT.EXP || kind === TCPOPT.EXP2) {
    if (len !== 4 && len !== 6) return -EINVAL; // 16- or 32-bit magic
    return { kind, magic: search.slice(2, len) };
  }
  if (len !== 0) return -EINVAL;
  return { kind, magic: new Uint8Array(0) };
}

/**
 * The copy step of `bpf_load_hdr_opt()`: the option at `at` of `bytes`
 * into `out` (the whole option, or -ENOSPC after copying what fits).
 */
export function copyTcpOpt(
  bytes: Uint8Array,
  at: number,
  out: Uint8Array,
): number {
  const optLen = bytes[at + 1];
  const copy = Math.min(optLen, out.length);
  out.set(bytes.subarray(at, at + copy));
  return optLen > out.length ? -ENOSPC : optLen;
}

/**
 * Mirrors the body of `bpf_sock_ops_store_hdr_opt()` after its callback
 * and flags checks: appends `opt` at `skb.dataEnd` unless an option of
 * the same kind (and 2-byte magic) is already there. Returns 0 or a
 * negative errno and the bytes of room the store used.
 */
export function storeTcpOpt(
  skb: HdrOptSkb,
  remainingOptLen: number,
  from: Uint8Array,
): { ret: number; used: number } {
  const kind = from[0], kindLen = from[1];
  const fail = (ret: number) => ({ ret, used: 0 });
  if (kindLen > from.length || kind === TCPOPT.NOP || kind === TCPOPT.EOL) {
    return fail(-EINVAL);
  }
  if (kindLen > remainingOptLen) return fail(-ENOSPC);
  let magic = new Uint8Array(0);
  if (kind === TCPOPT.EXP || kind === TCPOPT.EXP2) {
    if (kindLen < 4) return fail(-EINVAL);
    magic = from.slice(2, 4); // RFC 6994 magic: 2 bytes suffice to find a twin
  }
  const found = searchTcpOpt(skb.bytes, TCPHDR_LEN, skb.dataEnd, kind, magic);
  if ("at" in found) return fail(-EEXIST);
  if (found.err !== -ENOMSG) return fail(found.err);
  if (found.eol) return fail(-ENOSPC); // the options were ended
  skb.bytes.set(from.subarray(0, kindLen), skb.dataEnd);
  skb.dataEnd += kindLen;
  return { ret: 0, used: kindLen };
}
