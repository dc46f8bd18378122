/**
 * Extern symbols: `__kconfig` variables (laid out in the `.kconfig` map) and
 * `__ksym` kernel variables and functions (resolved later against the
 * kernel's BTF). Mirrors libbpf's `bpf_object__collect_externs()`, including
 * the BTF edits it makes so the kernel accepts the object's BTF.
 * @module
 */
import {
  BTF_INT_BOOL,
  BTF_INT_SIGNED,
  BTF_LINKAGE_EXTERN,
  BTF_LINKAGE_GLOBAL,
  type BtfType,
} from "../btf/types.ts";
import { essentialNameLen } from "../btf/core_match.ts";
import { addVar, type BtfDraft } from "./btf_edit.ts";
import { LoadError } from "./errors.ts";
import { STB_WEAK, type SymbolTable, symIsExtern } from "./symbols.ts";

/** How libbpf fills a `__kconfig` extern (`enum kcfg_type`). */
export type KconfigType = "char" | "bool" | "int" | "tristate" | "char_array";

/** One extern of the object (libbpf's `struct extern_desc`). */
export interface ExternDesc {
  /** Name as in BTF (may carry a `___flavour` suffix). */
  readonly name: string;
  /** Name without a `___flavour` suffix (what is looked up in the kernel). */
  readonly essentialName: string;
  /** `kconfig` for `__kconfig`, `ksym` for `__ksym`. */
  readonly kind: "kconfig" | "ksym";
  /** True for a BTF FUNC (a kfunc), false for a VAR. */
  readonly isFunc: boolean;
  /** Declared `__weak`: may stay unresolved. */
  readonly isWeak: boolean;
  /** Index in the ELF symbol table. */
  readonly symIndex: number;
  /** The extern's BTF VAR or FUNC id in the object's BTF. */
  readonly btfId: number;
  /** The BTF DATASEC (`.kconfig` / `.ksyms`) it is listed in. */
  readonly secBtfId: number;
  /** For ksyms: the local BTF type (FUNC_PROTO of a kfunc, type of a typed var); 0 when typeless. */
  readonly ksymTypeId: number;
  /** For kconfig: how the value is encoded, its size, alignment and offset in `.kconfig`. */
  readonly kconfig?: {
    readonly type: KconfigType;
    readonly size: number;
    readonly align: number;
    readonly offset: number;
    readonly isSigned: boolean;
  };
}

function skipModsAndTypedefs(types: readonly BtfType[], id: number): number {
  let t = types[id];
  for (let depth = 0; depth < 32; depth++) {
    if (
      !("type" in t) ||
      !["TYPEDEF", "VOLATILE", "CONST", "RESTRICT", "TYPE_TAG"].includes(t.kind)
    ) break;
    id = t.type;
    t = types[id];
  }
  return id;
}

/** `btf__align_of()`: natural alignment, 1 for packed structs. */
export function alignOf(types: readonly BtfType[], id: number): number {
  const t = types[id];
  switch (t.kind) {
    case "INT":
    case "ENUM":
    case "ENUM64":
    case "FLOAT":
      return Math.min(8, t.size);
    case "PTR":
      return 8;
    case "TYPEDEF":
    case "VOLATILE":
    case "CONST":
    case "RESTRICT":
    case "TYPE_TAG":
    case "ARRAY":
      return alignOf(types, t.type);
    case "STRUCT":
    case "UNION": {
      let max = 1;
      for (const m of t.members) {
        const a = alignOf(types, m.type);
        if (a <= 0) return a;
        max = Math.max(max, a);
        if (m.bitfieldSize === 0 && m.bitOffset % (8 * a) !== 0) return 1;
      }
      return t.size % max !== 0 ? 1 : max;
    }
    default:
      return 0;
  }
}

