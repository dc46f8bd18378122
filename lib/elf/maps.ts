/**
 * The maps of an object, created in libbpf's order (`bpf_object__init_maps()`):
 * BTF-defined maps from `.maps` (in DATASEC order), one array map per
 * global-data section (in section order), the `.kconfig` map, then
 * struct_ops maps. Internal maps are named by `internal_map_name()`.
 * @module
 */
import type { BtfType } from "../btf/types.ts";
import { BTF_LINKAGE_GLOBAL, BTF_LINKAGE_STATIC } from "../btf/types.ts";
import type { BtfDraft } from "./btf_edit.ts";
import type { DataSection, SectionRoles } from "./collect.ts";
import type { ElfSection } from "./container.ts";
import { LoadError } from "./errors.ts";
import type { ExternDesc } from "./externs.ts";
import {
  type BtfMapDef,
  emptyMapDef,
  LIBBPF_PIN_BY_NAME,
  MapDefError,
  parseBtfMapDef,
  skipMods,
} from "./map_def.ts";
import {
  BPF_F_LINK,
  BPF_F_MMAPABLE,
  BPF_F_RDONLY_PROG,
  MAP_TYPE,
  type MapType,
  mapTypeName,
} from "../uapi/bpf.ts";

/** Which kind of libbpf-internal map this is (`enum libbpf_map_type`), or null. */
export type InternalMapKind = "data" | "rodata" | "bss" | "kconfig";

/** A map as libbpf would create it. Plain data. */
export interface BpfMapDef {
  /** Name given to the kernel (internal maps: `internal_map_name()`, ≤ 15 chars). */
  readonly name: string;
  /** The ELF name: the variable in `.maps`, or the section of an internal map. */
  readonly realName: string;
  /** Map type (libbpf's name; `unknown(N)` for types this table lacks). */
  readonly type: MapType | `unknown(${number})`;
  /** `enum bpf_map_type` number. */
  readonly typeId: number;
  /** Key size in bytes. */
  readonly keySize: number;
  /** Value size in bytes. */
  readonly valueSize: number;
  /** After libbpf's adjustments (ring buffers: a power-of-2 number of pages). */
  readonly maxEntries: number;
  /** `map_flags` (`BPF_F_*`), including the ones libbpf adds (`BPF_F_MMAPABLE` …). */
  readonly flags: number;
  /** `numa_node` (used with `BPF_F_NUMA_NODE`). */
  readonly numaNode: number;
  /** `map_extra` (bloom filter hashes, arena address). */
  readonly mapExtra: number;
  /** `LIBBPF_PIN_BY_NAME` maps are pinned under /sys/fs/bpf by libbpf. */
  readonly pinning: "none" | "by_name";
  /** BTF id of the key type (0 when the definition gave only a size). */
  readonly btfKeyTypeId: number;
  /** BTF id of the value type; for global data the section's DATASEC. */
  readonly btfValueTypeId: number;
  /** ELF section of the definition or data. */
  readonly section: string;
  /** Offset of the definition in `section` (0 for internal maps). */
  readonly sectionOffset: number;
  /** Internal (global data) map kind, or null for a BTF-defined map. */
  readonly internal: InternalMapKind | null;
  /** Whether user space may mmap it (`map_is_mmapable()`). */
  readonly mmapable: boolean;
  /** Initial value of element 0 for global data (`.bss` and `.kconfig` start zeroed). */
  readonly initialData?: Uint8Array;
  /** Template of the inner map of a map-in-map (named `NAME.inner`). */
  readonly innerMap?: BpfMapDef;
  /** Initial slots of a map-in-map or prog array: names of maps / programs, null when empty. */
  readonly initSlots?: readonly (string | null)[];
}

/** Mutable while the object is being read. */
export type MapDraft = { -readonly [K in keyof BpfMapDef]: BpfMapDef[K] } & {
  btfVarIdx: number;
  secIndex: number;
};

/** Object name as libbpf derives it: file basename up to the first dot, ≤ 15 chars. */
export function objectName(path: string): string {
  const base = path.slice(path.lastIndexOf("/") + 1).slice(0, 15);
  const dot = base.indexOf(".");
  return dot < 0 ? base : base.slice(0, dot);
}

/** Map name of a global-data section (mirrors `internal_map_name()`). */
export function internalMapName(objName: string, realName: string): string {
  const suffix = Math.min(Math.max(7, realName.length), 15);
  // ".rodata.foo" and the like are named after the section alone
  const prefix = realName.indexOf(".", 1) >= 0
    ? 0
    : Math.min(16 - suffix - 1, objName.length);
  const name = (objName.slice(0, prefix) + realName.slice(0, suffix)).slice(
    0,
    15,
  );
  return name.replace(/[^A-Za-z0-9_.]/g, "_");
}

