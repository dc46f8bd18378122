/**
 * lib/btf: BTF and `.BTF.ext` parsing, the bpftool-style printer,
 * special-field discovery (the kernel's `btf_record`) and CO-RE relocation.
 *
 * @example
 * ```ts
 * import { dumpBtf, parseBtf } from "./mod.ts";
 * const btf = parseBtf(btfSectionBytes);
 * console.log(btf.typeName(btf.findByName("task", "STRUCT")!)); // "struct task"
 * console.log(dumpBtf(btf));
 * ```
 * @module
 */
export * from "./errors.ts";
export * from "./types.ts";
export { Btf, MAX_RESOLVE_DEPTH, type ResolvedType } from "./btf.ts";
export { BTF_HEADER_SIZE, BTF_MAGIC, BTF_VERSION, parseBtf } from "./parse.ts";
export * from "./ext.ts";
export { dumpBtf, dumpBtfType } from "./dump.ts";
export * from "./field_types.ts";
export { type BtfFieldInfo, findFields } from "./fields.ts";
export { parseFields } from "./record.ts";
export type { FieldOptions, KernelTypeRef } from "./field_parse.ts";
export * from "./struct_meta.ts";
export * from "./core_spec.ts";
export {
  essentialNameLen,
  fieldsAreCompat,
  findCoreCandidates,
  matchCoreSpec,
  typesAreCompat,
  typesMatch,
} from "./core_match.ts";
export {
  calcCoreRelo,
  type CoreRelocation,
  type CoreReloResult,
} from "./core.ts";
export { patchCoreInsn, POISON_HELPER_ID } from "./core_patch.ts";
/** The instruction slot type `patchCoreInsn` works on (from lib/isa). */
export type { RawInsn } from "../isa/insn.ts";
