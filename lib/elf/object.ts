/**
 * `loadObject()`: an ELF BPF object in, plain data out — the steps of
 * libbpf's `bpf_object_open()` (sections, programs, BTF, externs, maps,
 * relocations) followed by the linking `bpf_object__load()` does before each
 * `BPF_PROG_LOAD`, so program instruction counts equal what libbpf submits.
 * @module
 */
import type { Btf } from "../btf/btf.ts";
import { parseBtf } from "../btf/parse.ts";
import { type BtfExt, parseBtfExt } from "../btf/ext.ts";
import { BtfError } from "../btf/errors.ts";
import { decodeRaw } from "../isa/decode.ts";
import { type Insn, IsaError } from "../isa/insn.ts";
import { INSN_SIZE } from "../isa/opcodes.ts";
import { type BtfDraft, draftBtf, finishBtf, kernelView } from "./btf_edit.ts";
import {
  applyCoreRelos,
  attachCoreRelos,
  type ExtInfoIndex,
  indexExtInfo,
  linkedExtInfo,
} from "./btf_ext_info.ts";
import { fixupDatasecs, markHiddenFuncsStatic } from "./btf_fixup.ts";
import { collectSections, type SectionRoles } from "./collect.ts";
import { readContainer } from "./container.ts";
import { LoadError } from "./errors.ts";
import { collectExterns } from "./externs.ts";
import { linkProgram } from "./link.ts";
import { collectMapRelos } from "./map_relos.ts";
import {
  type BpfMapDef,
  initGlobalDataMaps,
  initKconfigMap,
  initStructOpsMaps,
  initUserBtfMaps,
  type MapDraft,
  objectName,
} from "./maps.ts";
import { toProgramRelocations } from "./output.ts";
import {
  addPrograms,
  type ElfProgram,
  isSubprogram,
  sortPrograms,
} from "./programs.ts";
import { collectProgramRelocs } from "./relocations.ts";
import { readSymbolTable } from "./symbols.ts";
import { collectStructOpsRelos } from "./struct_ops_relos.ts";
import type { BpfProgram, ObjectFile, ProgramCoreRelocation } from "./types.ts";
import { ATTACH_TYPE, PROG_TYPE } from "../uapi/bpf.ts";

/** Options of `loadObject`. */
export interface LoadOptions {
  /**
   * Accept programs in sections libbpf does not recognise, with type
   * `unspec` (libbpf opens such objects and fails only when loading them).
   * By default they are a `LoadError`.
   */
  readonly allowUnknownSections?: boolean;
  /**
   * BTF to compute CO-RE relocations against (libbpf uses the kernel's).
   * Default: the object's own BTF without its CO-RE flavours
   * (`kernelView()`): in bpfsim the simulated kernel's types are the
   * program's. `null` leaves CO-RE instructions as compiled.
   */
  readonly coreTarget?: Btf | null;
}

/** `BPF_F_SLEEPABLE`. */
const BPF_F_SLEEPABLE = 1 << 4;
/** `BPF_F_XDP_HAS_FRAGS`. */
const BPF_F_XDP_HAS_FRAGS = 1 << 5;

/**
 * Parses, checks and links a BPF ELF object as libbpf would.
 * `name` is used in every error message (pass the file's path).
 * @example
 * ```ts
 * const obj = loadObject(Deno.readFileSync("prog.o"), "prog.o");
 * for (const p of obj.programs) console.log(p.name, p.type, p.insns.length);
 * ```
 */
