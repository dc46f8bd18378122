/**
 * The size classes and refill watermarks of the BPF memory allocator
 * (`kernel/bpf/memalloc.c`): which `struct bpf_mem_cache` serves an object
 * of a given size, and when a cache is refilled or trimmed.
 * @module
 */
/** `sizeof(struct llist_node)`: the header in front of every object. */
export const LLIST_NODE_SZ = 8;

/** Number of size classes of a kmalloc-style allocator (`NUM_CACHES`). */
export const NUM_CACHES = 11;

/** `sizes[]` of `bpf_mem_alloc_init()`: unit size of each cache index. */
export const BPF_MEM_CACHE_SIZES: readonly number[] = [
  96,
  192,
  16,
  32,
  64,
  128,
  256,
  512,
  1024,
  2048,
  4096,
];

/** Largest unit a kmalloc-style allocator serves. */
export const BPF_MEM_ALLOC_MAX_UNIT = 4096;

// `size_index[]`: for (size - 1) / 8 in 0..23, the 1-based cache index
// (no 8-byte bucket: sizes 1..16 share the 16-byte cache).
const SIZE_INDEX: readonly number[] = [
  3,
  3,
  4,
  4,
  5,
  5,
  5,
  5,
  1,
  1,
  1,
  1,
  6,
  6,
  6,
  6,
  2,
  2,
  2,
  2,
  2,
  2,
  2,
  2,
];

/**
 * Cache index for a unit of `size` bytes (header included), or -1 when no
 * cache fits (0 or more than 4096). Mirrors bpf_mem_cache_idx().
 */
export function bpfMemCacheIdx(size: number): number {
  if (size <= 0 || size > BPF_MEM_ALLOC_MAX_UNIT) return -1;
  if (size <= 192) return SIZE_INDEX[(size - 1) >> 3] - 1;
  return fls(size - 1) - 2;
}

/** Find last set bit, 1-based (`fls(0) == 0`), as the kernel's fls(). */
function fls(x: number): number {
  return x === 0 ? 0 : 32 - Math.clz32(x);
}

/** The refill parameters of one cache. */
export interface Watermarks {
  /** Below this `free_cnt` after an alloc, irq_work refills. */
  readonly low: number;
  /** Above this `free_cnt` after a free, irq_work trims. */
  readonly high: number;
  /** Objects one refill adds. */
  readonly batch: number;
}

/**
 * Watermarks for a cache of `unitSize`-byte units. Mirrors init_refill_work():
 * 32/96 up to 256 bytes, else scaled by 256 / unit_size with floors 1 and 3;
 * batch is three quarters of the gap (at least 1). C integer division.
 */
export function refillWatermarks(
  unitSize: number,
  percpu = false,
): Watermarks {
  let low: number;
  let high: number;
  if (percpu) {
    low = 1;
    high = 3;
  } else if (unitSize <= 256) {
    low = 32;
    high = 96;
  } else {
    low = Math.max(Math.trunc(32 * 256 / unitSize), 1);
    high = Math.max(Math.trunc(96 * 256 / unitSize), 3);
  }
  const batch = Math.max(Math.trunc((high - low) / 4) * 3, 1);
  return { low, high, batch };
}
