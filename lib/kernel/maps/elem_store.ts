/**
 * Where hash-map values live. Two models, as in kernel/bpf/hashtab.c:
 *
 * - **Preallocated** (the default): every element exists from creation in
 *   one `map_value` region per copy (per CPU for per-CPU maps). A deleted
 *   element goes straight back to the free list (`pcpu_freelist_push()`,
 *   no RCU wait), so a stale pointer still reads and writes mapped memory —
 *   the old data until the slot is reused, then the new element's. That is
 *   the kernel's documented prealloc behaviour. Free slots pop LIFO, slot 0
 *   first (the kernel's per-CPU free lists are one list here).
 * - **`BPF_F_NO_PREALLOC`**: each element is its own region(s); a freed one
 *   stays mapped, old data intact, until the RCU callback handed to
 *   `env.deferFree` runs, and then faults as use-after-free. (The kernel's
 *   `bpf_mem_alloc` may reuse such memory earlier; the simulator prefers
 *   the stricter model, which makes stale accesses visible.)
 * @module
 */
import { ExecError } from "../../exec/fault.ts";
import type { MapEnv } from "./map.ts";

/** One element's value memory: one view and address per copy. */
export interface ElemMem {
  /** Slot in the preallocated pool, or -1. */
  readonly slot: number;
  /** The value bytes of each copy (`elemSize` bytes each). */
  readonly bytes: readonly Uint8Array[];
  /** The address of each copy. */
  readonly addrs: readonly bigint[];
}

/** A source of element memory. */
export interface ElemStore {
  /** A free element, or null when none is left / memory ran out. */
  alloc(): ElemMem | null;
  /** Returns an element whose fields were already freed. */
  release(mem: ElemMem): void;
  /** Unmaps everything (map destruction, after the RCU barrier). */
  destroy(): void;
}

/** Options shared by both stores. */
export interface StoreShape {
  /** Map name, for region names. */
  readonly name: string;
  /** Copies per element (nr_cpus for per-CPU maps, else 1). */
  readonly copies: number;
  /** Bytes per copy: `round_up(value_size, 8)`. */
  readonly elemSize: number;
  /** What programs may do with the values (`progAccess()` in map.ts). */
  readonly access: { readonly read: boolean; readonly write: boolean };
}

/** The preallocated pool of `slots` elements (`prealloc_init()`). */
export class PreallocStore implements ElemStore {
  private readonly pools: Uint8Array[] = [];
  private readonly bases: bigint[] = [];
  private readonly mems: (ElemMem | undefined)[];
  /** Free slots; the last one pops first. */
  private readonly free: number[] = [];

  /** Maps one region per copy, holding `slots` elements. */
  constructor(
    private readonly env: MapEnv,
    private readonly shape: StoreShape,
    readonly slots: number,
  ) {
    for (let c = 0; c < shape.copies; c++) {
      const bytes = new Uint8Array(slots * shape.elemSize);
      this.pools.push(bytes);
      this.bases.push(
        env.space.mapRegion("map_value", bytes, {
          name: shape.copies > 1 ? `${shape.name}[cpu${c}]` : shape.name,
          ...shape.access,
        }),
      );
    }
    this.mems = new Array(slots);
    for (let s = slots - 1; s >= 0; s--) this.free.push(s);
  }

  /** The memory of slot `s`. */
  slot(s: number): ElemMem {
    let m = this.mems[s];
    if (m === undefined) {
      const off = s * this.shape.elemSize;
      m = {
        slot: s,
        bytes: this.pools.map((p) =>
          p.subarray(off, off + this.shape.elemSize)
        ),
        addrs: this.bases.map((b) => b + BigInt(off)),
      };
      this.mems[s] = m;
    }
    return m;
  }

  /** `__pcpu_freelist_pop()`. */
  alloc(): ElemMem | null {
    const s = this.free.pop();
    return s === undefined ? null : this.slot(s);
  }

  /** `pcpu_freelist_push()`: immediately reusable. */
  release(mem: ElemMem): void {
    this.free.push(mem.slot);
  }

  /** Unmaps the pools. */
  destroy(): void {
    for (const b of this.bases) this.env.space.unmapRegion(b);
  }
}

/** Per-element regions freed after a grace period (`BPF_F_NO_PREALLOC`). */
export class DynamicStore implements ElemStore {
  /** Elements handed out and not yet unmapped (live or awaiting their GP). */
  private readonly mapped = new Set<ElemMem>();

  /** A store of elements of `shape`. */
  constructor(
    private readonly env: MapEnv,
    private readonly shape: StoreShape,
  ) {}

  /** Maps fresh zeroed regions, or returns null when the address space is exhausted. */
  alloc(): ElemMem | null {
    const bytes: Uint8Array[] = [];
    const addrs: bigint[] = [];
    try {
      for (let c = 0; c < this.shape.copies; c++) {
        const b = new Uint8Array(this.shape.elemSize);
        addrs.push(
          this.env.space.mapRegion("map_value", b, {
            name: `${this.shape.name} elem`,
            ...this.shape.access,
          }),
        );
        bytes.push(b);
      }
    } catch (e) {
      if (!(e instanceof ExecError)) throw e;
      for (const a of addrs) this.env.space.unmapRegion(a);
      return null;
    }
    const mem = { slot: -1, bytes, addrs };
    this.mapped.add(mem);
    return mem;
  }

  /** Unmaps after an RCU grace period. */
  release(mem: ElemMem): void {
    this.env.deferFree(() => this.unmap(mem));
  }

  private unmap(mem: ElemMem): void {
    if (!this.mapped.delete(mem)) return;
    for (const a of mem.addrs) this.env.space.unmapRegion(a);
  }

  /** Unmaps every element still mapped. */
  destroy(): void {
    for (const mem of [...this.mapped]) this.unmap(mem);
  }
}
