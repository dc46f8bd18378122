/**
 * `BPF_MAP_TYPE_QUEUE` and `BPF_MAP_TYPE_STACK`
 * (kernel/bpf/queue_stack_maps.c): keyless maps of `max_entries` values in
 * a ring of `max_entries + 1` slots. Programs use `bpf_map_push_elem`,
 * `bpf_map_pop_elem` and `bpf_map_peek_elem`, which copy values rather
 * than hand out pointers; from user space `BPF_MAP_UPDATE_ELEM` pushes,
 * `BPF_MAP_LOOKUP_ELEM` peeks and `BPF_MAP_LOOKUP_AND_DELETE_ELEM` pops.
 * @module
 */
import { MapBase } from "./base.ts";
import {
  BPF_EXIST,
  BPF_F_ACCESS_MASK,
  BPF_F_NUMA_NODE,
  checkValue,
  E2BIG,
  EINVAL,
  ENOENT,
  EPERM,
  KMALLOC_MAX_SIZE,
  type MapAttr,
  type MapEnv,
} from "./map.ts";

/** `queue_stack_map_alloc_check()`: 0 or a negative errno. */
export function queueStackAllocCheck(attr: MapAttr): number {
  if (
    attr.maxEntries === 0 || attr.keySize !== 0 || attr.valueSize === 0 ||
    (attr.flags & ~(BPF_F_NUMA_NODE | BPF_F_ACCESS_MASK)) !== 0
  ) return -EINVAL;
  if (attr.valueSize > KMALLOC_MAX_SIZE) return -E2BIG;
  return 0;
}

/** A queue (FIFO) or stack (LIFO) map. */
export class QueueStackMap extends MapBase {
  /** True for `BPF_MAP_TYPE_STACK`. */
  readonly stack: boolean;
  /** `max_entries + 1` slots of `value_size` bytes. */
  private readonly slots: Uint8Array[];
  /** Next slot to push into. */
  private head = 0;
  /** Oldest element. */
  private tail = 0;

  /** `queue_stack_map_alloc()`. */
  constructor(attr: MapAttr, env: MapEnv, stack: boolean) {
    super(attr, null, env, attr.valueSize);
    this.stack = stack;
    this.slots = Array.from(
      { length: attr.maxEntries + 1 },
      () => new Uint8Array(attr.valueSize),
    );
  }

  /** Number of elements held. */
  get count(): number {
    const n = this.slots.length;
    return (this.head - this.tail + n) % n;
  }

  /** `bpf_map_push_elem()`: -E2BIG when full unless `BPF_EXIST` overwrites the oldest. */
  push(value: Uint8Array, flags: number): number {
    checkValue(this.attr, value, this.attr.valueSize);
    if (flags & ~BPF_EXIST) return -EINVAL;
    const n = this.slots.length;
    if (this.count === n - 1) {
      if (!(flags & BPF_EXIST)) return -E2BIG;
      this.tail = (this.tail + 1) % n;
    }
    this.slots[this.head].set(value);
    this.head = (this.head + 1) % n;
    return 0;
  }

  /** The slot `peek`/`pop` would take, or -1 when empty. */
  private nextSlot(): number {
    if (this.count === 0) return -1;
    const n = this.slots.length;
    return this.stack ? (this.head - 1 + n) % n : this.tail;
  }

  /** `bpf_map_peek_elem()`: a copy of the next value, or -ENOENT. */
  peek(): Uint8Array | number {
    const i = this.nextSlot();
    return i < 0 ? -ENOENT : this.slots[i].slice();
  }

  /** `bpf_map_pop_elem()`: the next value, removed, or -ENOENT. */
  pop(): Uint8Array | number {
    const i = this.nextSlot();
    if (i < 0) return -ENOENT;
    if (this.stack) this.head = i;
    else this.tail = (i + 1) % this.slots.length;
    return this.slots[i].slice();
  }

  /** `BPF_MAP_LOOKUP_AND_DELETE_ELEM`: pop, subject to user-space write permission. */
  lookupAndDeleteFromSyscall(): Uint8Array | number {
    if (!this.syscallWritable()) return -EPERM;
    return this.pop();
  }

  /** Programs cannot look elements up (`queue_stack_map_lookup_elem()`). */
  lookup(_key: Uint8Array, _cpu: number): bigint | null {
    return null;
  }
  /** `queue_stack_map_update_elem()`: -EINVAL. */
  update(_k: Uint8Array, _v: Uint8Array, _f: number, _c: number): number {
    return -EINVAL;
  }
  /** `queue_stack_map_delete_elem()`: -EINVAL. */
  delete(_key: Uint8Array, _cpu: number): number {
    return -EINVAL;
  }
  /** `queue_stack_map_get_next_key()`: -EINVAL. */
  getNextKey(_key: Uint8Array | null): Uint8Array | number {
    return -EINVAL;
  }
  /** `BPF_MAP_LOOKUP_ELEM` peeks. */
  protected copyOut(_key: Uint8Array): Uint8Array | null {
    const v = this.peek();
    return typeof v === "number" ? null : v;
  }
  /** `BPF_MAP_UPDATE_ELEM` pushes. */
  protected updateSys(
    _key: Uint8Array,
    value: Uint8Array,
    flags: number,
    _cpu: number,
  ): number {
    return this.push(value, flags);
  }
  /** Nothing is mapped. */
  destroy(): void {
    this.destroyed = true;
  }
}
