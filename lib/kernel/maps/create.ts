/**
 * `BPF_MAP_CREATE`: attribute checks with the kernel's errnos
 * (`map_create()`, `array_map_alloc_check()`, `htab_map_alloc_check()`,
 * `ringbuf_map_alloc()`), and creation from an object's map definition the
 * way libbpf does it — BTF special fields via `map_check_btf()`, global
 * data written with `bpf_map_update_elem()` and `.rodata` / `.kconfig`
 * frozen (`bpf_object__populate_internal_map()`).
 * @module
 */
import type { AddressSpace } from "../../exec/memory.ts";
import type { Btf } from "../../btf/btf.ts";
import { BtfError } from "../../btf/errors.ts";
import type { BtfRecord } from "../../btf/field_types.ts";
import { mapCheckBtfFields, parseStructMetas } from "../../btf/struct_meta.ts";
import type { BpfMapDef } from "../../elf/maps.ts";
import { MAP_TYPE } from "../../uapi/bpf.ts";
import { ArrayMap } from "./array.ts";
import { HashMap } from "./hash.ts";
import {
  BPF_ANY,
  BPF_F_ACCESS_MASK,
  BPF_F_INNER_MAP,
  BPF_F_MMAPABLE,
  BPF_F_NO_COMMON_LRU,
  BPF_F_NO_PREALLOC,
  BPF_F_NUMA_NODE,
  BPF_F_PRESERVE_ELEMS,
  BPF_F_RDONLY,
  BPF_F_RDONLY_PROG,
  BPF_F_WRONLY,
  BPF_F_WRONLY_PROG,
  BPF_F_ZERO_SEED,
  type BpfMap,
  E2BIG,
  EINVAL,
  ENOTSUPP,
  KMALLOC_MAX_SIZE,
  type MapAttr,
  type MapEnv,
  MapError,
  roundUp8,
  u32Key,
} from "./map.ts";
import { queueStackAllocCheck, QueueStackMap } from "./queue_stack.ts";
import { RingBuf, ringbufAllocCheck } from "./ringbuf.ts";
import {
  LOCAL_STORAGE_MAP_TYPES,
  localStorageAllocCheck,
  LocalStorageMap,
} from "./local_storage.ts";
import { UserRingBuf } from "./user_ringbuf.ts";
import { CgroupArrayMap, fdArrayAllocCheck } from "./cgroup_array.ts";
import {
  REDIRECT_MAP_TYPES,
  RedirectMap,
  redirectMapAllocCheck,
} from "./redirect_maps.ts";
import { type FieldFreer, unwiredFieldFreer } from "./special_fields.ts";
import { SOCK_MAP_TYPES, SockMap, sockMapAllocCheck } from "./sockmap.ts";
import { ReuseportArray, reuseportArrayAllocCheck } from "./reuseport_array.ts";
import {
  CGROUP_STORAGE_MAP_TYPES,
  cgroupStorageAllocCheck,
  CgroupStorageMap,
} from "./cgroup_storage.ts";

/** `PCPU_MIN_UNIT_SIZE`: the largest per-CPU value. */
export const PCPU_MIN_UNIT_SIZE = 32768;
/** `sizeof(struct htab_elem)` on x86-64 (measured: key+value limit is 4 MiB - 48). */
export const HTAB_ELEM_SIZE = 48;

const ARRAY_CREATE_FLAG_MASK = BPF_F_NUMA_NODE | BPF_F_MMAPABLE |
  BPF_F_ACCESS_MASK | BPF_F_PRESERVE_ELEMS | BPF_F_INNER_MAP;
const HTAB_CREATE_FLAG_MASK = BPF_F_NO_PREALLOC | BPF_F_NO_COMMON_LRU |
  BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK | BPF_F_ZERO_SEED;
const M = MAP_TYPE;
const ARRAYS: readonly number[] = [M.array, M.percpu_array];
const HASHES: readonly number[] = [
  M.hash,
  M.percpu_hash,
  M.lru_hash,
  M.lru_percpu_hash,
];

/** `bpf_map_flags_access_ok()`: not both RDONLY_PROG and WRONLY_PROG. */
function accessOk(flags: number): boolean {
  const both = BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG;
  return (flags & both) !== both;
}

