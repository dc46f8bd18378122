/**
 * BTF fix-ups that need the ELF file: clang leaves DATASEC sizes and variable
 * offsets at zero, and `__hidden` globals must look static to the kernel.
 * Mirrors libbpf's `bpf_object_fixup_btf()` / `btf_fixup_datasec()` and the
 * "mark hidden subprograms static" step of `bpf_object__sanitize_and_load_btf()`.
 * @module
 */
import {
  BTF_LINKAGE_EXTERN,
  BTF_LINKAGE_GLOBAL,
  BTF_LINKAGE_STATIC,
} from "../btf/types.ts";
import type { BtfDraft } from "./btf_edit.ts";
import { type ElfContainer, sectionByName } from "./container.ts";
import { LoadError } from "./errors.ts";
import {
  type ElfSymbol,
  STB_GLOBAL,
  STB_WEAK,
  STT_OBJECT,
  STV_HIDDEN,
  STV_INTERNAL,
  type SymbolTable,
} from "./symbols.ts";

/** The global or weak data symbol with this name (`find_elf_var_sym()`). */
function findVarSymbol(
  symtab: SymbolTable,
  name: string,
): ElfSymbol | undefined {
  return symtab.symbols.find((s) =>
    s.type === STT_OBJECT && (s.bind === STB_GLOBAL || s.bind === STB_WEAK) &&
    s.name === name
  );
}

/**
 * Fills in DATASEC sizes and VAR offsets from the ELF file, makes hidden
 * globals static, and sorts each DATASEC's variables by offset.
 */
export function fixupDatasecs(
  draft: BtfDraft,
  elf: ElfContainer,
  symtab: SymbolTable,
): void {
  const types = draft.types;
  for (let id = 1; id < types.length; id++) {
    const t = types[id];
    if (t.kind !== "DATASEC") continue;
    const where = { file: elf.file, section: ".BTF", offset: t.offset };
    let size = t.size;
    let vars = t.vars.map((v) => ({ ...v }));
    // extern-backed sections were laid out while collecting externs
    if (t.name !== ".kconfig" && t.name !== ".ksyms") {
      const fixOffsets = size === 0;
      if (fixOffsets) {
        const sec = sectionByName(elf, t.name);
        if (sec === undefined || sec.size === 0) {
          throw new LoadError(
            where,
            `sec '${t.name}': failed to determine size from ELF`,
          );
        }
        size = sec.size;
      }
      vars = vars.map((v, i) => {
        const vt = types[v.type];
        if (vt.kind !== "VAR") {
          throw new LoadError(
            where,
            `sec '${t.name}': unexpected non-VAR type found`,
          );
        }
        if (
          vt.linkage === BTF_LINKAGE_STATIC || vt.linkage === BTF_LINKAGE_EXTERN
        ) return v;
        const sym = findVarSymbol(symtab, vt.name);
        if (sym === undefined) {
          throw new LoadError(
            where,
            `sec '${t.name}': failed to find ELF symbol for VAR '${vt.name}' (#${i})`,
          );
        }
        if (sym.visibility === STV_HIDDEN || sym.visibility === STV_INTERNAL) {
          types[vt.id] = { ...vt, linkage: BTF_LINKAGE_STATIC };
        }
        return fixOffsets ? { ...v, offset: sym.value } : v;
      });
    }
    vars.sort((a, b) => a.offset - b.offset);
    types[id] = { ...t, size, vars };
  }
}

/**
 * Hidden global subprograms are verified like static ones: their BTF FUNC
 * becomes static (libbpf does this just before loading BTF).
 */
export function markHiddenFuncsStatic(
  draft: BtfDraft,
  names: readonly string[],
): void {
  if (names.length === 0) return;
  const types = draft.types;
  for (const name of names) {
    const id = types.findIndex((t) =>
      t.kind === "FUNC" && t.linkage === BTF_LINKAGE_GLOBAL && t.name === name
    );
    const t = types[id];
    if (id > 0 && t.kind === "FUNC") {
      types[id] = {
        ...t,
        linkage: BTF_LINKAGE_STATIC,
        vlen: BTF_LINKAGE_STATIC,
      };
    }
  }
}
