/**
 * The local-storage maps (kernel/bpf/bpf_local_storage.c):
 * `BPF_MAP_TYPE_SK_STORAGE` (net/core/bpf_sk_storage.c), `TASK_STORAGE`
 * (bpf_task_storage.c), `CGRP_STORAGE` (bpf_cgrp_storage.c) and
 * `INODE_STORAGE` (bpf_inode_storage.c).
 *
 * The map holds no keys of its own: each *owner* (a socket, a task, a
 * cgroup, an inode) carries a list of elements, at most one per map
 * (`sk->sk_bpf_storage`, `task->bpf_storage`, `cgroup->bpf_cgrp_storage`,
 * the BPF LSM's blob in `inode->i_security`),
 * and the map only links its elements so that `map_free` can find them.
 * Here an owner is a {@link StorageOwner}; each element's value is its own
 * `map_value` region of `value_size` bytes, so a pointer the get helper
 * returned stays valid until the element is freed (then, after an RCU
 * grace period, it faults).
 *
 * Socket owners are charged against `optmem_max` as `sk_omem_alloc`
 * (`bpf_sk_storage_charge()`); tasks, cgroups and inodes are not charged.
 *
 * User space reaches an element through a file descriptor of its owner (a
 * socket fd, a pidfd, a cgroup fd, any fd of the inode); the simulator has no file descriptor
 * table, so those syscalls fail with -EBADF.
 * @module
 */
import type { BtfRecord } from "../../btf/field_types.ts";
import { MAP_TYPE } from "../../uapi/bpf.ts";
import { MapBase } from "./base.ts";
import {
  BPF_F_NO_PREALLOC,
  type MapAttr,
  type MapEnv,
  MapError,
  progAccess,
} from "./map.ts";
import { bpfObjFreeFields, copyMapValue } from "./special_fields.ts";
import {
  E2BIG,
  EBADF,
  EEXIST,
  EINVAL,
  ENOENT,
  ENOMEM,
  ENOTSUPP,
} from "../../uapi/errno.ts";

/** `BPF_F_CLONE`: a socket's elements are copied to sockets cloned from it. */
export const BPF_F_CLONE = 1 << 9;
/** `BPF_LOCAL_STORAGE_GET_F_CREATE` (= `BPF_SK_STORAGE_GET_F_CREATE`). */
export const BPF_LOCAL_STORAGE_GET_F_CREATE = 1;
/** `sizeof(struct bpf_local_storage_elem)`: `sdata` is cacheline aligned. */
export const SELEM_SIZE = 128;
/** `offsetof(struct bpf_local_storage_elem, sdata.data)`: elem_size is this + value_size. */
export const SELEM_DATA_OFFSET = 72;
/** `sizeof(struct bpf_local_storage)` on x86-64 (16 cache slots and the list head). */
export const LOCAL_STORAGE_SIZE = 176;
/** `BPF_LOCAL_STORAGE_MAX_VALUE_SIZE`: `U16_MAX - sizeof(struct bpf_local_storage_elem)`. */
export const BPF_LOCAL_STORAGE_MAX_VALUE_SIZE: number = 0xffff - SELEM_SIZE;
/** `sysctl_optmem_max` of the simulated host (the default since 6.9, 128 KiB). */
export const SIM_OPTMEM_MAX = 131072;

const CREATE_FLAG_MASK = BPF_F_NO_PREALLOC | BPF_F_CLONE;
/** The local-storage map types this file models. */
export const LOCAL_STORAGE_MAP_TYPES: readonly number[] = [
  MAP_TYPE.sk_storage,
  MAP_TYPE.task_storage,
  MAP_TYPE.cgrp_storage,
  MAP_TYPE.inode_storage,
];

/** What `BPF_MAP_CREATE` is given, with the BTF ids local storage demands. */
export interface LocalStorageAttr extends MapAttr {
  /** `btf_key_type_id`; absent means the caller supplied BTF (libbpf always does). */
  readonly btfKeyTypeId?: number;
  /** `btf_value_type_id`; absent as for {@link btfKeyTypeId}. */
  readonly btfValueTypeId?: number;
}

/**
 * Mirrors `bpf_local_storage_map_alloc_check()`: `BPF_F_NO_PREALLOC`
 * required (with at most `BPF_F_CLONE`), `max_entries` 0, an int key, a
 * value, BTF for both (user space dumps sockets' storage through it), and
 * a value of at most {@link BPF_LOCAL_STORAGE_MAX_VALUE_SIZE} bytes.
 */