/** `array_map_alloc_check()`. */
function arrayAllocCheck(a: MapAttr): number {
  const percpu = a.type === M.percpu_array;
  if (
    a.maxEntries === 0 || a.keySize !== 4 || a.valueSize === 0 ||
    (a.flags & ~ARRAY_CREATE_FLAG_MASK) !== 0 || !accessOk(a.flags) ||
    (percpu && (a.flags & BPF_F_NUMA_NODE) !== 0)
  ) return -EINVAL;
  if (a.type !== M.array && (a.flags & (BPF_F_MMAPABLE | BPF_F_INNER_MAP))) {
    return -EINVAL;
  }
  if (a.flags & BPF_F_PRESERVE_ELEMS) return -EINVAL;
  if (a.valueSize > 0x7fffffff) return -E2BIG;
  if (percpu && roundUp8(a.valueSize) > PCPU_MIN_UNIT_SIZE) return -E2BIG;
  return 0;
}

/** `htab_map_alloc_check()`. */
function htabAllocCheck(a: MapAttr): number {
  const percpu = a.type === M.percpu_hash || a.type === M.lru_percpu_hash;
  const lru = a.type === M.lru_hash || a.type === M.lru_percpu_hash;
  const prealloc = (a.flags & BPF_F_NO_PREALLOC) === 0;
  const percpuLru = (a.flags & BPF_F_NO_COMMON_LRU) !== 0;
  if ((a.flags & ~HTAB_CREATE_FLAG_MASK) !== 0 || !accessOk(a.flags)) {
    return -EINVAL;
  }
  if (!lru && percpuLru) return -EINVAL;
  if (lru && !prealloc) return -ENOTSUPP;
  if ((a.flags & BPF_F_NUMA_NODE) && (percpu || percpuLru)) return -EINVAL;
  if (a.maxEntries === 0 || a.keySize === 0 || a.valueSize === 0) {
    return -EINVAL;
  }
  if (a.keySize + a.valueSize >= KMALLOC_MAX_SIZE - HTAB_ELEM_SIZE) {
    return -E2BIG;
  }
  if (percpu && roundUp8(a.valueSize) > PCPU_MIN_UNIT_SIZE) return -E2BIG;
  return 0;
}

/**
 * The checks `BPF_MAP_CREATE` makes before allocating: 0, or the negative
 * errno the kernel returns. Throws {@link MapError} (errno 0) for map types
 * the simulator does not model.
 */
export function mapAllocCheck(attr: MapAttr): number {
  if (
    (attr.flags & (BPF_F_RDONLY | BPF_F_WRONLY)) ===
      (BPF_F_RDONLY | BPF_F_WRONLY)
  ) {
    return -EINVAL; // bpf_get_file_flag()
  }
  let err: number;
  if (ARRAYS.includes(attr.type)) err = arrayAllocCheck(attr);
  else if (HASHES.includes(attr.type)) err = htabAllocCheck(attr);
  else if (attr.type === M.ringbuf || attr.type === M.user_ringbuf) {
    err = ringbufAllocCheck(attr); // ringbuf_map_alloc() serves both
  } else if (LOCAL_STORAGE_MAP_TYPES.includes(attr.type)) {
    err = localStorageAllocCheck(attr);
  } else if (attr.type === M.queue || attr.type === M.stack) {
    err = queueStackAllocCheck(attr);
  } else if (attr.type === M.cgroup_array) {
    err = fdArrayAllocCheck(attr) || arrayAllocCheck(attr);
  } else if (REDIRECT_MAP_TYPES.includes(attr.type)) {
    err = redirectMapAllocCheck(attr);
  } else if (SOCK_MAP_TYPES.includes(attr.type)) {
    err = sockMapAllocCheck(attr);
  } else if (attr.type === M.reuseport_sockarray) {
    err = reuseportArrayAllocCheck(attr) || arrayAllocCheck(attr);
  } else if (CGROUP_STORAGE_MAP_TYPES.includes(attr.type)) {
    err = cgroupStorageAllocCheck(attr);
  } else throw new MapError(attr.name, `map type ${attr.type} is not modelled`);
  return err || objNameCheck(attr.name);
}

/**
 * `bpf_obj_name_cpy()`, run after the map is allocated: at most 15
 * characters, each alphanumeric, `_` or `.`.
 */
function objNameCheck(name: string): number {
  return /^[A-Za-z0-9_.]{0,15}$/.test(name) ? 0 : -EINVAL;
}

/** Options of {@link createMap}. */
export interface CreateMapOptions {
  /** CPUs (per-CPU copies, LRU local lists); default 1. */
  readonly nrCpus?: number;
  /** Releases what special fields own; default: throws if ever needed. */
  readonly fieldFreer?: FieldFreer;
  /** `call_rcu()`; default: runs the callback at once (no readers outlive a free). */
  readonly deferFree?: (cb: () => void) => void;
  /** The value type's special fields (from `map_check_btf()`), default none. */
  readonly record?: BtfRecord | null;
}

