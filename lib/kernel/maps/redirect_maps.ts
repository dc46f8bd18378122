/**
 * The XDP redirect maps: `BPF_MAP_TYPE_DEVMAP` and `DEVMAP_HASH`
 * (kernel/bpf/devmap.c), `CPUMAP` (kernel/bpf/cpumap.c) and `XSKMAP`
 * (net/xdp/xskmap.c). `bpf_redirect_map()` looks a target up in them.
 *
 * What user space can put in them is what the simulated host has: a device
 * entry (`struct bpf_devmap_val`: ifindex, optional program fd) for the
 * only device, `lo` (ifindex 1); a CPU entry (`struct bpf_cpumap_val`:
 * qsize, optional program fd) for a simulated CPU. Program fds do not exist
 * here, so an entry naming one fails as the kernel fails a bad fd (devmap
 * -EINVAL, cpumap -ENOMEM); AF_XDP sockets do not exist either, so every
 * XSKMAP update fails as `sockfd_lookup()` of a closed fd does (-EBADF).
 * An entry's value, as lookups return it, carries the program id 0.
 * @module
 */
import { MapBase } from "./base.ts";
import {
  arrayIndex,
  BPF_EXIST,
  BPF_F_NUMA_NODE,
  BPF_F_RDONLY,
  BPF_F_WRONLY,
  BPF_NOEXIST,
  checkKey,
  type MapAttr,
  type MapEnv,
  MapError,
  u32Key,
} from "./map.ts";
import { MAP_TYPE } from "../../uapi/bpf.ts";
import {
  E2BIG,
  EBADF,
  EEXIST,
  EINVAL,
  ENODEV,
  ENOENT,
  ENOMEM,
  EOPNOTSUPP,
  EOVERFLOW,
} from "../../uapi/errno.ts";

/** `NR_CPUS` of the 6.18 kernel the oracle runs (Debian: 8192). */
export const NR_CPUS = 8192;
/** The simulated host's only network device, `lo`. */
const LOOPBACK_IFINDEX = 1;
/** `cpu_map_update_elem()`'s sanity limit on `qsize`. */
const CPUMAP_MAX_QSIZE = 16384;

const M = MAP_TYPE;
/** The map types of this module. */
export const REDIRECT_MAP_TYPES: readonly number[] = [
  M.devmap,
  M.devmap_hash,
  M.cpumap,
  M.xskmap,
];

/**
 * `dev_map_alloc_check()`, the checks of `cpu_map_alloc()` and of
 * `xsk_map_alloc()`: 0 or a negative errno.
 */
export function redirectMapAllocCheck(a: MapAttr): number {
  const keyOk = a.maxEntries !== 0 && a.keySize === 4;
  switch (a.type) {
    case M.devmap:
    case M.devmap_hash: {
      const mask = BPF_F_NUMA_NODE | BPF_F_RDONLY | BPF_F_WRONLY;
      if (
        !keyOk || (a.valueSize !== 4 && a.valueSize !== 8) || (a.flags & ~mask)
      ) return -EINVAL;
      // roundup_pow_of_two() of the bucket count must not overflow
      if (a.type === M.devmap_hash && a.maxEntries > 2 ** 31) return -EINVAL;
      return 0;
    }
    case M.cpumap:
      if (
        !keyOk || (a.valueSize !== 4 && a.valueSize !== 8) ||
        (a.flags & ~BPF_F_NUMA_NODE)
      ) return -EINVAL;
      return a.maxEntries > NR_CPUS ? -E2BIG : 0;
    default: { // xskmap
      const mask = BPF_F_NUMA_NODE | BPF_F_RDONLY | BPF_F_WRONLY;
      return !keyOk || a.valueSize !== 4 || (a.flags & ~mask) ? -EINVAL : 0;
    }
  }
}

/** One filled slot: its value as lookups return it, mapped for programs. */
interface Entry {
  readonly value: Uint8Array;
  readonly address: bigint;
}

/** A devmap, devmap_hash, cpumap or xskmap. */
export class RedirectMap extends MapBase {
  private readonly entries = new Map<number, Entry>();
  /**
   * DEVMAP_HASH: keys per bucket of `roundup_pow_of_two(max_entries)`,
   * newest first (`hlist_add_head_rcu()`); buckets are made as they fill.
   */
  private readonly buckets: number[][] = [];

