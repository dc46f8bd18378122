/**
 * The `bpf_map_elem` iterator's walk over one map: the seq_file
 * `start`/`next` operations of arraymap.c (`bpf_array_map_seq_*`) and
 * hashtab.c (`bpf_hash_map_seq_*`), and the key and value each element
 * hands the program (`__bpf_array_map_seq_show()`,
 * `__bpf_hash_map_seq_show()`).
 *
 * Arrays visit every index. Hash maps are walked in bpfsim's iteration
 * order (insertion order, see maps/hash.ts) standing for the kernel's
 * bucket order: one bucket, `skip_elems` counting from its head. Per-CPU
 * values are copied, CPU after CPU at `round_up(value_size, 8)` strides,
 * into the iterator's `percpu_value_buf`; other values are the map's own
 * memory, which the program may write.
 * @module
 */
import type { AddressSpace } from "../../../exec/memory.ts";
import { ArrayMap } from "../../maps/array.ts";
import { HashMap } from "../../maps/hash.ts";
import type { HashElem } from "../../maps/hash_table.ts";
import { type BpfMap, roundUp8, u32Key } from "../../maps/map.ts";

/** One element as the program sees it: its key bytes and the value's address. */
export interface MapIterElem {
  /** The key (an array's u32 index, a hash element's key). */
  readonly key: Uint8Array;
  /** Address of the value handed over (the map's, or the per-CPU copy). */
  readonly value: bigint;
}

/** The `seq_operations` walk of one map (start and next; show and stop run the program). */
export interface MapElemCursor {
  /** `start(seq, &seq->index)`: the element to resume at, or null at the end. */
  start(pos: { index: number }): MapIterElem | null;
  /** `next(seq, v, &seq->index)`: the element after the one shown, or null. */
  next(pos: { index: number }): MapIterElem | null;
}

/**
 * The walk of `map` for one open iterator: `percpuBuf` is the address and
 * bytes of its `percpu_value_buf` (`round_up(value_size, 8) * nr_cpus`
 * bytes), used for per-CPU maps only.
 */
export function mapElemCursor(
  map: BpfMap,
  space: AddressSpace,
  nrCpus: number,
  percpuBuf: { readonly address: bigint; readonly bytes: Uint8Array },
): MapElemCursor {
  const stride = roundUp8(map.attr.valueSize);
  const copyPercpu = (addrOf: (cpu: number) => bigint, len: number) => {
    for (let cpu = 0; cpu < nrCpus; cpu++) {
      percpuBuf.bytes.set(space.readBytes(addrOf(cpu), len), cpu * stride);
    }
    return percpuBuf.address;
  };
  if (map instanceof ArrayMap) {
    // bpf_iter_seq_array_map_info: the index is the cursor
    let index = 0;
    const elem = (): MapIterElem | null => {
      if (index >= map.attr.maxEntries) return null;
      const key = u32Key(index);
      const value = map.percpu
        ? copyPercpu((cpu) => map.lookup(key, cpu)!, stride) // bpf_long_memcpy of the rounded size
        : map.lookup(key, 0)!;
      return { key, value };
    };
    return {
      start(pos) {
        // mirrors bpf_array_map_seq_start()
        if (index >= map.attr.maxEntries) return null;
        if (pos.index === 0) pos.index++;
        return elem();
      },
      next(pos) {
        // mirrors bpf_array_map_seq_next()
        pos.index++;
        index++;
        return elem();
      },
    };
  }
  if (map instanceof HashMap) {
    // bpf_iter_seq_hash_map_info with one bucket: skip_elems from its head
    let skip = 0;
    let done = false;
    let shown: HashElem | null = null;
    const elem = (e: HashElem): MapIterElem => {
      shown = e;
      const value = map.kind.percpu
        ? copyPercpu((cpu) => e.mem.addrs[cpu], map.attr.valueSize)
        : e.mem.addrs[0];
      return { key: e.key.slice(), value };
    };
    // mirrors bpf_hash_map_seq_find_next()
    const findNext = (prev: HashElem | null): MapIterElem | null => {
      if (prev !== null) {
        if (prev.next !== null) return elem(prev.next);
        done = true; // the next bucket: there is none
        return null;
      }
      if (done) return null;
      let count = 0;
      for (let e = map.table.first; e !== null; e = e.next) {
        if (count++ >= skip) return elem(e);
      }
      done = true;
      skip = 0;
      return null;
    };
    return {
      start(pos) {
        // mirrors bpf_hash_map_seq_start()
        const e = findNext(null);
        if (e !== null && pos.index === 0) pos.index++;
        return e;
      },
      next(pos) {
        // mirrors bpf_hash_map_seq_next()
        pos.index++;
        skip++;
        return findNext(shown);
      },
    };
  }
  throw new Error(`no bpf_map_elem walk for map type ${map.attr.type}`);
}
