/**
 * The contexts `BPF_PROG_TEST_RUN` builds (net/bpf/test_run.c) and the
 * run-time rewrite of their field accesses. The kernel's verifier rewrites
 * each `__sk_buff` / `xdp_md` access into loads from the real `sk_buff` /
 * `xdp_buff` (`convert_ctx_access()`), so that `r2 = *(u32 *)(r1 + 76)`
 * yields the 64-bit `skb->data`. Here a ctx is a hooked region
 * (`RegionAccessHook` in lib/exec/memory.ts): loads of pointer fields
 * yield packet addresses or the dummy socket's (`skb->sk`,
 * packet_sock.ts), other fields read a shadow `__sk_buff` holding
 * the simulated skb's values, and stores to the writable fields land there.
 *
 * The packet is one backing buffer with the kernel's headroom in front;
 * the program sees a `packet` region over `data … data_end` of it.
 * @module
 */
import type { AddressSpace, RegionAccessHook } from "../exec/memory.ts";
import {
  ETH_HLEN,
  LOOPBACK_IFINDEX,
  PacketBuffer,
} from "./net/packet_buffer.ts";
import type { TunnelInfo } from "./net/packet_tunnel.ts";
import { TestRunSock } from "./net/packet_sock.ts";
import { bpfSkStorageFree } from "./local_storage_helpers.ts";
import { SK_BUFF_OFFSETS, SK_BUFF_SIZE } from "../verifier/ctx_access/skb.ts";

/** `NET_SKB_PAD + NET_IP_ALIGN` on x86-64 (64 + 0): headroom of a test skb. */
export const SKB_HEADROOM = 64;
/** `SKB_DATA_ALIGN(sizeof(struct skb_shared_info))` on x86-64. */
export const SKB_SHINFO_SIZE = 320;
export {
  ETH_HLEN,
  LOOPBACK_IFINDEX,
  PacketBuffer,
} from "./net/packet_buffer.ts";
export {
  XDP_DATA_HARD_END,
  XDP_FRAME_SIZE,
  XDP_META_MAX,
  XDP_PACKET_HEADROOM,
  XdpContext,
} from "./net/packet_xdp_ctx.ts";

/** `PACKET_*` packet types (`skb->pkt_type`). */
export const PACKET = {
  HOST: 0,
  BROADCAST: 1,
  MULTICAST: 2,
  OTHERHOST: 3,
} as const;

/** Reads `size` little-endian bytes at `off` of `bytes` as a bigint. */
export function readLe(bytes: Uint8Array, off: number, size: number): bigint {
  let v = 0n;
  for (let i = size - 1; i >= 0; i--) v = (v << 8n) | BigInt(bytes[off + i]);
  return v;
}