  /** `dev_map_alloc()`, `cpu_map_alloc()`, `xsk_map_alloc()`: every slot empty. */
  constructor(attr: MapAttr, env: MapEnv) {
    super(attr, null, env, attr.valueSize);
  }

  /** `roundup_pow_of_two(max_entries)`: DEVMAP_HASH's bucket count. */
  private get nBuckets(): number {
    return 2 ** Math.ceil(Math.log2(this.attr.maxEntries));
  }

  /**
   * The lookup `bpf_redirect_map()` makes (`__dev_map_lookup_elem()`,
   * `__dev_map_hash_lookup_elem()`, `__cpu_map_lookup_elem()`,
   * `__xsk_map_lookup_elem()`) with the key's low 32 bits: is there a target?
   */
  hasTarget(key: number): boolean {
    return this.entries.has(key >>> 0);
  }

  /** `bpf_map_lookup_elem()` from a program: the entry's value, read-only. */
  lookup(key: Uint8Array, _cpu?: number): bigint | null {
    checkKey(this.attr, key);
    return this.entries.get(arrayIndex(key))?.address ?? null;
  }

  /** Programs cannot update these maps: the verifier refuses the call. */
  update(): number {
    throw new MapError(
      this.attr.name,
      "a program cannot update a redirect map",
    );
  }

  /**
   * `dev_map_delete_elem()`, `cpu_map_delete_elem()`,
   * `xsk_map_delete_elem()`: -EINVAL past the end, else 0;
   * `dev_map_hash_delete_elem()`: -ENOENT when absent.
   */
  delete(key: Uint8Array): number {
    checkKey(this.attr, key);
    const k = arrayIndex(key);
    if (this.attr.type === M.devmap_hash) {
      if (!this.entries.has(k)) return -ENOENT;
    } else if (k >= this.attr.maxEntries) return -EINVAL;
    this.replace(k, undefined);
    return 0;
  }

  /** Array order for all but DEVMAP_HASH, which walks its buckets. */
  getNextKey(key: Uint8Array | null): Uint8Array | number {
    if (this.attr.type === M.devmap_hash) return this.hashNextKey(key);
    const index = key === null ? 0xffffffff : arrayIndex(key);
    if (index >= this.attr.maxEntries) return u32Key(0);
    if (index === this.attr.maxEntries - 1) return -ENOENT;
    return u32Key(index + 1);
  }

  /** `dev_map_hash_get_next_key()`: an absent key restarts from the first bucket. */
  private hashNextKey(key: Uint8Array | null): Uint8Array | number {
    let from = 0;
    if (key !== null && this.entries.has(arrayIndex(key))) {
      const k = arrayIndex(key);
      const bucket = this.bucketOf(k);
      const next = bucket[bucket.indexOf(k) + 1];
      if (next !== undefined) return u32Key(next);
      from = (k & (this.nBuckets - 1)) + 1;
    }
    for (let i = from; i < this.buckets.length; i++) {
      const first = this.buckets[i]?.[0];
      if (first !== undefined) return u32Key(first);
    }
    return -ENOENT;
  }

  private bucketOf(k: number): number[] {
    const i = k & (this.nBuckets - 1);
    return (this.buckets[i] ??= []);
  }

  /**
   * `BPF_MAP_LOOKUP_ELEM`: the value, or -ENOENT; an XSKMAP refuses with
   * -EOPNOTSUPP (`xsk_map_lookup_elem_sys_only()`).
   */
  override lookupValueCopy(key: Uint8Array, flags = 0): Uint8Array | number {
    const r = super.lookupValueCopy(key, flags);
    return this.attr.type === M.xskmap && r === -ENOENT ? -EOPNOTSUPP : r;
  }

  /** See {@link lookupValueCopy}. */
  protected copyOut(key: Uint8Array): Uint8Array | null {
    return this.entries.get(arrayIndex(key))?.value.slice() ?? null;
  }

