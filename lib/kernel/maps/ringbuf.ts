/**
 * `BPF_MAP_TYPE_RINGBUF` (kernel/bpf/ringbuf.c) and its user-space
 * consumer (libbpf's `ring_buffer__consume()`).
 *
 * The data area is `max_entries` bytes; positions only grow and are masked
 * into it. Each record is an 8-byte header — `len` (with
 * {@link BPF_RINGBUF_BUSY_BIT} while reserved and
 * {@link BPF_RINGBUF_DISCARD_BIT} once discarded) and `pg_off`, the page
 * offset of the header from the start of `struct bpf_ringbuf` — followed by
 * the sample, the whole rounded up to 8 bytes.
 *
 * A reserved sample is its own `ringbuf` region of exactly `size` bytes
 * (what the verifier allows), a view straight into the data area; the
 * kernel maps the data pages twice so that a record crossing the end stays
 * contiguous, which the simulator reproduces with a scratch buffer copied
 * in at commit. After submit or discard the sample region is unmapped, so a
 * stale pointer faults.
 * @module
 */
import { MapBase } from "./base.ts";
import {
  BPF_F_NUMA_NODE,
  EAGAIN,
  EINVAL,
  ENOTSUPP,
  type MapAttr,
  type MapEnv,
  MapError,
} from "./map.ts";

/** Header bit: the record is reserved, not yet committed. */
export const BPF_RINGBUF_BUSY_BIT: number = 2 ** 31;
/** Header bit: the record was discarded. */
export const BPF_RINGBUF_DISCARD_BIT: number = 2 ** 30;
/** `BPF_RINGBUF_HDR_SZ`. */
export const BPF_RINGBUF_HDR_SZ = 8;
/** `BPF_RB_NO_WAKEUP`. */
export const BPF_RB_NO_WAKEUP = 1;
/** `BPF_RB_FORCE_WAKEUP`. */
export const BPF_RB_FORCE_WAKEUP = 2;
/** `bpf_ringbuf_query()` flags: `BPF_RB_AVAIL_DATA` … `BPF_RB_PROD_POS`. */
export const BPF_RB_AVAIL_DATA = 0;
/** Query: size of the data area. */
export const BPF_RB_RING_SIZE = 1;
/** Query: consumer position. */
export const BPF_RB_CONS_POS = 2;
/** Query: producer position. */
export const BPF_RB_PROD_POS = 3;
/** `RINGBUF_MAX_RECORD_SZ` (`UINT_MAX / 4`). */
export const RINGBUF_MAX_RECORD_SZ = 0x3fffffff;
/** Pages of `struct bpf_ringbuf` before the data (`RINGBUF_NR_META_PAGES`). */
export const RINGBUF_NR_META_PAGES = 3;
const PAGE_SHIFT = 12;

/** A reserved, not yet committed record. */
interface Reservation {
  /** Offset of its header in the data area. */
  readonly hdrOff: number;
  /** Sample size. */
  readonly size: number;
  /** For a record crossing the end: the scratch copy the program writes. */
  readonly scratch: Uint8Array | null;
}

/** A ring buffer map. */
export class RingBuf extends MapBase {
  /** The data area (`max_entries` bytes). */
  readonly data: Uint8Array;
  private readonly view: DataView;
  private readonly mask: number;
  /** `consumer_pos`. */
  consumerPos = 0;
  /** `producer_pos`. */
  producerPos = 0;
  /** `pending_pos`: the oldest record that may still be busy. */
  pendingPos = 0;
  /** How many times a commit woke the consumer up (`irq_work_queue()`). */
  wakeups = 0;
  private readonly reserved = new Map<bigint, Reservation>();

  /** `ringbuf_map_alloc()`; the caller validated the attributes. */
  constructor(attr: MapAttr, env: MapEnv) {
    super(attr, null, env, 0);
    this.data = new Uint8Array(attr.maxEntries);
    this.view = new DataView(this.data.buffer);
    this.mask = attr.maxEntries - 1;
  }

  /** Reads the `len` word of the header at data offset `off`. */
  headerLen(off: number): number {
    return this.view.getUint32(off, true);
  }

