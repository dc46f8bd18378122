/**
 * The simulated kernel address space: a 64-bit space of bounds-checked
 * *regions* (a stack frame, a ctx, a packet, a map value, an allocated
 * object …), each with its own backing bytes and permissions.
 *
 * ## Address layout
 * Region `id` starts at `0xffff8880_00000000 + (id << 32)` — the x86-64
 * direct-map base (`page_offset_base`), so pointers print like kernel ones
 * (`0xffff888100000000` is region 1). The upper 32 bits select the region
 * and the lower 32 bits are a *signed* offset from its start: the window of
 * region `id` is `[start - 2^31, start + 2^31)`. So `r10 - 600` on a
 * 512-byte stack is still reported against that stack, at offset -88,
 * instead of against the neighbouring region. Translation is two integer
 * additions and an array index: no bigint.
 *
 * Id 0 is never mapped, so 0xffff8880_xxxxxxxx and everything outside the
 * id range (including NULL) is unmapped. The ids run out after
 * {@link MAX_REGION_ID} regions; freed regions stay reserved (an access
 * reports use-after-free) until then, and only when every id has been used
 * are freed ids recycled, oldest-freed first — a quarantine, like KASAN's.
 * @module
 */
import { ExecError, type FaultRegionInfo, MemoryFault } from "./fault.ts";

/** Upper 32 bits of the address of region 0 (as int32): 0xffff8880. */
export const REGION_BASE_HI: number = 0xffff8880 | 0;
/** Highest region id: the last window ends at 2^64. */
export const MAX_REGION_ID: number = 0xffffffff - 0xffff8880;
/** Largest region: the positive half of a window. */
export const MAX_REGION_SIZE: number = 0x7fffffff;

/** Permission bit: loads allowed. */
export const PERM_READ = 1;
/** Permission bit: stores allowed. */
export const PERM_WRITE = 2;
/** Both permission bits, as atomics need. */
export const PERM_RW = 3;

/** What a region holds; the fault report and the kernel use it. */
export type RegionKind =
  | "stack"
  | "ctx"
  | "packet"
  | "map_key"
  | "map_value"
  | "alloc"
  | "mem"
  | "ringbuf"
  | "percpu"
  | "kernel";

/** Options of {@link AddressSpace.mapRegion}. */
export interface MapRegionOptions {
  /** Name shown in faults; default `<kind>#<id>`. */
  readonly name?: string;
  /** Loads allowed (default true). */
  readonly read?: boolean;
  /** Stores allowed (default true). */
  readonly write?: boolean;
  /**
   * Every load and store goes through this hook instead of the bytes (the
   * region is then mapped with no PERM_* bits, whatever `read` / `write` say).
   */
  readonly hook?: RegionAccessHook;
}

/**
 * Run-time rewrite of a region's loads and stores, standing in for the
 * verifier's `convert_ctx_access()`: a program's `r2 = *(u32 *)(r1 + 76)`
 * on a `__sk_buff` becomes a load of the real 64-bit `skb->data`. A hooked
 * region is mapped without PERM_READ / PERM_WRITE, so the interpreter's
 * permission test sends every access to its (cold) fault path, which asks
 * the hook before faulting: the fast path pays nothing.
 */
export interface RegionAccessHook {
  /** The value a load of `size` bytes at `offset` yields, or undefined to fault. */
  load(offset: number, size: number): bigint | undefined;
  /** Performs a store of `size` bytes at `offset`; false to fault. */
  store(offset: number, size: number, value: bigint): boolean;
}

/** One mapped (or freed) region. Fields are read by the interpreter's hot loop. */
export class Region implements FaultRegionInfo {
  /** Region id: the address's upper half minus {@link REGION_BASE_HI}. */
  readonly id: number;
  /** What the region holds. */
  readonly kind: RegionKind;
  /** Name for reports. */
  readonly name: string;
  /** Size in bytes (kept after the region is freed, for reports). */
  readonly size: number;
  /** Backing bytes; shared with whoever mapped the region, never copied. */
  bytes: Uint8Array;
  /** Little-endian view over `bytes` (BPF memory is little-endian, unaligned). */
  view: DataView;
  /** PERM_* bits; 0 once freed, so the hot check also catches use-after-free. */
  flags: number;
  /** The permissions the region was mapped with. */
  readonly perms: number;
  /** False once unmapped. */
  live: boolean;
  /** Slow-path access rewrite (see {@link RegionAccessHook}), if any. */
  readonly hook: RegionAccessHook | undefined;

