/**
 * Relocations in `.rel.maps`: the initial contents of map-in-map and
 * prog-array definitions (`.values = { [0] = &inner_map }`). Mirrors
 * libbpf's `bpf_object__collect_map_relos()`: each relocation fills one slot
 * of the map's `init_slots` with a map or program name.
 * @module
 */
import type { BtfType } from "../btf/types.ts";
import type { ElfContainer, ElfSection } from "./container.ts";
import { LoadError } from "./errors.ts";
import { skipMods } from "./map_def.ts";
import type { MapDraft } from "./maps.ts";
import type { ElfProgram } from "./programs.ts";
import { readRelocations, symbolName } from "./relocations.ts";
import type { SymbolTable } from "./symbols.ts";
import { MAP_TYPE } from "../uapi/bpf.ts";

/** BPF pointers are 8 bytes whatever the host. */
const BPF_PTR_SIZE = 8;

/** Everything `collectMapRelos` reads. */
export interface MapReloContext {
  /** The object. */
  readonly elf: ElfContainer;
  /** Its symbol table. */
  readonly symtab: SymbolTable;
  /** The `.maps` section. */
  readonly mapsSection: ElfSection;
  /** The `.maps` DATASEC's variables, in DATASEC order. */
  readonly mapVars: readonly { type: number; offset: number; size: number }[];
  /** The object's BTF types (after fix-ups). */
  readonly types: readonly BtfType[];
  /** Maps so far; `initSlots` is filled in. */
  readonly maps: MapDraft[];
  /** Entry-point programs (not subprograms). */
  readonly mainPrograms: readonly ElfProgram[];
}

/** Fills `initSlots` of the maps that `.rel.maps` initialises. */
export function collectMapRelos(
  ctx: MapReloContext,
  relSection: ElfSection,
): void {
  const file = ctx.elf.file;
  for (const rel of readRelocations(relSection, file)) {
    const where = { file, section: relSection.name, offset: rel.index * 16 };
    const fail = (reason: string) =>
      new LoadError(where, `.maps relo #${rel.index}: ${reason}`);
    const sym = ctx.symtab.symbols[rel.symbol];
    if (sym === undefined) {
      throw fail(`symbol ${rel.symbol.toString(16)} not found`);
    }
    const name = symbolName(ctx.elf, sym);
    const map = ctx.maps.find((m) => {
      if (m.secIndex !== ctx.mapsSection.index || m.btfVarIdx < 0) return false;
      const vi = ctx.mapVars[m.btfVarIdx];
      return vi.offset <= rel.offset &&
        rel.offset + BPF_PTR_SIZE <= vi.offset + vi.size;
    });
    if (map === undefined) {
      throw fail(`cannot find map '${name}' at rel->r_offset ${rel.offset}`);
    }
    const isMapInMap = map.typeId === MAP_TYPE.array_of_maps ||
      map.typeId === MAP_TYPE.hash_of_maps;
    const isProgArray = map.typeId === MAP_TYPE.prog_array;
    let target: string;
    if (isMapInMap) {
      if (sym.shndx !== ctx.mapsSection.index) {
        throw fail(`'${name}' isn't a BTF-defined map`);
      }
      if (map.typeId === MAP_TYPE.hash_of_maps && map.keySize !== 4) {
        throw fail(`hash-of-maps '${map.name}' should have key size 4.`);
      }
      if (!ctx.maps.some((m) => m.name === name)) {
        throw fail(`'${name}' isn't a valid map reference`);
      }
      target = name;
    } else if (isProgArray) {
      const prog = ctx.mainPrograms.find((p) => p.name === name);
      if (prog === undefined) {
        throw fail(`'${name}' isn't a valid program reference`);
      }
      if (prog.secIndex !== sym.shndx || prog.secInsnOff * 8 !== sym.value) {
        throw fail(`'${name}' isn't an entry-point program`);
      }
      target = name;
    } else {
      throw fail(
        `map '${map.name}' of type ${map.type} cannot have initial values`,
      );
    }
    const vi = ctx.mapVars[map.btfVarIdx];
    const def = skipMods(
      ctx.types,
      (ctx.types[vi.type] as { type: number }).type,
    );
    if (def.kind !== "STRUCT" || def.members.length === 0) {
      throw fail(`map '${map.name}' definition has no members`);
    }
    const values = def.members[def.members.length - 1];
    if (values.name !== "values") {
      throw fail(
        `map '${map.name}': last member is '${values.name}', not 'values'`,
      );
    }
    const start = vi.offset + values.bitOffset / 8;
    if (rel.offset < start || (rel.offset - start) % BPF_PTR_SIZE !== 0) {
      throw fail(`offset ${rel.offset} is not a slot of '${map.name}' values`);
    }
    const slot = (rel.offset - start) / BPF_PTR_SIZE;
    const slots = [...(map.initSlots ?? [])];
    while (slots.length <= slot) slots.push(null);
    slots[slot] = target;
    map.initSlots = slots;
  }
}
