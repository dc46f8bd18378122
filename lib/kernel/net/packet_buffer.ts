/**
 * The bytes of a test run's packet: one backing buffer with headroom in
 * front of `data` and tailroom after `data_end`, as `build_skb()` and
 * `xdp_init_buff()` lay them out. The program sees a `packet` region over
 * `data_meta … data_end`; helpers that move those edges remap it.
 * @module
 */
import type { AddressSpace } from "../../exec/memory.ts";
import { regionAddress } from "../../exec/memory.ts";

/** `ETH_HLEN`: the test run needs at least an Ethernet header. */
export const ETH_HLEN = 14;
/** `ifindex` of the loopback device, which the test run uses. */
export const LOOPBACK_IFINDEX = 1;

/** A packet buffer: headroom, then the data; offsets index `buf`. */
export class PacketBuffer {
  /** Headroom, data and tailroom (replaced when a helper grows the skb). */
  buf: Uint8Array;
  /** Offset of `data_meta`. */
  metaOff: number;
  /** Offset of `data`. */
  dataOff: number;
  /** Offset of `data_end`. */
  endOff: number;
  /** Region id of the program-visible packet (`data_meta … data_end`). */
  regionId = 0;
  /** Told the new region id after each remap (`ld_abs` reads through it). */
  onRemap: ((regionId: number) => void) | undefined = undefined;
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
    this.onRemap?.(this.regionId);
  }

  /** Address of byte `off` of `buf` (inside the packet region). */
  address(off: number): bigint {
    return regionAddress(this.regionId) + BigInt(off - this.metaOff);
  }

  /** Bytes `data … data_end`. */
  data(): Uint8Array {
    return this.buf.subarray(this.dataOff, this.endOff);
  }

  /** How many bytes lie in `data … data_end` (a linear skb's `len`). */
  get len(): number {
    return this.endOff - this.dataOff;
  }

  /** Bytes in front of `data_meta`. */
  get headroom(): number {
    return this.metaOff;
  }

  /** Bytes after `data_end`. */
  get tailroom(): number {
    return this.buf.length - this.endOff;
  }

  /**
   * Makes room for `head` bytes in front of `data_meta` and `tail` after
   * `data_end`, reallocating (zeroed) as `pskb_expand_head()` does; the
   * old bytes, headroom included, keep their place relative to `data`.
   * Returns how far every offset moved.
   */
  reserve(head: number, tail: number): number {
    const grow = Math.max(0, head - this.metaOff);
    const extraTail = Math.max(0, tail - this.tailroom);
    if (grow === 0 && extraTail === 0) return 0;
    const next = new Uint8Array(this.buf.length + grow + extraTail);
    next.set(this.buf, grow);
    this.buf = next;
    this.metaOff += grow;
    this.dataOff += grow;
    this.endOff += grow;
    return grow;
  }

  /** Unmaps the packet region. */
  release(): void {
    if (this.regionId !== 0) {
      this.space.unmapRegion(regionAddress(this.regionId));
    }
    this.regionId = 0;
  }
}
