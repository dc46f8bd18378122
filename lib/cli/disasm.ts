/**
 * `cli.ts disasm FILE`: prints a program the way the kernel verifier log
 * prints instructions (`0: (b7) r0 = 1`); for an ELF object, each program
 * as libbpf links it, with its relocations under the instructions they
 * patch, as `llvm-objdump -dr` shows them.
 * @module
 */
import { relocationNotes } from "../elf/inspect.ts";
import type { BpfProgram, ObjectFile } from "../elf/types.ts";
import { disassemble, formatInsn } from "../isa/disasm.ts";
import type { CallInsn } from "../isa/insn.ts";
import type { Command } from "./command.ts";
import { readObject, selectPrograms } from "./object.ts";
import { isElf, readProgramFile } from "./source.ts";
import { InputError, parseCommand, readInput, UsageError } from "./usage.ts";

const HELP = `usage: cli.ts disasm [--json] [--program NAME] FILE

Prints FILE's instructions in the kernel verifier log's form
("0: (b7) r0 = 1"). FILE is assembly (either dialect), a bpf_conformance
.data file, raw instruction bytes (.bin), or an ELF object (.o): then every
program (or the one --program names) is printed as libbpf links it, with
each relocation on the line under its instruction ("R_BPF_64_64 my_map").

  --program NAME   objects only: print this program
  --json           print {"file", "programs": [{"name", "section", "lines"}]}`;

interface Listing {
  readonly name: string;
  readonly section: string;
  readonly lines: string[];
}

function kfuncName(
  obj: ObjectFile,
  program: BpfProgram,
  slot: number,
): string | undefined {
  const reloc = program.relocations.find((r) =>
    r.insnIndex === slot && r.kind === "kfunc_call"
  );
  return reloc?.externIndex === undefined
    ? undefined
    : obj.externs[reloc.externIndex]?.name;
}

function listProgram(obj: ObjectFile, program: BpfProgram): Listing {
  if (program.decodeError !== undefined) {
    throw new InputError(
      `${obj.file}: program '${program.name}': ${program.decodeError}`,
    );
  }
  const lines: string[] = [];
  const insns = program.insns;
  for (let i = 0; i < insns.length; i++) {
    const insn = insns[i];
    if (insn.kind === "ld_imm64_hi") continue;
    lines.push(formatInsn(insn, i, {
      callName: (call: CallInsn) =>
        call.callee === "kfunc" ? kfuncName(obj, program, i) : undefined,
    }));
    for (const note of relocationNotes(program, i)) lines.push(`\t\t${note}`);
  }
  return { name: program.name, section: program.section, lines };
}

/** The `disasm` command. */
export const disasmCommand: Command = {
  name: "disasm",
  summary: "print a program in the kernel verifier log's form",
  help: HELP,
  run(args, io) {
    const { values, positionals } = parseCommand("disasm", args, {
      json: { type: "boolean" },
      program: { type: "string" },
    });
    if (values.help) {
      io.out(HELP);
      return 0;
    }
    if (positionals.length !== 1) {
      throw new UsageError("disasm: expects exactly one FILE");
    }
    const file = positionals[0];
    const programName = typeof values.program === "string"
      ? values.program
      : undefined;
    let listings: Listing[];
    if (isElf(readInput(file))) {
      const obj = readObject(file);
      listings = selectPrograms(obj, programName).map((p) =>
        listProgram(obj, p)
      );
    } else {
      if (programName !== undefined) {
        throw new UsageError("disasm: --program applies to ELF objects only");
      }
      listings = [{
        name: file,
        section: "",
        lines: disassemble(readProgramFile(file).insns),
      }];
    }
    if (values.json) {
      io.out(JSON.stringify({ file, programs: listings }));
      return 0;
    }
    const headed = listings.length > 1 || isElf(readInput(file));
    listings.forEach((l, n) => {
      if (headed) {
        io.out(`${n > 0 ? "\n" : ""}${l.name} (section ${l.section}):`);
      }
      l.lines.forEach((line) => io.out(line));
    });
    return 0;
  },
};
