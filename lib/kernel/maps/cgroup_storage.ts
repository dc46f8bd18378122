/**
 * The cgroup storage maps (kernel/bpf/local_storage.c):
 * `BPF_MAP_TYPE_CGROUP_STORAGE` and `BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE`.
 *
 * Such a map holds one storage per (cgroup, attach type) a program using it
 * is attached to: attaching allocates it and links it into the map
 * (`bpf_cgroup_storage_link()`), keyed by `struct bpf_cgroup_storage_key`
 * (16 bytes: cgroup inode id, attach type) or, with an 8-byte key, by the
 * cgroup inode id alone. bpfsim attaches no program to a cgroup, so every
 * map stays empty: user space finds no key (`-ENOENT` from lookup, update
 * and get_next_key), delete is always `-EINVAL`.
 *
 * `BPF_PROG_TEST_RUN` gives the program storages of its own
 * (`bpf_test_run()` → `bpf_cgroup_storage_alloc()`): one zeroed storage
 * per storage type the program uses, for the whole run (every repetition
 * sees what the previous one left), never linked into the map and freed
 * after the run — {@link CgroupRunStorage}. A per-CPU storage has a copy
 * per CPU of `round_up(value_size, 8)` bytes.
 * @module
 */
import type { BtfRecord } from "../../btf/field_types.ts";
import { MAP_TYPE } from "../../uapi/bpf.ts";
import { MapBase } from "./base.ts";
import {
  BPF_ANY,
  BPF_EXIST,
  BPF_F_ACCESS_MASK,
  BPF_F_LOCK,
  BPF_F_NUMA_NODE,
  BPF_F_RDONLY_PROG,
  BPF_F_WRONLY_PROG,
  type MapAttr,
  type MapEnv,
  progAccess,
  roundUp8,
} from "./map.ts";
import { E2BIG, EINVAL, ENOENT } from "../../uapi/errno.ts";
import { BPF_LOCAL_STORAGE_MAX_VALUE_SIZE } from "./local_storage.ts";

/** The cgroup storage map types. */
export const CGROUP_STORAGE_MAP_TYPES: readonly number[] = [
  MAP_TYPE.cgroup_storage,
  MAP_TYPE.percpu_cgroup_storage,
];
/** `sizeof(struct bpf_cgroup_storage_key)`: u64 inode id, u32 attach type, padding. */
export const CGROUP_STORAGE_KEY_SIZE = 16;
/** `PCPU_MIN_UNIT_SIZE`: bound of a per-CPU storage's value. */
const PCPU_MIN_UNIT_SIZE = 32768;
/** `LOCAL_STORAGE_CREATE_FLAG_MASK` of local_storage.c. */
const CREATE_FLAG_MASK = BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK;

/** `enum bpf_cgroup_storage_type`: which storage of a program a map names. */
export type CgroupStorageType = "shared" | "percpu";

/** `cgroup_storage_type()`: the storage type of a cgroup storage map type. */
export function cgroupStorageType(mapType: number): CgroupStorageType {
  return mapType === MAP_TYPE.percpu_cgroup_storage ? "percpu" : "shared";
}

/**
 * Mirrors the checks of `cgroup_storage_map_alloc()`, in its order: a
 * 16- or 8-byte key, a value of 1 to `BPF_LOCAL_STORAGE_MAX_VALUE_SIZE`
 * bytes (per-CPU: at most `PCPU_MIN_UNIT_SIZE`), only the NUMA and access
 * flags (not both `_PROG` ones), and `max_entries` 0.
 */
export function cgroupStorageAllocCheck(a: MapAttr): number {
  let max = BPF_LOCAL_STORAGE_MAX_VALUE_SIZE;
  if (a.type === MAP_TYPE.percpu_cgroup_storage) {
    max = Math.min(max, PCPU_MIN_UNIT_SIZE);
  }
  if (a.keySize !== CGROUP_STORAGE_KEY_SIZE && a.keySize !== 8) return -EINVAL;
  if (a.valueSize === 0) return -EINVAL;
  if (a.valueSize > max) return -E2BIG;
  const bothProg = BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG;
  if ((a.flags & ~CREATE_FLAG_MASK) || (a.flags & bothProg) === bothProg) {
    return -EINVAL;
  }
  if (a.maxEntries !== 0) return -EINVAL;
  return 0;
}

