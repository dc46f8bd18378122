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
import type {
  GraphRuntime,
  RacingListOp,
  RacingOp,
  RacingRbOp,
} from "./objects.ts";
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
import { EINVAL } from "../../uapi/errno.ts";

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

/** The writes of `__list_add()`: links `entry` between `prev` and `next`. */
function linkBetween(
  space: AddressSpace,
  entry: bigint,
  prev: bigint,
  next: bigint,
): void {
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
 *
 * Without the head's lock (a program the verifier would have rejected,
 * run with verification off) the add is split where the kernel's code can
 * be interleaved with another CPU's: `list_add()` reads and checks the
 * neighbours, the CPU yields (the call blocks once), and the retried call
 * writes the links it computed before — from neighbours another CPU may
 * have changed in between. The list_debug checks of later operations then
 * find the damage, as CONFIG_DEBUG_LIST would.
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
  const pending = takeRacing(rt, "list");
  if (pending !== undefined) {
    linkBetween(space, pending.entry, pending.prev, pending.next);
    writeWord(space, node + OWNER, head);
    if (rt.tracing) rt.event("push", pending.object, listDetail(head, tail));
    return 0;
  }
  const first = lazyInit(space, head);
  // cmpxchg(&node->owner, NULL, BPF_PTR_POISON)
  if (readWord(space, node + OWNER) !== 0n) {
    const { offset, record } = nodeOffset(rt, node, off);
    rt.objDrop(cpu, node - offset, site, record);
    return -EINVAL;
  }
  writeWord(space, node + OWNER, BPF_PTR_POISON);
  const prev = tail ? readWord(space, head + PREV) : head;
  const next = tail ? head : first;
  listAddValid(space, node, prev, next);
  if (rt.unlocked(head)) {
    const object = node - nodeOffsetOrZero(rt, node, off);
    yieldRacing(rt, { kind: "list", entry: node, prev, next, object });
    return 0;
  }
  linkBetween(space, node, prev, next);
  writeWord(space, node + OWNER, head);
  if (rt.tracing) traceList(rt, "push", node, off, head, tail);
  return 0;
}

/**
 * Mirrors __bpf_list_del(): the node unlinked from the front or back, or
 * 0n. Without the head's lock it races as {@link listAdd} does: the entry
 * and its neighbours are read and checked, the CPU yields, then the stale
 * neighbours are linked together.
 */
export function listDel(rt: GraphRuntime, head: bigint, tail: boolean): bigint {
  const space = rt.space;
  const pending = takeRacing(rt, "list");
  if (pending !== undefined) {
    const n = pending.entry;
    writeWord(space, pending.next + PREV, pending.prev);
    writeWord(space, pending.prev + NEXT, pending.next);
    initListHead(space, n);
    writeWord(space, n + OWNER, 0n);
    if (rt.tracing) rt.event("pop", pending.object, listDetail(head, tail));
    return n;
  }
  const first = lazyInit(space, head);
  if (first === head) return 0n; // list_empty()
  const n = tail ? readWord(space, head + PREV) : first;
  if (readWord(space, n + OWNER) !== head) {
    rt.warn(`__bpf_list_del: node ${px(n)} is not owned by head ${px(head)}`);
    return 0n;
  }
  const [prev, next] = listDelValid(space, n);
  if (rt.unlocked(head)) {
    const object = n - nodeOffsetOrZero(rt, n, 0n);
    yieldRacing(rt, { kind: "list", entry: n, prev, next, object });
    return 0n;
  }
  writeWord(space, next + PREV, prev);
  writeWord(space, prev + NEXT, next);
  initListHead(space, n);
  writeWord(space, n + OWNER, 0n);
  if (rt.tracing) traceList(rt, "pop", n, 0n, head, tail);
  return n;
}

/**
 * The second half of the current call's unlocked operation of `kind`, if
 * it yielded (a retried call is the same call: its operation is the same).
 */
export function takeRacing<K extends RacingOp["kind"]>(
  rt: GraphRuntime,
  kind: K,
): (K extends "list" ? RacingListOp : RacingRbOp) | undefined {
  const vm = rt.vm;
  if (rt.racing.size === 0 || vm === undefined) return undefined;
  const op = rt.racing.get(vm);
  if (op === undefined || op.kind !== kind) return undefined;
  rt.racing.delete(vm);
  return op as K extends "list" ? RacingListOp : RacingRbOp;
}

/** Parks the current call between its reads and its writes: the CPU yields. */
export function yieldRacing(rt: GraphRuntime, op: RacingOp): void {
  const vm = rt.vm!;
  rt.racing.set(vm, op);
  vm.block();
}

/** Traces a push or pop with the object's address and the head. */
function traceList(
  rt: GraphRuntime,
  ev: "push" | "pop",
  node: bigint,
  off: bigint,
  head: bigint,
  tail: boolean,
): void {
  rt.event(ev, node - nodeOffsetOrZero(rt, node, off), listDetail(head, tail));
}

/** `list <head> back|front`: the detail of a push or pop event. */
function listDetail(head: bigint, tail: boolean): string {
  return `list ${px(head)} ${tail ? "back" : "front"}`;
}

/** The node's offset in its object (`off` when given), 0n when unknown. */
export function nodeOffsetOrZero(
  rt: GraphRuntime,
  node: bigint,
  off: bigint,
): bigint {
  if (off !== 0n) return off;
  const entry = rt.objectAt(node);
  return entry === undefined ? 0n : node - entry.address;
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
