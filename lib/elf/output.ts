/**
 * Turns the loader's internal relocation records into the public
 * `ProgramRelocation` list of a linked program.
 * @module
 */
import type { ExternDesc } from "./externs.ts";
import type { LinkedProgram } from "./link.ts";
import { relocTypeName } from "./relocations.ts";
import type { ProgramCoreRelocation, ProgramRelocation } from "./types.ts";

/** Public relocation records of a linked program, by slot. */
export function toProgramRelocations(
  linked: LinkedProgram,
  externs: readonly ExternDesc[],
  coreRelos: readonly ProgramCoreRelocation[],
): ProgramRelocation[] {
  return linked.relocs.map((r): ProgramRelocation => {
    const base = {
      insnIndex: r.insnIdx,
      elfType: r.elfType < 0 ? null : relocTypeName(r.elfType),
      symbol: r.symbol,
    };
    const insn = linked.insns[r.insnIdx];
    switch (r.kind) {
      case "ld64":
        return { ...base, kind: "map", mapIndex: r.mapIdx };
      case "data":
        return {
          ...base,
          kind: "map_value",
          mapIndex: r.mapIdx,
          offset: linked.insns[r.insnIdx + 1].imm,
        };
      case "extern_ld64": {
        const ext = externs[r.extIdx];
        if (ext.kconfig !== undefined) {
          return {
            ...base,
            kind: "kconfig",
            mapIndex: insn.imm,
            offset: ext.kconfig.offset,
            externIndex: r.extIdx,
          };
        }
        return { ...base, kind: "ksym", externIndex: r.extIdx };
      }
      case "extern_call":
        return { ...base, kind: "kfunc_call", externIndex: r.extIdx };
      case "call":
        return {
          ...base,
          kind: "subprog_call",
          target: r.insnIdx + 1 + insn.imm,
        };
      case "subprog_addr":
        return {
          ...base,
          kind: "subprog_addr",
          target: r.insnIdx + 1 + insn.imm,
        };
      case "core": {
        const core = coreRelos[r.coreIdx];
        return { ...base, kind: "core", symbol: core.accessString, core };
      }
    }
  });
}
