/**
 * BPF linked lists (`bpf_list_push_*_impl`, `bpf_list_pop_*`,
 * `bpf_list_front/back`, `bpf_list_head_free()`), on `struct list_head`
 * words in simulated memory, with the `CONFIG_DEBUG_LIST` checks of
 * lib/list_debug.c: a corrupted link is reported in the kernel's words
 * ({@link GraphCorruption}) instead of being followed.
 * @module
 */
import type { BtfField, BtfRecord } from "../../btf/field_types.ts";
import { ExecError } from "../../exec/fault.ts";
import type { AddressSpace } from "../../exec/memory.ts";
import type { GraphRuntime } from "./objects.ts";
import {
  BPF_PTR_POISON,
  GraphCorruption,
  initListHead,
  LIST_NEXT,
  LIST_NODE_OWNER,
  LIST_POISON1,
  LIST_POISON2,
  LIST_PREV,
  px,
  readWord,
  writeWord,
} from "./layouts.ts";

/** `EINVAL`. */
export const EINVAL = 22;
/** Most entries a drain or a walk follows before calling the list a loop. */
export const MAX_LIST_WALK: number = 1 << 22;

const NEXT = BigInt(LIST_NEXT);
const PREV = BigInt(LIST_PREV);
const OWNER = BigInt(LIST_NODE_OWNER);

/** `__list_add_valid_or_report()`: throws the kernel's report on corruption. */
function listAddValid(
  space: AddressSpace,
  entry: bigint,
  prev: bigint,
  next: bigint,
): void {
  if (prev === 0n) {
    throw new GraphCorruption("list_add corruption. prev is NULL.");
  }
  if (next === 0n) {
    throw new GraphCorruption("list_add corruption. next is NULL.");
  }
  const nextPrev = readWord(space, next + PREV);
  if (nextPrev !== prev) {
    throw new GraphCorruption(
      `list_add corruption. next->prev should be prev (${px(prev)}), but was ${
        px(nextPrev)
      }. (next=${px(next)}).`,
    );
  }
  const prevNext = readWord(space, prev + NEXT);
  if (prevNext !== next) {
    throw new GraphCorruption(
      `list_add corruption. prev->next should be next (${px(next)}), but was ${
        px(prevNext)
      }. (prev=${px(prev)}).`,
    );
  }
  if (entry === prev || entry === next) {
    throw new GraphCorruption(
      `list_add double add: new=${px(entry)}, prev=${px(prev)}, next=${
        px(next)
      }.`,
    );
  }
}

/** `__list_add()`: links `entry` between `prev` and `next`. */
function listAddBetween(
  space: AddressSpace,
  entry: bigint,
  prev: bigint,
  next: bigint,
): void {
  listAddValid(space, entry, prev, next);
  writeWord(space, next + PREV, entry);
  writeWord(space, entry + NEXT, next);
  writeWord(space, entry + PREV, prev);
  writeWord(space, prev + NEXT, entry);
}

/** `__list_del_entry_valid_or_report()`. */
function listDelValid(space: AddressSpace, entry: bigint): [bigint, bigint] {
  const prev = readWord(space, entry + PREV);
  const next = readWord(space, entry + NEXT);
  const e = px(entry);
  if (next === 0n) {
    throw new GraphCorruption(`list_del corruption, ${e}->next is NULL`);
  }
  if (prev === 0n) {
    throw new GraphCorruption(`list_del corruption, ${e}->prev is NULL`);
  }
  if (next === LIST_POISON1) {
    throw new GraphCorruption(
      `list_del corruption, ${e}->next is LIST_POISON1 (${px(LIST_POISON1)})`,
    );
  }
  if (prev === LIST_POISON2) {
    throw new GraphCorruption(
      `list_del corruption, ${e}->prev is LIST_POISON2 (${px(LIST_POISON2)})`,
    );
  }
  const prevNext = readWord(space, prev + NEXT);
  if (prevNext !== entry) {
    throw new GraphCorruption(
      `list_del corruption. prev->next should be ${e}, but was ${
        px(prevNext)
      }. (prev=${px(prev)})`,
    );
  }
  const nextPrev = readWord(space, next + PREV);
  if (nextPrev !== entry) {
    throw new GraphCorruption(
      `list_del corruption. next->prev should be ${e}, but was ${
        px(nextPrev)
      }. (next=${px(next)})`,
    );
  }
  return [prev, next];
}

/** `list_del_init()`. */
function listDelInit(space: AddressSpace, entry: bigint): void {
  const [prev, next] = listDelValid(space, entry);
  writeWord(space, next + PREV, prev);
  writeWord(space, prev + NEXT, next);
  initListHead(space, entry);
}

