/**
 * lib/kernel/maps: the simulated kernel's BPF maps — arrays, hashes (plain,
 * per-CPU, LRU), ring buffers, queues and stacks, socket maps, cgroup and
 * local storage, and global data. Values
 * programs get pointers to live in the simulated address space
 * (lib/exec/memory.ts) as `map_value` regions.
 * @module
 */
export * from "./map.ts";
export { MapBase } from "./base.ts";
export { ArrayMap, copyForUser } from "./array.ts";
export { type HashKind, HashMap } from "./hash.ts";
export {
  BpfLru,
  BpfPercpuLru,
  LOCAL_FREE_TARGET,
  type LruPolicy,
  PERCPU_FREE_TARGET,
  percpuLruMaxEntries,
} from "./lru_hash.ts";
export { LruLists, type LruListSet } from "./lru_list.ts";
export { type HashElem, HashTable, keyId } from "./hash_table.ts";
export * from "./ringbuf.ts";
export * from "./queue_stack.ts";
export * from "./special_fields.ts";
export * from "./percpu.ts";
export type { ElemMem, ElemStore, StoreShape } from "./elem_store.ts";
export {
  createMap,
  createMapFromDef,
  type CreateMapOptions,
  HTAB_ELEM_SIZE,
  mapAllocCheck,
  mapAttrFromDef,
  PCPU_MIN_UNIT_SIZE,
} from "./create.ts";
export * from "./sockmap.ts";
export * from "./reuseport_array.ts";
export * from "./cgroup_storage.ts";
export * from "./local_storage.ts";
