/**
 * Programs as they sit in the object, before linking: one per function
 * symbol of each code section (several programs may share a section), with
 * their instructions copied out. Functions in `.text` are subprograms when
 * the object has more than one function (`prog_is_subprog()`).
 * @module
 */
import type { RawInsn } from "../isa/insn.ts";
import { INSN_SIZE } from "../isa/opcodes.ts";
import type { ElfSection } from "./container.ts";
import { hex, LoadError } from "./errors.ts";
import { findSectionDef, type SectionDef } from "./sections.ts";
import {
  type ElfSymbol,
  STB_LOCAL,
  STT_FUNC,
  STV_HIDDEN,
  STV_INTERNAL,
  type SymbolTable,
} from "./symbols.ts";
import type { RelocDesc } from "./relocations.ts";

/** A program or subprogram as found in its section (libbpf's `struct bpf_program`). */
export interface ElfProgram {
  /** Function name. */
  readonly name: string;
  /** Section name without libbpf's leading `?` (the "do not autoload" mark). */
  readonly secName: string;
  /** Section index. */
  readonly secIndex: number;
  /** First instruction, in slots from the start of the section. */
  readonly secInsnOff: number;
  /** Number of instruction slots of the function itself. */
  readonly secInsnCnt: number;
  /** The function's own instructions, copied (relocation patches the copy). */
  readonly insns: RawInsn[];
  /** False for `SEC("?name")` programs. */
  readonly autoload: boolean;
  /** True unless the symbol is STB_LOCAL. */
  readonly symGlobal: boolean;
  /** Global but hidden: libbpf marks its BTF FUNC static. */
  readonly markBtfStatic: boolean;
  /** `SEC()` table entry, or undefined for section names libbpf does not know. */
  readonly secDef: SectionDef | undefined;
  /** Relocations of this function's instructions, by local slot index. */
  readonly relocs: RelocDesc[];
}

/**
 * Creates the programs of one code section, in symbol table order
 * (mirrors `bpf_object__add_programs()` and `bpf_object__init_prog()`).
 */
export function addPrograms(
  file: string,
  section: ElfSection,
  symtab: SymbolTable,
  textIndex: number,
): ElfProgram[] {
  const out: ElfProgram[] = [];
  const rawSection = section.name;
  const autoload = !rawSection.startsWith("?");
  const secName = autoload ? rawSection : rawSection.slice(1);
  const secDef = findSectionDef(secName);
  for (const sym of symtab.symbols) {
    if (sym.shndx !== section.index || sym.type !== STT_FUNC) continue;
    const where = { file, section: rawSection, offset: sym.value };
    if (sym.value + sym.size > section.size) {
      throw new LoadError(
        where,
        `program '${sym.name}' crosses section boundary (size ${
          hex(sym.size)
        })`,
      );
    }
    if (section.index !== textIndex && sym.bind === STB_LOCAL) {
      throw new LoadError(
        where,
        `program '${sym.name}' is static and not supported`,
      );
    }
    if (
      sym.size === 0 || sym.size % INSN_SIZE !== 0 ||
      sym.value % INSN_SIZE !== 0
    ) {
      throw new LoadError(
        where,
        `corrupted program '${sym.name}', offset ${sym.value}, size ${sym.size}`,
      );
    }
    out.push(
      makeProgram(
        sym,
        section,
        secName,
        autoload,
        secDef,
        readInsns(section.data, sym.value, sym.size),
      ),
    );
  }
  return out;
}

/** Raw slots of `size` bytes at `offset` (one DataView for the lot, unlike `readRawProgram`). */
function readInsns(data: Uint8Array, offset: number, size: number): RawInsn[] {
  const view = new DataView(data.buffer, data.byteOffset + offset, size);
  const out: RawInsn[] = new Array(size / INSN_SIZE);
  for (let i = 0; i < out.length; i++) {
    const at = i * INSN_SIZE;
    const regs = view.getUint8(at + 1);
    out[i] = {
      code: view.getUint8(at),
      dst: regs & 0x0f,
      src: regs >> 4,
      off: view.getInt16(at + 2, true),
      imm: view.getInt32(at + 4, true),
    };
  }
  return out;
}

function makeProgram(
  sym: ElfSymbol,
  section: ElfSection,
  secName: string,
  autoload: boolean,
  secDef: SectionDef | undefined,
  insns: RawInsn[],
): ElfProgram {
  const symGlobal = sym.bind !== STB_LOCAL;
  const hidden = sym.visibility === STV_HIDDEN ||
    sym.visibility === STV_INTERNAL;
  return {
    name: sym.name,
    secName,
    secIndex: section.index,
    secInsnOff: sym.value / INSN_SIZE,
    secInsnCnt: sym.size / INSN_SIZE,
    insns,
    autoload,
    symGlobal,
    markBtfStatic: symGlobal && hidden,
    secDef,
    relocs: [],
  };
}

/** Sorts by section, then by position (mirrors `cmp_progs()`). */
export function sortPrograms(programs: ElfProgram[]): void {
  programs.sort((a, b) =>
    a.secIndex - b.secIndex || a.secInsnOff - b.secInsnOff
  );
}

/** True for functions of `.text` in an object with more than one function. */
export function isSubprogram(
  prog: ElfProgram,
  textIndex: number,
  programCount: number,
): boolean {
  return prog.secIndex === textIndex && programCount > 1;
}

/**
 * The function containing slot `insnIdx` of section `secIndex`
 * (mirrors `find_prog_by_sec_insn()`; `programs` must be sorted).
 */
export function findProgramBySecInsn(
  programs: readonly ElfProgram[],
  secIndex: number,
  insnIdx: number,
): ElfProgram | undefined {
  let lo = 0;
  let hi = programs.length - 1;
  if (hi < 0) return undefined;
  while (lo < hi) {
    const mid = lo + ((hi - lo + 1) >> 1);
    const p = programs[mid];
    if (
      p.secIndex < secIndex ||
      (p.secIndex === secIndex && p.secInsnOff <= insnIdx)
    ) lo = mid;
    else hi = mid - 1;
  }
  const p = programs[lo];
  const inside = insnIdx >= p.secInsnOff &&
    insnIdx < p.secInsnOff + p.secInsnCnt;
  return p.secIndex === secIndex && inside ? p : undefined;
}
