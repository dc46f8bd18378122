/**
 * Loading lib/btf fixtures (tests/fixtures/btf/NAME.o) for the tests:
 * `.BTF` / `.BTF.ext` parsed, DATASECs laid out from the symbol table the
 * way libbpf's `btf_fixup_datasec()` does, and BTF-defined maps decoded.
 * @module
 */
import {
  type Btf,
  type BtfExt,
  parseBtf,
  parseBtfExt,
} from "../../lib/btf/mod.ts";
import { type ElfObject, readElf } from "./elf_sections.ts";

/** Directory of the fixtures. */
export const FIXTURES: string =
  new URL("../fixtures/btf/", import.meta.url).pathname;

/** A parsed fixture object. */
export interface Fixture {
  readonly name: string;
  readonly elf: ElfObject;
  readonly btf: Btf;
  readonly ext: BtfExt | undefined;
  /** The C source, for `expect:` lines and line_info checks. */
  readonly source: string;
}

/** Reads and parses NAME.o; DATASECs get their ELF sizes and offsets. */
export function loadFixture(name: string): Fixture {
  const elf = readElf(Deno.readFileSync(`${FIXTURES}${name}.o`));
  const btf = parseBtf(elf.sections.get(".BTF")!);
  const extBytes = elf.sections.get(".BTF.ext");
  const ext = extBytes ? parseBtfExt(extBytes, btf) : undefined;
  for (const t of btf.types) {
    if (t.kind !== "DATASEC") continue;
    const sec = elf.sections.get(t.name);
    if (!sec) continue;
    const vars = t.vars.map((v) => {
      const sym = elf.symbols.find((s) =>
        s.name === btf.nameOf(v.type) && s.section === t.name
      );
      return { ...v, offset: sym ? sym.value : v.offset };
    });
    btf.setDatasecLayout(t.id, sec.length, vars);
  }
  const source = Deno.readTextFileSync(`${FIXTURES}${name}.c`);
  return { name, elf, btf, ext, source };
}

/** A map declared in `.maps` with libbpf's `__uint` / `__type` macros. */
export interface MapDef {
  readonly name: string;
  readonly mapType: number;
  readonly keyTypeId: number;
  readonly valueTypeId: number;
  readonly valueSize: number;
}

/** Decodes the BTF-defined maps of a fixture (libbpf's `parse_btf_map_def`). */
export function mapDefs(btf: Btf): MapDef[] {
  const sec = btf.types.find((t) => t.kind === "DATASEC" && t.name === ".maps");
  if (!sec || sec.kind !== "DATASEC") return [];
  return sec.vars.map((vsi) => {
    const v = btf.typeById(vsi.type);
    if (v.kind !== "VAR") throw new Error("not a VAR in .maps");
    const def = btf.resolve(v.type).type;
    if (def.kind !== "STRUCT") {
      throw new Error("map definition is not a struct");
    }
    const member = (n: string) => def.members.find((m) => m.name === n);
    const pointee = (n: string) => {
      const p = btf.typeById(member(n)!.type);
      if (p.kind !== "PTR") throw new Error(`${n} is not a pointer`);
      return p.type;
    };
    const uint = (n: string) => {
      const arr = btf.typeById(pointee(n));
      if (arr.kind !== "ARRAY") throw new Error(`${n} is not __uint`);
      return arr.nelems;
    };
    const valueTypeId = pointee("value");
    return {
      name: v.name,
      mapType: uint("type"),
      keyTypeId: pointee("key"),
      valueTypeId,
      valueSize: btf.sizeOf(valueTypeId),
    };
  });
}

/** The `expect:` line of a fixture's C source, split into words. */
export function expectation(source: string): string[] | undefined {
  const m = source.match(/expect: ([^\n*]+)/);
  return m ? m[1].trim().split(/\s+/) : undefined;
}
