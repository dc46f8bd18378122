/**
 * The ELF container: header checks and the section table. The section table
 * is read with `npm:elfy`; everything libbpf checks before it trusts a file
 * (`bpf_object__elf_init()`) is checked here first, so that a damaged file
 * fails with a `LoadError` that says where, not with a library exception.
 * @module
 */
// the project rule: lib/ names npm packages by full specifier, never via an import map
// deno-lint-ignore no-import-prefix
import elfy from "npm:elfy@^1.0.0";
import { Buffer } from "node:buffer";
import { hex, LoadError } from "./errors.ts";

/** Section types used by BPF objects (`SHT_*`). */
export const SHT = {
  NULL: 0,
  PROGBITS: 1,
  SYMTAB: 2,
  STRTAB: 3,
  RELA: 4,
  NOBITS: 8,
  REL: 9,
  LLVM_ADDRSIG: 0x6fff4c03,
} as const;

/** Section flag: writable. */
export const SHF_WRITE = 0x1;
/** Section flag: occupies memory at run time. */
export const SHF_ALLOC = 0x2;
/** Section flag: holds instructions. */
export const SHF_EXECINSTR = 0x4;

/** `EM_BPF`: the ELF machine number of BPF objects. */
export const EM_BPF = 247;
/** `ET_REL`: relocatable object, what clang emits for `-c`. */
export const ET_REL = 1;

/** One section of an ELF file. `data` is a view into the file (empty for NOBITS). */
export interface ElfSection {
  /** Section index in the section header table. */
  readonly index: number;
  /** Name from the section name string table. */
  readonly name: string;
  /** `sh_type` (see `SHT`). */
  readonly type: number;
  /** `sh_flags` bits (`SHF_*`). */
  readonly flags: number;
  /** File offset of the section's bytes. */
  readonly offset: number;
  /** Size in bytes (also for NOBITS, which has no bytes in the file). */
  readonly size: number;
  /** `sh_link`: for SYMTAB its string table, for REL its symbol table. */
  readonly link: number;
  /** `sh_info`: for REL the index of the section the relocations patch. */
  readonly info: number;
  /** Bytes per entry, derived from the type (SYMTAB 24, REL 16, RELA 24, else 0). */
  readonly entrySize: number;
  /** The section's bytes (a view into the file; empty for NOBITS). */
  readonly data: Uint8Array;
}

/** A parsed ELF container: header fields libbpf looks at and all sections. */
export interface ElfContainer {
  /** Name of the object (for messages). */
  readonly file: string;
  /** The whole file. */
  readonly bytes: Uint8Array;
  /** `e_type`. */
  readonly elfType: number;
  /** `e_machine` (`EM_BPF`, or 0 from old LLVM). */
  readonly machine: number;
  /** Sections by index; index 0 is the null section. */
  readonly sections: readonly ElfSection[];
}

/** The part of elfy's result that we read (elfy ships no types). */
interface ElfySection {
  name: string;
  type: string | number;
  flags: Record<string, boolean>;
  off: number;
  size: number;
  link: number;
  info: number;
  data: Uint8Array;
}
interface ElfyModule {
  parse(buf: Buffer): { body: { sections: ElfySection[] } };
  constants: {
    sectType: Record<string, string>;
    sectFlags: Record<string, string>;
  };
}
const elfyModule = elfy as ElfyModule;

/** elfy names types and flags; turn the names back into numbers. */
const TYPE_BY_NAME: ReadonlyMap<string, number> = invert(
  elfyModule.constants.sectType,
);
const FLAG_BY_NAME: ReadonlyMap<string, number> = invert(
  elfyModule.constants.sectFlags,
);

function invert(table: Record<string, string>): Map<string, number> {
  const out = new Map<string, number>();
  for (const [num, name] of Object.entries(table)) out.set(name, Number(num));
  return out;
}

const EHDR_SIZE = 64;
const EMPTY = new Uint8Array(0);
const SHDR_SIZE = 64;

/**
 * Reads the ELF header and section table of a BPF object.
 * Mirrors the checks of libbpf's `bpf_object__elf_init()` and
 * `bpf_object__check_endianness()`.
 */
