/**
 * `BPF_MAP_TYPE_ARRAY` and `BPF_MAP_TYPE_PERCPU_ARRAY` (kernel/bpf/arraymap.c).
 *
 * Values are preallocated and never freed: the whole array is one
 * `map_value` region (one per CPU for the per-CPU flavour) laid out as the
 * kernel lays it out, `round_up(value_size, 8)` bytes per element. So a
 * pointer from `bpf_map_lookup_elem` stays valid for the map's lifetime, and
 * overrunning one element reads the next, as on real hardware; the verifier,
 * not the memory, keeps programs inside their element.
 * @module
 */
import { MAX_REGION_SIZE } from "../../exec/memory.ts";
import type { BtfRecord } from "../../btf/field_types.ts";
import { MapBase } from "./base.ts";
import {
  arrayIndex,
  BPF_EXIST,
  BPF_F_LOCK,
  BPF_NOEXIST,
  checkCpu,
  checkKey,
  checkValue,
  E2BIG,
  EEXIST,
  EINVAL,
  ENOENT,
  ENOMEM,
  type MapAttr,
  type MapEnv,
  MapError,
  progAccess,
  roundUp8,
  u32Key,
} from "./map.ts";
import { bpfObjFreeFields, copyMapValue } from "./special_fields.ts";
import { packPercpu, unpackPercpu } from "./percpu.ts";

/** An array map; `percpu` selects `BPF_MAP_TYPE_PERCPU_ARRAY`. */
export class ArrayMap extends MapBase {
  /** `round_up(value_size, 8)`. */
  readonly elemSize: number;
  /** True for `BPF_MAP_TYPE_PERCPU_ARRAY`. */
  readonly percpu: boolean;
  /** Backing bytes: one array of all elements per copy (per CPU, or one). */
  private readonly copies: Uint8Array[];
  /** Address of element 0 of each copy. */
  private readonly bases: bigint[];

  /** Allocates and zero-fills every element (`array_map_alloc()`). */
  constructor(
    attr: MapAttr,
    record: BtfRecord | null,
    env: MapEnv,
    percpu: boolean,
  ) {
    const elemSize = roundUp8(attr.valueSize);
    super(
      attr,
      record,
      env,
      percpu ? elemSize * env.nrCpus : attr.valueSize,
    );
    this.elemSize = elemSize;
    this.percpu = percpu;
    const total = elemSize * attr.maxEntries;
    if (total > MAX_REGION_SIZE) {
      throw new MapError(
        attr.name,
        `${total} bytes of values do not fit one region`,
        ENOMEM,
      );
    }
    const n = percpu ? env.nrCpus : 1;
    this.copies = [];
    this.bases = [];
    for (let c = 0; c < n; c++) {
      const bytes = new Uint8Array(total);
      this.copies.push(bytes);
      this.bases.push(
        env.space.mapRegion("map_value", bytes, {
          name: percpu ? `${attr.name}[cpu${c}]` : attr.name,
          ...progAccess(attr.flags),
        }),
      );
    }
  }

  /** The bytes of element `index` in copy `c` (a view, not a copy). */
  elementBytes(index: number, c = 0): Uint8Array {
    const off = index * this.elemSize;
    return this.copies[c].subarray(off, off + this.elemSize);
  }

  /** `array_map_lookup_elem()` / `percpu_array_map_lookup_elem()`. */
  lookup(key: Uint8Array, cpu: number): bigint | null {
    checkKey(this.attr, key);
    const index = arrayIndex(key);
    if (index >= this.attr.maxEntries) return null;
    const c = this.percpu ? cpu : 0;
    if (this.percpu) checkCpu(this.attr, this.env, cpu);
    return this.bases[c] + BigInt(index * this.elemSize);
  }

