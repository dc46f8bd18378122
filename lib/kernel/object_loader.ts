/**
 * Loading a parsed object into the simulated kernel, as libbpf's
 * `bpf_object__load()` and the kernel's `resolve_pseudo_ldimm64()` do
 * together: each map is created (`BPF_MAP_CREATE`, global data written and
 * frozen), gets a kernel address standing for its `struct bpf_map`, and
 * every `lddw` naming a map (`BPF_PSEUDO_MAP_IDX`) or a map value
 * (`BPF_PSEUDO_MAP_IDX_VALUE`) is compiled to that address; kfunc calls get
 * the simulated vmlinux's BTF ids (`resolveKsyms`).
 * @module
 */
import { compileProgram } from "../exec/compile.ts";
import type { HelperFn, KfuncFn } from "../exec/state.ts";
import type { BpfCallbacks } from "./graph/callback.ts";
import { resolveKsyms } from "../elf/ksyms.ts";
import type { BpfProgram, ObjectFile } from "../elf/types.ts";
import type { Insn, LdImm64Insn } from "../isa/insn.ts";
import {
  BPF_PSEUDO_MAP_FD,
  BPF_PSEUDO_MAP_IDX,
  BPF_PSEUDO_MAP_IDX_VALUE,
  BPF_PSEUDO_MAP_VALUE,
} from "../isa/opcodes.ts";
import type { Kernel, LoadedProgram } from "./kernel.ts";
import { kfuncBtfId } from "./kfunc_ids.ts";
import { type BpfMap, u32Key } from "./maps/map.ts";
import { createMapFromDef } from "./maps/create.ts";
import type { FieldFreer } from "./maps/special_fields.ts";
import { MAP_TYPE } from "../uapi/bpf.ts";
import { ProgArray } from "./prog_array.ts";

/**
 * Map types `createMap` models: array, hash, per-CPU array and hash, LRU
 * hashes, queue, stack, ring buffers (kernel- and user-produced), sk, task,
 * cgroup and inode local storage, (per-CPU) cgroup storage, sockmaps and
 * sockhashes. Program arrays are {@link ProgArray}s; others (map-in-map,
 * perf event arrays …) get an address but
 * no map.
 */
export const MODELLED_MAP_TYPES: ReadonlySet<number> = new Set([
  MAP_TYPE.hash,
  MAP_TYPE.array,
  MAP_TYPE.percpu_hash,
  MAP_TYPE.percpu_array,
  MAP_TYPE.lru_hash,
  MAP_TYPE.lru_percpu_hash,
  MAP_TYPE.queue,
  MAP_TYPE.stack,
  MAP_TYPE.ringbuf,
  MAP_TYPE.user_ringbuf,
  MAP_TYPE.sk_storage,
  MAP_TYPE.task_storage,
  MAP_TYPE.cgrp_storage,
  MAP_TYPE.inode_storage,
  MAP_TYPE.cgroup_array,
  MAP_TYPE.devmap,
  MAP_TYPE.devmap_hash,
  MAP_TYPE.cpumap,
  MAP_TYPE.xskmap,
  MAP_TYPE.sockmap,
  MAP_TYPE.sockhash,
  MAP_TYPE.reuseport_sockarray,
  MAP_TYPE.cgroup_storage,
  MAP_TYPE.percpu_cgroup_storage,
]);

/** Bytes of the `kernel` region standing for a `struct bpf_map`. */
export const BPF_MAP_STRUCT_SIZE = 256;

/** Maps by the kernel address programs hold for them (`CONST_PTR_TO_MAP`). */
export class MapRegistry {
  private readonly byAddress = new Map<bigint, BpfMap>();
  private readonly addresses = new Map<BpfMap, bigint>();
  private readonly unmodelled = new Map<bigint, string>();
  private readonly progArrays = new Map<bigint, ProgArray>();

  /** Records `map` at `address`. */
  add(address: bigint, map: BpfMap): void {
    this.byAddress.set(address, map);
    this.addresses.set(map, address);
  }

