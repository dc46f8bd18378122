/**
 * Resolving `__ksym` kfunc externs against a kernel's BTF, as libbpf's
 * `bpf_object__resolve_externs()` / `resolve_ksym_func_btf_id()` do at load
 * time: each `call` of a kfunc gets the kernel's BTF id in its imm. The
 * object stays plain data: this returns a new object.
 * @module
 */
import { decodeRaw } from "../isa/decode.ts";
import type { RawInsn } from "../isa/insn.ts";
import { LoadError } from "./errors.ts";
import type { BpfProgram, ObjectFile } from "./types.ts";

/** Looks a kernel function up by name: its BTF id, or undefined when absent. */
export type KsymLookup = (name: string) => number | undefined;

/**
 * Returns `obj` with every kfunc call's imm set to the kernel's BTF id.
 * A missing non-weak kfunc is a `LoadError` worded like libbpf's; a missing
 * `__weak` one stays 0, which the verifier refuses only if the call is
 * reachable.
 */
export function resolveKsyms(obj: ObjectFile, lookup: KsymLookup): ObjectFile {
  const ids = obj.externs.map((ext) => {
    if (ext.kind !== "ksym" || !ext.isFunc) return undefined;
    const id = lookup(ext.essentialName);
    if (id === undefined && !ext.isWeak) {
      throw new LoadError(
        { file: obj.file, section: ".ksyms" },
        `extern (func ksym) '${ext.essentialName}': not found in kernel or module BTFs`,
      );
    }
    return id;
  });
  const programs = obj.programs.map((program): BpfProgram => {
    const patches = program.relocations.filter((r) =>
      r.kind === "kfunc_call" && r.externIndex !== undefined &&
      ids[r.externIndex] !== undefined
    );
    if (patches.length === 0) return program;
    const raw: RawInsn[] = [...program.raw];
    for (const r of patches) {
      raw[r.insnIndex] = { ...raw[r.insnIndex], imm: ids[r.externIndex!]! };
    }
    return program.decodeError === undefined
      ? { ...program, raw, insns: decodeRaw(raw) }
      : { ...program, raw };
  });
  return { ...obj, programs };
}
