/**
 * The simulated kernel address space: a 64-bit space of bounds-checked
 * *regions* (a stack frame, a ctx, a packet, a map value, an allocated
 * object …), each with its own backing bytes and permissions; the address
 * layout is described in `region.ts`, whose pieces this module re-exports.
 * Translation is two integer additions and an array index: no bigint.
 * @module
 */
import { ExecError, MemoryFault } from "./fault.ts";
import {
  addressHi,
  addressLo,
  EMPTY_BYTES,
  IdQuarantine,
  type MapRegionOptions,
  MAX_REGION_ID,
  MAX_REGION_SIZE,
  PERM_READ,
  PERM_WRITE,
  Region,
  REGION_BASE_HI,
  regionAddress,
  type RegionKind,
} from "./region.ts";

export {
  addressHi,
  addressLo,
  type MapRegionOptions,
  MAX_REGION_ID,
  MAX_REGION_SIZE,
  PERM_READ,
  PERM_RW,
  PERM_WRITE,
  Region,
  REGION_BASE_HI,
  type RegionAccessHook,
  regionAddress,
  type RegionKind,
  splitAddress,
} from "./region.ts";

/** 2^32: one region window. */
const TWO_32 = 4294967296;

/**
 * All regions of one simulated machine. CPUs (execution states) share one;
 * the allocator and maps map and unmap their objects through it.
 */
export class AddressSpace {
  /** Regions by id; index 0 is a never-live placeholder. */
  readonly regions: Region[] = [
    new Region(0, "kernel", "(null region)", EMPTY_BYTES, 0),
  ];
  /** Freed ids, reused only once the id space is exhausted. */
  private readonly quarantine: IdQuarantine = new IdQuarantine();
  /** DataView of the region the last successful {@link at} resolved. */
  hitView: DataView = this.regions[0].view;
  /** Bytes of the region the last successful {@link at} resolved. */
  hitBytes: Uint8Array = EMPTY_BYTES;

  /** An empty address space. */
  constructor() {
    this.regions[0].live = false;
  }

  /**
   * Maps a region and returns the address of its first byte. `bytes` is a
   * size (zero-filled) or a backing array, used as is (not copied) so that
   * a map can keep its values where the program writes them.
   */
  mapRegion(
    kind: RegionKind,
    bytes: number | Uint8Array,
    opts: MapRegionOptions = {},
  ): bigint {
    return regionAddress(this.mapRegionId(kind, bytes, opts));
  }

  /** As {@link mapRegion}, returning the region id. */
  mapRegionId(
    kind: RegionKind,
    bytes: number | Uint8Array,
    opts: MapRegionOptions = {},
  ): number {
    const backing = typeof bytes === "number" ? new Uint8Array(bytes) : bytes;
    if (backing.length > MAX_REGION_SIZE) {
      throw new ExecError(-1, `region of ${backing.length} bytes is too large`);
    }
    const perms = opts.hook !== undefined
      ? 0
      : (opts.read === false ? 0 : PERM_READ) |
        (opts.write === false ? 0 : PERM_WRITE);
    let id = this.regions.length;
    if (id > MAX_REGION_ID) {
      const oldest = this.quarantine.take();
      if (oldest === undefined) {
        throw new ExecError(-1, "address space exhausted: no free region id");
      }
      id = oldest;
    }
    const region = new Region(
      id,
      kind,
      opts.name ?? `${kind}#${id}`,
      backing,
      perms,
      opts.hook,
    );
    this.regions[id] = region;
    return id;
  }

  /**
   * Unmaps the region starting at `address`. The id stays reserved, so a
   * later access faults with `use-after-free`. Freeing twice is a fault.
   */
  unmapRegion(address: bigint): void {
    const region = this.regionAt(address);
    if (region === undefined || address !== regionAddress(region.id)) {
      throw new ExecError(
        -1,
        `unmapRegion: 0x${address.toString(16)} is not the start of a region`,
      );
    }
    if (!region.live) {
      throw new MemoryFault(-1, address, region, 0, 0, "write", "double-free");
    }
    region.live = false;
    region.flags = 0;
    region.bytes = EMPTY_BYTES;
    region.view = new DataView(EMPTY_BYTES.buffer);
    this.quarantine.add(region.id);
  }

