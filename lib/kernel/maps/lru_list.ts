/**
 * The list machinery of kernel/bpf/bpf_lru_list.c shared by both LRU
 * flavours: `struct bpf_lru_list` (active, inactive and free lists with
 * counts and a rotation cursor), reference bits, rotation and shrinking.
 *
 * Lists are intrusive doubly-linked lists over node indices (typed arrays),
 * with `list_add()` / `list_move()` inserting right after the head as the
 * kernel's `struct list_head` does, so every order is the kernel's. Heads
 * are extra indices after the nodes.
 * @module
 */

/** `BPF_LRU_LIST_T_ACTIVE`. */
export const T_ACTIVE = 0;
/** `BPF_LRU_LIST_T_INACTIVE`. */
export const T_INACTIVE = 1;
/** `BPF_LRU_LIST_T_FREE`. */
export const T_FREE = 2;
/** `BPF_LRU_LOCAL_LIST_T_FREE`. */
export const T_LOCAL_FREE = 3;
/** `BPF_LRU_LOCAL_LIST_T_PENDING`. */
export const T_LOCAL_PENDING = 4;

/** One `struct bpf_lru_list`: its heads start at `base` (+ `T_*`). */
export interface LruListSet {
  /** Index of the active head; inactive and free follow. */
  readonly base: number;
  /** `counts[]`: active and inactive. */
  readonly counts: number[];
  /** `next_inactive_rotation`: a node or the inactive head. */
  nextInactiveRotation: number;
}

/** Nodes, heads and the operations on `struct bpf_lru_list` both flavours use. */
export class LruLists {
  /** Number of nodes (the map's preallocated elements). */
  readonly nrNodes: number;
  /** `lru->nr_scans`. */
  readonly nrScans: number;
  /** `list_head.next` of nodes and heads. */
  protected readonly next: Int32Array;
  /** `list_head.prev` of nodes and heads. */
  protected readonly prev: Int32Array;
  /** `node->type`. */
  protected readonly type: Int8Array;
  /** `node->ref`. */
  protected readonly ref: Uint8Array;
  /** `node->cpu`. */
  protected readonly cpuOf: Int32Array;
  /** `lru->del_from_htab`: unlinks a node's element; false if not in the table. */
  protected readonly delFromHtab: (node: number) => boolean;

  /** Nodes `0..nrNodes-1` and `nrHeads` empty list heads after them. */
  constructor(
    nrNodes: number,
    nrHeads: number,
    nrScans: number,
    delFromHtab: (node: number) => boolean,
  ) {
    this.nrNodes = nrNodes;
    this.nrScans = nrScans;
    this.delFromHtab = delFromHtab;
    const total = nrNodes + nrHeads;
    this.next = new Int32Array(total);
    this.prev = new Int32Array(total);
    for (let h = nrNodes; h < total; h++) this.next[h] = this.prev[h] = h;
    this.type = new Int8Array(nrNodes);
    this.ref = new Uint8Array(nrNodes);
    this.cpuOf = new Int32Array(nrNodes);
  }

  /** A list set whose three heads start at index `base`. */
  protected listSet(base: number): LruListSet {
    return { base, counts: [0, 0], nextInactiveRotation: base + T_INACTIVE };
  }

  /** `list_del()`. */
  protected listDel(x: number): void {
    this.next[this.prev[x]] = this.next[x];
    this.prev[this.next[x]] = this.prev[x];
  }
  /** `list_add()`: right after the head. */
  protected listAdd(x: number, h: number): void {
    const n = this.next[h];
    this.next[h] = x;
    this.prev[x] = h;
    this.next[x] = n;
    this.prev[n] = x;
  }
  /** `list_move()`. */
  protected listMove(x: number, h: number): void {
    this.listDel(x);
    this.listAdd(x, h);
  }

  /** `bpf_lru_node_set_ref()`: a program looked the element up. */
  setRef(node: number): void {
    this.ref[node] = 1;
  }

  /** Whether the node's reference bit is set. */
  isRef(node: number): boolean {
    return this.ref[node] === 1;
  }

  /** Node indices of one list of `l`, head to tail. */
  protected nodesOf(l: LruListSet, t: number): number[] {
    const h = l.base + t;
    const out: number[] = [];
    for (let x = this.next[h]; x !== h; x = this.next[x]) out.push(x);
    return out;
  }

