/**
 * BTF-defined map definitions: a `struct { __uint(type, …); __type(key, …); … }`
 * variable in `.maps`, read from the object's BTF as libbpf's
 * `parse_btf_map_def()` reads it. Integer attributes are encoded as the
 * element count of an array pointed to (`int (*type)[BPF_MAP_TYPE_HASH]`),
 * key/value types as pointers to them.
 * @module
 */
import type { Btf } from "../btf/btf.ts";
import type { BtfComposite, BtfMember, BtfType } from "../btf/types.ts";

/** What a map definition says (libbpf's `struct btf_map_def`). */
export interface BtfMapDef {
  /** `type`: `enum bpf_map_type`. */
  mapType: number;
  /** BTF id of `key`'s type (0 when only `key_size` is given). */
  keyTypeId: number;
  /** `key_size`, or the size of `key`'s type. */
  keySize: number;
  /** BTF id of `value`'s type (0 when only `value_size` is given). */
  valueTypeId: number;
  /** `value_size`, or the size of `value`'s type. */
  valueSize: number;
  /** `max_entries`. */
  maxEntries: number;
  /** `map_flags`. */
  mapFlags: number;
  /** `numa_node`. */
  numaNode: number;
  /** `pinning` (`LIBBPF_PIN_*`). */
  pinning: number;
  /** `map_extra`. */
  mapExtra: number;
  /** A map-in-map whose `values` member describes the inner map. */
  hasInnerMap: boolean;
}

/** `LIBBPF_PIN_NONE` / `LIBBPF_PIN_BY_NAME`. */
export const LIBBPF_PIN_NONE = 0;
/** Pin by name under /sys/fs/bpf. */
export const LIBBPF_PIN_BY_NAME = 1;

/** A map definition error: `reason` is libbpf's message. */
export class MapDefError extends Error {
  /** Builds the error. */
  constructor(reason: string) {
    super(reason);
    this.name = "MapDefError";
  }
}

/** Empty definition, every part unset. */
export function emptyMapDef(): BtfMapDef {
  return {
    mapType: 0,
    keyTypeId: 0,
    keySize: 0,
    valueTypeId: 0,
    valueSize: 0,
    maxEntries: 0,
    mapFlags: 0,
    numaNode: 0,
    pinning: 0,
    mapExtra: 0,
    hasInnerMap: false,
  };
}

const MODIFIERS = new Set([
  "TYPEDEF",
  "VOLATILE",
  "CONST",
  "RESTRICT",
  "TYPE_TAG",
]);

/** `skip_mods_and_typedefs()`. */
export function skipMods(types: readonly BtfType[], id: number): BtfType {
  let t = types[id];
  for (let depth = 0; depth < 32 && MODIFIERS.has(t.kind); depth++) {
    t = types[(t as { type: number }).type];
  }
  return t;
}

function kindName(t: BtfType | undefined): string {
  return t === undefined
    ? "unknown"
    : t.kind === "VOID"
    ? "void"
    : t.kind.toLowerCase();
}

/** `get_map_field_int()`: the element count of the array a member points to. */
function fieldInt(
  mapName: string,
  types: readonly BtfType[],
  m: BtfMember,
): number {
  const t = skipMods(types, m.type);
  if (t.kind !== "PTR") {
    throw new MapDefError(
      `map '${mapName}': attr '${m.name}': expected PTR, got ${kindName(t)}.`,
    );
  }
  const arr = types[t.type];
  if (arr === undefined) {
    throw new MapDefError(
      `map '${mapName}': attr '${m.name}': type [${t.type}] not found.`,
    );
  }
  if (arr.kind !== "ARRAY") {
    throw new MapDefError(
      `map '${mapName}': attr '${m.name}': expected ARRAY, got ${
        kindName(arr)
      }.`,
    );
  }
  return arr.nelems;
}

function resolveSize(
  btf: Btf,
  id: number,
  mapName: string,
  what: string,
): number {
  try {
    return btf.sizeOf(id);
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new MapDefError(
      `map '${mapName}': can't determine ${what} size for type [${id}]: ${why}`,
    );
  }
}

function pointee(
  mapName: string,
  types: readonly BtfType[],
  m: BtfMember,
  what: string,
): number {
  const t = types[m.type];
  if (t === undefined) {
    throw new MapDefError(
      `map '${mapName}': ${what} type [${m.type}] not found.`,
    );
  }
  if (t.kind !== "PTR") {
    throw new MapDefError(
      `map '${mapName}': ${what} spec is not PTR: ${kindName(t)}.`,
    );
  }
  return t.type;
}

function setSize(
  def: BtfMapDef,
  field: "keySize" | "valueSize",
  size: number,
  mapName: string,
): void {
  if (def[field] !== 0 && def[field] !== size) {
    const what = field === "keySize" ? "key" : "value";
    throw new MapDefError(
      `map '${mapName}': conflicting ${what} size ${def[field]} != ${size}.`,
    );
  }
  def[field] = size;
}

