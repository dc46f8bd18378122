/**
 * CO-RE access specifications: the relocation kinds, the parsing of access
 * strings such as `0:1:2:3` into low- and high-level accessors
 * (`bpf_core_parse_spec()` in tools/lib/bpf/relo_core.c), and libbpf's
 * one-line rendering of a spec (`bpf_core_format_spec()`).
 * @module
 */
import type { Btf } from "./btf.ts";
import { BtfError, E2BIG, EINVAL } from "./errors.ts";
import { type BtfType, isAnyEnum, isComposite } from "./types.ts";

/** `enum bpf_core_relo_kind` values (include/uapi/linux/bpf.h). */
export const BPF_CORE_FIELD_BYTE_OFFSET = 0;
/** Field size in bytes. */
export const BPF_CORE_FIELD_BYTE_SIZE = 1;
/** 1 when the field exists in the target. */
export const BPF_CORE_FIELD_EXISTS = 2;
/** 1 when the field is a signed integer or enum. */
export const BPF_CORE_FIELD_SIGNED = 3;
/** Left shift that puts a bitfield at the top of a u64. */
export const BPF_CORE_FIELD_LSHIFT_U64 = 4;
/** Right shift that brings it back down. */
export const BPF_CORE_FIELD_RSHIFT_U64 = 5;
/** Type id in the local (program) BTF. */
export const BPF_CORE_TYPE_ID_LOCAL = 6;
/** Type id in the target BTF. */
export const BPF_CORE_TYPE_ID_TARGET = 7;
/** 1 when a compatible type exists in the target. */
export const BPF_CORE_TYPE_EXISTS = 8;
/** Size of the target type. */
export const BPF_CORE_TYPE_SIZE = 9;
/** 1 when the enumerator exists in the target. */
export const BPF_CORE_ENUMVAL_EXISTS = 10;
/** The enumerator's value in the target. */
export const BPF_CORE_ENUMVAL_VALUE = 11;
/** 1 when the target type matches structurally (`bpf_core_types_match`). */
export const BPF_CORE_TYPE_MATCHES = 12;

/** `BPF_CORE_SPEC_MAX_LEN`: deepest access string. */
export const BPF_CORE_SPEC_MAX_LEN = 64;

const KIND_NAMES = [
  "byte_off",
  "byte_sz",
  "field_exists",
  "signed",
  "lshift_u64",
  "rshift_u64",
  "local_type_id",
  "target_type_id",
  "type_exists",
  "type_size",
  "enumval_exists",
  "enumval_value",
  "type_matches",
];

/** libbpf's `core_relo_kind_str()`: `byte_off`, `type_exists`, … */
export function coreReloKindName(kind: number): string {
  return KIND_NAMES[kind] ?? "unknown";
}

/** FIELD_* kinds. */
export function isFieldBased(kind: number): boolean {
  return kind >= BPF_CORE_FIELD_BYTE_OFFSET &&
    kind <= BPF_CORE_FIELD_RSHIFT_U64;
}

/** TYPE_* kinds. */
export function isTypeBased(kind: number): boolean {
  return (kind >= BPF_CORE_TYPE_ID_LOCAL && kind <= BPF_CORE_TYPE_SIZE) ||
    kind === BPF_CORE_TYPE_MATCHES;
}

/** ENUMVAL_* kinds. */
export function isEnumvalBased(kind: number): boolean {
  return kind === BPF_CORE_ENUMVAL_EXISTS || kind === BPF_CORE_ENUMVAL_VALUE;
}

/** One high-level step: a named member, an array index, or an enumerator. */
export interface CoreAccessor {
  /** The struct/array/enum type id the step is taken in. */
  readonly typeId: number;
  /** Member, element or enumerator index. */
  readonly idx: number;
  /** Member or enumerator name; undefined for array indices. */
  readonly name?: string;
}

/** A parsed access specification in one BTF (`struct bpf_core_spec`). */
export interface CoreSpec {
  /** The BTF the spec is expressed in. */
  readonly btf: Btf;
  /** Root type id the access starts from. */
  readonly rootTypeId: number;
  /** Discriminant: the BTF kind. */
  readonly kind: number;
  /** High-level accessors (named members and indices). */
  readonly spec: readonly CoreAccessor[];
  /** Low-level accessors: the access string's numbers. */
  readonly raw: readonly number[];
  /** Bit offset of the accessed field from the root. */
  readonly bitOffset: number;
}

/** Splits `0:1:2` the way libbpf's sscanf loop does (no empty parts). */
export function parseAccessString(s: string): number[] {
  if (s === "" || s.startsWith(":")) {
    throw new BtfError(`bad access string '${s}'`);
  }
  const raw: number[] = [];
  for (const part of s.split(":")) {
    if (!/^[-+]?\d+$/.test(part)) {
      throw new BtfError(`bad access string '${s}'`);
    }
    if (raw.length === BPF_CORE_SPEC_MAX_LEN) {
      throw new BtfError(`access string '${s}' too long`, { errno: E2BIG });
    }
    raw.push(Number(part));
  }
  return raw;
}