export function localStorageAllocCheck(attr: LocalStorageAttr): number {
  if (
    (attr.flags & ~CREATE_FLAG_MASK) !== 0 ||
    (attr.flags & BPF_F_NO_PREALLOC) === 0 || attr.maxEntries !== 0 ||
    attr.keySize !== 4 || attr.valueSize === 0 ||
    attr.btfKeyTypeId === 0 || attr.btfValueTypeId === 0
  ) return -EINVAL;
  if (attr.valueSize > BPF_LOCAL_STORAGE_MAX_VALUE_SIZE) return -E2BIG;
  return 0;
}

/** What kind of kernel object owns local storage. */
export type StorageOwnerKind = "sk" | "task" | "cgroup" | "inode";

/**
 * An object local storage hangs on: its list of elements (one per map,
 * `struct bpf_local_storage`) and, for a socket, `sk_omem_alloc`.
 */
export class StorageOwner {
  /** `sk`, `task`, `cgroup` or `inode`. */
  readonly kind: StorageOwnerKind;
  /** For messages. */
  readonly name: string;
  /** Whether the owner still exists; a dead owner's storage is freed at the next map operation. */
  readonly alive: () => boolean;
  /** Its elements, by map. */
  readonly elems: Map<LocalStorageMap, StorageElem> = new Map();
  /** Bytes charged (`sk_omem_alloc`; sockets only). */
  charged = 0;
  /** Set once {@link localStorageDestroy} ran: no element may be added. */
  gone = false;

  /** An owner; `alive` defaults to "until destroyed". */
  constructor(
    kind: StorageOwnerKind,
    name: string,
    alive: () => boolean = () => true,
  ) {
    this.kind = kind;
    this.name = name;
    this.alive = alive;
  }

  /** Mirrors `mem_charge()`: only sockets are charged (`bpf_sk_storage_charge()`). */
  charge(size: number): boolean {
    if (this.kind !== "sk") return true;
    if (size > SIM_OPTMEM_MAX || this.charged + size >= SIM_OPTMEM_MAX) {
      return false;
    }
    this.charged += size;
    return true;
  }

  /** Mirrors `mem_uncharge()`. */
  uncharge(size: number): void {
    if (this.kind === "sk") this.charged -= size;
  }
}

/** One element (`struct bpf_local_storage_elem`). */
export interface StorageElem {
  /** Its owner. */
  readonly owner: StorageOwner;
  /** The value's bytes. */
  readonly bytes: Uint8Array;
  /** The value's address (a `map_value` region). */
  readonly address: bigint;
}

/**
 * Mirrors `bpf_local_storage_destroy()` (`bpf_sk_storage_free()`,
 * `bpf_task_storage_free()`, `bpf_cgrp_storage_free()`,
 * `bpf_inode_storage_free()`): the owner goes,
 * and every element it carries, in every map, is freed.
 */
export function localStorageDestroy(owner: StorageOwner): void {
  owner.gone = true;
  for (const map of [...owner.elems.keys()]) map.unlink(owner);
}

/** A local-storage map (sk, task, cgroup or inode storage). */
export class LocalStorageMap extends MapBase {
  /** `smap->elem_size`: what an element charges its owner. */
  readonly elemSize: number;
  /** Owners with an element here (the map's own list, `smap->buckets`). */
  private readonly owners = new Set<StorageOwner>();

  /** Mirrors `bpf_local_storage_map_alloc()`; the caller validated the attributes. */
  constructor(attr: MapAttr, record: BtfRecord | null, env: MapEnv) {
    super(attr, record, env, attr.valueSize);
    this.elemSize = SELEM_DATA_OFFSET + attr.valueSize;
  }

  /** The owner kind this map type serves. */
  get ownerKind(): StorageOwner["kind"] {
    switch (this.attr.type) {
      case MAP_TYPE.sk_storage:
        return "sk";
      case MAP_TYPE.task_storage:
        return "task";
      case MAP_TYPE.inode_storage:
        return "inode";
      default:
        return "cgroup";
    }
  }

  /** Frees the storage of owners that went away without telling the map. */
  private reap(): void {
    for (const o of [...this.owners]) if (!o.alive()) localStorageDestroy(o);
  }

  /** Mirrors `bpf_local_storage_lookup()`: the value's address, or null. */
  lookupOwner(owner: StorageOwner): bigint | null {
    this.checkUsable(owner);
    this.reap();
    return owner.elems.get(this)?.address ?? null;
  }