/** Mirrors `map_is_mmapable()`: a DATASEC with at least one non-static VAR. */
function isMmapable(types: readonly BtfType[], valueTypeId: number): boolean {
  const t = types[valueTypeId];
  if (valueTypeId === 0 || t?.kind !== "DATASEC") return false;
  return t.vars.some((v) => {
    const vt = types[v.type];
    return vt.kind === "VAR" && vt.linkage !== BTF_LINKAGE_STATIC;
  });
}

/** Page size libbpf sizes ring buffers with (x86-64). */
const PAGE_SIZE = 4096;

/** `adjust_ringbuf_sz()`: round up to a power-of-2 number of pages. */
export function adjustRingbufSize(size: number): number {
  if (size === 0) return 0;
  if (size % PAGE_SIZE === 0 && isPowerOf2(size / PAGE_SIZE)) return size;
  for (let mul = 1; mul <= Math.floor(0xffffffff / PAGE_SIZE); mul *= 2) {
    if (mul * PAGE_SIZE > size) return mul * PAGE_SIZE;
  }
  return size;
}

function isPowerOf2(n: number): boolean {
  return n > 0 && (n & (n - 1)) === 0;
}

function fromDef(
  name: string,
  realName: string,
  section: ElfSection,
  offset: number,
  def: BtfMapDef,
): MapDraft {
  const ring = def.mapType === MAP_TYPE.ringbuf ||
    def.mapType === MAP_TYPE.user_ringbuf;
  return {
    name,
    realName,
    type: mapTypeName(def.mapType),
    typeId: def.mapType,
    keySize: def.keySize,
    valueSize: def.valueSize,
    maxEntries: ring ? adjustRingbufSize(def.maxEntries) : def.maxEntries,
    flags: def.mapFlags,
    numaNode: def.numaNode,
    mapExtra: def.mapExtra,
    pinning: def.pinning === LIBBPF_PIN_BY_NAME ? "by_name" : "none",
    btfKeyTypeId: def.keyTypeId,
    btfValueTypeId: def.valueTypeId,
    section: section.name,
    sectionOffset: offset,
    internal: null,
    mmapable: false,
    btfVarIdx: -1,
    secIndex: section.index,
  };
}

/** BTF-defined maps of `.maps` (mirrors `bpf_object__init_user_btf_maps()`). */
export function initUserBtfMaps(
  file: string,
  roles: SectionRoles,
  draft: BtfDraft | undefined,
): MapDraft[] {
  const sec = roles.maps;
  if (sec === undefined) return [];
  const where = { file, section: sec.name };
  if (draft === undefined) {
    throw new LoadError(where, "BTF is required, but is missing or corrupted.");
  }
  const types = draft.types;
  const datasec = types.find((t) => t.kind === "DATASEC" && t.name === ".maps");
  if (datasec?.kind !== "DATASEC") {
    throw new LoadError(where, "DATASEC '.maps' not found.");
  }
  return datasec.vars.map((vi, i) => {
    const v = types[vi.type];
    const name = v.name;
    const at = { ...where, offset: vi.offset };
    if (name === "") throw new LoadError(at, `map #${i}: empty name.`);
    if (vi.offset + vi.size > sec.size) {
      throw new LoadError(at, `map '${name}' BTF data is corrupted.`);
    }
    if (v.kind !== "VAR") {
      throw new LoadError(
        at,
        `map '${name}': unexpected var kind ${v.kind.toLowerCase()}.`,
      );
    }
    if (v.linkage !== BTF_LINKAGE_GLOBAL) {
      const linkage = v.linkage === BTF_LINKAGE_STATIC ? "static" : "extern";
      throw new LoadError(
        at,
        `map '${name}': unsupported map linkage ${linkage}.`,
      );
    }
    const defType = skipMods(types, v.type);
    if (defType.kind !== "STRUCT") {
      throw new LoadError(
        at,
        `map '${name}': unexpected def kind ${defType.kind}.`,
      );
    }
    if (defType.size > vi.size) {
      throw new LoadError(at, `map '${name}': invalid def size.`);
    }
    const def = emptyMapDef();
    const inner = emptyMapDef();
    try {
      parseBtfMapDef(name, draft.original, types, defType, def, inner);
    } catch (e) {
      if (e instanceof MapDefError) {
        throw new LoadError(at, e.message, { cause: e });
      }
      throw e;
    }
    const map = fromDef(name, name, sec, vi.offset, def);
    map.btfVarIdx = i;
    if (def.hasInnerMap) {
      map.innerMap = fromDef(
        `${name}.inner`,
        `${name}.inner`,
        sec,
        vi.offset,
        inner,
      );
    }
    return map;
  });
}

