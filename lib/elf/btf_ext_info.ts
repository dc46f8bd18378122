/**
 * `.BTF.ext` records placed on programs: CO-RE relocations are attached to
 * the instruction they patch (`bpf_object__relocate_core()`), and the
 * func_info / line_info of every function copied into a linked program are
 * gathered and renumbered in slots (`adjust_prog_btf_ext_info()`).
 * @module
 */
import type { Btf } from "../btf/btf.ts";
import { calcCoreRelo } from "../btf/core.ts";
import { patchCoreInsn } from "../btf/core_patch.ts";
import { BtfError } from "../btf/errors.ts";
import type {
  BpfCoreRelo,
  BpfFuncInfo,
  BpfLineInfo,
  BtfExt,
  BtfExtSection,
} from "../btf/ext.ts";
import { coreReloKindName } from "../btf/core_spec.ts";
import { INSN_SIZE } from "../isa/opcodes.ts";
import type { ElfContainer } from "./container.ts";
import { hex, LoadError } from "./errors.ts";
import type { LinkedProgram } from "./link.ts";
import { type ElfProgram, findProgramBySecInsn } from "./programs.ts";
import type { FuncInfo, LineInfo, ProgramCoreRelocation } from "./types.ts";

/** ELF section index of a `.BTF.ext` section name, -1 when gone (`elf_sec_by_name()`). */
function sectionIndex(elf: ElfContainer, name: string): number {
  for (const s of elf.sections) if (s.name === name) return s.index;
  return -1;
}

/**
 * Attaches each CO-RE record to the function and instruction it is about;
 * returns the records (indexed by `RelocDesc.coreIdx`).
 */
export function attachCoreRelos(
  elf: ElfContainer,
  ext: BtfExt,
  programs: readonly ElfProgram[],
): ProgramCoreRelocation[] {
  const out: ProgramCoreRelocation[] = [];
  for (const sec of ext.coreRelo) {
    const secIdx = sectionIndex(elf, sec.secName);
    sec.records.forEach((rec: BpfCoreRelo, i: number) => {
      const where = { file: elf.file, section: ".BTF.ext" };
      if (rec.insnOff % INSN_SIZE !== 0) {
        throw new LoadError(
          where,
          `sec '${sec.secName}': CO-RE relo #${i}: insn offset ${
            hex(rec.insnOff)
          } unaligned`,
        );
      }
      const secInsn = rec.insnOff / INSN_SIZE;
      // records of functions that are not in the object (overridden weak ones) are skipped
      const prog = findProgramBySecInsn(programs, secIdx, secInsn);
      if (prog === undefined) return;
      const coreIdx = out.length;
      out.push({
        kind: coreReloKindName(rec.kind),
        kindId: rec.kind,
        typeId: rec.typeId,
        accessString: rec.accessStr,
        value: null,
        poisoned: false,
      });
      prog.relocs.push({
        kind: "core",
        insnIdx: secInsn - prog.secInsnOff,
        mapIdx: -1,
        symOff: 0,
        extIdx: -1,
        elfType: -1,
        symbol: "",
        coreIdx,
      });
    });
  }
  return out;
}

/**
 * Computes every CO-RE relocation against `target` and patches the
 * function's own instructions, before linking copies them (mirrors
 * `bpf_object__relocate_core()`); fills in each record's outcome.
 */
export function applyCoreRelos(
  file: string,
  programs: readonly ElfProgram[],
  records: ProgramCoreRelocation[],
  local: Btf,
  target: Btf,
): void {
  for (const prog of programs) {
    for (const r of prog.relocs) {
      if (r.kind !== "core") continue;
      const rec = records[r.coreIdx];
      try {
        const res = calcCoreRelo(local, {
          typeId: rec.typeId,
          accessStr: rec.accessString,
          kind: rec.kindId,
        }, target);
        patchCoreInsn(prog.insns, r.insnIdx, res);
        records[r.coreIdx] = {
          ...rec,
          value: res.poison ? null : res.newVal,
          poisoned: res.poison,
        };
      } catch (e) {
        if (!(e instanceof BtfError)) throw e;
        throw new LoadError(
          {
            file,
            section: prog.secName,
            offset: (prog.secInsnOff + r.insnIdx) * INSN_SIZE,
          },
          `prog '${prog.name}': CO-RE relo #${r.coreIdx} (${rec.kind} [${rec.typeId}] ${rec.accessString}): ` +
            `failed to relocate: ${e.message}`,
          { cause: e },
        );
      }
    }
  }
}