  /**
   * Mirrors `bpf_local_storage_update()` with `BPF_NOEXIST`, what the get
   * helpers ask for: a new element holding `value` (zeroes when null), or
   * a negative errno (-EEXIST, -ENOMEM when the owner cannot be charged,
   * -EINVAL for an owner that is going away).
   */
  create(owner: StorageOwner, value: Uint8Array | null): bigint | number {
    this.checkUsable(owner);
    this.reap();
    if (owner.gone || !owner.alive()) return -EINVAL;
    if (owner.elems.has(this)) return -EEXIST; // check_flags(old, BPF_NOEXIST)
    if (!owner.charge(this.elemSize)) return -ENOMEM; // bpf_selem_alloc()
    // bpf_local_storage_alloc(): the owner's first element brings its storage
    if (owner.elems.size === 0 && !owner.charge(LOCAL_STORAGE_SIZE)) {
      owner.uncharge(this.elemSize);
      return -ENOMEM;
    }
    const bytes = new Uint8Array(this.attr.valueSize);
    if (value !== null) {
      copyMapValue(this.record, bytes, value, this.attr.valueSize);
    }
    const address = this.env.space.mapRegion("map_value", bytes, {
      name: `${this.attr.name}[${owner.name}]`,
      ...progAccess(this.attr.flags),
    });
    owner.elems.set(this, { owner, bytes, address });
    this.owners.add(owner);
    return address;
  }

  /** Mirrors `bpf_selem_unlink()` of the owner's element: 0 or -ENOENT. */
  deleteOwner(owner: StorageOwner): number {
    this.checkUsable(owner);
    this.reap();
    if (!owner.elems.has(this)) return -ENOENT;
    this.unlink(owner);
    return 0;
  }

  /**
   * Unlinks `owner`'s element from the owner and the map, uncharges it
   * (and the owner's storage with its last element) and frees it after a
   * grace period, special fields first (`bpf_selem_free()`).
   */
  unlink(owner: StorageOwner): void {
    const elem = owner.elems.get(this);
    if (elem === undefined) return;
    owner.elems.delete(this);
    this.owners.delete(owner);
    owner.uncharge(this.elemSize);
    if (owner.elems.size === 0) owner.uncharge(LOCAL_STORAGE_SIZE);
    bpfObjFreeFields(
      this.record,
      elem.bytes,
      elem.address,
      this.env.fieldFreer,
    );
    this.env.deferFree(() => this.env.space.unmapRegion(elem.address));
  }

  /** Owners holding an element of this map, after freeing those that went away. */
  liveOwners(): StorageOwner[] {
    this.reap();
    return [...this.owners];
  }

  /** Throws on API misuse: a destroyed map, or an owner of the wrong kind. */
  private checkUsable(owner: StorageOwner): void {
    if (this.destroyed) throw new MapError(this.attr.name, "used after free");
    if (owner.kind !== this.ownerKind) {
      throw new MapError(
        this.attr.name,
        `a ${owner.kind} cannot own ${this.ownerKind} storage`,
      );
    }
  }

  /** Programs reach local storage through its helpers only (`check_map_func_compatibility()`). */
  lookup(_key: Uint8Array, _cpu: number): bigint | null {
    throw new MapError(this.attr.name, "bpf_map_lookup_elem on local storage");
  }
  /** See {@link lookup}. */
  update(_k: Uint8Array, _v: Uint8Array, _f: number, _c: number): number {
    throw new MapError(this.attr.name, "bpf_map_update_elem on local storage");
  }
  /** `BPF_MAP_DELETE_ELEM` comes here too: the key is an fd, and there are none. */
  delete(_key: Uint8Array, _cpu: number): number {
    return -EBADF;
  }
  /** `notsupp_get_next_key()`. */
  getNextKey(_key: Uint8Array | null): Uint8Array | number {
    return -ENOTSUPP;
  }
  /** The key is an fd (`sockfd_lookup()`, pidfd, cgroup fd, `fget_raw()`): none exists here. */
  protected copyOut(_key: Uint8Array): Uint8Array | null {
    return null;
  }
  /** `BPF_MAP_LOOKUP_ELEM`: the flag checks, then -EBADF (no fds). */
  override lookupValueCopy(key: Uint8Array, flags = 0): Uint8Array | number {
    const r = super.lookupValueCopy(key, flags);
    return r === -ENOENT ? -EBADF : r;
  }
  /** `BPF_MAP_UPDATE_ELEM`: -EBADF (no fds). */
  protected updateSys(
    _k: Uint8Array,
    _v: Uint8Array,
    _f: number,
    _c: number,
  ): number {
    return -EBADF; // the fd lookup fails before bpf_local_storage_update()
  }

  /**
   * Mirrors `bpf_local_storage_map_free()`: every element of the map is
   * unlinked from its owner and freed.
   */
  destroy(): void {
    if (this.destroyed) return;
    for (const owner of [...this.owners]) this.unlink(owner);
    this.destroyed = true;
  }
}
