/**
 * skb helpers that read or reshape the linear data of a test skb
 * (net/core/filter.c): `bpf_skb_pull_data()`, `bpf_skb_load_bytes_relative()`,
 * `bpf_skb_change_tail()`, `bpf_skb_change_head()`, the hash helpers,
 * `bpf_skb_change_type()` and `bpf_skb_ecn_set_ce()`. Room adjustment and
 * protocol translation live in packet_skb_room.ts.
 *
 * A test skb is linear and never cloned, so `bpf_try_make_writable(skb, n)`
 * (`skb_ensure_writable()` → `pskb_may_pull()`) fails exactly when `n`
 * exceeds `skb->len`.
 * @module
 */
import type { HelperFn } from "../../exec/state.ts";
import { SK_BUFF_OFFSETS } from "../../verifier/ctx_access/skb.ts";
import type { SkbContext } from "../test_run_ctx.ts";
import { EFAULT, EINVAL, ENOMEM, ENOTSUPP } from "../../uapi/errno.ts";

const SKB = SK_BUFF_OFFSETS;
/** `SKB_MAX_ALLOC` (`BPF_SKB_MAX_LEN`): 4 pages less `skb_shared_info`. */
export const BPF_SKB_MAX_LEN: number = 16384 - 320;
/** `PACKET_OTHERHOST`: the largest type `skb_pkt_type_ok()` accepts. */
const PACKET_OTHERHOST = 3;

/** `bpf_try_make_writable()` on a linear, unshared skb: 0 or -ENOMEM. */
export function makeWritable(skb: SkbContext, len: number): number {
  return len > skb.len ? -ENOMEM : 0;
}

/** `skb_network_offset()`: the network header relative to `data`. */
export function networkOffset(skb: SkbContext): number {
  return skb.netOff - skb.packet.dataOff;
}

/** `skb_clear_hash()`. */
export function clearHash(skb: SkbContext): void {
  skb.setField(SKB.hash, 4, 0);
  skb.hashValid = false;
}

/**
 * Stand-in for `__skb_get_hash()`: the kernel hashes the dissected flow
 * keys with `hashrnd`, a secret drawn at boot, so no simulator can give
 * the host's value; this one is deterministic (an FNV-1a hash of the
 * packet), and never 0, like `__flow_hash_from_keys()`'s.
 */
function flowHash(skb: SkbContext): number {
  let h = 0x811c9dc5;
  for (const b of skb.packet.data()) h = Math.imul(h ^ b, 0x01000193) >>> 0;
  return h || 1;
}

/**
 * Moves `data` by `delta` bytes (negative: pushes headroom in front),
 * keeping `data_meta` on it as an skb's is, and remaps the packet.
 */
export function moveData(skb: SkbContext, delta: number): void {
  const p = skb.packet;
  p.dataOff += delta;
  p.metaOff = p.dataOff;
}

/** `__bpf_skb_min_len()`: no transport header or CHECKSUM_PARTIAL in a test skb. */
function minLen(skb: SkbContext): number {
  return Math.max(0, networkOffset(skb));
}

/** `bpf_skb_change_tail()` (`__bpf_skb_change_tail()`). */
function changeTail(skb: SkbContext, newLen: number, flags: bigint): number {
  if (flags || newLen > BPF_SKB_MAX_LEN || newLen < minLen(skb)) return -EINVAL;
  if (skb.encapsulation) return -ENOTSUPP;
  const p = skb.packet;
  if (newLen > skb.len) {
    // __skb_grow(): bytes already in the tailroom are not cleared
    skb.shift(p.reserve(0, newLen - skb.len));
  }
  p.endOff = p.dataOff + newLen;
  p.remap();
  return 0;
}

/** `bpf_skb_change_head()`: `head_room` zero bytes pushed as the new MAC header. */
function changeHead(skb: SkbContext, headRoom: number, flags: bigint): number {
  const newLen = skb.len + headRoom;
  if (flags || newLen > BPF_SKB_MAX_LEN || newLen > 0xffffffff) return -EINVAL;
  const p = skb.packet;
  skb.shift(p.reserve(headRoom, 0)); // skb_cow()
  moveData(skb, -headRoom);
  p.buf.fill(0, p.dataOff, p.dataOff + headRoom);
  skb.macOff = p.dataOff; // skb_reset_mac_header(); mac_len follows netOff
  p.remap();
  return 0;
}