/** `head->next == NULL` (a zeroed head) gets `INIT_LIST_HEAD()` first. */
function lazyInit(space: AddressSpace, head: bigint): bigint {
  const next = readWord(space, head + NEXT);
  if (next !== 0n) return next;
  initListHead(space, head);
  return head;
}

/**
 * The node's offset inside its object: the verifier's `off` argument when
 * given (non-zero), else found from the object table.
 */
export function nodeOffset(
  rt: GraphRuntime,
  node: bigint,
  off: bigint,
): { offset: bigint; record: BtfRecord | null } {
  const entry = rt.objectAt(node);
  if (entry === undefined) {
    throw new ExecError(-1, `0x${px(node)} is not inside an allocated object`);
  }
  const offset = off !== 0n ? off : node - entry.address;
  return { offset, record: entry.type.record };
}

/**
 * Mirrors __bpf_list_add(): 0, or -EINVAL when the node already has an
 * owner — then the object is dropped, as the program gave up its reference.
 */
export function listAdd(
  rt: GraphRuntime,
  cpu: number,
  head: bigint,
  node: bigint,
  tail: boolean,
  off: bigint,
  site: string,
): number {
  const space = rt.space;
  const first = lazyInit(space, head);
  // cmpxchg(&node->owner, NULL, BPF_PTR_POISON)
  if (readWord(space, node + OWNER) !== 0n) {
    const { offset, record } = nodeOffset(rt, node, off);
    rt.objDrop(cpu, node - offset, site, record);
    return -EINVAL;
  }
  writeWord(space, node + OWNER, BPF_PTR_POISON);
  if (tail) listAddBetween(space, node, readWord(space, head + PREV), head);
  else listAddBetween(space, node, head, first);
  writeWord(space, node + OWNER, head);
  return 0;
}

/** Mirrors __bpf_list_del(): the node unlinked from the front or back, or 0n. */
export function listDel(rt: GraphRuntime, head: bigint, tail: boolean): bigint {
  const space = rt.space;
  const first = lazyInit(space, head);
  if (first === head) return 0n; // list_empty()
  const n = tail ? readWord(space, head + PREV) : first;
  if (readWord(space, n + OWNER) !== head) {
    rt.warn(`__bpf_list_del: node ${px(n)} is not owned by head ${px(head)}`);
    return 0n;
  }
  listDelInit(space, n);
  writeWord(space, n + OWNER, 0n);
  return n;
}

/** Mirrors bpf_list_front() / bpf_list_back(): a non-owning peek, or 0n. */
export function listPeek(
  rt: GraphRuntime,
  head: bigint,
  back: boolean,
): bigint {
  const next = readWord(rt.space, head + NEXT);
  if (next === 0n || next === head) return 0n;
  return back ? readWord(rt.space, head + PREV) : next;
}

/** Entries of the list at `head`, front to back (checks every back link). */
export function listEntries(space: AddressSpace, head: bigint): bigint[] {
  const out: bigint[] = [];
  let prev = head;
  let n = readWord(space, head + NEXT);
  if (n === 0n) return out;
  while (n !== head) {
    if (out.length >= MAX_LIST_WALK) {
      throw new GraphCorruption(
        `list ${px(head)} does not lead back to its head`,
      );
    }
    if (n === 0n) {
      throw new GraphCorruption(
        `list_del corruption, ${px(prev)}->next is NULL`,
      );
    }
    const back = readWord(space, n + PREV);
    if (back !== prev) {
      throw new GraphCorruption(
        `list_del corruption. next->prev should be ${px(prev)}, but was ${
          px(back)
        }. (next=${px(n)})`,
      );
    }
    out.push(n);
    prev = n;
    n = readWord(space, n + NEXT);
  }
  return out;
}

/**
 * Mirrors bpf_list_head_free(): detaches every node (the head is left
 * `INIT_LIST_HEAD`ed) and drops each node's object with the element
 * record. The value's lock is not taken: nothing runs concurrently here.
 */
export function listHeadFree(
  rt: GraphRuntime,
  cpu: number,
  field: BtfField,
  head: bigint,
): void {
  const space = rt.space;
  const next = readWord(space, head + NEXT);
  const nodes = next === 0n || next === head ? [] : listEntries(space, head);
  initListHead(space, head);
  const root = field.graphRoot;
  if (root === undefined) {
    throw new ExecError(-1, "bpf_list_head field without contains");
  }
  for (const n of nodes) {
    rt.objDrop(
      cpu,
      n - BigInt(root.nodeOffset),
      "bpf_list_head_free",
      root.valueRecord,
    );
  }
}
