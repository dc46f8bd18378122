/**
 * The common face of every simulated BPF map (`struct bpf_map` and its
 * `bpf_map_ops`): the program-side operations the helpers call
 * (`bpf_map_lookup_elem` returns the *address* of a value living in the
 * {@link AddressSpace}), and the syscall-side ones `bpftool` would use
 * (copies of values, `BPF_MAP_FREEZE`, dumps).
 *
 * Every operation that the kernel can refuse returns a negative errno
 * instead of throwing; a refused operation leaves the map untouched.
 * Misuse of the API itself (a key of the wrong size, a CPU that does not
 * exist) throws {@link MapError}.
 * @module
 */
import type { AddressSpace } from "../../exec/memory.ts";
import type { BtfRecord } from "../../btf/field_types.ts";
import type { FieldFreer } from "./special_fields.ts";
import { BPF_F_RDONLY_PROG } from "../../uapi/bpf.ts";

// Shared with lib/uapi and lib/btf (same values), so that one `export *`
// of every module does not see two different bindings of one name.
export { BPF_F_MMAPABLE, BPF_F_RDONLY_PROG } from "../../uapi/bpf.ts";
/** The errno values map operations return (positive; results carry them negated). */
export {
  E2BIG,
  EAGAIN,
  EBUSY,
  EEXIST,
  EINVAL,
  ENOENT,
  ENOMEM,
  ENOTSUPP,
  EPERM,
} from "../../uapi/errno.ts";

/** `BPF_ANY`: create or update. */
export const BPF_ANY = 0;
/** `BPF_NOEXIST`: create only. */
export const BPF_NOEXIST = 1;
/** `BPF_EXIST`: update only. */
export const BPF_EXIST = 2;
/** `BPF_F_LOCK`: copy under the value's `bpf_spin_lock`. */
export const BPF_F_LOCK = 4;

/** `BPF_F_NO_PREALLOC`: hash elements come from `bpf_mem_alloc`. */
export const BPF_F_NO_PREALLOC = 1 << 0;
/** `BPF_F_NO_COMMON_LRU`: one LRU per CPU. */
export const BPF_F_NO_COMMON_LRU = 1 << 1;
/** `BPF_F_NUMA_NODE`. */
export const BPF_F_NUMA_NODE = 1 << 2;
/** `BPF_F_RDONLY`: user space may not write. */
export const BPF_F_RDONLY = 1 << 3;
/** `BPF_F_WRONLY`: user space may not read. */
export const BPF_F_WRONLY = 1 << 4;
/** `BPF_F_ZERO_SEED`: deterministic hash seed. */
export const BPF_F_ZERO_SEED = 1 << 6;
/** `BPF_F_WRONLY_PROG`: programs may not read. */
export const BPF_F_WRONLY_PROG = 1 << 8;
/** `BPF_F_PRESERVE_ELEMS` (perf event arrays only). */
export const BPF_F_PRESERVE_ELEMS = 1 << 11;
/** `BPF_F_INNER_MAP`: inner map template of a map-in-map. */
export const BPF_F_INNER_MAP = 1 << 12;
/** `BPF_F_ACCESS_MASK`. */
export const BPF_F_ACCESS_MASK: number = BPF_F_RDONLY | BPF_F_RDONLY_PROG |
  BPF_F_WRONLY | BPF_F_WRONLY_PROG;

/** `KMALLOC_MAX_SIZE` on x86-64 (`1 << (MAX_PAGE_ORDER + PAGE_SHIFT)`), 4 MiB. */
export const KMALLOC_MAX_SIZE: number = 1 << 22;

/** What `BPF_MAP_CREATE` is given (the subset the simulator models). */
export interface MapAttr {
  /** Name for reports (the kernel keeps 15 characters). */
  readonly name: string;
  /** `enum bpf_map_type` number. */
  readonly type: number;
  /** Key size in bytes. */
  readonly keySize: number;
  /** Value size in bytes. */
  readonly valueSize: number;
  /** `max_entries`. */
  readonly maxEntries: number;
  /** `map_flags`. */
  readonly flags: number;
}

/** The machine a map lives in. */
export interface MapEnv {
  /** Where values are mapped as `map_value` regions. */
  readonly space: AddressSpace;
  /** `num_possible_cpus()`: per-CPU maps keep this many copies. */
  readonly nrCpus: number;
  /** Frees what special fields own (kptrs, list nodes, timers). */
  readonly fieldFreer: FieldFreer;
  /**
   * Runs `cb` after an RCU grace period (`call_rcu()`); the caller drives
   * time. Elements freed this way stay mapped — readable with their old
   * data by a stale pointer — until `cb` runs.
   */
  readonly deferFree: (cb: () => void) => void;
}

/** One entry of {@link BpfMap.dump}. */
export interface MapDumpEntry {
  /** The key. */
  readonly key: Uint8Array;
  /** As `BPF_MAP_LOOKUP_ELEM` copies it (per-CPU maps: every CPU's copy). */
  readonly value: Uint8Array;
}