  /** The update of each map type, from user space. */
  protected updateSys(
    key: Uint8Array,
    value: Uint8Array,
    flags: number,
  ): number {
    const k = arrayIndex(key);
    const v = new DataView(value.buffer, value.byteOffset, value.length);
    const first = v.getUint32(0, true);
    const progFd = value.length === 8 ? v.getInt32(4, true) : 0;
    switch (this.attr.type) {
      case M.devmap:
        return this.devmapUpdate(k, first, progFd, flags);
      case M.devmap_hash:
        return this.devmapHashUpdate(k, first, progFd, flags);
      case M.cpumap:
        return this.cpumapUpdate(k, first, progFd, flags);
      default: // xsk_map_update_elem(): sockfd_lookup() finds no socket
        if (flags > BPF_EXIST) return -EINVAL;
        return k >= this.attr.maxEntries ? -E2BIG : -EBADF;
    }
  }

  /** `__dev_map_update_elem()`: ifindex 0 empties the slot. */
  private devmapUpdate(k: number, ifindex: number, fd: number, flags: number) {
    if (flags > BPF_EXIST) return -EINVAL;
    if (k >= this.attr.maxEntries) return -E2BIG;
    if (flags === BPF_NOEXIST) return -EEXIST;
    if (ifindex === 0) {
      if (fd > 0) return -EINVAL;
      this.replace(k, undefined);
      return 0;
    }
    const err = devAllocNodeCheck(ifindex, fd);
    if (err) return err;
    this.replace(k, ifindex);
    return 0;
  }

  /** `__dev_map_hash_update_elem()`. */
  private devmapHashUpdate(k: number, ifindex: number, fd: number, f: number) {
    if (f > BPF_EXIST || ifindex === 0) return -EINVAL;
    const old = this.entries.has(k);
    if (old && (f & BPF_NOEXIST)) return -EEXIST;
    const err = devAllocNodeCheck(ifindex, fd);
    if (err) return err;
    if (!old && this.entries.size >= this.attr.maxEntries) return -E2BIG;
    this.replace(k, ifindex);
    return 0;
  }

  /** `cpu_map_update_elem()`: qsize 0 empties the slot. */
  private cpumapUpdate(k: number, qsize: number, fd: number, flags: number) {
    if (flags > BPF_EXIST) return -EINVAL;
    if (k >= this.attr.maxEntries) return -E2BIG;
    if (flags === BPF_NOEXIST) return -EEXIST;
    if (qsize > CPUMAP_MAX_QSIZE) return -EOVERFLOW;
    if (k >= this.env.nrCpus) return -ENODEV; // !cpu_possible(key_cpu)
    if (qsize === 0) {
      this.replace(k, undefined);
      return 0;
    }
    // __cpu_map_entry_alloc() fails (NULL) when the program fd does not load
    if (fd > 0) return -ENOMEM;
    this.replace(k, qsize);
    return 0;
  }

  /**
   * Puts `first` (ifindex or qsize; the program id stays 0) at `k`, or
   * empties `k`; the old value's region goes after a grace period
   * (`call_rcu()`), as the kernel frees the old entry.
   */
  private replace(k: number, first: number | undefined): void {
    const old = this.entries.get(k);
    if (old !== undefined) {
      this.entries.delete(k);
      this.env.deferFree(() => this.env.space.unmapRegion(old.address));
    }
    if (this.attr.type === M.devmap_hash) {
      const bucket = this.bucketOf(k);
      if (old !== undefined) bucket.splice(bucket.indexOf(k), 1);
      if (first !== undefined) bucket.unshift(k);
    }
    if (first === undefined) return;
    const value = new Uint8Array(this.attr.valueSize);
    new DataView(value.buffer).setUint32(0, first, true);
    const address = this.env.space.mapRegion("map_value", value, {
      name: `${this.attr.name}[${k}]`,
      write: false, // dev_map_init_map() makes devmaps BPF_F_RDONLY_PROG
    });
    this.entries.set(k, { value, address });
  }

  /** `map_free`: every entry's region goes. */
  destroy(): void {
    for (const { address } of this.entries.values()) {
      this.env.space.unmapRegion(address);
    }
    this.entries.clear();
    this.destroyed = true;
  }
}

/**
 * `__dev_map_alloc_node()`: the device must exist (`dev_get_by_index()`:
 * only `lo`), and a program fd would have to name an XDP devmap program —
 * no fd does here. Both failures are -EINVAL.
 */
function devAllocNodeCheck(ifindex: number, progFd: number): number {
  if (ifindex !== LOOPBACK_IFINDEX) return -EINVAL;
  return progFd > 0 ? -EINVAL : 0;
}
