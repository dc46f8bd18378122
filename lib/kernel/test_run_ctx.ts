/**
 * The contexts `BPF_PROG_TEST_RUN` builds (net/bpf/test_run.c) and the
 * run-time rewrite of their field accesses. The kernel's verifier rewrites
 * each `__sk_buff` / `xdp_md` access into loads from the real `sk_buff` /
 * `xdp_buff` (`convert_ctx_access()`), so that `r2 = *(u32 *)(r1 + 76)`
 * yields the 64-bit `skb->data`. Here a ctx is a hooked region
 * (`RegionAccessHook` in lib/exec/memory.ts): loads of pointer fields
 * yield packet addresses, other fields read a shadow `__sk_buff` holding
 * the simulated skb's values, and stores to the writable fields land there.
 *
 * The packet is one backing buffer with the kernel's headroom in front;
 * the program sees a `packet` region over `data … data_end` of it.
 * @module
 */
import type { AddressSpace, RegionAccessHook } from "../exec/memory.ts";
import { regionAddress } from "../exec/memory.ts";
import { SK_BUFF_OFFSETS, SK_BUFF_SIZE } from "../verifier/ctx_access/skb.ts";
import { XDP_MD_OFFSETS, XDP_MD_SIZE } from "../verifier/ctx_access/xdp.ts";

/** `ETH_HLEN`: the test run needs at least an Ethernet header. */
export const ETH_HLEN = 14;
/** `NET_SKB_PAD + NET_IP_ALIGN` on x86-64 (64 + 0): headroom of a test skb. */
export const SKB_HEADROOM = 64;
/** `XDP_PACKET_HEADROOM`. */
export const XDP_PACKET_HEADROOM = 256;
/** `sizeof(struct xdp_frame)`: `bpf_xdp_adjust_head()` keeps it free at the start. */
export const XDP_FRAME_SIZE = 40;
/**
 * `xdp_data_hard_end()` of a test run's buffer: one page (`frame_sz`)
 * less the `skb_shared_info` tailroom (`SKB_DATA_ALIGN(320)`).
 */
export const XDP_DATA_HARD_END: number = 4096 - 320;
/** `XDP_METADATA_MAX`-style limit of `xdp_metalen_invalid()`: 32 bytes, 4-aligned. */
export const XDP_META_MAX = 32;
/** `ifindex` of the loopback device, which the test run uses. */
export const LOOPBACK_IFINDEX = 1;

/** `PACKET_*` packet types (`skb->pkt_type`). */
export const PACKET = {
  HOST: 0,
  BROADCAST: 1,
  MULTICAST: 2,
  OTHERHOST: 3,
} as const;

/** A packet buffer: `headroom` bytes, then the data; offsets index `buf`. */
export class PacketBuffer {
  /** Headroom and data. */
  readonly buf: Uint8Array;
  /** Offset of `data_meta`. */
  metaOff: number;
  /** Offset of `data`. */
  dataOff: number;
  /** Offset of `data_end`. */
  endOff: number;
  /** Region id of the program-visible packet (`data_meta … data_end`). */
  regionId = 0;
  private readonly space: AddressSpace;
  private readonly writable: boolean;

  /**
   * Copies `data` after `headroom` bytes, in a buffer of at least
   * `capacity` bytes (room to grow the tail), and maps the packet region.
   */
  constructor(
    space: AddressSpace,
    data: Uint8Array,
    headroom: number,
    writable: boolean,
    capacity = 0,
  ) {
    this.space = space;
    this.writable = writable;
    this.buf = new Uint8Array(Math.max(capacity, headroom + data.length));
    this.buf.set(data, headroom);
    this.metaOff = this.dataOff = headroom;
    this.endOff = headroom + data.length;
    this.remap();
  }