/**
 * A cgroup storage map with no storage linked (no cgroup attachment is
 * simulated): see the module comment.
 */
export class CgroupStorageMap extends MapBase {
  /** Whether this is the per-CPU type. */
  readonly storageType: CgroupStorageType;

  /** Creates the (empty) map; `attr` passed {@link cgroupStorageAllocCheck}. */
  constructor(attr: MapAttr, record: BtfRecord | null, env: MapEnv) {
    const storageType = cgroupStorageType(attr.type);
    super(
      attr,
      record,
      env,
      storageType === "percpu"
        ? roundUp8(attr.valueSize) * env.nrCpus
        : attr.valueSize,
    );
    this.storageType = storageType;
  }

  /** `cgroup_storage_lookup_elem()`: no storage is linked. */
  lookup(_key: Uint8Array, _cpu: number): bigint | null {
    return null;
  }

  /** `cgroup_storage_update_elem()`: flags checked, then no storage found. */
  update(
    _key: Uint8Array,
    _value: Uint8Array,
    flags: number,
    _cpu: number,
  ): number {
    return this.updateChecks(flags);
  }

  /** `cgroup_storage_delete_elem()`: storages go only with their cgroup. */
  delete(_key: Uint8Array, _cpu: number): number {
    return -EINVAL;
  }

  /** `cgroup_storage_get_next_key()`: the map's list is empty. */
  getNextKey(_key: Uint8Array | null): Uint8Array | number {
    return -ENOENT;
  }

  /** `map_free`: nothing is linked, so nothing to free. */
  destroy(): void {
    this.destroyed = true;
  }

  /** No storage to copy (`bpf_percpu_cgroup_storage_copy()` alike). */
  protected copyOut(_key: Uint8Array): Uint8Array | null {
    return null;
  }

  /**
   * `bpf_percpu_cgroup_storage_update()` (per-CPU) or
   * `cgroup_storage_update_elem()`: the flag checks, then -ENOENT.
   */
  protected updateSys(
    _key: Uint8Array,
    _value: Uint8Array,
    flags: number,
    _cpu: number,
  ): number {
    return this.updateChecks(flags);
  }

  /** The flag checks of an update from user space: 0 or a negative errno. */
  private updateChecks(flags: number): number {
    if (this.storageType === "percpu") {
      if (flags !== BPF_ANY && flags !== BPF_EXIST) return -EINVAL;
      return -ENOENT;
    }
    if (flags & ~(BPF_F_LOCK | BPF_EXIST)) return -EINVAL;
    if ((flags & BPF_F_LOCK) && !this.hasSpinLock()) return -EINVAL;
    return -ENOENT;
  }
}

/**
 * The storage `bpf_cgroup_storage_alloc()` gives one run of a program for
 * `map`'s storage type: zeroed `map_value` memory (one copy per CPU for
 * the per-CPU type), unlinked, freed with {@link free}.
 */
export class CgroupRunStorage {
  /** The map whose value layout the storage has. */
  readonly map: CgroupStorageMap;
  /** Address of the value, per CPU (one entry, used by every CPU, when shared). */
  private readonly addresses: bigint[] = [];
  private readonly env: MapEnv;

  /** Allocates the storage in the map's address space. */
  constructor(map: CgroupStorageMap) {
    this.map = map;
    this.env = map.env;
    const copies = map.storageType === "percpu" ? this.env.nrCpus : 1;
    const size = map.storageType === "percpu"
      ? roundUp8(map.attr.valueSize)
      : map.attr.valueSize;
    for (let cpu = 0; cpu < copies; cpu++) {
      this.addresses.push(
        this.env.space.mapRegion("map_value", new Uint8Array(size), {
          name: `${map.attr.name}[test run${copies > 1 ? `, cpu${cpu}` : ""}]`,
          ...progAccess(map.attr.flags),
        }),
      );
    }
  }

  /**
   * What `bpf_get_local_storage()` returns on `cpu`: the shared value, or
   * `this_cpu_ptr()` of the per-CPU one.
   */
  address(cpu: number): bigint {
    return this.addresses[this.map.storageType === "percpu" ? cpu : 0];
  }

  /** `bpf_cgroup_storage_free()`: the memory goes after an RCU grace period. */
  free(): void {
    for (const address of this.addresses) {
      this.env.deferFree(() => this.env.space.unmapRegion(address));
    }
    this.addresses.length = 0;
  }
}
