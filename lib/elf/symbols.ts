/**
 * The ELF symbol table (`.symtab`), read entry by entry. libbpf decides what
 * a symbol is from four fields (binding, type, visibility, section index);
 * the predicates here are its `sym_is_extern()` and `sym_is_subprog()`.
 * @module
 */
import { type ElfContainer, type ElfSection, SHT } from "./container.ts";
import { hex, LoadError } from "./errors.ts";

/** `STB_*` symbol bindings. */
export const STB_LOCAL = 0;
/** Global symbol. */
export const STB_GLOBAL = 1;
/** Weak symbol. */
export const STB_WEAK = 2;

/** `STT_*` symbol types. */
export const STT_NOTYPE = 0;
/** Data object (a variable or a map definition). */
export const STT_OBJECT = 1;
/** Function (a BPF program or subprogram). */
export const STT_FUNC = 2;
/** The section itself (relocations against static functions/data use it). */
export const STT_SECTION = 3;

/** `STV_*` visibilities that libbpf treats as "static" for BTF linkage. */
export const STV_INTERNAL = 1;
/** Hidden visibility (`__hidden`). */
export const STV_HIDDEN = 2;

/** `SHN_UNDEF`: the symbol is not defined in this object (an extern). */
export const SHN_UNDEF = 0;
/** First reserved section index (`SHN_ABS`, `SHN_COMMON` … live above). */
export const SHN_LORESERVE = 0xff00;

const SYM_SIZE = 24;

/** One `Elf64_Sym`, with its name resolved. */
export interface ElfSymbol {
  /** Index in the symbol table (what relocations refer to). */
  readonly index: number;
  /** Name from the symbol string table ("" for section symbols). */
  readonly name: string;
  /** `STB_*`. */
  readonly bind: number;
  /** `STT_*`. */
  readonly type: number;
  /** `STV_*` (low two bits of `st_other`). */
  readonly visibility: number;
  /** Section index the symbol lives in (`SHN_UNDEF` for externs). */
  readonly shndx: number;
  /** `st_value`: offset within its section. */
  readonly value: number;
  /** `st_size` in bytes. */
  readonly size: number;
}

/** The symbol table and where it lives. */
export interface SymbolTable {
  /** The SYMTAB section. */
  readonly section: ElfSection;
  /** All symbols, indexed by symbol index (entry 0 is the null symbol). */
  readonly symbols: readonly ElfSymbol[];
}

/**
 * Finds and reads the single symbol table (mirrors the first pass of
 * `bpf_object__elf_collect()`: exactly one SYMTAB, with a valid string table).
 */
export function readSymbolTable(elf: ElfContainer): SymbolTable {
  const tables = elf.sections.filter((s) => s.type === SHT.SYMTAB);
  if (tables.length === 0) {
    throw new LoadError(
      { file: elf.file },
      "couldn't find symbol table, stripped object file?",
    );
  }
  if (tables.length > 1) {
    throw new LoadError(
      { file: elf.file, section: tables[1].name },
      "multiple symbol tables",
    );
  }
  const section = tables[0];
  const strtab = elf.sections[section.link];
  if (
    section.link === 0 || strtab === undefined || strtab.type !== SHT.STRTAB
  ) {
    throw new LoadError(
      { file: elf.file, section: section.name },
      `symbol strings section missing or invalid (sh_link ${section.link})`,
    );
  }
  if (section.size % SYM_SIZE !== 0) {
    throw new LoadError(
      { file: elf.file, section: section.name },
      `size ${
        hex(section.size)
      } is not a multiple of the ${SYM_SIZE}-byte symbol entry`,
    );
  }
  const data = section.data;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const count = data.length / SYM_SIZE;
  const symbols: ElfSymbol[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const at = i * SYM_SIZE;
    const nameOff = view.getUint32(at, true);
    const info = data[at + 4];
    symbols[i] = {
      index: i,
      name: readString(strtab, nameOff, elf.file),
      bind: info >> 4,
      type: info & 0xf,
      visibility: data[at + 5] & 0x3,
      shndx: view.getUint16(at + 6, true),
      value: Number(view.getBigUint64(at + 8, true)),
      size: Number(view.getBigUint64(at + 16, true)),
    };
  }
  return { section, symbols };
}

const decoder = new TextDecoder();

/** A NUL-terminated string from a string table section. */
export function readString(
  strtab: ElfSection,
  offset: number,
  file: string,
): string {
  const data = strtab.data;
  if (offset >= data.length && !(offset === 0 && data.length === 0)) {
    throw new LoadError(
      { file, section: strtab.name, offset },
      `string offset ${hex(offset)} outside the string table (${
        hex(data.length)
      } bytes)`,
    );
  }
  // symbol names are ASCII in practice: build them directly, decode otherwise
  let end = offset;
  let ascii = true;
  while (end < data.length && data[end] !== 0) {
    if (data[end] >= 0x80) ascii = false;
    end++;
  }
  if (!ascii) return decoder.decode(data.subarray(offset, end));
  let s = "";
  for (let i = offset; i < end; i++) s += String.fromCharCode(data[i]);
  return s;
}

/** Externs are undefined global/weak symbols without a type (`sym_is_extern()`). */
export function symIsExtern(sym: ElfSymbol): boolean {
  return sym.shndx === SHN_UNDEF &&
    (sym.bind === STB_GLOBAL || sym.bind === STB_WEAK) &&
    sym.type === STT_NOTYPE;
}

/**
 * A symbol naming code in `.text`: the section symbol (static functions are
 * reached through it) or a global function (`sym_is_subprog()`).
 */
export function symIsSubprog(sym: ElfSymbol, textIndex: number): boolean {
  if (sym.shndx !== textIndex) return false;
  if (sym.bind === STB_LOCAL && sym.type === STT_SECTION) return true;
  return sym.bind === STB_GLOBAL && sym.type === STT_FUNC;
}
