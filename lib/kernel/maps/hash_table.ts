/**
 * The JavaScript side of a hash map: keys to elements, in a stable
 * iteration order (insertion order, a replaced key keeping its place), and
 * for preallocated maps which element occupies each slot — what the LRU
 * needs to evict by node. The kernel's buckets, jhash and random seed have
 * no observable order worth reproducing; a deterministic one is.
 * @module
 */
import type { ElemMem } from "./elem_store.ts";

/** One element: the key, its value memory, its place in iteration order. */
export interface HashElem {
  /** {@link keyId} of the key. */
  readonly id: string;
  /** The key bytes (owned by the table). */
  readonly key: Uint8Array;
  /** The value memory. */
  readonly mem: ElemMem;
  /** Previous element in iteration order. */
  prev: HashElem | null;
  /** Next element in iteration order. */
  next: HashElem | null;
}

/** Identity of a key in the JavaScript table (one char per byte). */
export function keyId(key: Uint8Array): string {
  let s = "";
  for (let i = 0; i < key.length; i++) s += String.fromCharCode(key[i]);
  return s;
}

/** Keys to elements, ordered, with a slot index. */
export class HashTable {
  private readonly byId = new Map<string, HashElem>();
  private readonly bySlot: (HashElem | undefined)[] = [];
  /** First element in iteration order. */
  first: HashElem | null = null;
  private last: HashElem | null = null;

  /** Number of elements. */
  get size(): number {
    return this.byId.size;
  }

  /** The element with key id `id`. */
  get(id: string): HashElem | undefined {
    return this.byId.get(id);
  }

  /** The element whose memory is slot `slot`. */
  atSlot(slot: number): HashElem | undefined {
    return this.bySlot[slot];
  }

  /** Inserts `e`, at the place of `replacing` (which leaves) or at the end. */
  link(e: HashElem, replacing: HashElem | null): void {
    if (replacing !== null) {
      this.clearSlot(replacing);
      e.prev = replacing.prev;
      e.next = replacing.next;
      if (e.prev) e.prev.next = e;
      else this.first = e;
      if (e.next) e.next.prev = e;
      else this.last = e;
    } else {
      e.prev = this.last;
      if (this.last) this.last.next = e;
      else this.first = e;
      this.last = e;
    }
    this.byId.set(e.id, e);
    if (e.mem.slot >= 0) this.bySlot[e.mem.slot] = e;
  }

  /** Removes `e`. */
  unlink(e: HashElem): void {
    if (e.prev) e.prev.next = e.next;
    else this.first = e.next;
    if (e.next) e.next.prev = e.prev;
    else this.last = e.prev;
    this.byId.delete(e.id);
    this.clearSlot(e);
  }

  /** Forgets which element held `e`'s slot, if it still does. */
  private clearSlot(e: HashElem): void {
    if (e.mem.slot >= 0 && this.bySlot[e.mem.slot] === e) {
      this.bySlot[e.mem.slot] = undefined;
    }
  }

  /** Empties the table. */
  clear(): void {
    this.byId.clear();
    this.bySlot.length = 0;
    this.first = this.last = null;
  }
}