/** libbpf's `is_flex_arr()`: a zero-length array as the struct's last member. */
export function isFlexArray(
  btf: Btf,
  acc: CoreAccessor | undefined,
  nelems: number,
): boolean {
  if (acc === undefined || acc.name === undefined || nelems > 0) return false;
  return acc.idx === btf.typeById(acc.typeId).vlen - 1;
}

/**
 * `bpf_core_parse_spec()`: turns `accessStr` on root `typeId` into a spec.
 * Throws `BtfError` (EINVAL, E2BIG) where libbpf fails.
 */
export function parseCoreSpec(
  btf: Btf,
  typeId: number,
  accessStr: string,
  kind: number,
): CoreSpec {
  const fail = (reason: string): never => {
    throw new BtfError(`access '${accessStr}' on [${typeId}]: ${reason}`, {
      typeId,
      errno: EINVAL,
    });
  };
  if (accessStr === "" || accessStr.startsWith(":")) {
    fail("empty access string");
  }
  if (isTypeBased(kind)) {
    if (accessStr !== "0") {
      fail("type-based relocation needs access string '0'");
    }
    return { btf, rootTypeId: typeId, kind, spec: [], raw: [], bitOffset: 0 };
  }
  const raw = parseAccessString(accessStr);
  const root = btf.resolve(typeId);
  const spec: CoreAccessor[] = [{ typeId: root.id, idx: raw[0] }];
  if (isEnumvalBased(kind)) {
    const t = root.type;
    if (!isAnyEnum(t) || raw.length > 1 || raw[0] < 0 || raw[0] >= t.vlen) {
      return fail("not an enumerator of an enum");
    }
    spec[0] = { typeId: root.id, idx: raw[0], name: t.values[raw[0]].name };
    return { btf, rootTypeId: typeId, kind, spec, raw, bitOffset: 0 };
  }
  if (!isFieldBased(kind)) fail(`unknown relocation kind ${kind}`);
  let id = root.id;
  let bitOffset = raw[0] * btf.sizeOf(id) * 8;
  for (let i = 1; i < raw.length; i++) {
    const r = btf.resolve(id);
    const t: BtfType = r.type;
    id = r.id;
    const idx = raw[i];
    if (isComposite(t)) {
      if (idx < 0 || idx >= t.vlen) fail(`member index ${idx} out of range`);
      const m = t.members[idx];
      bitOffset += m.bitOffset;
      if (m.nameOff !== 0) {
        if (m.name === "") fail("member name is empty");
        spec.push({ typeId: id, idx, name: m.name });
      }
      id = m.type;
    } else if (t.kind === "ARRAY") {
      const elem = btf.resolve(t.type);
      id = elem.id;
      const flex = isFlexArray(btf, spec[spec.length - 1], t.nelems);
      if (!flex && (idx < 0 || idx >= t.nelems)) {
        fail(`array index ${idx} out of range`);
      }
      spec.push({ typeId: id, idx });
      bitOffset += idx * btf.sizeOf(id) * 8;
    } else {
      fail(`captures type [${id}] of unexpected kind ${t.kind} (at idx ${i})`);
    }
  }
  return { btf, rootTypeId: typeId, kind, spec, raw, bitOffset };
}

/**
 * `bpf_core_format_spec()`: `<byte_off> [3] struct s.a[2].b (0:1:2:0 @ offset 12)`.
 */
export function formatCoreSpec(spec: CoreSpec): string {
  const btf = spec.btf;
  const root = btf.typeById(spec.rootTypeId);
  // libbpf's btf_kind_str(): lower-case kind names ("struct", "enum64").
  let s =
    `<${
      coreReloKindName(spec.kind)
    }> [${spec.rootTypeId}] ${root.kind.toLowerCase()} ` +
    (root.name === "" ? "<anon>" : root.name);
  if (isTypeBased(spec.kind)) return s;
  if (isEnumvalBased(spec.kind)) {
    const e = btf.resolve(spec.rootTypeId).type;
    if (isAnyEnum(e)) {
      const v = e.values[spec.raw[0]];
      s += `::${v.name} = ${v.value}`;
    }
    return s;
  }
  spec.spec.forEach((a, i) => {
    if (a.name !== undefined) s += `.${a.name}`;
    else if (i > 0 || a.idx > 0) s += `[${a.idx}]`;
  });
  const byte = Math.floor(spec.bitOffset / 8);
  const bit = spec.bitOffset % 8;
  return `${s} (${spec.raw.join(":")} @ offset ${
    bit ? `${byte}.${bit}` : byte
  })`;
}