  /** (Re)maps the region after `data_meta`, `data` or `data_end` moved. */
  remap(): void {
    if (this.regionId !== 0) {
      this.space.unmapRegion(regionAddress(this.regionId));
    }
    this.regionId = this.space.mapRegionId(
      "packet",
      this.buf.subarray(this.metaOff, this.endOff),
      { name: "packet", write: this.writable },
    );
  }

  /** Address of byte `off` of `buf` (inside the packet region). */
  address(off: number): bigint {
    return regionAddress(this.regionId) + BigInt(off - this.metaOff);
  }

  /** Bytes `data … data_end`. */
  data(): Uint8Array {
    return this.buf.subarray(this.dataOff, this.endOff);
  }

  /** Unmaps the packet region. */
  release(): void {
    if (this.regionId !== 0) {
      this.space.unmapRegion(regionAddress(this.regionId));
    }
    this.regionId = 0;
  }
}

/** Reads `size` little-endian bytes at `off` of `bytes` as a bigint. */
function readLe(bytes: Uint8Array, off: number, size: number): bigint {
  let v = 0n;
  for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[off + i]);
  return v;
}

/** Writes the low `size` bytes of `value` at `off`, little-endian. */
function writeLe(bytes: Uint8Array, off: number, size: number, value: bigint) {
  for (let i = 0; i < size; i++) {
    bytes[off + i] = Number((value >> BigInt(8 * i)) & 0xffn);
  }
}

const SKB = SK_BUFF_OFFSETS;
/** `__sk_buff` fields a program may write (`tc_cls_act_is_valid_access()` and friends). */
const SKB_WRITABLE: readonly [number, number][] = [
  [SKB.mark, 4],
  [SKB.queue_mapping, 4],
  [SKB.priority, 4],
  [SKB.tc_index, 4],
  [SKB.cb, 20],
  [SKB.tc_classid, 4],
  [SKB.tstamp, 8],
];

/** How the test run treats an skb program (`bpf_prog_test_run_skb()`). */
export interface SkbRunKind {
  /** tc (`sched_cls` / `sched_act`): `data` starts at the MAC header. */
  readonly isL2: boolean;
}

/**
 * `eth_type_trans()` on the loopback device: the `__be16` protocol (as the
 * u32 `__sk_buff.protocol` reads it on a little-endian host) and the
 * packet type, from an Ethernet frame of at least {@link ETH_HLEN} bytes.
 */
export function ethTypeTrans(
  frame: Uint8Array,
): { protocol: number; pktType: number } {
  const dest = frame.subarray(0, 6);
  let pktType: number = PACKET.HOST;
  if (dest[0] & 1) {
    pktType = dest.every((b) => b === 0xff)
      ? PACKET.BROADCAST
      : PACKET.MULTICAST;
  } else if (dest.some((b) => b !== 0)) {
    pktType = PACKET.OTHERHOST; // lo's address is 00:00:00:00:00:00
  }
  const proto = (frame[12] << 8) | frame[13];
  let hostOrder: number;
  if (proto >= 0x600) hostOrder = proto; // ETH_P_802_3_MIN
  else if (frame[14] === 0xff && frame[15] === 0xff) hostOrder = 0x0001; // ETH_P_802_3
  else hostOrder = 0x0004; // ETH_P_802_2
  // __be16 kept in memory order: the u32 load sees the bytes swapped
  return { protocol: ((hostOrder & 0xff) << 8) | (hostOrder >> 8), pktType };
}

/**
 * The skb a test run builds from `data` (≥ {@link ETH_HLEN} bytes): len,
 * protocol, pkt_type, ifindex, the dummy socket's family and addresses;
 * for tc `data` starts at the MAC header, for socket filters after it.
 * The ctx region is hooked: see the module comment.
 */
export class SkbContext implements RegionAccessHook {
  /** The packet. */
  readonly packet: PacketBuffer;
  /** The shadow `__sk_buff`: every non-pointer field's value. */
  readonly shadow: Uint8Array = new Uint8Array(SK_BUFF_SIZE);
  /** Address of the ctx region (r1). */
  readonly address: bigint;
  private readonly kind: SkbRunKind;

