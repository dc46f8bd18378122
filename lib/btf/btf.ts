/**
 * `Btf`: the parsed types of one object plus the queries every consumer
 * needs (lookup by id and name, modifier skipping, sizes, tags, C names).
 * Built by `parseBtf()`; the only mutation is `setDatasecLayout()`, which the
 * ELF loader uses to fill in section sizes and variable offsets exactly as
 * libbpf's `btf_fixup_datasec()` does.
 * @module
 */
import { BtfError, EINVAL } from "./errors.ts";
import type { BtfStrings } from "./strings.ts";
import { cTypeName } from "./cname.ts";
import {
  type BtfDatasec,
  type BtfDeclTag,
  type BtfHeader,
  type BtfKindName,
  type BtfType,
  type BtfVarSecinfo,
  DECL_TAG_WHOLE_TYPE,
  isModifierKind,
} from "./types.ts";

/** The kernel's `MAX_RESOLVE_DEPTH`: bound on modifier / array chains. */
export const MAX_RESOLVE_DEPTH = 32;

/** Result of `Btf.resolve()`: the underlying type and what was skipped. */
export interface ResolvedType {
  /** Id of the first type that is not a modifier (0 for void). */
  readonly id: number;
  /** The resolved type itself. */
  readonly type: BtfType;
  /** Ids of the TYPEDEF/CONST/VOLATILE/RESTRICT/TYPE_TAG types skipped, in order. */
  readonly skipped: readonly number[];
  /** Names of the TYPE_TAGs among them (e.g. `["kptr"]`), in order. */
  readonly typeTags: readonly string[];
}

/** Parsed BTF of one object. Type id = index into `types`; 0 is void. */
export class Btf {
  /** The decoded header. */
  readonly header: BtfHeader;
  /** All types, indexed by id (`types[0]` is void). */
  readonly types: readonly BtfType[];
  readonly #types: BtfType[];
  readonly #strings: BtfStrings;
  #byName: Map<string, number[]> | undefined;
  #declTags: Map<number, BtfDeclTag[]> | undefined;

  /** Prefer `parseBtf()`; this trusts that `types` were validated. */
  constructor(header: BtfHeader, types: BtfType[], strings: BtfStrings) {
    this.header = header;
    this.#types = types;
    this.types = types;
    this.#strings = strings;
  }

  /** Number of type ids including void (libbpf's `btf__type_cnt`). */
  get typeCount(): number {
    return this.#types.length;
  }

  /** Size of the string section in bytes. */
  get stringsLength(): number {
    return this.#strings.length;
  }

  /** The type with id `id`; throws `BtfError` when out of range. */
  typeById(id: number): BtfType {
    const t = this.#types[id];
    if (t === undefined || !Number.isInteger(id)) {
      throw new BtfError(
        `type id ${id} out of range (last is ${this.#types.length - 1})`,
        {
          typeId: id,
        },
      );
    }
    return t;
  }

  /** True when `off` is inside the string section. */
  isValidStringOffset(off: number): boolean {
    return this.#strings.isValidOffset(off);
  }

  /** The string at `off` in the string section; throws when out of range. */
  stringAt(off: number): string {
    return this.#strings.at(off);
  }

  /** Name of type `id` (`""` for anonymous types and void). */
  nameOf(id: number): string {
    return this.typeById(id).name;
  }

  /**
   * Id of the first type named `name` (optionally of `kind`), or undefined.
   * Mirrors `btf_find_by_name_kind()` (which needs the kind).
   */
  findByName(name: string, kind?: BtfKindName): number | undefined {
    return this.findAllByName(name, kind)[0];
  }

