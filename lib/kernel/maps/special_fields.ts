/**
 * What maps do with the special fields of their values (`struct btf_record`):
 * copies skip them (`copy_map_value()` → `bpf_obj_memcpy()`), user-space
 * copies see them zeroed (`check_and_init_map_value()`), and freeing a value
 * releases what they own (`bpf_obj_free_fields()`): kptrs are dropped,
 * lists and rb-trees drained, timers and work items cancelled.
 *
 * The objects those fields point to belong to the allocator and object
 * model, so the release itself goes through an injectable {@link FieldFreer}.
 * This module decides *when* to call it and with what, as the kernel does.
 * @module
 */
import {
  BPF_KPTR_PERCPU,
  BPF_KPTR_REF,
  BPF_KPTR_UNREF,
  BPF_LIST_HEAD,
  BPF_RB_ROOT,
  BPF_TASK_WORK,
  BPF_TIMER,
  BPF_WORKQUEUE,
  type BtfField,
  type BtfRecord,
  NO_FIELD_OFF,
} from "../../btf/field_types.ts";
import { MapError } from "./map.ts";

/** Releases the objects special fields own; maps call it from `bpf_obj_free_fields()`. */
export interface FieldFreer {
  /**
   * A referenced kptr (`BPF_KPTR_REF` / `BPF_KPTR_PERCPU`) held `pointer`,
   * already cleared in the value: drop the reference — `bpf_obj_drop()` for
   * a program-allocated object (`field.kptr.kernel` false; percpu objects
   * through `bpf_percpu_obj_drop()`), the type's destructor kfunc for a
   * kernel object.
   */
  dropKptr(pointer: bigint, field: BtfField): void;
  /**
   * `bpf_list_head_free()`: the non-empty list whose head is at `headAddr`
   * must be drained — every node's object dropped — and the head left empty
   * (`INIT_LIST_HEAD`). `lockAddr` is the value's `bpf_spin_lock`, or null.
   */
  drainList(headAddr: bigint, field: BtfField, lockAddr: bigint | null): void;
  /** `bpf_rb_root_free()`: as {@link drainList}, for a non-empty rb-tree root. */
  drainRbRoot(rootAddr: bigint, field: BtfField, lockAddr: bigint | null): void;
  /**
   * `bpf_timer_cancel_and_free()` / `bpf_wq_cancel_and_free()` /
   * `bpf_task_work_cancel_and_free()` for an initialised field at `addr`
   * whose internal pointer was `pointer` (already cleared in the value).
   */
  cancelAndFree(addr: bigint, pointer: bigint, field: BtfField): void;
}

/**
 * A {@link FieldFreer} for maps whose values own nothing yet: any call is
 * a bug in the wiring (the map was given objects but no allocator), so it
 * throws instead of leaking silently.
 */
export function unwiredFieldFreer(mapName: string): FieldFreer {
  const fail = (what: string): never => {
    throw new MapError(mapName, `${what}: no FieldFreer was given`);
  };
  return {
    dropKptr: () => fail("kptr to drop"),
    drainList: () => fail("bpf_list_head to drain"),
    drainRbRoot: () => fail("bpf_rb_root to drain"),
    cancelAndFree: () => fail("timer/work item to cancel"),
  };
}

/**
 * `bpf_obj_memcpy()` / `copy_map_value()`: copies bytes `[0, size)` of
 * `src` to `dst`, except those of special fields (which keep their state).
 */
export function copyMapValue(
  rec: BtfRecord | null,
  dst: Uint8Array,
  src: Uint8Array,
  size: number,
): void {
  if (rec === null) {
    dst.set(src.subarray(0, size));
    return;
  }
  let cur = 0;
  for (const f of rec.fields) {
    if (f.offset > cur) dst.set(src.subarray(cur, f.offset), cur);
    cur = Math.max(cur, f.offset + f.size);
  }
  if (size > cur) dst.set(src.subarray(cur, size), cur);
}

/** `bpf_obj_memzero()` / `zero_map_value()`: zeroes `[0, size)` except special fields. */
export function zeroMapValue(
  rec: BtfRecord | null,
  dst: Uint8Array,
  size: number,
): void {
  if (rec === null) {
    dst.fill(0, 0, size);
    return;
  }
  let cur = 0;
  for (const f of rec.fields) {
    if (f.offset > cur) dst.fill(0, cur, f.offset);
    cur = Math.max(cur, f.offset + f.size);
  }
  if (size > cur) dst.fill(0, cur, size);
}

/** `check_and_init_map_value()` / `bpf_obj_init()`: zeroes every special field. */
export function checkAndInitMapValue(
  rec: BtfRecord | null,
  dst: Uint8Array,
): void {
  if (rec === null) return;
  for (const f of rec.fields) dst.fill(0, f.offset, f.offset + f.size);
}

function readU64(bytes: Uint8Array, off: number): bigint {
  return new DataView(bytes.buffer, bytes.byteOffset + off, 8).getBigUint64(
    0,
    true,
  );
}

/** Swaps in 0 and returns the old 64-bit word (the kernel's `xchg(ptr, NULL)`). */
function xchgZero(bytes: Uint8Array, off: number): bigint {
  const old = readU64(bytes, off);
  bytes.fill(0, off, off + 8);
  return old;
}

/**
 * `bpf_obj_free_fields()`: releases what the special fields of the value
 * `bytes` (mapped at `addr`) own. Locks, nodes and refcounts own nothing.
 * An uninitialised (zero) or empty list head / rb root / timer is skipped
 * without calling `freer`, as the kernel's `*_free()` functions return early.
 */
export function bpfObjFreeFields(
  rec: BtfRecord | null,
  bytes: Uint8Array,
  addr: bigint,
  freer: FieldFreer,
): void {
  if (rec === null) return;
  const lockAddr = rec.spinLockOff === NO_FIELD_OFF
    ? null
    : addr + BigInt(rec.spinLockOff);
  for (const f of rec.fields) {
    const fieldAddr = addr + BigInt(f.offset);
    switch (f.type) {
      case BPF_KPTR_UNREF:
        bytes.fill(0, f.offset, f.offset + 8);
        break;
      case BPF_KPTR_REF:
      case BPF_KPTR_PERCPU: {
        const old = xchgZero(bytes, f.offset);
        if (old !== 0n) freer.dropKptr(old, f);
        break;
      }
      case BPF_TIMER:
      case BPF_WORKQUEUE:
      case BPF_TASK_WORK: {
        const old = xchgZero(bytes, f.offset);
        if (old !== 0n) freer.cancelAndFree(fieldAddr, old, f);
        break;
      }
      case BPF_LIST_HEAD: {
        // struct list_head { next, prev }: never initialised (next == NULL)
        // or empty (next == head) means nothing to drain.
        const next = readU64(bytes, f.offset);
        if (next !== 0n && next !== fieldAddr) {
          freer.drainList(fieldAddr, f, lockAddr);
        }
        break;
      }
      case BPF_RB_ROOT:
        // struct rb_root_cached { rb_node, rb_leftmost }: empty when rb_node == NULL.
        if (readU64(bytes, f.offset) !== 0n) {
          freer.drainRbRoot(fieldAddr, f, lockAddr);
        }
        break;
      default:
        break;
    }
  }
}