  /** Builds a live region over `bytes`. */
  constructor(
    id: number,
    kind: RegionKind,
    name: string,
    bytes: Uint8Array,
    perms: number,
    hook?: RegionAccessHook,
  ) {
    this.id = id;
    this.kind = kind;
    this.name = name;
    this.size = bytes.length;
    this.bytes = bytes;
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.flags = perms;
    this.perms = perms;
    this.live = true;
    this.hook = hook;
  }
}

const EMPTY = new Uint8Array(0);
const TWO_32 = 4294967296;

/** The 64-bit address of the first byte of region `id`. */
export function regionAddress(id: number): bigint {
  return (BigInt((REGION_BASE_HI + id) >>> 0) << 32n);
}

/** Splits a 64-bit address into its [low, high] 32-bit halves (as int32). */
export function splitAddress(address: bigint): [number, number] {
  const a = BigInt.asUintN(64, address);
  return [Number(a & 0xffffffffn) | 0, Number(a >> 32n) | 0];
}

/**
 * All regions of one simulated machine. CPUs (execution states) share one;
 * the allocator and maps map and unmap their objects through it.
 */
export class AddressSpace {
  /** Regions by id; index 0 is a never-live placeholder. */
  readonly regions: Region[] = [
    new Region(0, "kernel", "(null region)", EMPTY, 0),
  ];
  /**
   * Freed ids, oldest first, reused only once the id space is exhausted: a
   * FIFO ring (`quarantineHead` is the oldest), so taking one is O(1) even
   * when tens of thousands wait.
   */
  private quarantine: Int32Array = new Int32Array(1024);
  private quarantineHead = 0;
  private quarantineSize = 0;
  /** DataView of the region the last successful {@link at} resolved. */
  hitView: DataView = this.regions[0].view;
  /** Bytes of the region the last successful {@link at} resolved. */
  hitBytes: Uint8Array = EMPTY;

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
      if (this.quarantineSize === 0) {
        throw new ExecError(-1, "address space exhausted: no free region id");
      }
      id = this.quarantine[this.quarantineHead];
      this.quarantineHead = (this.quarantineHead + 1) % this.quarantine.length;
      this.quarantineSize--;
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
    region.bytes = EMPTY;
    region.view = new DataView(EMPTY.buffer);
    this.enqueueFreedId(region.id);
  }

  /** Appends a freed id to the quarantine ring, growing it when full. */
  private enqueueFreedId(id: number): void {
    if (this.quarantineSize === this.quarantine.length) {
      const grown = new Int32Array(this.quarantine.length * 2);
      for (let i = 0; i < this.quarantineSize; i++) {
        grown[i] =
          this.quarantine[(this.quarantineHead + i) % this.quarantine.length];
      }
      this.quarantine = grown;
      this.quarantineHead = 0;
    }
    this
      .quarantine[
        (this.quarantineHead + this.quarantineSize) % this.quarantine.length
      ] = id;
    this.quarantineSize++;
  }

  /** The region whose window holds `address` (live or freed), if any. */
  regionAt(address: bigint): Region | undefined {
    const [lo, hi] = splitAddress(address);
    const id = this.windowId(lo, hi);
    return id > 0 && id < this.regions.length ? this.regions[id] : undefined;
  }

  /** The region with this id (live or freed), if any. */
  regionById(id: number): Region | undefined {
    return id > 0 ? this.regions[id] : undefined;
  }

  /** Signed offset of `address` from the start of the region whose window holds it. */
  offsetOf(address: bigint): number {
    return splitAddress(address)[0];
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
    const [lo, hi] = splitAddress(address);
    const off = this.at(lo, hi, 0, len, access, insnIndex);
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
    const [lo, hi] = splitAddress(address);
    const off = this.at(lo, hi, 0, size, PERM_READ, insnIndex);
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
    const [lo, hi] = splitAddress(address);
    const off = this.at(lo, hi, 0, size, PERM_WRITE, insnIndex);
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