/** `find_kcfg_type()`. */
function kconfigType(
  types: readonly BtfType[],
  id: number,
): { type: KconfigType | null; isSigned: boolean } {
  const t = types[skipModsAndTypedefs(types, id)];
  switch (t.kind) {
    case "INT":
      if (t.encoding & BTF_INT_BOOL) {
        return { type: t.size === 1 ? "bool" : null, isSigned: false };
      }
      if (t.size === 1) {
        return { type: "char", isSigned: (t.encoding & BTF_INT_SIGNED) !== 0 };
      }
      if (t.size < 1 || t.size > 8 || (t.size & (t.size - 1)) !== 0) {
        return { type: null, isSigned: false };
      }
      return { type: "int", isSigned: (t.encoding & BTF_INT_SIGNED) !== 0 };
    case "ENUM":
      return {
        type: t.size === 4 && t.name === "libbpf_tristate" ? "tristate" : null,
        isSigned: false,
      };
    case "ENUM64":
      return {
        type: t.name === "libbpf_tristate" ? "tristate" : null,
        isSigned: false,
      };
    case "ARRAY":
      if (t.nelems === 0 || kconfigType(types, t.type).type !== "char") {
        return { type: null, isSigned: false };
      }
      return { type: "char_array", isSigned: false };
    default:
      return { type: null, isSigned: false };
  }
}

function sizeOfType(draft: BtfDraft, id: number): number {
  try {
    return draft.original.sizeOf(id);
  } catch {
    return -1;
  }
}

/**
 * Collects the externs, sorted as libbpf sorts them (kconfig first, by
 * descending alignment, ascending size, then name; then ksyms by name), and
 * edits the `.ksyms` / `.kconfig` DATASECs of `draft` like libbpf.
 */
export function collectExterns(
  file: string,
  symtab: SymbolTable,
  draft: BtfDraft | undefined,
): ExternDesc[] {
  const found = symtab.symbols.filter((s) => symIsExtern(s) && s.name !== "");
  if (found.length === 0) return [];
  const where = { file, section: symtab.section.name };
  if (draft === undefined) {
    throw new LoadError(
      where,
      `failed to find BTF for extern '${
        found[0].name
      }': the object has no .BTF`,
    );
  }
  const types = draft.types;
  // first VAR/FUNC of each name, and the DATASEC listing each type id
  const byName = new Map<string, number>();
  const secOf = new Map<number, number>();
  for (const t of types) {
    if ((t.kind === "VAR" || t.kind === "FUNC") && !byName.has(t.name)) {
      byName.set(t.name, t.id);
    }
    if (t.kind === "DATASEC") {
      for (const v of t.vars) if (!secOf.has(v.type)) secOf.set(v.type, t.id);
    }
  }
  const raw: Omit<ExternDesc, "kconfig">[] = [];
  const kconfigInfo = new Map<
    string,
    { type: KconfigType; size: number; align: number; isSigned: boolean }
  >();
  for (const sym of found) {
    const btfId = byName.get(sym.name) ?? -1;
    if (btfId <= 0) {
      throw new LoadError(where, `failed to find BTF for extern '${sym.name}'`);
    }
    const t = types[btfId] as BtfType & { type: number; linkage: number };
    if (t.linkage !== BTF_LINKAGE_EXTERN) {
      throw new LoadError(
        where,
        `BTF ${t.kind} '${sym.name}' [${btfId}] is not declared extern`,
      );
    }
    const secBtfId = secOf.get(btfId) ?? -1;
    if (secBtfId <= 0) {
      throw new LoadError(
        where,
        `failed to find BTF for extern '${sym.name}' [${btfId}] section`,
      );
    }
    const secName = types[secBtfId].name;
    const isFunc = t.kind === "FUNC";
    const base = {
      name: t.name,
      essentialName: t.name.slice(0, essentialNameLen(t.name)),
      isFunc,
      isWeak: sym.bind === STB_WEAK,
      symIndex: sym.index,
      btfId,
      secBtfId,
    };
    if (secName === ".kconfig") {
      if (isFunc) {
        throw new LoadError(
          where,
          `extern function ${t.name} is unsupported under .kconfig section`,
        );
      }
      const size = sizeOfType(draft, t.type);
      if (size <= 0) {
        throw new LoadError(
          where,
          `failed to resolve size of extern (kcfg) '${t.name}'`,
        );
      }
      const align = alignOf(types, t.type);
      if (align <= 0) {
        throw new LoadError(
          where,
          `failed to determine alignment of extern (kcfg) '${t.name}'`,
        );
      }
      const { type, isSigned } = kconfigType(types, t.type);
      if (type === null) {
        throw new LoadError(
          where,
          `extern (kcfg) '${t.name}': type is unsupported`,
        );
      }
      kconfigInfo.set(t.name, { type, size, align, isSigned });
      raw.push({ ...base, kind: "kconfig", ksymTypeId: 0 });
    } else if (secName === ".ksyms") {
      raw.push({
        ...base,
        kind: "ksym",
        ksymTypeId: skipModsAndTypedefs(types, t.type),
      });
    } else {
      throw new LoadError(where, `unrecognized extern section '${secName}'`);
    }
  }
  raw.sort((a, b) => {
    if (a.kind !== b.kind) return a.kind === "kconfig" ? -1 : 1;
    if (a.kind === "kconfig") {
      const ka = kconfigInfo.get(a.name)!, kb = kconfigInfo.get(b.name)!;
      if (ka.align !== kb.align) return kb.align - ka.align;
      if (ka.size !== kb.size) return ka.size - kb.size;
    }
    return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
  });
  let off = 0;
  const externs: ExternDesc[] = raw.map((e) => {
    const k = kconfigInfo.get(e.name);
    if (e.kind !== "kconfig" || k === undefined) return e;
    const offset = Math.ceil(off / k.align) * k.align;
    off = offset + k.size;
    return { ...e, kconfig: { ...k, offset } };
  });
  rewriteKsymsDatasec(draft, externs, where);
  rewriteKconfigDatasec(draft, externs, off, where);
  return externs;
}