  /** `array_map_update_elem()`: overwrite in place, then free the old fields. */
  update(
    key: Uint8Array,
    value: Uint8Array,
    flags: number,
    cpu: number,
  ): number {
    checkKey(this.attr, key);
    checkValue(this.attr, value, this.attr.valueSize);
    if (this.percpu) checkCpu(this.attr, this.env, cpu);
    const index = arrayIndex(key);
    if ((flags & ~BPF_F_LOCK) > BPF_EXIST) return -EINVAL;
    if (index >= this.attr.maxEntries) return -E2BIG;
    if (flags & BPF_NOEXIST) return -EEXIST;
    if ((flags & BPF_F_LOCK) && !this.hasSpinLock()) return -EINVAL;
    // BPF_F_LOCK (copy_map_value_locked) copies the same bytes: the
    // simulator runs one copy at a time, so the lock is never contended.
    this.overwrite(index, this.percpu ? cpu : 0, value, this.attr.valueSize);
    return 0;
  }

  /** Copies `size` bytes of `src` into one element and frees its old fields. */
  private overwrite(index: number, c: number, src: Uint8Array, size: number) {
    const dst = this.elementBytes(index, c);
    copyMapValue(this.record, dst, src, size);
    bpfObjFreeFields(
      this.record,
      dst,
      this.bases[c] + BigInt(index * this.elemSize),
      this.env.fieldFreer,
    );
  }

  /** `bpf_map_update_value()`; per-CPU arrays take every CPU's value (`bpf_percpu_array_update()`). */
  protected updateSys(
    key: Uint8Array,
    value: Uint8Array,
    flags: number,
    cpu: number,
  ): number {
    if (!this.percpu) return this.update(key, value, flags, cpu);
    const index = arrayIndex(key);
    if (flags > BPF_EXIST) return -EINVAL;
    if (index >= this.attr.maxEntries) return -E2BIG;
    if (flags & BPF_NOEXIST) return -EEXIST;
    const parts = unpackPercpu(value, this.elemSize, this.env.nrCpus);
    for (let c = 0; c < this.env.nrCpus; c++) {
      this.overwrite(index, c, parts[c], this.elemSize); // copy_map_value_long
    }
    return 0;
  }

  /** Array elements cannot be deleted. */
  delete(key: Uint8Array, _cpu: number): number {
    checkKey(this.attr, key);
    return -EINVAL;
  }

  /** `array_map_get_next_key()`: an out-of-range key restarts at 0. */
  getNextKey(key: Uint8Array | null): Uint8Array | number {
    if (key !== null) checkKey(this.attr, key);
    const index = key === null ? this.attr.maxEntries : arrayIndex(key);
    if (index >= this.attr.maxEntries) return u32Key(0);
    if (index === this.attr.maxEntries - 1) return -ENOENT;
    return u32Key(index + 1);
  }

  /** `bpf_map_copy_value()`: special fields read as zero. */
  protected copyOut(key: Uint8Array): Uint8Array | null {
    const index = arrayIndex(key);
    if (index >= this.attr.maxEntries) return null;
    if (!this.percpu) {
      return copyForUser(
        this.record,
        this.elementBytes(index),
        this.attr.valueSize,
      );
    }
    return packPercpu(
      Array.from(
        this.copies,
        (_, c) =>
          copyForUser(this.record, this.elementBytes(index, c), this.elemSize),
      ),
      this.elemSize,
    );
  }

  /** `array_map_free()`: frees every element's fields, then unmaps the values. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    if (this.record !== null) {
      for (let c = 0; c < this.copies.length; c++) {
        for (let i = 0; i < this.attr.maxEntries; i++) {
          bpfObjFreeFields(
            this.record,
            this.elementBytes(i, c),
            this.bases[c] + BigInt(i * this.elemSize),
            this.env.fieldFreer,
          );
        }
      }
    }
    for (const base of this.bases) this.env.space.unmapRegion(base);
  }
}

/** `copy_map_value()` into a fresh buffer, then `check_and_init_map_value()`. */
export function copyForUser(
  rec: BtfRecord | null,
  src: Uint8Array,
  size: number,
): Uint8Array {
  const out = new Uint8Array(size);
  copyMapValue(rec, out, src, size);
  return out;
}