  /** The map whose `struct bpf_map` is at `address`, or undefined. */
  at(address: bigint): BpfMap | undefined {
    return this.byAddress.get(BigInt.asUintN(64, address));
  }

  /** Records a program array. */
  addProgArray(address: bigint, array: ProgArray): void {
    this.progArrays.set(address, array);
  }

  /** The program array at `address`, if any. */
  progArrayAt(address: bigint): ProgArray | undefined {
    return this.progArrays.get(BigInt.asUintN(64, address));
  }

  /** Records a map the simulator does not model, for error messages. */
  addUnmodelled(address: bigint, description: string): void {
    this.unmodelled.set(address, description);
  }

  /** What stands at `address` when it is not a live map, for error messages. */
  describe(address: bigint): string {
    return this.unmodelled.get(BigInt.asUintN(64, address)) ??
      `0x${address.toString(16)} is not a map`;
  }

  /** The kernel address of `map`. */
  addressOf(map: BpfMap): bigint | undefined {
    return this.addresses.get(map);
  }
}

/** An object whose maps live in a kernel, ready to compile its programs. */
export interface LoadedObject {
  /** The object, with kfunc calls resolved. */
  readonly object: ObjectFile;
  /** The kernel it was loaded into. */
  readonly kernel: Kernel;
  /** Maps in the object's order, each with its name and kernel address. */
  readonly maps: readonly LoadedMap[];
  /** Address → map, for the map helpers. */
  readonly registry: MapRegistry;
  /** Compiles programs so that callback addresses (`BPF_PSEUDO_FUNC`) resolve, when given. */
  readonly callbacks?: BpfCallbacks;
  /** Kfuncs by BTF id the programs of this object get (the graph runtime's). */
  readonly kfuncs: ReadonlyMap<number, KfuncFn>;
  /** Helpers by id beyond the kernel's and the map helpers (kptr_xchg, bpf_loop). */
  readonly helpers: ReadonlyMap<number, HelperFn>;
}

/** One created map. */
export interface LoadedMap {
  /** The name libbpf gives it (what `oracle run --dump-maps` prints). */
  readonly name: string;
  /** The live map, or null for a map type the simulator does not model. */
  readonly map: BpfMap | null;
  /** `enum bpf_map_type` number. */
  readonly typeId: number;
  /** Address of its `struct bpf_map` (what `lddw rX, map` yields). */
  readonly address: bigint;
}

/** Options of {@link loadObjectIntoKernel}. */
export interface ObjectLoadOptions {
  /** Frees what special fields own (kptrs, graph nodes); default: throws when needed. */
  readonly fieldFreer?: FieldFreer;
  /** See {@link LoadedObject.callbacks}. */
  readonly callbacks?: BpfCallbacks;
  /** See {@link LoadedObject.kfuncs}. */
  readonly kfuncs?: ReadonlyMap<number, KfuncFn>;
  /** See {@link LoadedObject.helpers}. */
  readonly helpers?: ReadonlyMap<number, HelperFn>;
}

/**
 * Creates every map of `object` in `kernel` and resolves its kfunc externs.
 * Throws `MapError` when the kernel would refuse a map (or the simulator
 * does not model its type) and `LoadError` for a missing non-weak kfunc.
 */
