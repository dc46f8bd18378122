/**
 * Kernel layouts of the BPF graph structures (include/linux/bpf.h,
 * include/linux/types.h, include/linux/rbtree_types.h, x86-64) and the word
 * access the graph runtime uses on them. The structures live in simulated
 * memory (`alloc` and `map_value` regions), so a program can read — and,
 * with verification off, corrupt — every word of them; the runtime reads
 * them back through {@link AddressSpace} and reports what it finds wrong.
 * @module
 */
import { type AddressSpace, PERM_READ, PERM_WRITE } from "../../exec/memory.ts";
import { ExecError } from "../../exec/fault.ts";

/** `struct list_head.next` (also `struct bpf_list_head` / `bpf_list_node_kern`). */
export const LIST_NEXT = 0;
/** `struct list_head.prev`. */
export const LIST_PREV = 8;
/** `struct bpf_list_node_kern.owner`: NULL, the head, or {@link BPF_PTR_POISON}. */
export const LIST_NODE_OWNER = 16;
/** `sizeof(struct bpf_list_head)`. */
export const BPF_LIST_HEAD_SIZE = 16;
/** `sizeof(struct bpf_list_node_kern)`. */
export const BPF_LIST_NODE_SIZE = 24;

/** `struct rb_node.__rb_parent_color`: parent address | colour bit. */
export const RB_PARENT_COLOR = 0;
/** `struct rb_node.rb_right`. */
export const RB_RIGHT = 8;
/** `struct rb_node.rb_left`. */
export const RB_LEFT = 16;
/** `struct bpf_rb_node_kern.owner`. */
export const RB_NODE_OWNER = 24;
/** `sizeof(struct bpf_rb_node_kern)`. */
export const BPF_RB_NODE_SIZE = 32;
/** `struct rb_root_cached.rb_root.rb_node`. */
export const RB_ROOT_NODE = 0;
/** `struct rb_root_cached.rb_leftmost`. */
export const RB_ROOT_LEFTMOST = 8;
/** `sizeof(struct bpf_rb_root)`. */
export const BPF_RB_ROOT_SIZE = 16;
/** `RB_RED` (colour bit clear). */
export const RB_RED = 0n;
/** `RB_BLACK`. */
export const RB_BLACK = 1n;

/** `POISON_POINTER_DELTA` on x86-64 (`CONFIG_ILLEGAL_POINTER_VALUE`). */
export const POISON_POINTER_DELTA = 0xdead000000000000n;
/** `BPF_PTR_POISON`: a node's owner while it is being added. */
export const BPF_PTR_POISON: bigint = POISON_POINTER_DELTA + 0xeb9fn;
/** `LIST_POISON1`: `next` of a `list_del()`ed entry. */
export const LIST_POISON1: bigint = POISON_POINTER_DELTA + 0x100n;
/** `LIST_POISON2`: `prev` of a `list_del()`ed entry. */
export const LIST_POISON2: bigint = POISON_POINTER_DELTA + 0x122n;

/**
 * Corruption of a graph structure the runtime detected, worded as the
 * kernel's `CONFIG_DEBUG_LIST` checks (lib/list_debug.c) or `refcount_t`
 * warnings. An {@link ExecError}, so the running program faults at the
 * kfunc call that found it.
 */
export class GraphCorruption extends ExecError {
  /** Builds the report; `detail` is the kernel's message without the newline. */
  constructor(detail: string) {
    super(-1, detail);
    this.name = "GraphCorruption";
  }
}

/** `%px`: 16 hex digits, no prefix, as the kernel prints raw pointers. */
export function px(address: bigint): string {
  return BigInt.asUintN(64, address).toString(16).padStart(16, "0");
}

const U32 = 0xffffffffn;

/**
 * Loads the 64-bit word at `address` (a `MemoryFault` if unmapped). The
 * address is split without `BigInt.asUintN`: graph addresses are already
 * unsigned 64-bit values, and this is the runtime's hottest path.
 */
export function readWord(space: AddressSpace, address: bigint): bigint {
  const off = space.at(
    Number(address & U32) | 0,
    Number((address >> 32n) & U32) | 0,
    0,
    8,
    PERM_READ,
    -1,
  );
  return space.hitView.getBigUint64(off, true);
}

/** Stores the 64-bit word at `address`. */
export function writeWord(
  space: AddressSpace,
  address: bigint,
  value: bigint,
): void {
  const off = space.at(
    Number(address & U32) | 0,
    Number((address >> 32n) & U32) | 0,
    0,
    8,
    PERM_WRITE,
    -1,
  );
  space.hitView.setBigUint64(off, value, true);
}

/** `INIT_LIST_HEAD()`: next = prev = the head itself. */
export function initListHead(space: AddressSpace, head: bigint): void {
  writeWord(space, head + BigInt(LIST_NEXT), head);
  writeWord(space, head + BigInt(LIST_PREV), head);
}

/** `RB_CLEAR_NODE()`: the parent word points at the node itself. */
export function rbClearNode(space: AddressSpace, node: bigint): void {
  writeWord(space, node + BigInt(RB_PARENT_COLOR), node);
}
