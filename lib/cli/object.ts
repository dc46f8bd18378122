/**
 * Loading the ELF object a user named, with every failure turned into an
 * `InputError` that names the file (and the section or offset the loader
 * reports).
 * @module
 */
import { LoadError } from "../elf/errors.ts";
import { loadObject } from "../elf/object.ts";
import type { BpfProgram, ObjectFile } from "../elf/types.ts";
import { BtfError } from "../btf/errors.ts";
import { InputError, readInput, UsageError } from "./usage.ts";

/** Reads and parses `path` as a BPF ELF object. */
export function readObject(path: string): ObjectFile {
  const bytes = readInput(path);
  try {
    return loadObject(bytes, path);
  } catch (e) {
    if (e instanceof LoadError) throw new InputError(e.message);
    if (e instanceof BtfError) throw new InputError(`${path}: ${e.message}`);
    throw e;
  }
}

/** The programs `--program NAME` selects (all when NAME is undefined). */
export function selectPrograms(
  obj: ObjectFile,
  name: string | undefined,
): readonly BpfProgram[] {
  if (name === undefined) return obj.programs;
  const found = obj.programs.filter((p) => p.name === name);
  if (found.length === 0) {
    const names = obj.programs.map((p) => p.name).join(", ") || "none";
    throw new UsageError(
      `${obj.file}: no program '${name}' (programs: ${names})`,
    );
  }
  return found;
}