  /** Builds the skb in `space` and maps its ctx and packet. */
  constructor(space: AddressSpace, data: Uint8Array, kind: SkbRunKind) {
    this.kind = kind;
    this.packet = new PacketBuffer(
      space,
      kind.isL2 ? data : data.subarray(ETH_HLEN),
      SKB_HEADROOM + (kind.isL2 ? 0 : ETH_HLEN),
      kind.isL2,
    );
    // For a socket filter the MAC header still sits in the headroom.
    if (!kind.isL2) {
      this.packet.buf.set(data.subarray(0, ETH_HLEN), SKB_HEADROOM);
    }
    const v = new DataView(this.shadow.buffer);
    const { protocol, pktType } = ethTypeTrans(data);
    v.setUint32(SKB.pkt_type, pktType, true);
    v.setUint32(SKB.protocol, protocol, true);
    v.setUint32(SKB.ifindex, LOOPBACK_IFINDEX, true);
    this.setSocketFields(v, protocol, data.subarray(ETH_HLEN));
    this.address = space.mapRegion("ctx", SK_BUFF_SIZE, {
      name: "__sk_buff",
      hook: this,
    });
  }

  /** `sk->sk_family` and addresses from the IP header, as the test run sets them. */
  private setSocketFields(v: DataView, protocol: number, l3: Uint8Array) {
    const l3v = new DataView(l3.buffer, l3.byteOffset, l3.byteLength);
    if (protocol === 0x0008) { // htons(ETH_P_IP)
      v.setUint32(SKB.family, 2, true); // AF_INET
      if (l3.length >= 20) {
        // the kernel stores saddr as sk_rcv_saddr (local_ip4), daddr as sk_daddr
        v.setUint32(SKB.local_ip4, l3v.getUint32(12, true), true);
        v.setUint32(SKB.remote_ip4, l3v.getUint32(16, true), true);
      }
    } else if (protocol === 0xdd86) { // htons(ETH_P_IPV6)
      v.setUint32(SKB.family, 10, true); // AF_INET6
      if (l3.length >= 40) {
        this.shadow.set(l3.subarray(8, 24), SKB.local_ip6);
        this.shadow.set(l3.subarray(24, 40), SKB.remote_ip6);
      }
    }
  }

  /** `skb->len`: bytes from `data` to `data_end`. */
  get len(): number {
    return this.packet.endOff - this.packet.dataOff;
  }

  /** See {@link RegionAccessHook.load}. */
  load(offset: number, size: number): bigint | undefined {
    const p = this.packet;
    switch (offset) {
      case SKB.data:
        return size === 4 ? p.address(p.dataOff) : undefined;
      case SKB.data_end:
        return size === 4 ? p.address(p.endOff) : undefined;
      case SKB.data_meta:
        return size === 4 ? p.address(p.metaOff) : undefined;
      case SKB.sk:
      case SKB.flow_keys:
        return undefined; // no socket / flow keys object is modelled
    }
    if (offset < SKB.pkt_type) {
      return readLe(u32Bytes(this.len), offset, size);
    }
    return readLe(this.shadow, offset, size);
  }

  /** See {@link RegionAccessHook.store}. */
  store(offset: number, size: number, value: bigint): boolean {
    const ok = SKB_WRITABLE.some(([at, len]) =>
      offset >= at && offset + size <= at + len
    );
    if (!ok) return false;
    writeLe(this.shadow, offset, size, value);
    return true;
  }

  /**
   * What the test run copies out: `skb->data … + len`; for a socket filter
   * the MAC header is pushed back, zeroed, first.
   */
  dataOut(): Uint8Array {
    const data = this.packet.data();
    if (this.kind.isL2) return data.slice();
    const out = new Uint8Array(ETH_HLEN + data.length);
    out.set(data, ETH_HLEN);
    return out;
  }
}

