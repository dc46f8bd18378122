/**
 * The packet and socket helpers of sk_skb programs, as net/core/filter.c's
 * `sk_skb_func_proto()` gives them: `bpf_skb_load_bytes` /
 * `bpf_skb_store_bytes` (the tc ones), the sk_skb variants of the
 * reshaping helpers (`sk_skb_pull_data()`, `sk_skb_change_tail()`,
 * `sk_skb_change_head()`, `sk_skb_adjust_room()`), `bpf_get_socket_uid`
 * and the socket lookups with `bpf_sk_release` (which find no socket:
 * bpfsim's socket tables are empty, see packet_sock_lookup.ts).
 *
 * The skb is what TCP queued on the receiving socket: linear, its `data`
 * past the TCP header, so the network and transport offsets are negative
 * and `__bpf_skb_min_len()` (which since 6.13 counts only positive ones)
 * is 0; it is never encapsulated, never GSO, and unshared here, so making
 * bytes writable (`__bpf_try_make_writable()`) fails only past `skb->len`
 * (`pskb_may_pull()`). Unlike their tc twins the sk_skb variants leave
 * `skb->cb` alone: an sk_skb program's `data_end` is computed at each
 * read (`bpf_convert_data_end_access()`: `data + skb_headlen()`), which
 * the ctx hook mirrors by reading the {@link PacketBuffer} as it is now.
 * Every reshape remaps the packet region, so a packet pointer taken
 * before it faults, as `clear_all_pkt_pointers()` makes the verifier
 * demand that the program re-read `data` / `data_end`.
 * @module
 */
import type { HelperFn } from "../../../exec/state.ts";
import type { PacketBuffer } from "../../net/packet_buffer.ts";
import {
  PACKET_HELPER,
  skbLoadBytes,
  skbStoreBytes,
} from "../../net/packet_helpers.ts";
import { OVERFLOW_UID } from "../../net/packet_net_info.ts";
import { BPF_SKB_MAX_LEN } from "../../net/packet_skb_ops.ts";
import { skbSockLookupHelpers } from "../../net/packet_sock_lookup.ts";
import { EFAULT, EINVAL, ENOMEM } from "../../../uapi/errno.ts";
import type { MsgSock } from "./sk_msg_ctx.ts";

/** Helper ids of this module beyond {@link PACKET_HELPER}'s and the lookups. */
export const SK_SKB_HELPER = {
  skb_change_tail: 38,
  skb_pull_data: 39,
  skb_change_head: 43,
  get_socket_uid: 47,
  skb_adjust_room: 50,
} as const;

/** What the helpers of this module work on: the skb's bytes and socket. */
export interface SkSkbBuffer {
  /** The skb's linear data (`data … data_end`). */
  readonly packet: PacketBuffer;
  /** `skb->sk`: the receiving socket. */
  readonly sock: MsgSock;
}

/**
 * `skb_cow()` + `__skb_push()` + `memset()`: `n` zero bytes in front of
 * `data`, reallocating the head when the headroom is short.
 */
function pushZeroed(p: PacketBuffer, n: number): void {
  p.reserve(n, 0);
  p.dataOff -= n;
  p.metaOff = p.dataOff;
  p.buf.fill(0, p.dataOff, p.dataOff + n);
}

/**
 * `sk_skb_pull_data(skb, len)`: `__bpf_try_make_writable(skb, len ?:
 * skb_headlen(skb))`, which on a linear unshared skb fails (-ENOMEM) only
 * for more bytes than the skb has.
 */
function pullData(p: PacketBuffer, len: number): number {
  return (len || p.len) > p.len ? -ENOMEM : 0;
}

/**
 * `sk_skb_change_tail()` (`__bpf_skb_change_tail()`): grows the skb with
 * zeroes (`bpf_skb_grow_rcsum()`) or trims it to `newLen`; -EINVAL for a
 * flag or a length over `BPF_SKB_MAX_LEN` (the minimum is 0 here).
 */
