/**
 * Relocations in `.rel.struct_ops` / `.rel.struct_ops.link`: which program
 * fills which function-pointer member of a struct_ops map. Mirrors libbpf's
 * `bpf_object__collect_st_ops_relos()`; at load time libbpf then gives each
 * such program the member (`expected_attach_type` = the member's index in
 * the kernel's struct, `attach_btf_id` = the struct), which the verifier's
 * `check_struct_ops_btf_id()` reads.
 * @module
 */
import type { BtfType } from "../btf/types.ts";
import type { ElfContainer, ElfSection } from "./container.ts";
import { LoadError } from "./errors.ts";
import { skipMods } from "./map_def.ts";
import type { ElfProgram } from "./programs.ts";
import { readRelocations, symbolName } from "./relocations.ts";
import { SHN_UNDEF, type SymbolTable } from "./symbols.ts";
import type { StructOpsMember } from "./types.ts";

/** `BPF_INSN_SZ`: a symbol's value over this is its first slot. */
const INSN_SIZE = 8;

/**
 * Reads every struct_ops REL section of `relSections` (their targets are
 * in `structOps`) and returns, by program name, the first struct_ops
 * member each program fills — libbpf keeps the first and requires any
 * reuse to be of the same member.
 */
export function collectStructOpsRelos(
  elf: ElfContainer,
  symtab: SymbolTable,
  relSections: readonly ElfSection[],
  structOps: readonly ElfSection[],
  types: readonly BtfType[] | undefined,
  mains: readonly ElfProgram[],
): Map<string, StructOpsMember> {
  const out = new Map<string, StructOpsMember>();
  const file = elf.file;
  for (const relSec of relSections) {
    const target = elf.sections[relSec.info];
    if (!structOps.includes(target) || types === undefined) continue;
    const datasec = types.find((t) =>
      t.kind === "DATASEC" && t.name === target.name
    );
    if (datasec?.kind !== "DATASEC") continue; // initStructOpsMaps() refused it
    for (const rel of readRelocations(relSec, file)) {
      const where = { file, section: relSec.name, offset: rel.index * 16 };
      const fail = (reason: string) =>
        new LoadError(where, `struct_ops reloc: ${reason}`);
      const sym = symtab.symbols[rel.symbol];
      if (sym === undefined) {
        throw fail(`symbol ${rel.symbol.toString(16)} not found`);
      }
      const name = symbolName(elf, sym);
      const v = datasec.vars.find((vi) =>
        vi.offset <= rel.offset && rel.offset < vi.offset + vi.size
      );
      if (v === undefined) {
        throw fail(`cannot find map at rel->r_offset ${rel.offset}`);
      }
      const mapName = types[v.type].name;
      const st = skipMods(types, (types[v.type] as { type: number }).type);
      if (st.kind !== "STRUCT") throw fail(`${mapName} is not a struct`);
      const moff = rel.offset - v.offset;
      const member = st.members.find((m) => m.bitOffset === moff * 8);
      if (member === undefined) {
        throw fail(`${mapName}: cannot find member at moff ${moff}`);
      }
      const ptr = skipMods(types, member.type);
      const fn = ptr.kind === "PTR" ? skipMods(types, ptr.type) : undefined;
      if (fn?.kind !== "FUNC_PROTO") {
        throw fail(`${mapName}: cannot relocate non func ptr ${member.name}`);
      }
      const prog = sym.shndx === SHN_UNDEF
        ? undefined
        : mains.find((p) =>
          p.secIndex === sym.shndx && p.secInsnOff * INSN_SIZE === sym.value
        );
      if (prog === undefined) {
        throw fail(
          `${mapName}: cannot find prog at shdr_idx ${sym.shndx} to relocate func ptr ${name}`,
        );
      }
      if (prog.secDef?.progType !== "struct_ops") {
        throw fail(
          `${mapName}: prog ${prog.name} is not struct_ops BPF program`,
        );
      }
      if (!out.has(prog.name)) {
        out.set(prog.name, {
          map: mapName,
          structName: st.name,
          member: member.name,
          memberIndex: st.members.indexOf(member),
        });
      }
    }
  }
  return out;
}