function u32Bytes(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0, true);
  return b;
}

const XDP = XDP_MD_OFFSETS;

/**
 * The `xdp_buff` a test run builds: {@link XDP_PACKET_HEADROOM} bytes of
 * headroom, `data_meta` = `data`, the loopback device's queue 0.
 */
export class XdpContext implements RegionAccessHook {
  /** The packet. */
  readonly packet: PacketBuffer;
  /** Address of the ctx region (r1). */
  readonly address: bigint;

  /** Builds the buffer in `space` and maps its ctx and packet. */
  constructor(space: AddressSpace, data: Uint8Array) {
    this.packet = new PacketBuffer(
      space,
      data,
      XDP_PACKET_HEADROOM,
      true,
      XDP_DATA_HARD_END,
    );
    this.address = space.mapRegion("ctx", XDP_MD_SIZE, {
      name: "xdp_md",
      hook: this,
    });
  }

  /** See {@link RegionAccessHook.load}: only whole u32 fields (`xdp_is_valid_access()`). */
  load(offset: number, size: number): bigint | undefined {
    if (size !== 4) return undefined;
    const p = this.packet;
    switch (offset) {
      case XDP.data:
        return p.address(p.dataOff);
      case XDP.data_end:
        return p.address(p.endOff);
      case XDP.data_meta:
        return p.address(p.metaOff);
      case XDP.ingress_ifindex:
        return BigInt(LOOPBACK_IFINDEX);
      case XDP.rx_queue_index:
        return 0n;
      default:
        return undefined; // egress_ifindex: no txq in a test run
    }
  }

  /** `xdp_md` has no writable field. */
  store(): boolean {
    return false;
  }

  /**
   * `bpf_xdp_adjust_head()`: moves `data` (and the metadata with it) by
   * `delta`; -EINVAL (-22) when that leaves less than `sizeof(xdp_frame)`
   * of headroom or less than {@link ETH_HLEN} bytes of data.
   */
  adjustHead(delta: number): number {
    const p = this.packet;
    const metalen = p.dataOff - p.metaOff;
    const data = p.dataOff + delta;
    if (data < XDP_FRAME_SIZE + metalen || data > p.endOff - ETH_HLEN) {
      return -22;
    }
    if (metalen) p.buf.copyWithin(p.metaOff + delta, p.metaOff, p.dataOff);
    p.metaOff += delta;
    p.dataOff = data;
    p.remap();
    return 0;
  }

  /**
   * `bpf_xdp_adjust_meta()`: moves `data_meta` by `delta`; -EINVAL outside
   * `[hard start + sizeof(xdp_frame), data]`, -EACCES (-13) for metadata
   * that is not a multiple of 4 or over {@link XDP_META_MAX} bytes.
   */
  adjustMeta(delta: number): number {
    const p = this.packet;
    const meta = p.metaOff + delta;
    if (meta < XDP_FRAME_SIZE || meta > p.dataOff) return -22;
    const metalen = p.dataOff - meta;
    if (metalen % 4 !== 0 || metalen > XDP_META_MAX) return -13;
    p.metaOff = meta;
    p.remap();
    return 0;
  }

  /**
   * `bpf_xdp_adjust_tail()`: moves `data_end` by `delta` (grown bytes are
   * zeroed); -EINVAL past {@link XDP_DATA_HARD_END} or when fewer than
   * {@link ETH_HLEN} bytes would remain.
   */
  adjustTail(delta: number): number {
    const p = this.packet;
    const end = p.endOff + delta;
    if (end > XDP_DATA_HARD_END || end < p.dataOff + ETH_HLEN) return -22;
    if (delta > 0) p.buf.fill(0, p.endOff, end);
    p.endOff = end;
    p.remap();
    return 0;
  }

  /** What the test run copies out: `data_meta … data_end`. */
  dataOut(): Uint8Array {
    const p = this.packet;
    return p.buf.slice(p.metaOff, p.endOff);
  }
}
