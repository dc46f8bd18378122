/**
 * The two LRU flavours of `BPF_MAP_TYPE_LRU_HASH` / `LRU_PERCPU_HASH`
 * (kernel/bpf/bpf_lru_list.c), node for node, on the list machinery of
 * lru_list.ts.
 *
 * **Common LRU** (the default): one global list set plus, per CPU, a local
 * free list and a local pending list. A CPU allocates from its local free
 * list; when that is empty it flushes its pending nodes into the global
 * lists, rotates them, and moves up to `target_free` nodes from the global
 * free list — *shrinking* (evicting) inactive nodes when there are fewer.
 * So an LRU map may evict before it holds `max_entries` elements, exactly as
 * the kernel does. When a CPU finds nothing at all it steals from the CPUs'
 * local lists in round-robin order.
 *
 * **Per-CPU LRU** (`BPF_F_NO_COMMON_LRU`): each CPU owns `max_entries /
 * nr_cpus` nodes and one list set; a CPU only ever evicts its own nodes.
 *
 * In both, lookups from programs set a node's reference bit; rotation moves
 * referenced nodes to the active list and clears the bit, and shrinking
 * evicts unreferenced inactive nodes from the tail first, falling back to
 * the inactive (or active) tail regardless of the bit.
 * @module
 */
import {
  LruLists,
  type LruListSet,
  T_ACTIVE,
  T_FREE,
  T_INACTIVE,
  T_LOCAL_FREE,
  T_LOCAL_PENDING,
} from "./lru_list.ts";

/** `LOCAL_FREE_TARGET`, also `LOCAL_NR_SCANS`. */
export const LOCAL_FREE_TARGET = 128;
/** `PERCPU_FREE_TARGET`, also `PERCPU_NR_SCANS`. */
export const PERCPU_FREE_TARGET = 4;

/** What a hash map needs from its LRU. */
export interface LruPolicy {
  /** A free node for an element created on `cpu`, or -1. May evict. */
  popFree(cpu: number): number;
  /** A node whose element left the table. */
  pushFree(node: number): void;
  /** `bpf_lru_node_set_ref()`. */
  setRef(node: number): void;
  /** Node indices of one list of `cpu`'s list set (the global one for the common LRU). */
  listNodes(which: "active" | "inactive" | "free", cpu?: number): number[];
}

const LIST_TYPE = { active: T_ACTIVE, inactive: T_INACTIVE, free: T_FREE };

/** The common LRU (`bpf_common_lru`). */
export class BpfLru extends LruLists implements LruPolicy {
  /** `lru->target_free = clamp(nr_elems / nr_cpus / 2, 1, LOCAL_FREE_TARGET)`. */
  readonly targetFree: number;
  private readonly nrCpus: number;
  private readonly global: LruListSet;
  private readonly nextSteal: Int32Array;

  /** `bpf_lru_init()` + `bpf_common_lru_populate()`. */
  constructor(
    nrNodes: number,
    nrCpus: number,
    delFromHtab: (node: number) => boolean,
  ) {
    super(nrNodes, 3 + 2 * nrCpus, LOCAL_FREE_TARGET, delFromHtab);
    this.nrCpus = nrCpus;
    this.targetFree = Math.min(
      Math.max(Math.floor(Math.floor(nrNodes / nrCpus) / 2), 1),
      LOCAL_FREE_TARGET,
    );
    this.global = this.listSet(nrNodes);
    this.nextSteal = Int32Array.from({ length: nrCpus }, (_, c) => c);
    for (let i = 0; i < nrNodes; i++) {
      this.type[i] = T_FREE;
      this.listAdd(i, nrNodes + T_FREE);
    }
  }

  /** The head of `cpu`'s local free list. */
  private localFree(cpu: number): number {
    return this.nrNodes + 3 + 2 * cpu;
  }
  /** The head of `cpu`'s local pending list. */
  private localPending(cpu: number): number {
    return this.nrNodes + 4 + 2 * cpu;
  }

  /** Node indices of a global list, head to tail. */
  listNodes(which: "active" | "inactive" | "free"): number[] {
    return this.nodesOf(this.global, LIST_TYPE[which]);
  }

  /** `__local_list_flush()`: pending nodes join the global lists. */
  private localFlush(cpu: number): void {
    const h = this.localPending(cpu);
    for (let x = this.prev[h], tmp = this.prev[x]; x !== h;) {
      this.moveIn(this.global, x, this.ref[x] ? T_ACTIVE : T_INACTIVE);
      x = tmp;
      tmp = this.prev[x];
    }
  }

  /** `bpf_lru_list_pop_free_to_local()`. */
  private popFreeToLocal(cpu: number): void {
    const l = this.global;
    const lf = this.localFree(cpu);
    this.localFlush(cpu);
    this.rotate(l);
    const fh = l.base + T_FREE;
    let nfree = 0;
    for (let x = this.next[fh], tmp = this.next[x]; x !== fh;) {
      this.moveToFree(l, x, lf, T_LOCAL_FREE);
      if (++nfree === this.targetFree) break;
      x = tmp;
      tmp = this.next[x];
    }
    if (nfree < this.targetFree) {
      this.shrink(l, this.targetFree - nfree, lf, T_LOCAL_FREE);
    }
  }

