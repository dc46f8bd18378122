/**
 * `bpf_skb_adjust_room()` and `bpf_skb_change_proto()` (net/core/filter.c):
 * room inserted or removed after the MAC or the network header, and the
 * IPv4 ⇄ IPv6 header-size translation. Both need `skb->protocol` to be
 * IPv4 or IPv6; a test skb is never GSO, so the GSO fix-ups do not apply.
 * @module
 */
import type { HelperFn } from "../../exec/state.ts";
import { resetChecksumUnnecessary } from "./packet_csum.ts";
import {
  BPF_SKB_MAX_LEN,
  clearHash,
  moveData,
  networkOffset,
} from "./packet_skb_ops.ts";
import type { SkbContext } from "../test_run_ctx.ts";
import {
  EALREADY,
  EFAULT,
  EINVAL,
  ENOMEM,
  ENOTSUPP,
} from "../../uapi/errno.ts";

const ETH_P_IP = 0x0800, ETH_P_IPV6 = 0x86dd;

/** `BPF_F_ADJ_ROOM_*` flags. */
const ADJ = {
  FIXED_GSO: 1n,
  ENCAP_L3_IPV4: 2n,
  ENCAP_L3_IPV6: 4n,
  ENCAP_L4_GRE: 8n,
  ENCAP_L4_UDP: 16n,
  NO_CSUM_RESET: 32n,
  ENCAP_L2_ETH: 64n,
  DECAP_L3_IPV4: 128n,
  DECAP_L3_IPV6: 256n,
  ENCAP_L2_MASK: 0xffn << 56n,
} as const;
/** `BPF_F_ADJ_ROOM_MASK` plus `BPF_F_ADJ_ROOM_NO_CSUM_RESET`. */
const ADJ_KNOWN = ADJ.FIXED_GSO | ADJ.ENCAP_L3_IPV4 | ADJ.ENCAP_L3_IPV6 |
  ADJ.ENCAP_L4_GRE | ADJ.ENCAP_L4_UDP | ADJ.ENCAP_L2_ETH | ADJ.DECAP_L3_IPV4 |
  ADJ.DECAP_L3_IPV6 | ADJ.ENCAP_L2_MASK | ADJ.NO_CSUM_RESET;
const ENCAP_L3 = ADJ.ENCAP_L3_IPV4 | ADJ.ENCAP_L3_IPV6;
const DECAP_L3 = ADJ.DECAP_L3_IPV4 | ADJ.DECAP_L3_IPV6;

/** `bpf_skb_net_base_len()`: the fixed IP header size of the protocol. */
function netBaseLen(skb: SkbContext): number {
  const proto = skb.protocol;
  return proto === ETH_P_IP ? 20 : proto === ETH_P_IPV6 ? 40 : 0;
}

/**
 * `bpf_skb_net_hdr_push()`: `len` zero bytes inserted at `off` (from
 * `data`), the headers in front of them moved up with `data`.
 */
export function hdrPush(skb: SkbContext, off: number, len: number): void {
  const p = skb.packet;
  skb.shift(p.reserve(len, 0)); // skb_cow() / skb_cow_head()
  moveData(skb, -len);
  p.buf.copyWithin(p.dataOff, p.dataOff + len, p.dataOff + len + off);
  p.buf.fill(0, p.dataOff + off, p.dataOff + off + len);
  skb.macOff -= len;
  skb.netOff -= len;
  p.remap();
}

/** `bpf_skb_net_hdr_pop()`: `len` bytes at `off` removed; -ENOMEM past the data. */
export function hdrPop(skb: SkbContext, off: number, len: number): number {
  if (off + len > skb.len) return -ENOMEM; // pskb_may_pull()
  const p = skb.packet;
  p.buf.copyWithin(p.dataOff + len, p.dataOff, p.dataOff + off);
  moveData(skb, len);
  skb.macOff += len;
  skb.netOff += len;
  p.remap();
  return 0;
}

