/**
 * Reading a program the user named on the command line: assembly text
 * (`.s`, `.asm`, or a bpf_conformance `.data` file) or raw instruction bytes
 * (`.bin`). ELF objects go through `lib/elf`.
 * @module
 */
import { AsmError, assemble } from "../isa/asm.ts";
import {
  DataFileError,
  dataFileProgram,
  parseDataFile,
} from "../isa/conformance_data.ts";
import { decodeProgram, decodeRaw } from "../isa/decode.ts";
import { type Insn, IsaError } from "../isa/insn.ts";
import { InputError, readInput } from "./usage.ts";

/** A program read from a file, with the input memory a `.data` file carries. */
export interface ProgramSource {
  /** The decoded, slot-indexed program. */
  readonly insns: Insn[];
  /** Input bytes from a `.data` file's `-- mem` section, if any. */
  readonly mem?: Uint8Array;
}

/** True when `path` names an ELF object by its contents' magic. */
export function isElf(bytes: Uint8Array): boolean {
  return bytes.length >= 4 && bytes[0] === 0x7f && bytes[1] === 0x45 &&
    bytes[2] === 0x4c && bytes[3] === 0x46;
}

/** Reads assembly, a `.data` file or raw bytes; errors name the file and place. */
export function readProgramFile(path: string): ProgramSource {
  const bytes = readInput(path);
  try {
    if (path.endsWith(".bin")) return { insns: decodeProgram(bytes) };
    const text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
    if (path.endsWith(".data")) {
      const file = parseDataFile(text, path);
      return { insns: decodeRaw(dataFileProgram(file)), mem: file.mem };
    }
    return { insns: assemble(text, { name: path }) };
  } catch (e) {
    if (e instanceof AsmError || e instanceof DataFileError) {
      throw new InputError(e.message);
    }
    if (e instanceof IsaError) throw new InputError(`${path}: ${e.message}`);
    if (e instanceof TypeError) throw new InputError(`${path}: not UTF-8 text`);
    throw e;
  }
}