/** Writes the low `size` bytes of `value` at `off`, little-endian. */
export function writeLe(
  bytes: Uint8Array,
  off: number,
  size: number,
  value: bigint,
): void {
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
  /**
   * Whether the program may store into the packet directly
   * (`may_access_direct_pkt_data()`: tc and `lwt_xmit`; socket filters,
   * `cgroup_skb`, `lwt_in` and `lwt_out` only read); default `isL2`.
   */
  readonly writable?: boolean;
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
 * for tc `data` starts at the MAC header, for the other skb programs
 * (socket filters, `cgroup_skb`, LWT) after it.
 * The ctx region is hooked: see the module comment.
 */
export class SkbContext implements RegionAccessHook {
  /** The packet. */
  readonly packet: PacketBuffer;
  /** The shadow `__sk_buff`: every non-pointer field's value. */
  readonly shadow: Uint8Array = new Uint8Array(SK_BUFF_SIZE);
  /** Address of the ctx region (r1). */
  readonly address: bigint;
  /** Offset in `packet.buf` of the MAC header (`skb->mac_header`). */
  macOff: number;
  /** Offset in `packet.buf` of the network header (`skb->network_header`). */
  netOff: number;
  /** `skb->ip_summed`: `CHECKSUM_NONE` (0) in a test run. */
  ipSummed = 0;
  /** `skb->csum_level`. */
  csumLevel = 0;
  /** `skb->csum`, meaningful under `CHECKSUM_COMPLETE` only. */
  csum = 0;
  /** `skb->sw_hash || skb->l4_hash`: `skb_get_hash()` keeps `hash` as is. */
  hashValid = false;
  /** `skb->encapsulation`: set by an encapsulating `bpf_skb_adjust_room()`. */
  encapsulation = false;
  /** The metadata dst's tunnel info, once `bpf_skb_set_tunnel_key()` set one. */
  tunnel: TunnelInfo | undefined = undefined;
  /** Whether `data` starts at the MAC header (tc) or after it (the others). */
  readonly kind: SkbRunKind;
  /** `skb->sk`: the dummy socket the test run allocates for the skb. */
  readonly sock: TestRunSock;
  private readonly space: AddressSpace;

  /** Builds the skb in `space` and maps its ctx and packet. */
  constructor(space: AddressSpace, data: Uint8Array, kind: SkbRunKind) {
    this.kind = kind;
    this.space = space;
    this.packet = new PacketBuffer(
      space,
      kind.isL2 ? data : data.subarray(ETH_HLEN),
      SKB_HEADROOM + (kind.isL2 ? 0 : ETH_HLEN),
      kind.writable ?? kind.isL2,
      skbBufferSize(data.length),
    );
    this.macOff = SKB_HEADROOM;
    this.netOff = SKB_HEADROOM + ETH_HLEN;
    // For a socket filter the MAC header still sits in the headroom.
    if (!kind.isL2) {
      this.packet.buf.set(data.subarray(0, ETH_HLEN), SKB_HEADROOM);
    }
    const v = new DataView(this.shadow.buffer);
    const { protocol, pktType } = ethTypeTrans(data);
    v.setUint32(SKB.pkt_type, pktType, true);
    v.setUint32(SKB.protocol, protocol, true);
    v.setUint32(SKB.ifindex, LOOPBACK_IFINDEX, true);
    this.sock = new TestRunSock(space, protocol, data.subarray(ETH_HLEN));
    this.setSocketFields(v);
    this.address = space.mapRegion("ctx", SK_BUFF_SIZE, {
      name: "__sk_buff",
      hook: this,
    });
  }

  /**
   * The `__sk_buff` fields that read `skb->sk` (family and addresses,
   * `bpf_convert_ctx_access()`): the socket's, fixed for the run.
   */
  private setSocketFields(v: DataView) {
    const sk = this.sock;
    v.setUint32(SKB.family, sk.family, true);
    this.shadow.set(sk.rcvSaddr, SKB.local_ip4);
    this.shadow.set(sk.daddr, SKB.remote_ip4);
    this.shadow.set(sk.v6RcvSaddr, SKB.local_ip6);
    this.shadow.set(sk.v6Daddr, SKB.remote_ip6);
  }

  /** Reads the `size`-byte `__sk_buff` field at `offset` (little-endian). */
  field(offset: number, size = 4): number {
    return Number(readLe(this.shadow, offset, size));
  }

  /** Sets the `size`-byte `__sk_buff` field at `offset`. */
  setField(offset: number, size: number, value: number | bigint): void {
    writeLe(this.shadow, offset, size, BigInt(value));
  }

  /** `skb->protocol` in host order (0x0800 for IPv4). */
  get protocol(): number {
    const be = this.field(SKB.protocol, 2);
    return ((be & 0xff) << 8) | (be >> 8);
  }

  set protocol(hostOrder: number) {
    this.setField(
      SKB.protocol,
      4,
      ((hostOrder & 0xff) << 8) | (hostOrder >> 8),
    );
  }

  /** Moves the header offsets after `PacketBuffer.reserve()` moved the data. */
  shift(delta: number): void {
    this.macOff += delta;
    this.netOff += delta;
  }

  /** `skb->len`: bytes from `data` to `data_end`. */
  get len(): number {
    return this.packet.len;
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
        return size === 8 ? this.sock.address : undefined;
      case SKB.flow_keys:
        return undefined; // no flow keys object is modelled
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

  /** Unmaps the ctx, the packet and the socket (the end of the test run). */
  release(): void {
    this.packet.release();
    bpfSkStorageFree(this.sock); // the socket's storage goes with it
    this.sock.release();
    this.space.unmapRegion(this.address);
  }

  /**
   * What the test run copies out: `skb->data … + len`; for all but tc
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

/**
 * Bytes the test skb's buffer offers from its start to `skb_end_pointer()`:
 * `bpf_test_init()` asks `kzalloc()` for headroom, data and the
 * `skb_shared_info` tailroom (320), `build_skb()` uses what the slab
 * really gave (`ksize()`) less that tailroom.
 */
function skbBufferSize(dataLen: number): number {
  const want = SKB_HEADROOM + dataLen + SKB_SHINFO_SIZE;
  let size = 8;
  while (size < want) {
    // kmalloc-96 and kmalloc-192 sit between the powers of two
    if (size === 64 && want <= 96) return 96 - SKB_SHINFO_SIZE;
    if (size === 128 && want <= 192) return 192 - SKB_SHINFO_SIZE;
    size *= 2;
  }
  return size - SKB_SHINFO_SIZE;
}

function u32Bytes(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0, true);
  return b;
}