  /** Ids of all types named `name` (optionally of `kind`), ascending. */
  findAllByName(name: string, kind?: BtfKindName): number[] {
    if (this.#byName === undefined) {
      const map = new Map<string, number[]>();
      for (const t of this.#types) {
        if (t.name === "") continue;
        const list = map.get(t.name);
        if (list) list.push(t.id);
        else map.set(t.name, [t.id]);
      }
      this.#byName = map;
    }
    const ids = this.#byName.get(name) ?? [];
    return kind === undefined
      ? [...ids]
      : ids.filter((id) => this.#types[id].kind === kind);
  }

  /**
   * Skips TYPEDEF, CONST, VOLATILE, RESTRICT and TYPE_TAG starting at `id`,
   * like `btf_type_skip_modifiers()`, keeping the skipped ids and type tags.
   */
  resolve(id: number): ResolvedType {
    const skipped: number[] = [];
    const typeTags: string[] = [];
    let t = this.typeById(id);
    while (isModifierKind(t.kind)) {
      if (skipped.length >= MAX_RESOLVE_DEPTH) {
        throw new BtfError("Loop detected in modifier chain", { typeId: id });
      }
      skipped.push(t.id);
      if (t.kind === "TYPE_TAG") typeTags.push(t.name);
      t = this.typeById((t as { type: number }).type);
    }
    return { id: t.id, type: t, skipped, typeTags };
  }

  /**
   * Size in bytes of type `id`, as the kernel's `btf_resolve_size()`:
   * modifiers are skipped, arrays multiply, PTR is 8. Throws `BtfError`
   * (EINVAL) for sizeless types (void, FUNC, FWD, VAR, DATASEC …).
   */
  sizeOf(id: number): number {
    let nelems = 1;
    let t = this.typeById(id);
    for (let depth = 0; depth < MAX_RESOLVE_DEPTH; depth++) {
      switch (t.kind) {
        case "INT":
        case "STRUCT":
        case "UNION":
        case "ENUM":
        case "ENUM64":
        case "FLOAT":
          return checkedProduct(nelems, t.size, id);
        case "PTR":
          return checkedProduct(nelems, 8, id);
        case "TYPEDEF":
        case "VOLATILE":
        case "CONST":
        case "RESTRICT":
        case "TYPE_TAG":
          t = this.typeById(t.type);
          break;
        case "ARRAY":
          nelems = checkedProduct(nelems, t.nelems, id);
          t = this.typeById(t.type);
          break;
        default:
          throw new BtfError(`${t.kind} type [${t.id}] has no size`, {
            typeId: id,
          });
      }
    }
    throw new BtfError("type chain too deep to size", { typeId: id });
  }

  /**
   * Values of the DECL_TAGs attached to type `id` (a struct, union, var,
   * func or typedef); with `memberIndex`, those on that member / parameter.
   */
  declTagsOf(id: number, memberIndex: number = DECL_TAG_WHOLE_TYPE): string[] {
    if (this.#declTags === undefined) {
      const map = new Map<number, BtfDeclTag[]>();
      for (const t of this.#types) {
        if (t.kind !== "DECL_TAG") continue;
        const list = map.get(t.type);
        if (list) list.push(t);
        else map.set(t.type, [t]);
      }
      this.#declTags = map;
    }
    return (this.#declTags.get(id) ?? [])
      .filter((t) => t.componentIdx === memberIndex)
      .map((t) => t.name);
  }

  /** Names of the TYPE_TAGs directly under PTR `id` (`["kptr"]`); [] if none. */
  pointerTags(id: number): string[] {
    const t = this.typeById(id);
    if (t.kind !== "PTR") return [];
    const tags: string[] = [];
    let next = this.typeById(t.type);
    while (next.kind === "TYPE_TAG" && tags.length < MAX_RESOLVE_DEPTH) {
      tags.push(next.name);
      next = this.typeById(next.type);
    }
    return tags;
  }

  /** A C-like name: `struct foo *`, `int (*)(int, char)`, `u32_t [4][2]`. */
  typeName(id: number): string {
    return cTypeName(this, id);
  }

  /**
   * Fills in a DATASEC's size and its variables' offsets/sizes, as libbpf's
   * `btf_fixup_datasec()` does from the ELF section and symbol table.
   */
  setDatasecLayout(
    id: number,
    size: number,
    vars: readonly BtfVarSecinfo[],
  ): void {
    const t = this.typeById(id);
    if (t.kind !== "DATASEC") {
      throw new BtfError(`type [${id}] is ${t.kind}, not DATASEC`, {
        typeId: id,
      });
    }
    if (vars.length !== t.vars.length) {
      throw new BtfError(
        `DATASEC has ${t.vars.length} vars, got ${vars.length}`,
        {
          typeId: id,
        },
      );
    }
    const updated: BtfDatasec = {
      ...t,
      size,
      vars: vars.map((v) => ({ ...v })),
    };
    this.#types[id] = updated;
  }
}

/** `a * b` with the kernel's U32_MAX overflow refusal. */
function checkedProduct(a: number, b: number, typeId: number): number {
  const p = a * b;
  if (p > 0xffffffff) {
    throw new BtfError("size overflows U32_MAX", { typeId, errno: EINVAL });
  }
  return p;
}