/** `bpf_skb_net_grow()`: with the encapsulation checks and bookkeeping. */
function netGrow(
  skb: SkbContext,
  off: number,
  len: number,
  flags: bigint,
): number {
  const encap = (flags & ENCAP_L3) !== 0n;
  const innerMacLen = Number(flags >> 56n);
  if (encap) {
    if ((flags & ENCAP_L3) === ENCAP_L3) return -EINVAL;
    if ((flags & ADJ.ENCAP_L4_GRE) && (flags & ADJ.ENCAP_L4_UDP)) {
      return -EINVAL;
    }
    if ((flags & ADJ.ENCAP_L2_ETH) && innerMacLen !== 14) return -EINVAL;
    if (skb.encapsulation) return -EALREADY;
    if (innerMacLen > len) return -EINVAL;
  }
  const macLen = skb.netOff - skb.macOff;
  hdrPush(skb, off, len);
  if (encap) {
    skb.encapsulation = true;
    skb.netOff = skb.packet.dataOff + macLen; // skb_set_network_header()
    const proto = skb.protocol;
    if (proto === ETH_P_IP && (flags & ADJ.ENCAP_L3_IPV6)) {
      skb.protocol = ETH_P_IPV6;
    } else if (proto === ETH_P_IPV6 && (flags & ADJ.ENCAP_L3_IPV4)) {
      skb.protocol = ETH_P_IP;
    }
  }
  return 0;
}

/** `bpf_skb_net_shrink()`. */
function netShrink(
  skb: SkbContext,
  off: number,
  len: number,
  flags: bigint,
): number {
  if (flags & ~(ADJ.FIXED_GSO | DECAP_L3 | ADJ.NO_CSUM_RESET)) return -EINVAL;
  const err = hdrPop(skb, off, len);
  if (err) return err;
  if (flags & ADJ.DECAP_L3_IPV4) skb.protocol = ETH_P_IP;
  else if (flags & ADJ.DECAP_L3_IPV6) skb.protocol = ETH_P_IPV6;
  return 0;
}

/** `bpf_skb_adjust_room(skb, len_diff, mode, flags)`. */
export function adjustRoom(
  skb: SkbContext,
  lenDiff: number,
  mode: number,
  flags: bigint,
): number {
  const abs = Math.abs(lenDiff), shrink = lenDiff < 0;
  let lenMin = netBaseLen(skb);
  if (flags & ~ADJ_KNOWN) return -EINVAL;
  if (abs > 0xfff) return -EFAULT;
  const proto = skb.protocol;
  if (proto !== ETH_P_IP && proto !== ETH_P_IPV6) return -ENOTSUPP;
  let off = skb.netOff - skb.macOff; // skb_mac_header_len()
  if (mode === 0) off += netBaseLen(skb); // BPF_ADJ_ROOM_NET
  else if (mode !== 1) return -ENOTSUPP; // BPF_ADJ_ROOM_MAC
  if (flags & DECAP_L3) {
    if (!shrink) return -EINVAL;
    const decap = flags & DECAP_L3;
    if (decap === ADJ.DECAP_L3_IPV4) lenMin = 20;
    else if (decap === ADJ.DECAP_L3_IPV6) lenMin = 40;
    else return -EINVAL;
  }
  const lenCur = skb.len - networkOffset(skb);
  if (
    (shrink && (abs >= lenCur || lenCur - abs < lenMin)) ||
    (!shrink && skb.len + abs > BPF_SKB_MAX_LEN)
  ) return -ENOTSUPP;
  const ret = shrink
    ? netShrink(skb, off, abs, flags)
    : netGrow(skb, off, abs, flags);
  if (!ret && !(flags & ADJ.NO_CSUM_RESET)) resetChecksumUnnecessary(skb);
  return ret;
}

/**
 * `bpf_skb_proto_xlat()`: IPv4 → IPv6 pushes 20 bytes after the MAC
 * header, IPv6 → IPv4 pops them; anything else is -ENOTSUPP.
 */
function protoXlat(skb: SkbContext, to: number): number {
  const from = skb.protocol, off = skb.netOff - skb.macOff;
  if (from === ETH_P_IP && to === ETH_P_IPV6) {
    hdrPush(skb, off, 20);
    skb.protocol = ETH_P_IPV6;
  } else if (from === ETH_P_IPV6 && to === ETH_P_IP) {
    const err = hdrPop(skb, off, 20);
    if (err) return err;
    skb.protocol = ETH_P_IP;
  } else return -ENOTSUPP;
  clearHash(skb);
  return 0;
}

/** The room and protocol helpers. */
export function skbRoomHelpers(skb: SkbContext): [number, HelperFn][] {
  return [
    // bpf_skb_adjust_room(skb, len_diff, mode, flags)
    [50, (vm) => adjustRoom(skb, vm.argLo(2), vm.argLo(3) >>> 0, vm.arg(4))],
    // bpf_skb_change_proto(skb, proto (__be16), flags)
    [31, (vm) => {
      if (vm.arg(3) !== 0n) return -EINVAL;
      const be = vm.argLo(2) & 0xffff;
      return protoXlat(skb, ((be & 0xff) << 8) | (be >> 8));
    }],
  ];
}