  /** The region whose window holds `address` (live or freed), if any. */
  regionAt(address: bigint): Region | undefined {
    const id = this.windowId(addressLo(address), addressHi(address));
    return id > 0 && id < this.regions.length ? this.regions[id] : undefined;
  }

  /** The region with this id (live or freed), if any. */
  regionById(id: number): Region | undefined {
    return id > 0 ? this.regions[id] : undefined;
  }

  /** Signed offset of `address` from the start of the region whose window holds it. */
  offsetOf(address: bigint): number {
    return addressLo(address);
  }

  /** Id of the region whose window holds the address `hi:lo`. */
  private windowId(lo: number, hi: number): number {
    return (hi - REGION_BASE_HI + (lo >>> 31)) >>> 0;
  }

  /**
   * Hot-path translation of `(hi:lo) + off` for an access of `size` bytes
   * needing `access` (PERM_* bits). Returns the offset into the region and
   * leaves its view in {@link hitView} / {@link hitBytes}; throws a
   * {@link MemoryFault} naming instruction `insnIndex` otherwise.
   */
  at(
    lo: number,
    hi: number,
    off: number,
    size: number,
    access: number,
    insnIndex: number,
  ): number {
    const sum = (lo >>> 0) + off;
    const rel = sum | 0;
    // sum - rel is 0 or 2^32: one more window when the 32-bit sum carried
    // or its signed reading is negative (both mean "next window, rel < 0").
    const id = (hi - REGION_BASE_HI + (sum - rel) / TWO_32) >>> 0;
    if (id < this.regions.length) {
      const region = this.regions[id];
      if (
        (region.flags & access) === access && (rel >>> 0) + size <= region.size
      ) {
        this.hitView = region.view;
        this.hitBytes = region.bytes;
        return rel;
      }
    }
    throw this.fault(lo, hi, off, size, access, insnIndex);
  }

  /**
   * Cold path of an interpreter load the permission test refused: the
   * value of a hooked region's load (see {@link RegionAccessHook}), else
   * throws the fault.
   */
  hookLoad(
    lo: number,
    hi: number,
    off: number,
    size: number,
    insnIndex: number,
  ): bigint {
    const region = this.hookedRegion(lo, hi, off, size);
    const value = region?.hook?.load(((lo >>> 0) + off) | 0, size);
    if (value === undefined) {
      throw this.fault(lo, hi, off, size, PERM_READ, insnIndex);
    }
    return value;
  }

  /** Cold path of an interpreter store: a hooked region's store, else throws the fault. */
  hookStore(
    lo: number,
    hi: number,
    off: number,
    size: number,
    value: bigint,
    insnIndex: number,
  ): void {
    const region = this.hookedRegion(lo, hi, off, size);
    if (region?.hook?.store(((lo >>> 0) + off) | 0, size, value) !== true) {
      throw this.fault(lo, hi, off, size, PERM_WRITE, insnIndex);
    }
  }

  /** The live hooked region holding all of `(hi:lo) + off .. + size`, if any. */
  private hookedRegion(
    lo: number,
    hi: number,
    off: number,
    size: number,
  ): Region | undefined {
    const sum = (lo >>> 0) + off;
    const rel = sum | 0;
    const id = (hi - REGION_BASE_HI + (sum - rel) / TWO_32) >>> 0;
    const region = id < this.regions.length ? this.regions[id] : undefined;
    if (
      region === undefined || !region.live || region.hook === undefined ||
      rel < 0 || rel + size > region.size
    ) return undefined;
    return region;
  }

