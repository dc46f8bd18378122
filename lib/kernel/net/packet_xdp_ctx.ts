/**
 * The `xdp_buff` `BPF_PROG_TEST_RUN` builds (`bpf_prog_test_run_xdp()` in
 * net/bpf/test_run.c) and the run-time view of its `xdp_md` fields, with
 * the head, meta and tail adjustments of net/core/filter.c.
 * @module
 */
import type { AddressSpace, RegionAccessHook } from "../../exec/memory.ts";
import { XDP_MD_OFFSETS, XDP_MD_SIZE } from "../../verifier/ctx_access/xdp.ts";
import { ETH_HLEN, LOOPBACK_IFINDEX, PacketBuffer } from "./packet_buffer.ts";
import { EACCES, EINVAL } from "../../uapi/errno.ts";

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
      return -EINVAL;
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
    if (meta < XDP_FRAME_SIZE || meta > p.dataOff) return -EINVAL;
    const metalen = p.dataOff - meta;
    if (metalen % 4 !== 0 || metalen > XDP_META_MAX) return -EACCES;
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
    if (end > XDP_DATA_HARD_END || end < p.dataOff + ETH_HLEN) return -EINVAL;
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