/** `bpf_skb_load_bytes_relative()`: from the MAC (0) or network (1) header. */
function loadRelative(
  skb: SkbContext,
  offset: number,
  len: number,
  start: bigint,
): Uint8Array | number {
  if (offset > 0xffff) return -EFAULT;
  let from: number;
  if (start === 0n) from = skb.macOff; // BPF_HDR_START_MAC (always set here)
  else if (start === 1n) from = skb.netOff; // BPF_HDR_START_NET
  else return -EFAULT;
  const at = from + offset;
  if (at + len > skb.packet.endOff) return -EFAULT;
  return skb.packet.buf.slice(at, at + len);
}

/**
 * `INET_ECN_set_ce()`: marks Congestion Experienced in an ECN-capable
 * IPv4 (checksum adjusted) or IPv6 header at the network header; 1 when
 * marked, 0 otherwise.
 */
export function ecnSetCe(skb: SkbContext): number {
  const p = skb.packet, at = skb.netOff;
  const proto = skb.protocol;
  if (proto === 0x0800 && at + 20 <= p.endOff) {
    const ecn = (p.buf[at + 1] + 1) & 3; // IP_ECN_set_ce()
    if (!(ecn & 2)) return ecn === 0 ? 1 : 0;
    const view = new DataView(p.buf.buffer, p.buf.byteOffset);
    // check += htons(0xFFFB) + htons(ecn), 16-bit ones' complement
    const add = (0xfbff + (ecn << 8)) & 0xffff;
    const res = (view.getUint16(at + 10, true) + add) & 0xffff;
    view.setUint16(at + 10, (res + (res < add ? 1 : 0)) & 0xffff, true);
    p.buf[at + 1] |= 3;
    return 1;
  }
  if (proto === 0x86dd && at + 40 <= p.endOff) {
    const ds = ((p.buf[at] << 8 | p.buf[at + 1]) >> 4) & 0xff;
    if ((ds & 3) === 0) return 0; // INET_ECN_is_not_ect()
    p.buf[at + 1] |= 3 << 4; // to = from | htonl(INET_ECN_CE << 20)
    return 1;
  }
  return 0;
}

/** The data-reshaping and metadata skb helpers of this module. */
export function skbOpsHelpers(skb: SkbContext): [number, HelperFn][] {
  return [
    // bpf_skb_pull_data(skb, len): len 0 means skb_headlen()
    [39, (vm) => makeWritable(skb, (vm.argLo(2) >>> 0) || skb.len)],
    // bpf_skb_load_bytes_relative(skb, offset, to, len, start_header)
    [68, (vm) => {
      const len = vm.argLo(4) >>> 0;
      const bytes = loadRelative(
        skb,
        vm.argLo(2) >>> 0,
        len,
        vm.arg(5) & 0xffffffffn,
      );
      if (typeof bytes === "number") {
        vm.mem.writeBytes(vm.arg(3), new Uint8Array(len));
        return bytes;
      }
      vm.mem.writeBytes(vm.arg(3), bytes);
      return 0;
    }],
    // bpf_get_hash_recalc(skb): skb_get_hash()
    [34, () => {
      if (!skb.hashValid) {
        skb.setField(SKB.hash, 4, flowHash(skb));
        skb.hashValid = true;
      }
      return skb.field(SKB.hash);
    }],
    // bpf_set_hash_invalid(skb)
    [41, () => {
      clearHash(skb);
      return 0;
    }],
    // bpf_set_hash(skb, hash): __skb_set_sw_hash(skb, hash, true)
    [48, (vm) => {
      skb.setField(SKB.hash, 4, vm.argLo(2) >>> 0);
      skb.hashValid = true;
      return 0;
    }],
    // bpf_skb_change_tail(skb, new_len, flags)
    [38, (vm) => changeTail(skb, vm.argLo(2) >>> 0, vm.arg(3))],
    // bpf_skb_change_head(skb, head_room, flags)
    [43, (vm) => changeHead(skb, vm.argLo(2) >>> 0, vm.arg(3))],
    // bpf_skb_change_type(skb, pkt_type)
    [32, (vm) => {
      const type = vm.argLo(2) >>> 0;
      if (
        skb.field(SKB.pkt_type) > PACKET_OTHERHOST || type > PACKET_OTHERHOST
      ) {
        return -EINVAL;
      }
      skb.setField(SKB.pkt_type, 4, type);
      return 0;
    }],
    // bpf_skb_ecn_set_ce(skb)
    [97, () => ecnSetCe(skb)],
  ];
}