export function readContainer(bytes: Uint8Array, file: string): ElfContainer {
  checkHeader(bytes, file);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const elfType = view.getUint16(0x10, true);
  const machine = view.getUint16(0x12, true);
  const shoff = Number(view.getBigUint64(0x28, true));
  const shentsize = view.getUint16(0x3a, true);
  const shnum = view.getUint16(0x3c, true);
  const shstrndx = view.getUint16(0x3e, true);
  if (shnum === 0 || shoff === 0) {
    throw new LoadError(
      { file, offset: 0x28 },
      "no section header table (stripped or not an object file)",
    );
  }
  if (shentsize !== SHDR_SIZE) {
    throw new LoadError(
      { file, offset: 0x3a },
      `section header size ${shentsize}, expected ${SHDR_SIZE}`,
    );
  }
  const tableEnd = shoff + shnum * SHDR_SIZE;
  if (tableEnd > bytes.length) {
    throw new LoadError(
      { file, offset: shoff },
      `truncated ELF: section header table (${shnum} entries) ends at ${
        hex(tableEnd)
      }, ` +
        `past the end of the file (${hex(bytes.length)} bytes)`,
    );
  }
  if (shstrndx >= shnum) {
    throw new LoadError(
      { file, offset: 0x3e },
      `section name table index ${shstrndx} out of range (${shnum} sections)`,
    );
  }
  const raw = parseWithElfy(bytes, file);
  const sections = raw.map((s, index) => toSection(s, index, bytes, file));
  if (sections[shstrndx].type !== SHT.STRTAB) {
    throw new LoadError(
      { file, offset: 0x3e },
      `section ${shstrndx} holding section names is not a string table`,
    );
  }
  // mirrors the e_type/e_machine test of bpf_object__elf_init(); old LLVM set EM_NONE
  if (elfType !== ET_REL || (machine !== 0 && machine !== EM_BPF)) {
    throw new LoadError(
      { file, offset: 0x10 },
      `not a valid eBPF object file (e_type ${elfType}, e_machine ${machine}; expected ET_REL and EM_BPF)`,
    );
  }
  return { file, bytes, elfType, machine, sections };
}

function checkHeader(bytes: Uint8Array, file: string): void {
  if (
    bytes.length < 4 || bytes[0] !== 0x7f || bytes[1] !== 0x45 ||
    bytes[2] !== 0x4c || bytes[3] !== 0x46
  ) {
    const seen = Array.from(
      bytes.subarray(0, 4),
      (b) => b.toString(16).padStart(2, "0"),
    ).join(" ");
    throw new LoadError(
      { file, offset: 0 },
      `not a proper ELF object: bad magic '${seen}'`,
    );
  }
  if (bytes.length < EHDR_SIZE) {
    throw new LoadError(
      { file, offset: 0 },
      `truncated ELF: ${bytes.length} bytes, the header alone needs ${EHDR_SIZE}`,
    );
  }
  if (bytes[4] !== 2) {
    throw new LoadError({ file, offset: 4 }, "not a 64-bit ELF object");
  }
  // BPF objects are read on a little-endian host: libbpf refuses the other order
  if (bytes[5] !== 1) {
    throw new LoadError(
      { file, offset: 5 },
      "endianness mismatch: object is not little-endian",
    );
  }
}

function parseWithElfy(bytes: Uint8Array, file: string): ElfySection[] {
  try {
    return elfyModule.parse(
      Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength),
    ).body.sections;
  } catch (e) {
    const why = e instanceof Error ? e.message : String(e);
    throw new LoadError({ file }, `malformed ELF: ${why}`, { cause: e });
  }
}

function toSection(
  s: ElfySection,
  index: number,
  bytes: Uint8Array,
  file: string,
): ElfSection {
  const type = typeof s.type === "number"
    ? s.type
    : TYPE_BY_NAME.get(s.type) ?? -1;
  let flags = 0;
  for (const name in s.flags) {
    if (s.flags[name]) flags |= FLAG_BY_NAME.get(name) ?? Number(name);
  }
  const hasBytes = type !== SHT.NOBITS && type !== SHT.NULL;
  if (hasBytes && s.off + s.size > bytes.length) {
    throw new LoadError(
      { file, section: s.name, offset: s.off },
      `truncated ELF: ${s.size} bytes of section data run past the end of the file (${
        hex(bytes.length)
      } bytes)`,
    );
  }
  const entrySize = type === SHT.SYMTAB
    ? 24
    : type === SHT.REL
    ? 16
    : type === SHT.RELA
    ? 24
    : 0;
  const data = hasBytes ? bytes.subarray(s.off, s.off + s.size) : EMPTY;
  return {
    index,
    name: s.name,
    type,
    flags,
    offset: s.off,
    size: s.size,
    link: s.link,
    info: s.info,
    entrySize,
    data,
  };
}

/** The first section with this name, or undefined (mirrors `elf_sec_by_name()`). */
export function sectionByName(
  elf: ElfContainer,
  name: string,
): ElfSection | undefined {
  return elf.sections.find((s) => s.name === name);
}
