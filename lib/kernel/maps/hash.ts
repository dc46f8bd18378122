/**
 * `BPF_MAP_TYPE_HASH`, `PERCPU_HASH`, `LRU_HASH` and `LRU_PERCPU_HASH`
 * (kernel/bpf/hashtab.c). Keys live on the JavaScript side; values live in
 * the address space (see elem_store.ts for when their memory is reused or
 * unmapped). Iteration order (`BPF_MAP_GET_NEXT_KEY`, dumps) is insertion
 * order, a replaced key keeping its place; the kernel walks jhash buckets
 * with a random seed, an order no test can rely on.
 * @module
 */
import type { BtfRecord } from "../../btf/field_types.ts";
import { MapBase } from "./base.ts";
import {
  BPF_EXIST,
  BPF_F_LOCK,
  BPF_F_NO_COMMON_LRU,
  BPF_F_NO_PREALLOC,
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
  progAccess,
  roundUp8,
} from "./map.ts";
import {
  DynamicStore,
  type ElemMem,
  type ElemStore,
  PreallocStore,
} from "./elem_store.ts";
import { type HashElem, HashTable, keyId } from "./hash_table.ts";
import {
  BpfLru,
  BpfPercpuLru,
  type LruPolicy,
  percpuLruMaxEntries,
} from "./lru_hash.ts";
import { packPercpu, pcpuCopyValue, pcpuInitValue } from "./percpu.ts";
import { copyForUser } from "./array.ts";
import { bpfObjFreeFields, copyMapValue } from "./special_fields.ts";

/** Which hash flavour. */
export interface HashKind {
  /** Per-CPU values. */
  readonly percpu: boolean;
  /** LRU eviction (common or, with `BPF_F_NO_COMMON_LRU`, per-CPU lists). */
  readonly lru: boolean;
}

/** A hash map of any of the four flavours. */
export class HashMap extends MapBase {
  /** `round_up(value_size, 8)`. */
  readonly elemSize: number;
  /** Flavour. */
  readonly kind: HashKind;
  /** The LRU, for LRU flavours. */
  readonly lruList: LruPolicy | null;
  private readonly store: ElemStore;
  /** The elements, in insertion order (walks that must not touch the LRU read it). */
  readonly table: HashTable = new HashTable();
  /** `htab->extra_elems`: the spare element of each CPU, for replacements. */
  private readonly extras: ElemMem[] = [];

  /** `htab_map_alloc()`. */
  constructor(
    attr: MapAttr,
    record: BtfRecord | null,
    env: MapEnv,
    kind: HashKind,
  ) {
    const elemSize = roundUp8(attr.valueSize);
    const percpuLru = kind.lru && (attr.flags & BPF_F_NO_COMMON_LRU) !== 0;
    super(
      percpuLru
        ? {
          ...attr,
          maxEntries: percpuLruMaxEntries(attr.maxEntries, env.nrCpus),
        }
        : attr,
      record,
      env,
      kind.percpu ? elemSize * env.nrCpus : attr.valueSize,
    );
    this.elemSize = elemSize;
    this.kind = kind;
    const shape = {
      name: attr.name,
      copies: kind.percpu ? env.nrCpus : 1,
      elemSize,
      access: progAccess(attr.flags),
    };
    const max = this.attr.maxEntries;
    const prealloc = (attr.flags & BPF_F_NO_PREALLOC) === 0;
    const extra = prealloc && !kind.percpu && !kind.lru ? env.nrCpus : 0;
    this.store = prealloc
      ? new PreallocStore(env, shape, max + extra)
      : new DynamicStore(env, shape);
    for (let c = 0; c < extra; c++) this.extras.push(this.store.alloc()!);
    const evict = (n: number) => this.evict(n);
    this.lruList = !kind.lru
      ? null
      : percpuLru
      ? new BpfPercpuLru(max, env.nrCpus, evict)
      : new BpfLru(max, env.nrCpus, evict);
  }

  /** Number of elements. */
  get size(): number {
    return this.table.size;
  }

  /** `check_and_free_fields()`: every copy of the element. */
  private freeFields(mem: ElemMem): void {
    if (this.record === null) return;
    for (let c = 0; c < mem.bytes.length; c++) {
      bpfObjFreeFields(
        this.record,
        mem.bytes[c],
        mem.addrs[c],
        this.env.fieldFreer,
      );
    }
  }

  /** `htab_lru_map_delete_node()`: the LRU evicts the element of slot `node`. */
  private evict(node: number): boolean {
    const e = this.table.atSlot(node);
    if (e === undefined) return false;
    this.table.unlink(e);
    this.freeFields(e.mem);
    return true;
  }