const MAP_IN_MAP = new Set([12, 13]); // array_of_maps, hash_of_maps
const PROG_ARRAY = 3;

/**
 * Reads a map definition struct into `def` (and the inner map's into
 * `inner`, when `values` describes one). Mirrors `parse_btf_map_def()` with
 * `strict` on, as `bpf_object__open()` uses it.
 */
export function parseBtfMapDef(
  mapName: string,
  btf: Btf,
  types: readonly BtfType[],
  defType: BtfComposite,
  def: BtfMapDef,
  inner: BtfMapDef | null,
): void {
  const isInner = inner === null;
  defType.members.forEach((m, i) => {
    switch (m.name) {
      case "type":
        def.mapType = fieldInt(mapName, types, m);
        break;
      case "max_entries":
        def.maxEntries = fieldInt(mapName, types, m);
        break;
      case "map_flags":
        def.mapFlags = fieldInt(mapName, types, m);
        break;
      case "numa_node":
        def.numaNode = fieldInt(mapName, types, m);
        break;
      case "key_size":
        setSize(def, "keySize", fieldInt(mapName, types, m), mapName);
        break;
      case "value_size":
        setSize(def, "valueSize", fieldInt(mapName, types, m), mapName);
        break;
      case "key": {
        const id = pointee(mapName, types, m, "key");
        setSize(def, "keySize", resolveSize(btf, id, mapName, "key"), mapName);
        def.keyTypeId = id;
        break;
      }
      case "value": {
        const id = pointee(mapName, types, m, "value");
        setSize(
          def,
          "valueSize",
          resolveSize(btf, id, mapName, "value"),
          mapName,
        );
        def.valueTypeId = id;
        break;
      }
      case "values":
        parseValues(
          mapName,
          btf,
          types,
          m,
          i === defType.members.length - 1,
          def,
          inner,
        );
        break;
      case "pinning": {
        if (isInner) {
          throw new MapDefError(`map '${mapName}': inner def can't be pinned.`);
        }
        const val = fieldInt(mapName, types, m);
        if (val !== LIBBPF_PIN_NONE && val !== LIBBPF_PIN_BY_NAME) {
          throw new MapDefError(
            `map '${mapName}': invalid pinning value ${val}.`,
          );
        }
        def.pinning = val;
        break;
      }
      case "map_extra":
        def.mapExtra = fieldInt(mapName, types, m);
        break;
      default:
        throw new MapDefError(`map '${mapName}': unknown field '${m.name}'.`);
    }
  });
  if (def.mapType === 0) {
    throw new MapDefError(`map '${mapName}': map type isn't specified.`);
  }
}

function parseValues(
  mapName: string,
  btf: Btf,
  types: readonly BtfType[],
  m: BtfMember,
  isLast: boolean,
  def: BtfMapDef,
  inner: BtfMapDef | null,
): void {
  const isMapInMap = MAP_IN_MAP.has(def.mapType);
  const isProgArray = def.mapType === PROG_ARRAY;
  const desc = isMapInMap ? "map-in-map inner" : "prog-array value";
  if (inner === null) {
    throw new MapDefError(
      `map '${mapName}': multi-level inner maps not supported.`,
    );
  }
  if (!isLast) {
    throw new MapDefError(
      `map '${mapName}': '${m.name}' member should be last.`,
    );
  }
  if (!isMapInMap && !isProgArray) {
    throw new MapDefError(
      `map '${mapName}': should be map-in-map or prog-array.`,
    );
  }
  if (def.valueSize !== 0 && def.valueSize !== 4) {
    throw new MapDefError(
      `map '${mapName}': conflicting value size ${def.valueSize} != 4.`,
    );
  }
  def.valueSize = 4;
  const arr = types[m.type];
  if (arr === undefined) {
    throw new MapDefError(
      `map '${mapName}': ${desc} type [${m.type}] not found.`,
    );
  }
  if (arr.kind !== "ARRAY" || arr.nelems !== 0) {
    throw new MapDefError(
      `map '${mapName}': ${desc} spec is not a zero-sized array.`,
    );
  }
  const ptr = skipMods(types, arr.type);
  if (ptr.kind !== "PTR") {
    throw new MapDefError(
      `map '${mapName}': ${desc} def is of unexpected kind ${kindName(ptr)}.`,
    );
  }
  const target = skipMods(types, ptr.type);
  if (isProgArray) {
    if (target.kind !== "FUNC_PROTO") {
      throw new MapDefError(
        `map '${mapName}': prog-array value def is of unexpected kind ${
          kindName(target)
        }.`,
      );
    }
    return;
  }
  if (target.kind !== "STRUCT") {
    throw new MapDefError(
      `map '${mapName}': map-in-map inner def is of unexpected kind ${
        kindName(target)
      }.`,
    );
  }
  parseBtfMapDef(`${mapName}.inner`, btf, types, target, inner, null);
  def.hasInnerMap = true;
}
