/**
 * ELF relocations of BPF code: reading `Elf64_Rel` entries and deciding what
 * each one means for its instruction (a map, global data, an extern, a
 * subprogram), as libbpf's `bpf_object__collect_prog_relos()` and
 * `bpf_program__record_reloc()` do.
 * @module
 */
import {
  BPF_CALL,
  BPF_DW,
  BPF_IMM,
  BPF_JMP,
  BPF_LD,
  BPF_PSEUDO_CALL,
  INSN_SIZE,
} from "../isa/opcodes.ts";
import type { ElfContainer, ElfSection } from "./container.ts";
import { hex, LoadError } from "./errors.ts";
import { type ElfProgram, findProgramBySecInsn } from "./programs.ts";
import {
  type ElfSymbol,
  SHN_LORESERVE,
  STT_SECTION,
  type SymbolTable,
  symIsExtern,
  symIsSubprog,
} from "./symbols.ts";

/** BPF relocation types (`R_BPF_*` in llvm's ELFRelocs/BPF.def). */
export const R_BPF = {
  R_BPF_NONE: 0,
  R_BPF_64_64: 1,
  R_BPF_64_ABS64: 2,
  R_BPF_64_ABS32: 3,
  R_BPF_64_NODYLD32: 4,
  R_BPF_64_32: 10,
} as const;

const RELOC_NAMES: ReadonlyMap<number, string> = new Map(
  Object.entries(R_BPF).map(([n, v]) => [v, n]),
);

/** Name of a relocation type as `llvm-objdump -r` prints it. */
export function relocTypeName(type: number): string {
  return RELOC_NAMES.get(type) ?? `R_BPF_${type}`;
}

/** One `Elf64_Rel` entry. */
export interface ElfRelocation {
  /** Position in its REL section (libbpf's "relo #N"). */
  readonly index: number;
  /** Byte offset, in the patched section, of the instruction or data patched. */
  readonly offset: number;
  /** Symbol table index. */
  readonly symbol: number;
  /** `R_BPF_*`. */
  readonly type: number;
}

const REL_SIZE = 16;

/** Reads the entries of a REL section. */
export function readRelocations(
  section: ElfSection,
  file: string,
): ElfRelocation[] {
  if (section.size % REL_SIZE !== 0) {
    throw new LoadError(
      { file, section: section.name },
      `size ${
        hex(section.size)
      } is not a multiple of the ${REL_SIZE}-byte Elf64_Rel entry`,
    );
  }
  const data = section.data;
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const out: ElfRelocation[] = [];
  for (let i = 0; i < data.length / REL_SIZE; i++) {
    const at = i * REL_SIZE;
    out.push({
      index: i,
      offset: Number(view.getBigUint64(at, true)),
      type: view.getUint32(at + 8, true),
      symbol: view.getUint32(at + 12, true),
    });
  }
  return out;
}

/** What a relocation does to its instruction (libbpf's `enum reloc_type`). */
export type RelocKind =
  | "ld64" // lddw of a BTF-defined map
  | "data" // lddw of global data: a map value plus an offset
  | "extern_ld64" // lddw of a __kconfig or __ksym variable
  | "extern_call" // call of a __ksym function (kfunc)
  | "call" // bpf-to-bpf call of a subprogram
  | "subprog_addr" // lddw of a subprogram's address (callbacks)
  | "core"; // CO-RE relocation from .BTF.ext

/** A relocation attached to one instruction of a program (libbpf's `struct reloc_desc`). */
export interface RelocDesc {
  /** What the relocation does. */
  readonly kind: RelocKind;
  /** Slot index, local to the function until linking moves it. */
  readonly insnIdx: number;
  /** Map index for `ld64` and `data`, else -1. */
  readonly mapIdx: number;
  /** Symbol offset in its section (`data`, `call`, `subprog_addr`), else 0. */
  readonly symOff: number;
  /** Extern index for `extern_*`, else -1. */
  readonly extIdx: number;
  /** `R_BPF_*` of the ELF relocation, or -1 for CO-RE relocations. */
  readonly elfType: number;
  /** Symbol name as `llvm-objdump -r` prints it (section name for section symbols). */
  readonly symbol: string;
  /** For `core`: index of the record in the program's CO-RE relocations. */
  readonly coreIdx: number;
}

/** What the classifier needs to know about the object (see `recordReloc`). */
export interface RelocContext {
  /** The object. */
  readonly elf: ElfContainer;
  /** Its symbol table. */
  readonly symtab: SymbolTable;
  /** Sorted programs and subprograms. */
  readonly programs: readonly ElfProgram[];
  /** Index of `.text`. */
  readonly textIndex: number;
  /** `.maps` section index, or -1. */
  readonly mapsIndex: number;
  /** Global-data section index → kind. */
  readonly dataSections: ReadonlyMap<number, "data" | "rodata" | "bss">;
  /** Maps in creation order: where each was defined. */
  readonly maps: readonly {
    internal: string | null;
    secIndex: number;
    secOffset: number;
  }[];
  /** Externs: their symbol indices. */
  readonly externs: readonly { symIndex: number }[];
}

/** The llvm-objdump name of a symbol (section symbols take their section's name). */
export function symbolName(elf: ElfContainer, sym: ElfSymbol): string {
  if (sym.type === STT_SECTION && sym.name === "") {
    return elf.sections[sym.shndx]?.name ?? "<?>";
  }
  return sym.name;
}