  /** `__bpf_ringbuf_reserve()` proper: the header's data offset, or -1 when it does not fit. */
  private reserveRecord(size: number): number {
    if (size > RINGBUF_MAX_RECORD_SZ) return -1;
    const len = (size + BPF_RINGBUF_HDR_SZ + 7) & ~7;
    if (len > this.mask + 1) return -1;
    let pend = this.pendingPos;
    const prod = this.producerPos;
    while (pend < prod) {
      const l = this.headerLen(pend & this.mask);
      if (l & BPF_RINGBUF_BUSY_BIT) break;
      pend += ((l & ~BPF_RINGBUF_DISCARD_BIT) + BPF_RINGBUF_HDR_SZ + 7) & ~7;
    }
    this.pendingPos = pend;
    const newProd = prod + len;
    if (newProd - this.consumerPos > this.mask || newProd - pend > this.mask) {
      return -1;
    }
    const hdrOff = prod & this.mask;
    this.view.setUint32(hdrOff, (size | BPF_RINGBUF_BUSY_BIT) >>> 0, true);
    this.view.setUint32(
      hdrOff + 4,
      RINGBUF_NR_META_PAGES + (hdrOff >>> PAGE_SHIFT),
      true,
    );
    this.producerPos = newProd;
    return hdrOff;
  }

  /** `bpf_ringbuf_reserve()`: the sample's address, or null when it does not fit. */
  reserve(size: number): bigint | null {
    const hdrOff = this.reserveRecord(size);
    if (hdrOff < 0) return null;
    const start = hdrOff + BPF_RINGBUF_HDR_SZ;
    // A crossing sample is edited in a scratch copy of the ring's current
    // bytes (reserved memory is not cleared), written back at commit.
    const wraps = start + size > this.data.length;
    const scratch = wraps ? this.readWrapped(start, size) : null;
    const addr = this.env.space.mapRegion(
      "ringbuf",
      scratch ?? this.data.subarray(start, start + size),
      { name: `${this.attr.name} sample` },
    );
    this.reserved.set(addr, { hdrOff, size, scratch });
    return addr;
  }

  /** `bpf_ringbuf_commit()`: clears BUSY (sets DISCARD), maybe wakes the consumer. */
  private commit(sample: bigint, flags: number, discard: boolean): void {
    const r = this.reserved.get(sample);
    if (r === undefined) {
      throw new MapError(
        this.attr.name,
        `0x${sample.toString(16)} is not a reserved sample`,
      );
    }
    this.reserved.delete(sample);
    if (r.scratch !== null) this.writeWrapped(r.hdrOff + 8, r.scratch);
    this.env.space.unmapRegion(sample);
    this.commitHeader(r.hdrOff, flags, discard);
  }

  /** The header half of `bpf_ringbuf_commit()`. */
  private commitHeader(hdrOff: number, flags: number, discard: boolean): void {
    let len = (this.headerLen(hdrOff) ^ BPF_RINGBUF_BUSY_BIT) >>> 0;
    if (discard) len = (len | BPF_RINGBUF_DISCARD_BIT) >>> 0;
    this.view.setUint32(hdrOff, len, true);
    const consPos = this.consumerPos & this.mask;
    if (flags & BPF_RB_FORCE_WAKEUP) this.wakeups++;
    else if (consPos === hdrOff && !(flags & BPF_RB_NO_WAKEUP)) {
      this.wakeups++;
    }
  }

  /** Writes across the end of the data area as the double mapping would. */
  private writeWrapped(off: number, bytes: Uint8Array): void {
    const first = Math.min(bytes.length, this.data.length - off);
    this.data.set(bytes.subarray(0, first), off);
    if (first < bytes.length) this.data.set(bytes.subarray(first), 0);
  }

  /** Reads across the end of the data area as the double mapping would. */
  private readWrapped(off: number, len: number): Uint8Array {
    const first = Math.min(len, this.data.length - off);
    const out = new Uint8Array(len);
    out.set(this.data.subarray(off, off + first));
    if (first < len) out.set(this.data.subarray(0, len - first), first);
    return out;
  }

  /** Whether `sample` is a record reserved here and not yet committed. */
  isReserved(sample: bigint): boolean {
    return this.reserved.has(sample);
  }

  /** `bpf_ringbuf_submit()`. */
  submit(sample: bigint, flags = 0): void {
    this.commit(sample, flags, false);
  }

  /** `bpf_ringbuf_discard()`. */
  discard(sample: bigint, flags = 0): void {
    this.commit(sample, flags, true);
  }

