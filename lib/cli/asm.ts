/**
 * `cli.ts asm FILE`: assembles a program and prints its instructions as
 * little-endian hex, one slot per line (or writes raw bytes with `--out`).
 * @module
 */
import { encodeProgram } from "../isa/decode.ts";
import type { Command } from "./command.ts";
import { readProgramFile } from "./source.ts";
import { parseCommand, UsageError } from "./usage.ts";

const HELP = `usage: cli.ts asm [--json] [--out FILE.bin] FILE

Assembles FILE (kernel/LLVM syntax or the bpf_conformance syntax, detected
per file; a .data conformance file is read from its -- asm/-- raw section)
and prints each 8-byte instruction slot as hex in memory order.

  --out FILE.bin   write the raw instruction bytes to FILE.bin instead
  --json           print {"file", "slots", "hex": [...]} on one line`;

function toHex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The `asm` command. */
export const asmCommand: Command = {
  name: "asm",
  summary: "assemble a program to instruction bytes",
  help: HELP,
  run(args, io) {
    const { values, positionals } = parseCommand("asm", args, {
      json: { type: "boolean" },
      out: { type: "string" },
    });
    if (values.help) {
      io.out(HELP);
      return 0;
    }
    if (positionals.length !== 1) {
      throw new UsageError("asm: expects exactly one FILE");
    }
    const file = positionals[0];
    const bytes = encodeProgram(readProgramFile(file).insns);
    if (typeof values.out === "string") {
      Deno.writeFileSync(values.out, bytes);
      return 0;
    }
    const slots: string[] = [];
    for (let i = 0; i < bytes.length; i += 8) {
      slots.push(toHex(bytes.subarray(i, i + 8)));
    }
    if (values.json) {
      io.out(JSON.stringify({ file, slots: slots.length, hex: slots }));
    } else slots.forEach((s) => io.out(s));
    return 0;
  },
};
