/**
 * `cli.ts disasm FILE`: prints a program the way the kernel verifier log
 * prints instructions (`0: (b7) r0 = 1`).
 * @module
 */
import { disassemble } from "../isa/disasm.ts";
import type { Command } from "./command.ts";
import { readProgramFile } from "./source.ts";
import { parseCommand, UsageError } from "./usage.ts";

const HELP = `usage: cli.ts disasm [--json] FILE

Prints FILE's instructions in the kernel verifier log's form
("0: (b7) r0 = 1"). FILE is assembly (either dialect), a bpf_conformance
.data file, or raw instruction bytes (.bin).

  --json   print {"file", "lines": [...]} on one line`;

/** The `disasm` command. */
export const disasmCommand: Command = {
  name: "disasm",
  summary: "print a program in the kernel verifier log's form",
  help: HELP,
  run(args, io) {
    const { values, positionals } = parseCommand("disasm", args, {
      json: { type: "boolean" },
    });
    if (values.help) {
      io.out(HELP);
      return 0;
    }
    if (positionals.length !== 1) throw new UsageError("disasm: expects exactly one FILE");
    const lines = disassemble(readProgramFile(positionals[0]).insns);
    if (values.json) io.out(JSON.stringify({ file: positionals[0], lines }));
    else lines.forEach((l) => io.out(l));
    return 0;
  },
};