export function loadObjectIntoKernel(
  kernel: Kernel,
  object: ObjectFile,
  options: ObjectLoadOptions = {},
): LoadedObject {
  const resolved = resolveKsyms(object, kfuncBtfId);
  const registry = new MapRegistry();
  const maps = resolved.maps.map((def): LoadedMap => {
    const address = kernel.space.mapRegion("kernel", BPF_MAP_STRUCT_SIZE, {
      name: `bpf_map:${def.name}`,
      read: false,
      write: false,
    });
    if (def.typeId === MAP_TYPE.prog_array) {
      registry.addProgArray(
        address,
        new ProgArray(def.name, def.maxEntries, def.initSlots),
      );
      return { name: def.name, map: null, address, typeId: def.typeId };
    }
    if (!MODELLED_MAP_TYPES.has(def.typeId)) {
      // The kernel would create it; the simulator keeps its address so that
      // programs not using it run, and a helper given it fails loudly.
      registry.addUnmodelled(
        address,
        `map ${def.name} of type ${def.type} is not modelled by the simulator`,
      );
      return { name: def.name, map: null, address, typeId: def.typeId };
    }
    const map = createMapFromDef(kernel.space, def, resolved.btf, {
      nrCpus: kernel.cpus.length,
      fieldFreer: options.fieldFreer,
    });
    registry.add(address, map);
    return { name: def.name, map, address, typeId: def.typeId };
  });
  return {
    object: resolved,
    kernel,
    maps,
    registry,
    callbacks: options.callbacks,
    kfuncs: options.kfuncs ?? new Map(),
    helpers: options.helpers ?? new Map(),
  };
}

/** Thrown for a program that cannot be found or compiled. */
export class ProgramLoadError extends Error {
  /** Builds the error. */
  constructor(message: string) {
    super(message);
    this.name = "ProgramLoadError";
  }
}

/** The program called `name` in a loaded object, or a {@link ProgramLoadError}. */
export function findProgram(loaded: LoadedObject, name: string): BpfProgram {
  const prog = loaded.object.programs.find((p) => p.name === name);
  if (prog === undefined) {
    const names = loaded.object.programs.map((p) => p.name).join(", ");
    throw new ProgramLoadError(
      `${loaded.object.file}: no program '${name}' (programs: ${
        names || "none"
      })`,
    );
  }
  if (prog.decodeError !== undefined) {
    throw new ProgramLoadError(
      `${loaded.object.file}: program '${name}' does not decode: insn ` +
        `${prog.decodeError.insnIndex}: ${prog.decodeError.reason}`,
    );
  }
  return prog;
}

/**
 * Compiles program `name` of a loaded object, each map `lddw` resolved as
 * `resolve_pseudo_ldimm64()` does: `BPF_PSEUDO_MAP_IDX` → the map's
 * address, `BPF_PSEUDO_MAP_IDX_VALUE` → the address of its value
 * (`map_direct_value_addr()`: element 0) plus the offset in the second imm.
 * `rewritten`: the program as the verifier rewrote it (its `xlated`), run
 * instead of the instructions as loaded.
 */
export function compileObjectProgram(
  loaded: LoadedObject,
  name: string,
  rewritten?: readonly Insn[],
): LoadedProgram {
  const prog = findProgram(loaded, name);
  const insns = rewritten ?? prog.insns;
  const ldImm64 = (insn: LdImm64Insn, index: number): bigint => {
    switch (insn.src) {
      case BPF_PSEUDO_MAP_IDX:
      case BPF_PSEUDO_MAP_FD:
        return mapAt(loaded, insn.imm, index).address;
      case BPF_PSEUDO_MAP_IDX_VALUE:
      case BPF_PSEUDO_MAP_VALUE: {
        const { map, name: mapName } = mapAt(loaded, insn.imm, index);
        const value = map?.lookup(u32Key(0), 0) ?? null;
        if (value === null) {
          throw new ProgramLoadError(
            `insn ${index}: map '${mapName}' has no direct value address`,
          );
        }
        return value + BigInt(insn.imm2 >>> 0);
      }
      default:
        return insn.imm64;
    }
  };
  const program = loaded.callbacks !== undefined
    ? loaded.callbacks.compile(insns, name, { ldImm64 })
    : compileProgram(insns, { ldImm64 });
  return { name, program };
}

function mapAt(loaded: LoadedObject, index: number, insn: number): LoadedMap {
  const m = loaded.maps[index];
  if (m === undefined) {
    throw new ProgramLoadError(`insn ${insn}: no map with index ${index}`);
  }
  return m;
}
