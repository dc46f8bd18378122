/**
 * The pieces of the simulated address space (`memory.ts`): the region ids'
 * address windows, permissions, what a region holds, the hook that rewrites
 * a context's loads and stores, and the conversions between 64-bit
 * addresses and their 32-bit halves.
 *
 * ## Address layout
 * Region `id` starts at `0xffff8880_00000000 + (id << 32)` — the x86-64
 * direct-map base (`page_offset_base`), so pointers print like kernel ones
 * (`0xffff888100000000` is region 1). The upper 32 bits select the region
 * and the lower 32 bits are a *signed* offset from its start: the window of
 * region `id` is `[start - 2^31, start + 2^31)`. So `r10 - 600` on a
 * 512-byte stack is still reported against that stack, at offset -88,
 * instead of against the neighbouring region.
 *
 * Id 0 is never mapped, so 0xffff8880_xxxxxxxx and everything outside the
 * id range (including NULL) is unmapped. The ids run out after
 * {@link MAX_REGION_ID} regions; freed regions stay reserved (an access
 * reports use-after-free) until then, and only when every id has been used
 * are freed ids recycled, oldest-freed first — a quarantine, like KASAN's.
 * @module
 */
import type { FaultRegionInfo } from "./fault.ts";

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

/** The bytes of an unmapped region. */
export const EMPTY_BYTES: Uint8Array = new Uint8Array(0);

/** The 64-bit address of the first byte of region `id`. */
export function regionAddress(id: number): bigint {
  return (BigInt((REGION_BASE_HI + id) >>> 0) << 32n);
}

/** Splits a 64-bit address into its [low, high] 32-bit halves (as int32). */
export function splitAddress(address: bigint): [number, number] {
  return [addressLo(address), addressHi(address)];
}

/** The low 32 bits of a 64-bit address (as int32), without building a pair. */
export function addressLo(address: bigint): number {
  return Number(BigInt.asUintN(32, address)) | 0;
}

/** The high 32 bits of a 64-bit address (as int32), without building a pair. */
export function addressHi(address: bigint): number {
  return Number(BigInt.asUintN(32, address >> 32n)) | 0;
}

/**
 * Freed region ids, oldest first: a FIFO ring, so taking one is O(1) even
 * when tens of thousands wait (ids are reused only once the id space is
 * exhausted, oldest-freed first, like KASAN's quarantine).
 */
export class IdQuarantine {
  private ring: Int32Array = new Int32Array(1024);
  private head = 0;
  private size = 0;

  /** Appends a freed id, growing the ring when full. */
  add(id: number): void {
    const ring = this.ring;
    if (this.size === ring.length) {
      const grown = new Int32Array(ring.length * 2);
      for (let i = 0; i < this.size; i++) {
        grown[i] = ring[(this.head + i) % ring.length];
      }
      this.ring = grown;
      this.head = 0;
    }
    this.ring[(this.head + this.size) % this.ring.length] = id;
    this.size++;
  }

  /** Takes the oldest freed id, or undefined when none waits. */
  take(): number | undefined {
    if (this.size === 0) return undefined;
    const id = this.ring[this.head];
    this.head = (this.head + 1) % this.ring.length;
    this.size--;
    return id;
  }
}
