/**
 * lib/elf: loading BPF ELF objects exactly as libbpf does (sections,
 * programs, BTF-defined and global-data maps, externs, relocations, CO-RE,
 * subprogram linking) into plain data, plus the `inspect` summary.
 *
 * @example
 * ```ts
 * import { formatInspect, inspectObject, loadObject } from "./mod.ts";
 * const obj = loadObject(Deno.readFileSync("prog.o"), "prog.o");
 * console.log(formatInspect(inspectObject(obj)));
 * ```
 * @module
 */
export { hex, LoadError, type LoadErrorLocation } from "./errors.ts";
export { loadObject, type LoadOptions } from "./object.ts";
export type {
  BpfProgram,
  FuncInfo,
  LineInfo,
  ObjectFile,
  ProgramCoreRelocation,
  ProgramFunction,
  ProgramRelocation,
  ProgramRelocationKind,
  StructOpsMember,
} from "./types.ts";
export type { BpfMapDef, InternalMapKind } from "./maps.ts";
export { internalMapName, objectName } from "./maps.ts";
export { type KsymLookup, resolveKsyms } from "./ksyms.ts";
export type { ExternDesc, KconfigType } from "./externs.ts";
export { findSectionDef, SECTION_DEFS, type SectionDef } from "./sections.ts";
export {
  ATTACH_TYPE,
  type AttachType,
  BPF_F_LINK,
  BPF_F_MMAPABLE,
  BPF_F_RDONLY_PROG,
  MAP_TYPE,
  type MapType,
  mapTypeName,
  PROG_TYPE,
  type ProgType,
} from "../uapi/bpf.ts";
export {
  type ExternSummary,
  type FieldSummary,
  formatInspect,
  formatRelocation,
  inspectObject,
  type MapSummary,
  type ObjectSummary,
  type ProgramSummary,
  relocationNotes,
} from "./inspect.ts";
