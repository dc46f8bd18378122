/**
 * `bpf_for_each_map_elem(map, callback, ctx, flags)` (kernel/bpf/bpf_iter.c),
 * which dispatches to the map's `map_for_each_callback`:
 * `bpf_for_each_array_elem()` (arraymap.c) and `bpf_for_each_hash_elem()`
 * (hashtab.c). The callback gets `(map, key, value, ctx)`; a non-zero
 * return stops the walk; the helper returns how many elements it visited.
 * Per-CPU maps hand over the running CPU's copy.
 * @module
 */
import { ExecError } from "../exec/fault.ts";
import type { CallContext, HelperFn } from "../exec/state.ts";
import type { StateOwner } from "./helpers.ts";
import { ArrayMap } from "./maps/array.ts";
import { HashMap } from "./maps/hash.ts";
import { type BpfMap, u32Key } from "./maps/map.ts";
import type { ObjectHelperEnv } from "./object_helpers.ts";
import type { BpfCallbacks } from "./graph/callback.ts";
import { EINVAL } from "../uapi/errno.ts";

/** Helper id of `bpf_for_each_map_elem`. */
export const BPF_FUNC_for_each_map_elem = 164;

/** The CPU a helper runs on: the state's owner when the kernel runs it, else 0. */
export function helperCpu(vm: CallContext): number {
  const owner = vm.owner as StateOwner | undefined;
  return owner?.cpu?.id ?? 0;
}

/** `bpf_for_each_map_elem`, by id. */
export function forEachMapHelpers(env: ObjectHelperEnv): Map<number, HelperFn> {
  return new Map<number, HelperFn>([
    [BPF_FUNC_for_each_map_elem, (vm) => {
      const mapAddr = vm.arg(1);
      const map = env.loaded.registry.at(mapAddr);
      if (map === undefined) {
        throw new ExecError(
          -1,
          `R1: ${env.loaded.registry.describe(mapAddr)}`,
        );
      }
      const callbacks = env.loaded.callbacks;
      if (callbacks === undefined) {
        throw new ExecError(-1, "bpf_for_each_map_elem: no callback table");
      }
      return forEachMapElem(
        vm,
        callbacks,
        map,
        mapAddr,
        vm.arg(2),
        vm.arg(3),
        vm.arg(4),
      );
    }],
  ]);
}

/**
 * `map->ops->map_for_each_callback(map, fn, ctx, flags)` on `map` (whose
 * `struct bpf_map` is at `mapAddr`): the number of elements visited, or
 * -EINVAL for non-zero flags. The key is handed over in a read-only
 * `map_key` region mapped for the walk (the kernel passes a stack `u32`
 * for arrays, the element's own key for hashes).
 */
export function forEachMapElem(
  vm: CallContext,
  callbacks: BpfCallbacks,
  map: BpfMap,
  mapAddr: bigint,
  fn: bigint,
  ctx: bigint,
  flags: bigint,
): number {
  if (!(map instanceof ArrayMap) && !(map instanceof HashMap)) {
    throw new ExecError(
      -1,
      `bpf_for_each_map_elem on map ${map.attr.name} (type ${map.attr.type}) is not modelled`,
    );
  }
  if (flags !== 0n) return -EINVAL;
  const cpu = helperCpu(vm);
  const keyBytes = new Uint8Array(
    map instanceof ArrayMap ? 4 : map.attr.keySize,
  );
  const keyAddr = vm.mem.mapRegion("map_key", keyBytes, {
    name: `${map.attr.name} for_each key`,
    write: false,
  });
  const visit = (key: Uint8Array, value: bigint): boolean => {
    keyBytes.set(key);
    return callbacks.call(vm, fn, [mapAddr, keyAddr, value, ctx]) !== 0n;
  };
  let visited = 0;
  try {
    if (map instanceof ArrayMap) {
      // mirrors bpf_for_each_array_elem(): every index, existing by definition
      for (let i = 0; i < map.attr.maxEntries; i++) {
        const key = u32Key(i);
        visited++;
        if (visit(key, map.lookup(key, cpu)!)) break;
      }
    } else {
      // mirrors bpf_for_each_hash_elem(): the next element is taken before
      // the callback runs (hlist_nulls_for_each_entry_safe), so the callback
      // may delete the element it was given; no LRU reference is taken.
      const table = map.table;
      let e = table.first;
      while (e !== null) {
        const next = e.next;
        if (table.get(e.id) === e) {
          visited++;
          const addr = map.kind.percpu ? e.mem.addrs[cpu] : e.mem.addrs[0];
          if (visit(e.key, addr)) break;
        }
        e = next;
      }
    }
  } finally {
    vm.mem.unmapRegion(keyAddr);
  }
  return visited;
}
