/**
 * `bpf_skb_vlan_push()` / `bpf_skb_vlan_pop()` (net/core/filter.c over
 * `skb_vlan_push()` / `skb_vlan_pop()` of net/core/skbuff.c). The first
 * tag lives in the skb as the hardware-accelerated tag (`__sk_buff`'s
 * vlan_present, vlan_tci, vlan_proto); pushing another moves the present
 * one into the packet after the MAC addresses.
 * @module
 */
import type { HelperFn } from "../../exec/state.ts";
import { SK_BUFF_OFFSETS } from "../../verifier/ctx_access/skb.ts";
import { EINVAL, ENOMEM } from "../maps/map.ts";
import { moveData } from "./packet_skb_ops.ts";
import type { SkbContext } from "../test_run_ctx.ts";

const SKB = SK_BUFF_OFFSETS;
/** `VLAN_HLEN`. */
const VLAN_HLEN = 4;
const ETH_P_8021Q = 0x8100, ETH_P_8021AD = 0x88a8;

/** `eth_type_vlan()`. */
function isVlan(proto: number): boolean {
  return proto === ETH_P_8021Q || proto === ETH_P_8021AD;
}

/** Swaps the bytes of a 16-bit value (`htons()` on a little-endian host). */
function swap16(v: number): number {
  return ((v & 0xff) << 8) | ((v >> 8) & 0xff);
}

/** `__vlan_hwaccel_put_tag()`; `proto` in host order. */
function putHwTag(skb: SkbContext, proto: number, tci: number): void {
  skb.setField(SKB.vlan_present, 4, 1);
  skb.setField(SKB.vlan_tci, 4, tci & 0xffff);
  skb.setField(SKB.vlan_proto, 4, swap16(proto));
}

/** `__vlan_hwaccel_clear_tag()`. */
function clearHwTag(skb: SkbContext): void {
  skb.setField(SKB.vlan_present, 4, 0);
  skb.setField(SKB.vlan_tci, 4, 0);
  skb.setField(SKB.vlan_proto, 4, 0);
}

/** `skb_vlan_push()`: `proto` in host order. */
function vlanPush(skb: SkbContext, proto: number, tci: number): number {
  if (skb.field(SKB.vlan_present)) {
    const p = skb.packet;
    if (p.dataOff !== skb.macOff) return -EINVAL; // WARN_ONCE(offset)
    // __vlan_insert_tag(): push 4 bytes, MAC addresses moved to the front
    skb.shift(p.reserve(VLAN_HLEN, 0));
    moveData(skb, -VLAN_HLEN);
    const at = p.dataOff;
    p.buf.copyWithin(at, at + VLAN_HLEN, at + VLAN_HLEN + 12);
    const hwProto = swap16(skb.field(SKB.vlan_proto));
    const hwTci = skb.field(SKB.vlan_tci);
    p.buf[at + 12] = hwProto >> 8;
    p.buf[at + 13] = hwProto & 0xff;
    p.buf[at + 14] = hwTci >> 8;
    p.buf[at + 15] = hwTci & 0xff;
    skb.macOff -= VLAN_HLEN;
    skb.protocol = hwProto;
    p.remap();
  }
  putHwTag(skb, proto, tci);
  return 0;
}

/** `__skb_vlan_pop()`: the tag after the MAC addresses removed; returns the TCI. */
function popFromPacket(skb: SkbContext): number {
  const p = skb.packet;
  if (p.dataOff !== skb.macOff) return -EINVAL;
  if (skb.len < 14 + VLAN_HLEN) return -ENOMEM; // skb_ensure_writable(VLAN_ETH_HLEN)
  const at = p.dataOff;
  const tci = (p.buf[at + 14] << 8) | p.buf[at + 15];
  const inner = (p.buf[at + 16] << 8) | p.buf[at + 17];
  p.buf.copyWithin(at + VLAN_HLEN, at, at + 12);
  // vlan_set_encap_proto(): 802.3 length fields fall back by the first word
  if (inner >= 0x600) skb.protocol = inner;
  else {skb.protocol = p.buf[at] === 0xff && p.buf[at + 1] === 0xff
      ? 0x0001
      : 0x0004;}
  moveData(skb, VLAN_HLEN);
  skb.macOff += VLAN_HLEN;
  if (skb.netOff - p.dataOff < 14) skb.netOff = p.dataOff + 14;
  p.remap();
  return tci;
}

/** `skb_vlan_pop()`: drops the outer tag, moving the next one to the hw tag. */
function vlanPop(skb: SkbContext): number {
  if (skb.field(SKB.vlan_present)) clearHwTag(skb);
  else {
    if (!isVlan(skb.protocol)) return 0;
    const err = popFromPacket(skb);
    if (err < 0) return err;
  }
  if (!isVlan(skb.protocol)) return 0;
  const proto = skb.protocol;
  const tci = popFromPacket(skb);
  if (tci < 0) return tci;
  putHwTag(skb, proto, tci);
  return 0;
}

/** The VLAN helpers of a tc skb. */
export function skbVlanHelpers(skb: SkbContext): [number, HelperFn][] {
  return [
    // bpf_skb_vlan_push(skb, vlan_proto (__be16), vlan_tci)
    [18, (vm) => {
      let proto = swap16(vm.argLo(2) & 0xffff);
      if (!isVlan(proto)) proto = ETH_P_8021Q;
      return vlanPush(skb, proto, vm.argLo(3) & 0xffff);
    }],
    // bpf_skb_vlan_pop(skb)
    [19, () => vlanPop(skb)],
  ];
}