function internalMap(
  objName: string,
  kind: InternalMapKind,
  realName: string,
  secIndex: number,
  valueSize: number,
  initial: Uint8Array,
  types: readonly BtfType[] | undefined,
): MapDraft {
  // map_fill_btf_type_info(): the first type named after the section
  const valueTypeId = types === undefined
    ? 0
    : Math.max(0, types.findIndex((t) => t.name === realName));
  const mmapable = types !== undefined && isMmapable(types, valueTypeId);
  let flags = kind === "rodata" || kind === "kconfig" ? BPF_F_RDONLY_PROG : 0;
  if (mmapable) flags |= BPF_F_MMAPABLE;
  return {
    name: internalMapName(objName, realName),
    realName,
    type: "array",
    typeId: MAP_TYPE.array,
    keySize: 4,
    valueSize,
    maxEntries: 1,
    flags,
    numaNode: 0,
    mapExtra: 0,
    pinning: "none",
    btfKeyTypeId: 0,
    btfValueTypeId: valueTypeId,
    section: realName,
    sectionOffset: 0,
    internal: kind,
    mmapable,
    initialData: initial,
    btfVarIdx: -1,
    secIndex,
  };
}

/** One array map per non-empty global-data section (`bpf_object__init_global_data_maps()`). */
export function initGlobalDataMaps(
  objName: string,
  data: readonly DataSection[],
  types: readonly BtfType[] | undefined,
): MapDraft[] {
  return data.filter((d) => d.section.size > 0).map(({ section, kind }) => {
    const initial = kind === "bss"
      ? new Uint8Array(section.size)
      : section.data.slice();
    return internalMap(
      objName,
      kind,
      section.name,
      section.index,
      section.size,
      initial,
      types,
    );
  });
}

/** The `.kconfig` map, sized to hold every kconfig extern (`bpf_object__init_kconfig_map()`). */
export function initKconfigMap(
  objName: string,
  externs: readonly ExternDesc[],
  symtabIndex: number,
  types: readonly BtfType[] | undefined,
): MapDraft[] {
  const last = externs.filter((e) => e.kconfig !== undefined).at(-1)?.kconfig;
  if (last === undefined) return [];
  const size = last.offset + last.size;
  return [
    internalMap(
      objName,
      "kconfig",
      ".kconfig",
      symtabIndex,
      size,
      new Uint8Array(size),
      types,
    ),
  ];
}

/**
 * One struct_ops map per variable of `.struct_ops` / `.struct_ops.link`
 * (`init_struct_ops_maps()`): key 4 bytes, value the struct's local size
 * (libbpf replaces it by the kernel's at load time).
 */
export function initStructOpsMaps(
  file: string,
  roles: SectionRoles,
  draft: BtfDraft | undefined,
): MapDraft[] {
  const out: MapDraft[] = [];
  for (const sec of roles.structOps) {
    const where = { file, section: sec.name };
    if (draft === undefined) {
      throw new LoadError(
        where,
        "BTF is required, but is missing or corrupted.",
      );
    }
    const types = draft.types;
    const datasec = types.find((t) =>
      t.kind === "DATASEC" && t.name === sec.name
    );
    if (datasec?.kind !== "DATASEC") {
      throw new LoadError(
        where,
        `struct_ops init: DATASEC ${sec.name} not found`,
      );
    }
    for (const vi of datasec.vars) {
      const varName = types[vi.type].name;
      const t = skipMods(types, (types[vi.type] as { type: number }).type);
      if (t.kind !== "STRUCT") {
        throw new LoadError(
          where,
          `struct_ops init: ${t.name} is not a struct`,
        );
      }
      if (vi.offset + t.size > sec.size) {
        throw new LoadError(
          where,
          `struct_ops init: var ${varName} is beyond the end of DATASEC ${sec.name}`,
        );
      }
      const def = {
        ...emptyMapDef(),
        mapType: MAP_TYPE.struct_ops,
        keySize: 4,
        valueSize: t.size,
        maxEntries: 1,
      };
      def.mapFlags = sec.name === ".struct_ops.link" ? BPF_F_LINK : 0;
      const map = fromDef(varName, varName, sec, vi.offset, def);
      // struct_ops maps carry the kernel's value type id, found at load time
      map.initialData = sec.data.slice(vi.offset, vi.offset + t.size);
      out.push(map);
    }
  }
  return out;
}
