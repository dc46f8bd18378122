/**
 * What every map shares on the syscall side (kernel/bpf/syscall.c):
 * permission checks (`map_get_sys_perms()`: `BPF_F_RDONLY`, `BPF_F_WRONLY`,
 * frozen), `BPF_F_LOCK` validation, `BPF_MAP_FREEZE`, and dumps built on
 * `BPF_MAP_GET_NEXT_KEY`. Map types supply the element operations.
 * @module
 */
import { BPF_SPIN_LOCK, type BtfRecord } from "../../btf/field_types.ts";
import {
  BPF_F_LOCK,
  BPF_F_RDONLY,
  BPF_F_WRONLY,
  type BpfMap,
  checkCpu,
  checkKey,
  checkValue,
  EINVAL,
  ENOENT,
  ENOTSUPP,
  EPERM,
  type MapAttr,
  type MapDumpEntry,
  type MapEnv,
} from "./map.ts";

/** Syscall-side behaviour common to all maps; subclasses provide the element ops. */
export abstract class MapBase implements BpfMap {
  /** How the map was created. */
  readonly attr: MapAttr;
  /** Special fields of the value, or null. */
  readonly record: BtfRecord | null;
  /** The machine the map lives in. */
  readonly env: MapEnv;
  /** Value bytes user space exchanges per element. */
  readonly syscallValueSize: number;
  /** Set by {@link freeze}. */
  frozen = false;
  /** Set by {@link destroy}; any later use is a bug. */
  protected destroyed = false;

  /** Stores the common state. */
  constructor(
    attr: MapAttr,
    record: BtfRecord | null,
    env: MapEnv,
    syscallValueSize: number,
  ) {
    this.attr = attr;
    this.record = record;
    this.env = env;
    this.syscallValueSize = syscallValueSize;
  }

  /** `bpf_map_lookup_elem()` from a program. */
  abstract lookup(key: Uint8Array, cpu: number): bigint | null;
  /** `bpf_map_update_elem()` from a program. */
  abstract update(
    key: Uint8Array,
    value: Uint8Array,
    flags: number,
    cpu: number,
  ): number;
  /** `bpf_map_delete_elem()` from a program. */
  abstract delete(key: Uint8Array, cpu: number): number;
  /** `map_get_next_key`. */
  abstract getNextKey(key: Uint8Array | null): Uint8Array | number;
  /** `map_free`. */
  abstract destroy(): void;
  /** `bpf_map_copy_value()` without the checks: the copy, or null when absent. */
  protected abstract copyOut(key: Uint8Array): Uint8Array | null;
  /** `bpf_map_update_value()` without the checks, from a task on `cpu`. */
  protected abstract updateSys(
    key: Uint8Array,
    value: Uint8Array,
    flags: number,
    cpu: number,
  ): number;

  /** `map->record` has a `bpf_spin_lock` (what `BPF_F_LOCK` needs). */
  protected hasSpinLock(): boolean {
    return this.record !== null &&
      (this.record.fieldMask & BPF_SPIN_LOCK) !== 0;
  }

  /** `map_lookup_elem()` in syscall.c. */
  lookupValueCopy(key: Uint8Array, flags = 0): Uint8Array | number {
    if (flags & ~BPF_F_LOCK) return -EINVAL;
    if ((flags & BPF_F_LOCK) && !this.hasSpinLock()) return -EINVAL;
    if (this.attr.flags & BPF_F_WRONLY) return -EPERM;
    checkKey(this.attr, key);
    const out = this.copyOut(key);
    return out ?? -ENOENT;
  }

  /** Whether user space may write (`FMODE_CAN_WRITE`). */
  protected syscallWritable(): boolean {
    return !this.frozen && (this.attr.flags & BPF_F_RDONLY) === 0;
  }

  /**
   * `map_update_elem()` in syscall.c, from a task running on `cpu` (which
   * CPU's LRU lists and spare elements an update uses).
   */
  updateFromSyscall(
    key: Uint8Array,
    value: Uint8Array,
    flags: number,
    cpu = 0,
  ): number {
    if (!this.syscallWritable()) return -EPERM;
    if ((flags & BPF_F_LOCK) && !this.hasSpinLock()) return -EINVAL;
    checkKey(this.attr, key);
    checkValue(this.attr, value, this.syscallValueSize);
    checkCpu(this.attr, this.env, cpu);
    return this.updateSys(key, value, flags, cpu);
  }

  /** `map_delete_elem()` in syscall.c. */
  deleteFromSyscall(key: Uint8Array): number {
    if (!this.syscallWritable()) return -EPERM;
    return this.delete(key, 0);
  }

  /**
   * `map_freeze()`: maps with special fields cannot be frozen; a frozen map
   * is no longer writable from user space, so freezing it again fails the
   * permission check (-EPERM) before the -EBUSY test is reached.
   */
  freeze(): number {
    if (this.record !== null) return -ENOTSUPP;
    if (!this.syscallWritable()) return -EPERM;
    this.frozen = true;
    return 0;
  }

  /** Walks `getNextKey` from the start, copying each value. */
  dump(): MapDumpEntry[] {
    const out: MapDumpEntry[] = [];
    let key = this.getNextKey(null);
    while (typeof key !== "number") {
      const value = this.lookupValueCopy(key);
      if (typeof value !== "number") out.push({ key, value });
      key = this.getNextKey(key);
    }
    return out;
  }
}