  /** Classifies a refused access (cold path of {@link at}). */
  fault(
    lo: number,
    hi: number,
    off: number,
    size: number,
    access: number,
    insnIndex: number,
  ): MemoryFault {
    const address = BigInt.asUintN(
      64,
      (BigInt(hi >>> 0) << 32n) + BigInt((lo >>> 0) + off),
    );
    const kind = access & PERM_WRITE ? "write" : "read";
    const region = this.regionAt(address);
    const offset = this.offsetOf(address);
    if (region === undefined) {
      return new MemoryFault(
        insnIndex,
        address,
        undefined,
        0,
        size,
        kind,
        "unmapped",
      );
    }
    let reason: MemoryFault["reason"];
    if (!region.live) reason = "use-after-free";
    else if (offset < 0 || offset + size > region.size) {
      reason = "out-of-bounds";
    } else if ((access & PERM_READ) !== 0 && (region.flags & PERM_READ) === 0) {
      reason = "not-readable";
    } else reason = "not-writable";
    return new MemoryFault(
      insnIndex,
      address,
      region,
      offset,
      size,
      kind,
      reason,
    );
  }

  // ---- bigint-address helpers for helper and kfunc implementations ----

  /** Checked view of `len` bytes at `address` (no copy): writes go to the region. */
  slice(
    address: bigint,
    len: number,
    access: number = PERM_READ,
    insnIndex = -1,
  ): Uint8Array {
    const off = this.at(
      addressLo(address),
      addressHi(address),
      0,
      len,
      access,
      insnIndex,
    );
    return this.hitBytes.subarray(off, off + len);
  }

  /** Copies `len` bytes out of simulated memory. */
  readBytes(address: bigint, len: number, insnIndex = -1): Uint8Array {
    return this.slice(address, len, PERM_READ, insnIndex).slice();
  }

  /** Copies `data` into simulated memory. */
  writeBytes(address: bigint, data: Uint8Array, insnIndex = -1): void {
    this.slice(address, data.length, PERM_WRITE, insnIndex).set(data);
  }

  /** Loads an unsigned little-endian value of 1, 2, 4 or 8 bytes. */
  read(address: bigint, size: 1 | 2 | 4 | 8, insnIndex = -1): bigint {
    const off = this.at(
      addressLo(address),
      addressHi(address),
      0,
      size,
      PERM_READ,
      insnIndex,
    );
    const v = this.hitView;
    switch (size) {
      case 1:
        return BigInt(v.getUint8(off));
      case 2:
        return BigInt(v.getUint16(off, true));
      case 4:
        return BigInt(v.getUint32(off, true));
      default:
        return v.getBigUint64(off, true);
    }
  }

  /** Stores the low `size` bytes of `value`, little-endian. */
  write(
    address: bigint,
    size: 1 | 2 | 4 | 8,
    value: bigint,
    insnIndex = -1,
  ): void {
    const off = this.at(
      addressLo(address),
      addressHi(address),
      0,
      size,
      PERM_WRITE,
      insnIndex,
    );
    const v = this.hitView;
    const u = BigInt.asUintN(64, value);
    switch (size) {
      case 1:
        v.setUint8(off, Number(u & 0xffn));
        return;
      case 2:
        v.setUint16(off, Number(u & 0xffffn), true);
        return;
      case 4:
        v.setUint32(off, Number(u & 0xffffffffn), true);
        return;
      default:
        v.setBigUint64(off, u, true);
    }
  }

  /** Reads a NUL-terminated string of at most `max` bytes (for printk-like helpers). */
  readCString(address: bigint, max: number, insnIndex = -1): string {
    const chars: number[] = [];
    for (let i = 0; i < max; i++) {
      const c = Number(this.read(address + BigInt(i), 1, insnIndex));
      if (c === 0) break;
      chars.push(c);
    }
    return String.fromCharCode(...chars);
  }
}