/**
 * Reads one REL section for code and attaches each relocation to the
 * function it patches (mirrors `bpf_object__collect_prog_relos()`).
 */
export function collectProgramRelocs(
  ctx: RelocContext,
  relSection: ElfSection,
): void {
  const { elf } = ctx;
  const file = elf.file;
  const target = elf.sections[relSection.info];
  for (const rel of readRelocations(relSection, file)) {
    const where = {
      file,
      section: relSection.name,
      offset: rel.index * REL_SIZE,
    };
    const sym = ctx.symtab.symbols[rel.symbol];
    if (sym === undefined) {
      throw new LoadError(
        where,
        `symbol #${rel.symbol} not found for relo #${rel.index} (symbol table has ${ctx.symtab.symbols.length})`,
      );
    }
    if (sym.shndx >= elf.sections.length && sym.shndx < SHN_LORESERVE) {
      throw new LoadError(
        where,
        `corrupted symbol #${rel.symbol} pointing to invalid section #${sym.shndx} for relo #${rel.index}`,
      );
    }
    if (rel.offset % INSN_SIZE !== 0 || rel.offset >= target.size) {
      throw new LoadError(
        where,
        `invalid offset ${hex(rel.offset)} for relo #${rel.index}: ` +
          `section '${target.name}' is ${hex(target.size)} bytes`,
      );
    }
    const secInsn = rel.offset / INSN_SIZE;
    const prog = findProgramBySecInsn(ctx.programs, target.index, secInsn);
    // libbpf skips relocations of code that belongs to no function (an overridden weak one)
    if (prog === undefined) continue;
    const insnIdx = secInsn - prog.secInsnOff;
    prog.relocs.push(recordReloc(ctx, prog, insnIdx, sym, rel, where));
  }
}

const LDDW = BPF_LD | BPF_IMM | BPF_DW;
const CALL = BPF_JMP | BPF_CALL;

/** Classifies one relocation (mirrors `bpf_program__record_reloc()`). */
function recordReloc(
  ctx: RelocContext,
  prog: ElfProgram,
  insnIdx: number,
  sym: ElfSymbol,
  rel: ElfRelocation,
  where: { file: string; section: string; offset: number },
): RelocDesc {
  const insn = prog.insns[insnIdx];
  const name = symbolName(ctx.elf, sym);
  const base = {
    insnIdx,
    mapIdx: -1,
    symOff: 0,
    extIdx: -1,
    elfType: rel.type,
    symbol: name,
    coreIdx: -1,
  };
  const fail = (reason: string) =>
    new LoadError(where, `prog '${prog.name}': ${reason}`);
  if (insn.code !== CALL && insn.code !== LDDW) {
    throw fail(
      `invalid relo against '${name}' for insns[${insnIdx}].code ${
        hex(insn.code)
      }`,
    );
  }
  if (symIsExtern(sym)) {
    const extIdx = ctx.externs.findIndex((e) => e.symIndex === sym.index);
    if (extIdx < 0) {
      throw fail(
        `extern relo failed to find extern for '${name}' (${sym.index})`,
      );
    }
    return {
      ...base,
      kind: insn.code === CALL ? "extern_call" : "extern_ld64",
      extIdx,
    };
  }
  if (insn.code === CALL) {
    if (insn.src !== BPF_PSEUDO_CALL) throw fail("incorrect bpf_call opcode");
    if (sym.shndx === 0 || sym.shndx !== ctx.textIndex) {
      const secName = ctx.elf.sections[sym.shndx]?.name ?? `#${sym.shndx}`;
      throw fail(`bad call relo against '${name}' in section '${secName}'`);
    }
    if (sym.value % INSN_SIZE !== 0) {
      throw fail(`bad call relo against '${name}' at offset ${sym.value}`);
    }
    return { ...base, kind: "call", symOff: sym.value };
  }
  if (sym.shndx === 0 || sym.shndx >= SHN_LORESERVE) {
    throw fail(
      `invalid relo against '${name}' in special section ${
        hex(sym.shndx)
      }; forgot to initialize global var?..`,
    );
  }
  if (symIsSubprog(sym, ctx.textIndex)) {
    if (sym.value % INSN_SIZE !== 0 || insn.imm % INSN_SIZE !== 0) {
      throw fail(
        `bad subprog addr relo against '${name}' at offset ${sym.value}+${insn.imm}`,
      );
    }
    return { ...base, kind: "subprog_addr", symOff: sym.value };
  }
  const secName = ctx.elf.sections[sym.shndx]?.name ?? `#${sym.shndx}`;
  const dataKind = ctx.dataSections.get(sym.shndx);
  if (dataKind === undefined) {
    if (sym.shndx !== ctx.mapsIndex) {
      throw fail(`bad map relo against '${name}' in section '${secName}'`);
    }
    const mapIdx = ctx.maps.findIndex((m) =>
      m.internal === null && m.secIndex === sym.shndx &&
      m.secOffset === sym.value
    );
    if (mapIdx < 0) {
      throw fail(
        `map relo failed to find map for section '${secName}', off ${sym.value}`,
      );
    }
    return { ...base, kind: "ld64", mapIdx };
  }
  const mapIdx = ctx.maps.findIndex((m) =>
    m.internal === dataKind && m.secIndex === sym.shndx
  );
  if (mapIdx < 0) {
    throw fail(`data relo failed to find map for section '${secName}'`);
  }
  return { ...base, kind: "data", mapIdx, symOff: sym.value };
}