/**
 * `BPF_MAP_CREATE`: checks `attr` and allocates the map in `space`.
 * Throws {@link MapError} carrying the kernel's errno when it refuses.
 * @example
 * ```ts
 * const space = new AddressSpace();
 * const m = createMap(space, { name: "counts", type: 1, keySize: 4,
 *   valueSize: 8, maxEntries: 16, flags: 0 });
 * m.update(new Uint8Array(4), new Uint8Array(8), BPF_ANY, 0);
 * ```
 */
export function createMap(
  space: AddressSpace,
  attr: MapAttr,
  opts: CreateMapOptions = {},
): BpfMap {
  const err = mapAllocCheck(attr);
  if (err) throw new MapError(attr.name, "BPF_MAP_CREATE refused", -err);
  const env: MapEnv = {
    space,
    nrCpus: opts.nrCpus ?? 1,
    fieldFreer: opts.fieldFreer ?? unwiredFieldFreer(attr.name),
    deferFree: opts.deferFree ?? ((cb) => cb()),
  };
  const record = opts.record ?? null;
  switch (attr.type) {
    case M.array:
    case M.percpu_array:
      return new ArrayMap(attr, record, env, attr.type === M.percpu_array);
    case M.ringbuf:
      return new RingBuf(attr, env);
    case M.user_ringbuf:
      return new UserRingBuf(attr, env);
    case M.sk_storage:
    case M.task_storage:
    case M.cgrp_storage:
    case M.inode_storage:
      return new LocalStorageMap(attr, record, env);
    case M.queue:
    case M.stack:
      return new QueueStackMap(attr, env, attr.type === M.stack);
    case M.cgroup_array:
      return new CgroupArrayMap(attr, env);
    case M.devmap:
    case M.devmap_hash:
    case M.cpumap:
    case M.xskmap:
      return new RedirectMap(attr, env);
    case M.sockmap:
    case M.sockhash:
      return new SockMap(attr, env);
    case M.reuseport_sockarray:
      return new ReuseportArray(attr, env);
    case M.cgroup_storage:
    case M.percpu_cgroup_storage:
      return new CgroupStorageMap(attr, record, env);
    default:
      return new HashMap(attr, record, env, {
        percpu: attr.type === M.percpu_hash || attr.type === M.lru_percpu_hash,
        lru: attr.type === M.lru_hash || attr.type === M.lru_percpu_hash,
      });
  }
}

/**
 * The `MapAttr` libbpf passes for a map definition; `bpf_map_create()`
 * copies the name with `libbpf_strlcpy()`, so the kernel sees at most 15
 * characters of it.
 */
export function mapAttrFromDef(def: BpfMapDef): MapAttr {
  return {
    name: def.name.slice(0, 15),
    type: def.typeId,
    keySize: def.keySize,
    valueSize: def.valueSize,
    maxEntries: def.maxEntries,
    flags: def.flags,
  };
}

/**
 * Creates a map of an `ObjectFile` as libbpf would: special fields from the
 * object's BTF (`map_check_btf()`: a field not allowed in this map type
 * fails creation with the kernel's errno), then for global data the
 * initial value, and `.rodata` / `.kconfig` frozen.
 */
export function createMapFromDef(
  space: AddressSpace,
  def: BpfMapDef,
  btf: Btf | undefined,
  opts: Omit<CreateMapOptions, "record"> = {},
): BpfMap {
  const attr = mapAttrFromDef(def);
  let record: BtfRecord | null = null;
  if (btf !== undefined && def.btfValueTypeId !== 0) {
    try {
      const metas = parseStructMetas(btf);
      record = mapCheckBtfFields(
        btf,
        def.btfValueTypeId,
        def.valueSize,
        def.typeId,
        metas,
        { mapFlags: def.flags },
      ).record;
    } catch (e) {
      if (e instanceof BtfError) {
        throw new MapError(attr.name, e.message, e.errno);
      }
      throw e;
    }
  }
  const map = createMap(space, attr, { ...opts, record });
  if (def.initialData !== undefined && def.internal !== null) {
    const value = new Uint8Array(def.valueSize);
    value.set(def.initialData.subarray(0, def.valueSize));
    const r = map.updateFromSyscall(u32Key(0), value, BPF_ANY);
    if (r) throw new MapError(attr.name, "setting the initial value", -r);
  }
  if (def.internal === "rodata" || def.internal === "kconfig") {
    const r = map.freeze();
    if (r) throw new MapError(attr.name, "BPF_MAP_FREEZE", -r);
  }
  return map;
}