  /** `__local_list_pop_free()`: the first local free node, or -1. */
  private localPopFree(cpu: number): number {
    const h = this.localFree(cpu);
    const x = this.next[h];
    if (x === h) return -1;
    this.listDel(x);
    return x;
  }

  /** `__local_list_pop_pending()`: unreferenced first, then any. */
  private localPopPending(cpu: number): number {
    const h = this.localPending(cpu);
    for (const force of [false, true]) {
      for (let x = this.prev[h]; x !== h; x = this.prev[x]) {
        if ((!this.ref[x] || force) && this.delFromHtab(x)) {
          this.listDel(x);
          return x;
        }
      }
    }
    return -1;
  }

  /** `__local_list_add_pending()`: a handed-out node waits on its CPU's pending list. */
  private localAddPending(cpu: number, x: number): void {
    this.cpuOf[x] = cpu;
    this.type[x] = T_LOCAL_PENDING;
    this.ref[x] = 0;
    this.listAdd(x, this.localPending(cpu));
  }

  /** `bpf_common_lru_pop_free()`. */
  popFree(cpu: number): number {
    let x = this.localPopFree(cpu);
    if (x < 0) {
      this.popFreeToLocal(cpu);
      x = this.localPopFree(cpu);
    }
    if (x >= 0) {
      this.localAddPending(cpu, x);
      return x;
    }
    const first = this.nextSteal[cpu];
    let steal = first;
    do {
      x = this.localPopFree(steal);
      if (x < 0) x = this.localPopPending(steal);
      steal = (steal + 1) % this.nrCpus;
    } while (x < 0 && steal !== first);
    this.nextSteal[cpu] = steal;
    if (x >= 0) this.localAddPending(cpu, x);
    return x;
  }

  /** `bpf_common_lru_push_free()`. */
  pushFree(x: number): void {
    const t = this.type[x];
    if (t === T_FREE || t === T_LOCAL_FREE) return;
    if (t === T_LOCAL_PENDING) {
      this.type[x] = T_LOCAL_FREE;
      this.ref[x] = 0;
      this.listMove(x, this.localFree(this.cpuOf[x]));
      return;
    }
    this.move(this.global, x, T_FREE);
  }
}

/** The per-CPU LRU (`BPF_F_NO_COMMON_LRU`, `bpf_lru_list` per CPU). */
export class BpfPercpuLru extends LruLists implements LruPolicy {
  private readonly sets: LruListSet[];

  /** `bpf_lru_init()` + `bpf_percpu_lru_populate()`: `nrNodes / nrCpus` nodes per CPU. */
  constructor(
    nrNodes: number,
    nrCpus: number,
    delFromHtab: (node: number) => boolean,
  ) {
    super(nrNodes, 3 * nrCpus, PERCPU_FREE_TARGET, delFromHtab);
    this.sets = Array.from(
      { length: nrCpus },
      (_, c) => this.listSet(nrNodes + 3 * c),
    );
    const perCpu = Math.floor(nrNodes / nrCpus);
    for (let i = 0; i < nrNodes; i++) {
      const cpu = Math.min(Math.floor(i / perCpu), nrCpus - 1);
      this.cpuOf[i] = cpu;
      this.type[i] = T_FREE;
      this.listAdd(i, this.sets[cpu].base + T_FREE);
    }
  }

  /** Node indices of one of `cpu`'s lists, head to tail. */
  listNodes(which: "active" | "inactive" | "free", cpu = 0): number[] {
    return this.nodesOf(this.sets[cpu], LIST_TYPE[which]);
  }

  /** `bpf_percpu_lru_pop_free()`: only `cpu`'s own nodes. */
  popFree(cpu: number): number {
    const l = this.sets[cpu];
    const fh = l.base + T_FREE;
    this.rotate(l);
    if (this.next[fh] === fh) this.shrink(l, PERCPU_FREE_TARGET, fh, T_FREE);
    const x = this.next[fh];
    if (x === fh) return -1;
    this.ref[x] = 0;
    this.move(l, x, T_INACTIVE);
    return x;
  }

  /** `bpf_percpu_lru_push_free()`. */
  pushFree(x: number): void {
    this.move(this.sets[this.cpuOf[x]], x, T_FREE);
  }
}

/**
 * `htab_map_alloc()` for `BPF_F_NO_COMMON_LRU`: `max_entries` rounded up to
 * a multiple of the CPU count (down if that overflows u32), so that every
 * CPU's list gets the same number of nodes.
 */
export function percpuLruMaxEntries(
  maxEntries: number,
  nrCpus: number,
): number {
  const up = Math.ceil(maxEntries / nrCpus) * nrCpus;
  return up > 0xffffffff ? Math.floor(maxEntries / nrCpus) * nrCpus : up;
}