interface ExtRecord {
  readonly insnOff: number;
}

/** `.BTF.ext` func/line info by ELF section index, built once per object. */
export interface ExtInfoIndex {
  /** func_info records by section index. */
  readonly funcInfo: ReadonlyMap<number, readonly BpfFuncInfo[]>;
  /** line_info records by section index. */
  readonly lineInfo: ReadonlyMap<number, readonly BpfLineInfo[]>;
}

function bySection<T>(
  elf: ElfContainer,
  list: readonly BtfExtSection<T>[],
): Map<number, readonly T[]> {
  const out = new Map<number, readonly T[]>();
  // libbpf uses the first record block naming a section
  for (const sec of list) {
    const idx = sectionIndex(elf, sec.secName);
    if (idx >= 0 && !out.has(idx)) out.set(idx, sec.records);
  }
  return out;
}

/** Groups func/line info records by the ELF section they describe. */
export function indexExtInfo(elf: ElfContainer, ext: BtfExt): ExtInfoIndex {
  return {
    funcInfo: bySection(elf, ext.funcInfo),
    lineInfo: bySection(elf, ext.lineInfo),
  };
}

/** The records of one function, renumbered into linked slots; null when it has none. */
function recordsOf<T extends ExtRecord>(
  bySec: ReadonlyMap<number, readonly T[]>,
  fn: ElfProgram,
  start: number,
): T[] | null {
  const records = bySec.get(fn.secIndex);
  if (records === undefined) return null;
  // records are sorted by offset: find the function's first one
  let lo = 0;
  let hi = records.length;
  const first = fn.secInsnOff * INSN_SIZE;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (records[mid].insnOff < first) lo = mid + 1;
    else hi = mid;
  }
  const picked: T[] = [];
  for (let i = lo; i < records.length; i++) {
    const slot = records[i].insnOff / INSN_SIZE;
    if (slot >= fn.secInsnOff + fn.secInsnCnt) break;
    picked.push({ ...records[i], insnOff: slot - fn.secInsnOff + start });
  }
  return picked.length > 0 ? picked : null;
}

/**
 * func_info and line_info of a linked program (mirrors
 * `reloc_prog_func_and_line_info()`): when the entry point has none, the
 * program gets none; when a subprogram lacks them, the load fails.
 */
export function linkedExtInfo(
  file: string,
  index: ExtInfoIndex,
  linked: LinkedProgram,
): { funcInfo?: FuncInfo[]; lineInfo?: LineInfo[] } {
  const gather = <T extends ExtRecord>(
    bySec: ReadonlyMap<number, readonly T[]>,
    what: string,
  ): T[] | undefined => {
    const all: T[] = [];
    for (const fn of linked.functions) {
      const recs = recordsOf(bySec, fn.source, fn.start);
      if (recs === null) {
        if (fn.start === 0) return undefined; // libbpf: "skipping all of .BTF.ext <what>"
        throw new LoadError(
          { file, section: ".BTF.ext" },
          `prog '${fn.source.name}': missing .BTF.ext ${what}.`,
        );
      }
      for (const r of recs) all.push(r);
    }
    return all;
  };
  const funcs = gather(index.funcInfo, "function info");
  const lines = gather(index.lineInfo, "line info");
  return {
    funcInfo: funcs?.map((r) => ({ insnOff: r.insnOff, typeId: r.typeId })),
    lineInfo: lines?.map((r) => ({
      insnOff: r.insnOff,
      fileName: r.fileName,
      line: r.line,
      lineNum: r.lineNum,
      lineCol: r.column,
    })),
  };
}