export function loadObject(
  bytes: Uint8Array,
  name: string,
  options: LoadOptions = {},
): ObjectFile {
  const elf = readContainer(bytes, name);
  const symtab = readSymbolTable(elf);
  const roles = collectSections(elf);
  const warnings = [...roles.warnings];
  const programs = roles.code.flatMap((s) =>
    addPrograms(name, s, symtab, roles.textIndex)
  );
  sortPrograms(programs);

  const { draft, ext } = readBtf(name, roles, warnings);
  const externs = collectExterns(name, symtab, draft);
  if (draft !== undefined) fixupDatasecs(draft, elf, symtab);

  const objName = objectName(name);
  const maps: MapDraft[] = [
    ...initUserBtfMaps(name, roles, draft),
    ...initGlobalDataMaps(objName, roles.data, draft?.types),
  ];
  const kconfigMapIdx = externs.some((e) => e.kconfig !== undefined)
    ? maps.length
    : -1;
  maps.push(
    ...initKconfigMap(objName, externs, symtab.section.index, draft?.types),
  );
  maps.push(...initStructOpsMaps(name, roles, draft));

  const isSub = (p: ElfProgram) =>
    isSubprogram(p, roles.textIndex, programs.length);
  const mains = programs.filter((p) => !isSub(p));
  checkSectionNames(name, mains, options);
  collectRelocations(
    name,
    roles,
    elf,
    symtab,
    programs,
    mains,
    maps,
    externs,
    draft,
  );
  const coreRelos = ext === undefined
    ? []
    : attachCoreRelos(elf, ext, programs);
  for (const p of programs) p.relocs.sort((a, b) => a.insnIdx - b.insnIdx);
  if (draft !== undefined) {
    markHiddenFuncsStatic(
      draft,
      programs.filter((p) => isSub(p) && p.markBtfStatic).map((p) => p.name),
    );
  }
  const btf = draft === undefined ? undefined : finishBtf(draft);
  if (
    draft !== undefined && btf !== undefined && coreRelos.length > 0 &&
    options.coreTarget !== null
  ) {
    applyCoreRelos(
      name,
      programs,
      coreRelos,
      btf,
      options.coreTarget ?? kernelView(draft),
    );
  }

  const ctx = {
    file: name,
    programs,
    textIndex: roles.textIndex,
    externs,
    kconfigMapIdx,
  };
  const extIndex = ext === undefined ? undefined : indexExtInfo(elf, ext);
  const structOps = collectStructOpsRelos(
    elf,
    symtab,
    roles.relocations,
    roles.structOps,
    draft?.types,
    mains,
  );
  const linked = mains.map((p) => {
    const prog = buildProgram(ctx, p, extIndex, coreRelos);
    const member = structOps.get(p.name);
    return member === undefined ? prog : { ...prog, structOps: member };
  });
  return {
    name: objName,
    file: name,
    license: roles.license,
    kernVersion: roles.kernVersion ?? null,
    programs: linked,
    maps: maps.map(finishMap),
    externs,
    btf,
    ...(ext === undefined ? {} : { btfExt: ext }),
    warnings,
  };
}

/** `.BTF` and `.BTF.ext` (mirrors `bpf_object__init_btf()`). */
function readBtf(
  file: string,
  roles: SectionRoles,
  warnings: string[],
): { draft: BtfDraft | undefined; ext: BtfExt | undefined } {
  if (roles.btf === undefined) return { draft: undefined, ext: undefined };
  const sec = roles.btf;
  let draft: BtfDraft | undefined;
  try {
    draft = draftBtf(parseBtf(sec.data), sec.data);
  } catch (e) {
    if (!(e instanceof BtfError)) throw e;
    // libbpf needs BTF for .maps and struct_ops; otherwise it goes on without
    if (roles.maps !== undefined || roles.structOps.length > 0) {
      const offset = e.offset >= 0 ? e.offset : undefined;
      throw new LoadError(
        { file, section: ".BTF", offset },
        `BTF is required, but is corrupted: ${e.message}`,
        {
          cause: e,
        },
      );
    }
    warnings.push(`Error loading ELF section .BTF: ${e.message}`);
    return { draft: undefined, ext: undefined };
  }
  let ext: BtfExt | undefined;
  if (roles.btfExt !== undefined) {
    try {
      ext = parseBtfExt(roles.btfExt.data, draft.original);
    } catch (e) {
      if (!(e instanceof BtfError)) throw e;
      warnings.push(
        `Error loading ELF section .BTF.ext: ${e.message}. Ignored and continue.`,
      );
    }
  }
  return { draft, ext };
}