  /** `__htab_map_lookup_elem()`: the value address of this CPU's copy. */
  lookup(key: Uint8Array, cpu: number): bigint | null {
    checkKey(this.attr, key);
    const e = this.table.get(keyId(key));
    if (e === undefined) return null;
    if (this.lruList !== null) this.lruList.setRef(e.mem.slot);
    if (!this.kind.percpu) return e.mem.addrs[0];
    checkCpu(this.attr, this.env, cpu);
    return e.mem.addrs[cpu];
  }

  /** `check_flags()`. */
  private checkFlags(old: HashElem | undefined, flags: number): number {
    const f = flags & ~BPF_F_LOCK;
    if (old !== undefined && f === BPF_NOEXIST) return -EEXIST;
    if (old === undefined && f === BPF_EXIST) return -ENOENT;
    return 0;
  }

  /** Allocates element memory for a new element (not LRU): -E2BIG / -ENOMEM on failure. */
  private allocMem(replacing: boolean, cpu: number): ElemMem | number {
    if (this.extras.length > 0 && replacing) return this.extras[cpu];
    if (this.store instanceof PreallocStore) {
      return this.store.alloc() ?? -E2BIG;
    }
    if (this.table.size >= this.attr.maxEntries && !replacing) return -E2BIG;
    return this.store.alloc() ?? -ENOMEM;
  }

  /** `pcpu_init_value()` for per-CPU flavours, `copy_map_value()` otherwise. */
  private initValue(mem: ElemMem, value: Uint8Array, target: number): void {
    if (!this.kind.percpu) {
      copyMapValue(this.record, mem.bytes[0], value, this.attr.valueSize);
    } else {pcpuInitValue(
        this.record,
        mem.bytes,
        value,
        target,
        this.attr.valueSize,
      );}
  }

  /** `pcpu_copy_value()`: in place, one CPU's copy or (`target < 0`) all. */
  private writeInPlace(mem: ElemMem, value: Uint8Array, target: number): void {
    pcpuCopyValue(this.record, mem.bytes, value, target, this.attr.valueSize);
  }

  /** `bpf_map_update_elem()` from a program on `cpu`. */
  update(
    key: Uint8Array,
    value: Uint8Array,
    flags: number,
    cpu: number,
  ): number {
    checkKey(this.attr, key);
    checkValue(this.attr, value, this.attr.valueSize);
    checkCpu(this.attr, this.env, cpu);
    return this.updateOn(key, value, flags, cpu, false);
  }

  /**
   * Every flavour's update, running on `cpu`; `allCpus` (user space on a
   * per-CPU map) takes a value for every CPU.
   */
  private updateOn(
    key: Uint8Array,
    value: Uint8Array,
    flags: number,
    cpu: number,
    allCpus: boolean,
  ): number {
    const target = allCpus ? -1 : cpu;
    if (this.kind.lru) return this.lruUpdate(key, value, flags, cpu, target);
    if (this.kind.percpu) return this.percpuUpdate(key, value, flags, target);
    return this.htabUpdate(key, value, flags, cpu);
  }

  /** `htab_map_update_elem()`. */
  private htabUpdate(
    key: Uint8Array,
    value: Uint8Array,
    flags: number,
    cpu: number,
  ): number {
    if ((flags & ~BPF_F_LOCK) > BPF_EXIST) return -EINVAL;
    const id = keyId(key);
    const old = this.table.get(id);
    if (flags & BPF_F_LOCK) {
      if (!this.hasSpinLock()) return -EINVAL;
      if (old !== undefined) {
        const err = this.checkFlags(old, flags);
        if (err) return err;
        // copy_map_value_locked(): in place, special fields untouched.
        copyMapValue(this.record, old.mem.bytes[0], value, this.attr.valueSize);
        return 0;
      }
    }
    const err = this.checkFlags(old, flags);
    if (err) return err;
    const mem = this.allocMem(old !== undefined, cpu);
    if (typeof mem === "number") return mem;
    this.initValue(mem, value, cpu);
    const k = old?.key ?? key.slice();
    this.table.link({ id, key: k, mem, prev: null, next: null }, old ?? null);
    if (old !== undefined) {
      this.freeFields(old.mem);
      // Prealloc: the old element becomes this CPU's spare, reused at once.
      if (this.extras.length > 0) this.extras[cpu] = old.mem;
      else this.store.release(old.mem);
    }
    return 0;
  }

