/**
 * What each ELF section is for, decided the way libbpf's
 * `bpf_object__elf_collect()` decides it: license and version, BTF, map
 * definitions, program code, global data, and the relocation sections worth
 * reading. Sections libbpf skips (DWARF, `.llvm_addrsig`, unknown data) are
 * noted as warnings, not errors.
 * @module
 */
import {
  type ElfContainer,
  type ElfSection,
  SHF_EXECINSTR,
  SHT,
} from "./container.ts";
import { LoadError } from "./errors.ts";

/** Kinds of global-data sections, each of which becomes one internal map. */
export type DataSectionKind = "data" | "rodata" | "bss";

/** A `.data*`, `.rodata*` or `.bss*` section. */
export interface DataSection {
  /** The section. */
  readonly section: ElfSection;
  /** Which internal map it becomes. */
  readonly kind: DataSectionKind;
}

/** The roles of the sections of one object. */
export interface SectionRoles {
  /** The `license` string (libbpf keeps at most 63 bytes), "" if absent. */
  readonly license: string;
  /** The `version` section's value, or undefined. */
  readonly kernVersion: number | undefined;
  /** `.maps`, holding BTF-defined map definitions. */
  readonly maps: ElfSection | undefined;
  /** `.BTF`. */
  readonly btf: ElfSection | undefined;
  /** `.BTF.ext`. */
  readonly btfExt: ElfSection | undefined;
  /** `.text`, where subprograms live (index 0 when there is none). */
  readonly textIndex: number;
  /** Non-empty executable PROGBITS sections, in section order. */
  readonly code: readonly ElfSection[];
  /** Global-data sections, in section order. */
  readonly data: readonly DataSection[];
  /** `.struct_ops` and `.struct_ops.link`. */
  readonly structOps: readonly ElfSection[];
  /** REL sections for code, `.maps` and `.struct_ops*`, in section order. */
  readonly relocations: readonly ElfSection[];
  /** What libbpf would print at info level while skipping sections. */
  readonly warnings: readonly string[];
}

const decoder = new TextDecoder();

/** True for sections libbpf never looks at (`ignore_elf_section()`). */
function ignored(s: ElfSection): boolean {
  if (s.type === SHT.STRTAB || s.type === SHT.LLVM_ADDRSIG) return true;
  // no subprograms leave an empty .text behind
  if (s.type === SHT.PROGBITS && s.size === 0 && s.name === ".text") {
    return true;
  }
  if (s.name.startsWith(".debug_")) return true;
  if (s.name.startsWith(".rel")) {
    const target = s.name.slice(4);
    if (
      target.startsWith(".debug_") || target === ".BTF" || target === ".BTF.ext"
    ) return true;
  }
  return false;
}

function hasPrefix(name: string, base: string): boolean {
  return name === base || name.startsWith(base + ".");
}

/** Sorts the sections of `elf` into their roles (mirrors `bpf_object__elf_collect()`). */
export function collectSections(elf: ElfContainer): SectionRoles {
  const file = elf.file;
  let license = "";
  let kernVersion: number | undefined;
  let maps: ElfSection | undefined;
  let btf: ElfSection | undefined;
  let btfExt: ElfSection | undefined;
  let textIndex = 0;
  const code: ElfSection[] = [];
  const data: DataSection[] = [];
  const structOps: ElfSection[] = [];
  const relocations: ElfSection[] = [];
  const warnings: string[] = [];

  for (const s of elf.sections) {
    if (s.index === 0 || ignored(s)) continue;
    const where = { file, section: s.name };
    if (s.name === "license") {
      // libbpf_strlcpy into char license[64]: up to the first NUL, at most 63 bytes
      const end = s.data.indexOf(0);
      license = decoder.decode(
        s.data.subarray(0, Math.min(end < 0 ? s.data.length : end, 63)),
      );
    } else if (s.name === "version") {
      if (s.size !== 4) {
        throw new LoadError(
          where,
          `invalid kver section: ${s.size} bytes, expected 4`,
        );
      }
      kernVersion = new DataView(s.data.buffer, s.data.byteOffset, 4).getUint32(
        0,
        true,
      );
    } else if (s.name === "maps") {
      throw new LoadError(
        where,
        "legacy map definitions in 'maps' section are not supported by libbpf v1.0+",
      );
    } else if (s.name === ".maps") {
      maps = s;
    } else if (s.name === ".BTF" || s.name === ".BTF.ext") {
      if (s.type !== SHT.PROGBITS) {
        throw new LoadError(where, `section type ${s.type}, expected PROGBITS`);
      }
      if (s.name === ".BTF") btf = s;
      else btfExt = s;
    } else if (s.type === SHT.SYMTAB) {
      // read separately (symbols.ts)
    } else if (s.type === SHT.PROGBITS && s.size > 0) {
      if (s.flags & SHF_EXECINSTR) {
        if (s.name === ".text") textIndex = s.index;
        code.push(s);
      } else if (hasPrefix(s.name, ".data")) {
        data.push({ section: s, kind: "data" });
      } else if (hasPrefix(s.name, ".rodata")) {
        data.push({ section: s, kind: "rodata" });
      } else if (s.name === ".struct_ops" || s.name === ".struct_ops.link") {
        structOps.push(s);
      } else {
        warnings.push(
          `skipping unrecognized data section(${s.index}) ${s.name}`,
        );
      }
    } else if (s.type === SHT.REL) {
      const target = elf.sections[s.info];
      if (target === undefined) {
        throw new LoadError(
          where,
          `relocations for section #${s.info}, which does not exist`,
        );
      }
      const wanted = (target.flags & SHF_EXECINSTR) !== 0 ||
        s.name === ".rel.struct_ops" ||
        s.name === ".rel.struct_ops.link" || s.name === ".rel.maps";
      if (wanted) relocations.push(s);
      else {warnings.push(
          `skipping relo section(${s.index}) ${s.name} for section(${s.info}) ${target.name}`,
        );}
    } else if (s.type === SHT.NOBITS && hasPrefix(s.name, ".bss")) {
      data.push({ section: s, kind: "bss" });
    } else if (s.type === SHT.RELA) {
      // BPF objects use REL only; libbpf skips RELA like any unknown section
      warnings.push(`skipping section(${s.index}) ${s.name} (size ${s.size})`);
    } else {
      warnings.push(`skipping section(${s.index}) ${s.name} (size ${s.size})`);
    }
  }
  return {
    license,
    kernVersion,
    maps,
    btf,
    btfExt,
    textIndex,
    code,
    data,
    structOps,
    relocations,
    warnings,
  };
}