function changeTail(p: PacketBuffer, newLen: number, flags: bigint): number {
  if (flags !== 0n || newLen > BPF_SKB_MAX_LEN) return -EINVAL;
  const len = p.len;
  if (newLen > len) {
    p.reserve(0, newLen - len);
    p.buf.fill(0, p.endOff, p.dataOff + newLen);
  }
  p.endOff = p.dataOff + newLen;
  p.remap();
  return 0;
}

/**
 * `sk_skb_change_head()` (`__bpf_skb_change_head()`): `headRoom` zero
 * bytes pushed in front; -EINVAL for a flag, a new length over
 * `BPF_SKB_MAX_LEN` or one that wraps a u32. The MAC header it resets is
 * nowhere visible to an sk_skb program.
 */
function changeHead(p: PacketBuffer, headRoom: number, flags: bigint): number {
  const newLen = (p.len + headRoom) >>> 0;
  if (flags !== 0n || newLen > BPF_SKB_MAX_LEN || newLen < p.len) {
    return -EINVAL;
  }
  pushZeroed(p, headRoom);
  p.remap();
  return 0;
}

/**
 * `sk_skb_adjust_room(skb, len_diff, mode, flags)`: no mode and no flag
 * is accepted (-EINVAL), `|len_diff|` over 0xfff is -EFAULT; a positive
 * diff pushes that many zero bytes at the front of the data, a negative
 * one pulls them off (-ENOMEM past `skb->len`, `pskb_may_pull()`). The
 * strparser's `full_len` fix-up is for kTLS sockets, which bpfsim has not.
 */
function adjustRoom(
  p: PacketBuffer,
  lenDiff: number,
  mode: number,
  flags: bigint,
): number {
  if (flags !== 0n || mode !== 0) return -EINVAL;
  const abs = Math.abs(lenDiff);
  if (abs > 0xfff) return -EFAULT;
  if (lenDiff >= 0) pushZeroed(p, abs);
  else {
    if (abs > p.len) return -ENOMEM;
    p.dataOff += abs;
    p.metaOff = p.dataOff;
  }
  p.remap();
  return 0;
}

/**
 * The helpers of an sk_skb program bound to `skb` (the redirects, which
 * need the object's maps, are in sock_redirect_helpers.ts). `skb->hash` is
 * not modelled on the receive path (it reads 0), so the store's
 * `BPF_F_INVALIDATE_HASH` has nothing to clear.
 */
export function skSkbHelpers(skb: SkSkbBuffer): [number, HelperFn][] {
  const p = skb.packet;
  return [
    ...skbSockLookupHelpers(),
    [PACKET_HELPER.skb_load_bytes, (vm) => skbLoadBytes(vm, p.data())],
    [
      PACKET_HELPER.skb_store_bytes,
      (vm) => skbStoreBytes(vm, p.data(), () => undefined),
    ],
    [SK_SKB_HELPER.skb_pull_data, (vm) => pullData(p, vm.argLo(2) >>> 0)],
    [
      SK_SKB_HELPER.skb_change_tail,
      (vm) => changeTail(p, vm.argLo(2) >>> 0, vm.arg(3)),
    ],
    [
      SK_SKB_HELPER.skb_change_head,
      (vm) => changeHead(p, vm.argLo(2) >>> 0, vm.arg(3)),
    ],
    [
      SK_SKB_HELPER.skb_adjust_room,
      (vm) => adjustRoom(p, vm.argLo(2), vm.argLo(3) >>> 0, vm.arg(4)),
    ],
    // bpf_get_socket_uid(skb): sk_to_full_sk(skb->sk)'s uid, overflowuid
    // when it is no full socket
    [
      SK_SKB_HELPER.get_socket_uid,
      () => skb.sock.fullsock ? skb.sock.uid : OVERFLOW_UID,
    ],
  ];
}
