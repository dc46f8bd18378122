/**
 * `BPF_MAP_TYPE_CGROUP_ARRAY` (kernel/bpf/arraymap.c, `cgroup_array_map_ops`):
 * an fd array whose slots hold cgroups, which `bpf_skb_under_cgroup()` and
 * `bpf_current_task_under_cgroup()` test membership of. User space fills a
 * slot with the fd of a cgroup directory (`cgroup_get_from_fd()`); the
 * simulation has no file descriptors, so every update fails as a closed fd
 * does (-EBADF) once the kernel's own checks pass, and every slot stays
 * empty — what a freshly created map holds.
 * @module
 */
import { MapBase } from "./base.ts";
import {
  arrayIndex,
  BPF_ANY,
  BPF_F_RDONLY_PROG,
  BPF_F_WRONLY_PROG,
  checkKey,
  type MapAttr,
  type MapEnv,
  MapError,
  u32Key,
} from "./map.ts";
import {
  E2BIG,
  EAGAIN,
  EBADF,
  EINVAL,
  ENOENT,
  ENOTSUPP,
} from "../../uapi/errno.ts";

/**
 * The part of `fd_array_map_alloc_check()` before it defers to
 * `array_map_alloc_check()`: a u32 value (the fd), no program-side access
 * flags. 0 or -EINVAL.
 */
export function fdArrayAllocCheck(attr: MapAttr): number {
  if (attr.valueSize !== 4) return -EINVAL;
  if (attr.flags & (BPF_F_RDONLY_PROG | BPF_F_WRONLY_PROG)) return -EINVAL;
  return 0;
}

/** A cgroup array whose slots the simulation can never fill. */
export class CgroupArrayMap extends MapBase {
  /** `array_map_alloc()`: every slot NULL. */
  constructor(attr: MapAttr, env: MapEnv) {
    // bpf_map_value_size(): an fd map exchanges a u32 with user space
    super(attr, null, env, 4);
  }

  /**
   * What the helpers find at slot `index` (mirrors `bpf_skb_under_cgroup()`
   * and `bpf_current_task_under_cgroup()` up to the membership test):
   * -E2BIG past `max_entries`, -EAGAIN for an empty slot — which every slot
   * is here.
   */
  cgroupAt(index: number): number {
    return index >>> 0 >= this.attr.maxEntries ? -E2BIG : -EAGAIN;
  }

  /** Programs cannot look up a cgroup array (`check_map_func_compatibility()`). */
  lookup(): bigint | null {
    return null;
  }

  /** Programs cannot update a cgroup array: the verifier refuses the call. */
  update(): number {
    throw new MapError(
      this.attr.name,
      "a program cannot update a cgroup array",
    );
  }

  /** `fd_array_map_delete_elem()`: -E2BIG past the end, -ENOENT for an empty slot. */
  delete(key: Uint8Array): number {
    checkKey(this.attr, key);
    return arrayIndex(key) >= this.attr.maxEntries ? -E2BIG : -ENOENT;
  }

  /** `array_map_get_next_key()`. */
  getNextKey(key: Uint8Array | null): Uint8Array | number {
    const index = key === null ? 0xffffffff : arrayIndex(key);
    if (index >= this.attr.maxEntries) return u32Key(0);
    if (index === this.attr.maxEntries - 1) return -ENOENT;
    return u32Key(index + 1);
  }

  /**
   * `BPF_MAP_LOOKUP_ELEM`: after the syscall's flag and permission checks,
   * `bpf_fd_array_map_lookup_elem()` answers -ENOTSUPP, cgroup arrays
   * having no `map_fd_sys_lookup_elem`.
   */
  override lookupValueCopy(key: Uint8Array, flags = 0): Uint8Array | number {
    const checked = super.lookupValueCopy(key, flags); // copyOut finds nothing
    return checked === -ENOENT ? -ENOTSUPP : checked;
  }

  /** See {@link lookupValueCopy}. */
  protected copyOut(): Uint8Array | null {
    return null;
  }

  /**
   * `bpf_fd_array_map_update_elem()`: only `BPF_ANY`, -E2BIG past the end,
   * then `cgroup_get_from_fd()` — -EBADF, the simulation having no fds.
   */
  protected updateSys(
    key: Uint8Array,
    _value: Uint8Array,
    flags: number,
  ): number {
    if (flags !== BPF_ANY) return -EINVAL;
    if (arrayIndex(key) >= this.attr.maxEntries) return -E2BIG;
    return -EBADF;
  }

  /** `cgroup_fd_array_free()`: no slot holds a cgroup to put. */
  destroy(): void {
    this.destroyed = true;
  }
}
