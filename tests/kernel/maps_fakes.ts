/**
 * Shared pieces of the map tests: a FieldFreer that records its calls, the
 * kernel's answers recorded by maps_probe.c (maps.kernel.json), and small
 * key/value builders.
 * @module
 */
import type { BtfField } from "../../lib/btf/field_types.ts";
import type { FieldFreer } from "../../lib/kernel/maps/special_fields.ts";

/** A FieldFreer that logs every call as a readable string. */
export class RecordingFreer implements FieldFreer {
  /** Calls in order, e.g. `dropKptr 0x1234 @8`. */
  readonly calls: string[] = [];
  /** `bpf_obj_drop` of a kptr. */
  dropKptr(pointer: bigint, field: BtfField): void {
    this.calls.push(`dropKptr 0x${pointer.toString(16)} @${field.offset}`);
  }
  /** Draining a list: logs, then leaves the head empty (next = prev = head) as the kernel does. */
  drainList(headAddr: bigint, field: BtfField, lockAddr: bigint | null): void {
    this.calls.push(
      `drainList @${field.offset} lock=${lockAddr === null ? "none" : "yes"}`,
    );
    this.lastHead = headAddr;
  }
  /** Draining an rb-tree root. */
  drainRbRoot(_rootAddr: bigint, field: BtfField): void {
    this.calls.push(`drainRbRoot @${field.offset}`);
  }
  /** Cancelling a timer / work item. */
  cancelAndFree(_addr: bigint, pointer: bigint, field: BtfField): void {
    this.calls.push(`cancelAndFree 0x${pointer.toString(16)} @${field.offset}`);
  }
  /** Address of the last list head drained. */
  lastHead: bigint = 0n;
}

/** One recorded kernel answer. */
export interface KernelCase {
  readonly case?: string;
  readonly mapName?: string;
  readonly op?: string;
  readonly type?: number;
  readonly keySize?: number;
  readonly valueSize?: number;
  readonly maxEntries?: number;
  readonly flags?: number;
  readonly result: number;
  readonly keys?: number[];
  readonly producerPos?: number;
  readonly consumerPos?: number;
  readonly from?: number;
  readonly bytes?: string;
}

/** maps.kernel.json: what Linux answered on the machine the fixtures were recorded on. */
export interface KernelAnswers {
  readonly kernel: string;
  readonly nrCpus: number;
  readonly ops: readonly KernelCase[];
  readonly lru8: readonly KernelCase[];
  readonly lru4: readonly KernelCase[];
  /** LRU with lookups from a BPF program (which set reference bits). */
  readonly lruRef: readonly KernelCase[];
  /** Per-CPU LRU (BPF_F_NO_COMMON_LRU) with CPU switches (`cpu N`). */
  readonly percpuLru: readonly KernelCase[];
  /** Random workloads (see maps_random_test.ts): `OP|RESULT|KEYS` per step. */
  readonly randomHash: readonly string[];
  /** Common LRU. */
  readonly randomLru: readonly string[];
  /** Per-CPU LRU lists. */
  readonly randomPercpuLru: readonly string[];
  /** LRU with per-CPU values. */
  readonly randomLruPercpuHash: readonly string[];
  /** Ring buffer records written by BPF programs, read through mmap. */
  readonly ringbuf: readonly KernelCase[];
}

/** Loads maps.kernel.json. */
export function kernelAnswers(): KernelAnswers {
  return JSON.parse(
    Deno.readTextFileSync(new URL("./maps.kernel.json", import.meta.url)),
  );
}

/** The recorded result of operation `name`. */
export function kernelOp(name: string): number {
  const c = kernelAnswers().ops.find((o) => o.op === name || o.case === name);
  if (c === undefined) throw new Error(`no kernel answer for ${name}`);
  return c.result;
}

/** A little-endian u32 key. */
export function k32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

/** A little-endian u64 value of `size` bytes (rest zero). */
export function v64(n: bigint, size = 8): Uint8Array {
  const b = new Uint8Array(Math.max(size, 8));
  new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, n), true);
  return b.slice(0, size);
}

/** Reads a little-endian u64 at `off`. */
export function u64At(bytes: Uint8Array | number, off = 0): bigint {
  if (typeof bytes === "number") throw new Error(`errno ${bytes}`);
  return new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(off, true);
}