  /**
   * `__htab_percpu_map_update_elem()`: an existing element is updated in
   * place; `target` is the CPU whose copy is written, or -1 for all.
   */
  private percpuUpdate(
    key: Uint8Array,
    value: Uint8Array,
    flags: number,
    target: number,
  ): number {
    if (flags > BPF_EXIST) return -EINVAL;
    const id = keyId(key);
    const old = this.table.get(id);
    const err = this.checkFlags(old, flags);
    if (err) return err;
    if (old !== undefined) {
      this.writeInPlace(old.mem, value, target);
      return 0;
    }
    const mem = this.allocMem(false, 0);
    if (typeof mem === "number") return mem;
    this.initValue(mem, value, target);
    this.table.link(
      { id, key: key.slice(), mem, prev: null, next: null },
      null,
    );
    return 0;
  }

  /**
   * `htab_lru_map_update_elem()` / `htab_lru_percpu_map_update_elem()`: the
   * node is taken from the LRU *before* the flags are checked, so even a
   * refused update may have evicted an element — the kernel's behaviour.
   */
  private lruUpdate(
    key: Uint8Array,
    value: Uint8Array,
    flags: number,
    cpu: number,
    target: number,
  ): number {
    const lru = this.lruList!;
    if (flags > BPF_EXIST) return -EINVAL;
    // The per-CPU flavour skips the allocation when it can only update in place.
    let mem: ElemMem | null = null;
    if (!this.kind.percpu || flags !== BPF_EXIST) {
      const node = lru.popFree(cpu);
      if (node < 0) return -ENOMEM;
      mem = (this.store as PreallocStore).slot(node);
      if (!this.kind.percpu) {
        copyMapValue(this.record, mem.bytes[0], value, this.attr.valueSize);
      }
    }
    const id = keyId(key);
    const old = this.table.get(id);
    const err = this.checkFlags(old, flags);
    if (err) {
      // htab_lru_push_free() / bpf_lru_push_free(): the node goes back,
      // but whatever popFree() evicted stays evicted.
      if (mem !== null) this.lruPushFree(mem);
      return err;
    }
    if (this.kind.percpu && old !== undefined) {
      lru.setRef(old.mem.slot);
      this.writeInPlace(old.mem, value, target);
      if (mem !== null) lru.pushFree(mem.slot);
      return 0;
    }
    if (this.kind.percpu) this.initValue(mem!, value, target);
    this.table.link(
      { id, key: key.slice(), mem: mem!, prev: null, next: null },
      old ?? null,
    );
    if (old !== undefined) {
      lru.setRef(mem!.slot);
      this.lruPushFree(old.mem);
    }
    return 0;
  }

  /** `htab_lru_push_free()`. */
  private lruPushFree(mem: ElemMem): void {
    this.freeFields(mem);
    this.lruList!.pushFree(mem.slot);
  }

  /** `bpf_map_update_value()`: per-CPU flavours take every CPU's value. */
  protected updateSys(
    key: Uint8Array,
    value: Uint8Array,
    flags: number,
    cpu: number,
  ): number {
    return this.updateOn(key, value, flags, cpu, this.kind.percpu);
  }

  /** `htab_map_delete_elem()` / `htab_lru_map_delete_elem()`. */
  delete(key: Uint8Array, _cpu: number): number {
    checkKey(this.attr, key);
    const e = this.table.get(keyId(key));
    if (e === undefined) return -ENOENT;
    this.table.unlink(e);
    if (this.lruList !== null) this.lruPushFree(e.mem);
    else {
      this.freeFields(e.mem);
      this.store.release(e.mem);
    }
    return 0;
  }

  /** `htab_map_get_next_key()`: a missing key restarts from the first. */
  getNextKey(key: Uint8Array | null): Uint8Array | number {
    let e: HashElem | null = null;
    if (key !== null) {
      checkKey(this.attr, key);
      e = this.table.get(keyId(key)) ?? null;
    }
    const n = e === null ? this.table.first : e.next;
    return n === null ? -ENOENT : n.key.slice();
  }

  /** `bpf_map_copy_value()`: no LRU reference is taken (`*_lookup_elem_sys`). */
  protected copyOut(key: Uint8Array): Uint8Array | null {
    const e = this.table.get(keyId(key));
    if (e === undefined) return null;
    if (!this.kind.percpu) {
      return copyForUser(this.record, e.mem.bytes[0], this.attr.valueSize);
    }
    return packPercpu(
      e.mem.bytes.map((b) => copyForUser(this.record, b, this.elemSize)),
      this.elemSize,
    );
  }

  /** `htab_map_free()`: frees every element's fields, then the memory. */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    for (let e = this.table.first; e !== null; e = e.next) {
      this.freeFields(e.mem);
    }
    this.table.clear();
    this.store.destroy();
  }
}