function checkSectionNames(
  file: string,
  mains: readonly ElfProgram[],
  options: LoadOptions,
): void {
  if (options.allowUnknownSections) return;
  for (const p of mains) {
    if (p.secDef !== undefined) continue;
    throw new LoadError(
      { file, section: p.secName, offset: p.secInsnOff * INSN_SIZE },
      `prog '${p.name}': missing BPF prog type, check ELF section name '${p.secName}'`,
    );
  }
}

/** Mirrors `bpf_object__collect_relos()`. */
function collectRelocations(
  file: string,
  roles: SectionRoles,
  elf: ReturnType<typeof readContainer>,
  symtab: ReturnType<typeof readSymbolTable>,
  programs: ElfProgram[],
  mains: readonly ElfProgram[],
  maps: MapDraft[],
  externs: ReturnType<typeof collectExterns>,
  draft: BtfDraft | undefined,
): void {
  const dataSections = new Map(
    roles.data.map((d) => [d.section.index, d.kind] as const),
  );
  const relocCtx = {
    elf,
    symtab,
    programs,
    textIndex: roles.textIndex,
    mapsIndex: roles.maps?.index ?? -1,
    dataSections,
    maps: maps.map((m) => ({
      internal: m.internal,
      secIndex: m.secIndex,
      secOffset: m.sectionOffset,
    })),
    externs,
  };
  for (const rel of roles.relocations) {
    const target = elf.sections[rel.info];
    // struct_ops members: collectStructOpsRelos()
    if (roles.structOps.includes(target)) continue;
    if (target === roles.maps) {
      const datasec = draft?.types.find((t) =>
        t.kind === "DATASEC" && t.name === ".maps"
      );
      if (draft === undefined || datasec?.kind !== "DATASEC") {
        throw new LoadError(
          { file, section: rel.name },
          "relocations for .maps without its BTF DATASEC",
        );
      }
      collectMapRelos({
        elf,
        symtab,
        mapsSection: target,
        mapVars: datasec.vars,
        types: draft.types,
        maps,
        mainPrograms: mains,
      }, rel);
    } else {
      collectProgramRelocs(relocCtx, rel);
    }
  }
}

function buildProgram(
  ctx: Parameters<typeof linkProgram>[0],
  main: ElfProgram,
  extIndex: ExtInfoIndex | undefined,
  coreRelos: readonly ProgramCoreRelocation[],
): BpfProgram {
  const linked = linkProgram(ctx, main);
  // libbpf hands the kernel raw slots; an undecodable one is the verifier's to report
  let insns: Insn[] = [];
  let decodeError: { insnIndex: number; reason: string } | undefined;
  try {
    insns = decodeRaw(linked.insns);
  } catch (e) {
    if (!(e instanceof IsaError)) throw e;
    decodeError = { insnIndex: e.insnIndex, reason: e.reason };
  }
  const def = main.secDef;
  const slash = main.secName.indexOf("/");
  const info = extIndex === undefined
    ? {}
    : linkedExtInfo(ctx.file, extIndex, linked);
  return {
    name: main.name,
    section: main.secName,
    type: def?.progType ?? "unspec",
    typeId: PROG_TYPE[def?.progType ?? "unspec"],
    expectedAttachType: def?.attachType ?? null,
    expectedAttachTypeId: def?.attachType ? ATTACH_TYPE[def.attachType] : 0,
    attachTarget: def?.attachBtf && slash >= 0
      ? main.secName.slice(slash + 1)
      : null,
    progFlags: (def?.sleepable ? BPF_F_SLEEPABLE : 0) |
      (def?.xdpFrags ? BPF_F_XDP_HAS_FRAGS : 0),
    autoload: main.autoload,
    raw: linked.insns,
    insns,
    ...(decodeError === undefined ? {} : { decodeError }),
    functions: linked.functions.map((f) => ({
      name: f.name,
      start: f.start,
      length: f.length,
    })),
    relocations: toProgramRelocations(linked, ctx.externs, coreRelos),
    ...info,
  };
}

function finishMap(m: MapDraft): BpfMapDef {
  const { btfVarIdx: _v, secIndex: _s, ...rest } = m;
  const out: BpfMapDef = rest.innerMap === undefined
    ? rest
    : { ...rest, innerMap: finishMap(rest.innerMap as MapDraft) };
  return out;
}