  /** `bpf_ringbuf_output()`: 0, -EINVAL (flags) or -EAGAIN (no room). */
  output(bytes: Uint8Array, flags = 0): number {
    if (flags & ~(BPF_RB_NO_WAKEUP | BPF_RB_FORCE_WAKEUP)) return -EINVAL;
    // The copy happens inside the helper: no program-visible sample region.
    const hdrOff = this.reserveRecord(bytes.length);
    if (hdrOff < 0) return -EAGAIN;
    this.writeWrapped(hdrOff + BPF_RINGBUF_HDR_SZ, bytes);
    this.commitHeader(hdrOff, flags, false);
    return 0;
  }

  /** `bpf_ringbuf_query()`. */
  query(flags: number): bigint {
    switch (flags) {
      case BPF_RB_AVAIL_DATA:
        return BigInt(this.producerPos - this.consumerPos);
      case BPF_RB_RING_SIZE:
        return BigInt(this.mask + 1);
      case BPF_RB_CONS_POS:
        return BigInt(this.consumerPos);
      case BPF_RB_PROD_POS:
        return BigInt(this.producerPos);
      default:
        return 0n;
    }
  }

  /**
   * libbpf's `ringbuf_process_ring()`: the committed samples from the
   * consumer position up to the first busy record; discarded ones are
   * skipped. Advances `consumer_pos`.
   */
  consume(): Uint8Array[] {
    const out: Uint8Array[] = [];
    let cons = this.consumerPos;
    while (cons < this.producerPos) {
      const off = cons & this.mask;
      const len = this.headerLen(off);
      if (len & BPF_RINGBUF_BUSY_BIT) break;
      const size = len & ~BPF_RINGBUF_DISCARD_BIT;
      if (!(len & BPF_RINGBUF_DISCARD_BIT)) {
        out.push(this.readWrapped(off + BPF_RINGBUF_HDR_SZ, size));
      }
      cons += (size + BPF_RINGBUF_HDR_SZ + 7) & ~7;
      this.consumerPos = cons;
    }
    return out;
  }

  /** Ring buffers have no elements for programs to look up. */
  lookup(_key: Uint8Array, _cpu: number): bigint | null {
    return null;
  }
  /** `-ENOTSUPP`. */
  update(_k: Uint8Array, _v: Uint8Array, _f: number, _c: number): number {
    return -ENOTSUPP;
  }
  /** `-ENOTSUPP`. */
  delete(_key: Uint8Array, _cpu: number): number {
    return -ENOTSUPP;
  }
  /** `-ENOTSUPP`. */
  getNextKey(_key: Uint8Array | null): Uint8Array | number {
    return -ENOTSUPP;
  }
  /** `-ENOTSUPP`. */
  override lookupValueCopy(_key: Uint8Array, _flags = 0): Uint8Array | number {
    return -ENOTSUPP;
  }
  /** `-ENOTSUPP`. */
  override updateFromSyscall(
    _key: Uint8Array,
    _value: Uint8Array,
    _flags: number,
    _cpu = 0,
  ): number {
    return -ENOTSUPP;
  }
  /** `-ENOTSUPP`. */
  override deleteFromSyscall(_key: Uint8Array): number {
    return -ENOTSUPP;
  }
  /** Never called: {@link lookupValueCopy} is overridden. */
  protected copyOut(_key: Uint8Array): Uint8Array | null {
    return null;
  }
  /** Never called: {@link updateFromSyscall} is overridden. */
  protected updateSys(
    _k: Uint8Array,
    _v: Uint8Array,
    _f: number,
    _c: number,
  ): number {
    return -ENOTSUPP;
  }

  /** Unmaps samples still reserved. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (const addr of this.reserved.keys()) this.env.space.unmapRegion(addr);
    this.reserved.clear();
  }
}

/** `ringbuf_map_alloc()`'s checks: 0 or a negative errno. */
export function ringbufAllocCheck(attr: MapAttr): number {
  const n = attr.maxEntries;
  const pow2 = n > 0 && (n & (n - 1)) === 0;
  if ((attr.flags & ~BPF_F_NUMA_NODE) !== 0) return -EINVAL;
  if (attr.keySize !== 0 || attr.valueSize !== 0) return -EINVAL;
  if (!pow2 || n % 4096 !== 0) return -EINVAL;
  return 0;
}