  /** `__bpf_lru_node_move_in()`. */
  protected moveIn(l: LruListSet, x: number, t: number): void {
    l.counts[t]++;
    this.type[x] = t;
    this.ref[x] = 0;
    this.listMove(x, l.base + t);
  }

  /** `__bpf_lru_node_move()`: counts follow, the reference bit clears. */
  protected move(l: LruListSet, x: number, t: number): void {
    const from = this.type[x];
    if (from !== t) {
      if (from < T_FREE) l.counts[from]--;
      if (t < T_FREE) l.counts[t]++;
      this.type[x] = t;
    }
    this.ref[x] = 0;
    if (x === l.nextInactiveRotation) {
      l.nextInactiveRotation = this.prev[x];
    }
    this.listMove(x, l.base + t);
  }

  /** `__bpf_lru_node_move_to_free()`. */
  protected moveToFree(
    l: LruListSet,
    x: number,
    freeHead: number,
    freeType: number,
  ): void {
    if (x === l.nextInactiveRotation) {
      l.nextInactiveRotation = this.prev[x];
    }
    if (this.type[x] < T_FREE) l.counts[this.type[x]]--;
    this.type[x] = freeType;
    this.listMove(x, freeHead);
  }

  /** `__bpf_lru_list_rotate_active()`. */
  private rotateActive(l: LruListSet): void {
    const h = l.base + T_ACTIVE;
    const first = this.next[h];
    let i = 0;
    for (let x = this.prev[h], tmp = this.prev[x]; x !== h;) {
      this.move(l, x, this.ref[x] ? T_ACTIVE : T_INACTIVE);
      if (++i === this.nrScans || x === first) break;
      x = tmp;
      tmp = this.prev[x];
    }
  }

  /** `__bpf_lru_list_rotate_inactive()`: from the cursor towards the head. */
  private rotateInactive(l: LruListSet): void {
    const h = l.base + T_INACTIVE;
    if (this.next[h] === h) return;
    let last = this.next[l.nextInactiveRotation];
    if (last === h) last = this.next[last];
    let cur = l.nextInactiveRotation;
    let nxt = h;
    let i = 0;
    while (i < this.nrScans) {
      if (cur === h) {
        cur = this.prev[cur];
        continue;
      }
      nxt = this.prev[cur];
      if (this.ref[cur]) this.move(l, cur, T_ACTIVE);
      if (cur === last) break;
      cur = nxt;
      i++;
    }
    l.nextInactiveRotation = nxt;
  }

  /** `__bpf_lru_list_rotate()`: refill inactive from active when it runs low. */
  protected rotate(l: LruListSet): void {
    if (l.counts[T_INACTIVE] < l.counts[T_ACTIVE]) this.rotateActive(l);
    this.rotateInactive(l);
  }

  /** `__bpf_lru_list_shrink_inactive()`: evicts unreferenced nodes from the tail. */
  private shrinkInactive(
    l: LruListSet,
    target: number,
    freeHead: number,
    freeType: number,
  ): number {
    const h = l.base + T_INACTIVE;
    let i = 0;
    let done = 0;
    for (let x = this.prev[h], tmp = this.prev[x]; x !== h;) {
      if (this.ref[x]) this.move(l, x, T_ACTIVE);
      else if (this.delFromHtab(x)) {
        this.moveToFree(l, x, freeHead, freeType);
        if (++done === target) break;
      }
      if (++i === this.nrScans) break;
      x = tmp;
      tmp = this.prev[x];
    }
    return done;
  }

  /** `__bpf_lru_list_shrink()`: evict, by force (ignoring references) if need be. */
  protected shrink(
    l: LruListSet,
    target: number,
    freeHead: number,
    freeType: number,
  ): number {
    const done = this.shrinkInactive(l, target, freeHead, freeType);
    if (done) return done;
    const inactive = l.base + T_INACTIVE;
    const h = this.next[inactive] !== inactive ? inactive : l.base + T_ACTIVE;
    for (let x = this.prev[h]; x !== h; x = this.prev[x]) {
      if (this.delFromHtab(x)) {
        this.moveToFree(l, x, freeHead, freeType);
        return 1;
      }
    }
    return 0;
  }
}