/** A live map. */
export interface BpfMap {
  /** How it was created. */
  readonly attr: MapAttr;
  /** Special fields of the value, or null. */
  readonly record: BtfRecord | null;
  /** True after `BPF_MAP_FREEZE`. */
  readonly frozen: boolean;
  /** Bytes of a value as user space exchanges it (per-CPU: all CPUs). */
  readonly syscallValueSize: number;

  /** `bpf_map_lookup_elem()` from a program on `cpu`: the value's address, or null. */
  lookup(key: Uint8Array, cpu: number): bigint | null;
  /** `bpf_map_update_elem()` from a program on `cpu`: 0 or a negative errno. */
  update(
    key: Uint8Array,
    value: Uint8Array,
    flags: number,
    cpu: number,
  ): number;
  /** `bpf_map_delete_elem()` from a program on `cpu`: 0 or a negative errno. */
  delete(key: Uint8Array, cpu: number): number;
  /** `BPF_MAP_GET_NEXT_KEY`: the next key, or a negative errno. `null` asks for the first. */
  getNextKey(key: Uint8Array | null): Uint8Array | number;
  /** `BPF_MAP_LOOKUP_ELEM`: a copy (special fields zeroed), or a negative errno. */
  lookupValueCopy(key: Uint8Array, flags?: number): Uint8Array | number;
  /**
   * `BPF_MAP_UPDATE_ELEM` from a task on `cpu` (default 0); per-CPU maps
   * take {@link syscallValueSize} bytes.
   */
  updateFromSyscall(
    key: Uint8Array,
    value: Uint8Array,
    flags: number,
    cpu?: number,
  ): number;
  /** `BPF_MAP_DELETE_ELEM`. */
  deleteFromSyscall(key: Uint8Array): number;
  /** `BPF_MAP_FREEZE`: 0, or -EBUSY when already frozen. */
  freeze(): number;
  /** Every entry, in `BPF_MAP_GET_NEXT_KEY` order (what `bpftool map dump` shows). */
  dump(): MapDumpEntry[];
  /** `map_free`: frees every element and what its special fields own. */
  destroy(): void;
}

/** Misuse of the map API, or a map the kernel would refuse to create. */
export class MapError extends Error {
  /** The map concerned. */
  readonly map: string;
  /** Positive errno the kernel would return, or 0 for API misuse. */
  readonly errno: number;

  /** Builds the error; the message reads `map NAME: reason`. */
  constructor(map: string, reason: string, errno = 0) {
    super(`map ${map}: ${reason}${errno ? ` (-${errno})` : ""}`);
    this.name = "MapError";
    this.map = map;
    this.errno = errno;
  }
}

/** `round_up(n, 8)`: the kernel's element stride. */
export function roundUp8(n: number): number {
  return (n + 7) & ~7;
}

/** Lower-case hex of `bytes`, as the oracle's `--dump-maps` prints them. */
export function toHex(bytes: Uint8Array): string {
  let s = "";
  for (const b of bytes) s += b.toString(16).padStart(2, "0");
  return s;
}

/** The map-independent part of a key check: throws on a key of the wrong size. */
export function checkKey(attr: MapAttr, key: Uint8Array): void {
  if (key.length !== attr.keySize) {
    throw new MapError(
      attr.name,
      `key of ${key.length} bytes, key_size is ${attr.keySize}`,
    );
  }
}

/** Throws unless `cpu` is a CPU of `env`. */
export function checkCpu(attr: MapAttr, env: MapEnv, cpu: number): void {
  if (!Number.isInteger(cpu) || cpu < 0 || cpu >= env.nrCpus) {
    throw new MapError(attr.name, `no CPU ${cpu} (nr_cpus ${env.nrCpus})`);
  }
}

/** Throws unless `value` has exactly `size` bytes. */
export function checkValue(
  attr: MapAttr,
  value: Uint8Array,
  size: number,
): void {
  if (value.length !== size) {
    throw new MapError(
      attr.name,
      `value of ${value.length} bytes, expected ${size}`,
    );
  }
}

/** Reads the little-endian u32 an array key holds. */
export function arrayIndex(key: Uint8Array): number {
  return (key[0] | (key[1] << 8) | (key[2] << 16) | (key[3] << 24)) >>> 0;
}

/** A 4-byte little-endian key for `index`. */
export function u32Key(index: number): Uint8Array {
  const k = new Uint8Array(4);
  new DataView(k.buffer).setUint32(0, index >>> 0, true);
  return k;
}

/**
 * Region permissions for a map's values as programs see them: no stores
 * with `BPF_F_RDONLY_PROG`, no loads with `BPF_F_WRONLY_PROG`. The verifier
 * enforces both; the region makes a miss fault instead of passing silently.
 */
export function progAccess(flags: number): { read: boolean; write: boolean } {
  return {
    read: (flags & BPF_F_WRONLY_PROG) === 0,
    write: (flags & BPF_F_RDONLY_PROG) === 0,
  };
}