function findInt32(types: readonly BtfType[]): number {
  const id = types.findIndex((t) => t.kind === "INT" && t.nrBits === 32);
  return id < 0 ? 0 : id;
}

/** `.ksyms`: every extern becomes a 4-byte allocated VAR so the kernel accepts the DATASEC. */
function rewriteKsymsDatasec(
  draft: BtfDraft,
  externs: readonly ExternDesc[],
  where: { file: string },
): void {
  const types = draft.types;
  const secId = types.findIndex((t) =>
    t.kind === "DATASEC" && t.name === ".ksyms"
  );
  if (secId < 0) return;
  const sec = types[secId];
  if (sec.kind !== "DATASEC") return;
  const intId = findInt32(types);
  let dummyId = 0;
  if (sec.vars.some((v) => types[v.type].kind === "FUNC")) {
    // mirrors add_dummy_ksym_var(): a VAR for FUNC entries to point at
    dummyId = addVar(draft, "dummy_ksym", BTF_LINKAGE_GLOBAL, intId);
  }
  const dummy = types[dummyId];
  const vars = sec.vars.map((v, i) => {
    const vt = types[v.type];
    if (!externs.some((e) => e.name === vt.name)) {
      throw new LoadError(
        where,
        `failed to find extern definition for BTF ${vt.kind.toLowerCase()} '${vt.name}'`,
      );
    }
    if (vt.kind === "FUNC") {
      const proto = types[vt.type];
      if (
        proto.kind === "FUNC_PROTO" &&
        proto.params.some((p) => p.type !== 0 && p.nameOff === 0)
      ) {
        types[proto.id] = {
          ...proto,
          params: proto.params.map((p) =>
            p.type !== 0 && p.nameOff === 0
              ? { ...p, name: dummy.name, nameOff: dummy.nameOff }
              : p
          ),
        };
      }
      types[vt.id] = {
        ...vt,
        linkage: BTF_LINKAGE_GLOBAL,
        vlen: BTF_LINKAGE_GLOBAL,
      };
      return { type: dummyId, offset: i * 4, size: 4 };
    }
    if (vt.kind === "VAR") {
      types[vt.id] = { ...vt, linkage: BTF_LINKAGE_GLOBAL, type: intId };
    }
    return { ...v, offset: i * 4, size: 4 };
  });
  types[secId] = { ...sec, size: vars.length * 4, vars };
}

/** `.kconfig`: VARs become allocated, placed at the offsets computed above. */
function rewriteKconfigDatasec(
  draft: BtfDraft,
  externs: readonly ExternDesc[],
  size: number,
  where: { file: string },
): void {
  const types = draft.types;
  const secId = types.findIndex((t) =>
    t.kind === "DATASEC" && t.name === ".kconfig"
  );
  if (secId < 0) return;
  const sec = types[secId];
  if (sec.kind !== "DATASEC") return;
  const vars = sec.vars.map((v) => {
    const vt = types[v.type];
    const ext = externs.find((e) => e.name === vt.name);
    if (ext?.kconfig === undefined) {
      throw new LoadError(
        where,
        `failed to find extern definition for BTF var '${vt.name}'`,
      );
    }
    if (vt.kind === "VAR") {
      types[vt.id] = { ...vt, linkage: BTF_LINKAGE_GLOBAL };
    }
    return { ...v, offset: ext.kconfig.offset };
  });
  types[secId] = { ...sec, size, vars };
}
