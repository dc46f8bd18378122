/**
 * `cli.ts btf FILE.o`: the object's BTF in `bpftool btf dump file` form.
 * @module
 */
import { dumpBtf } from "../btf/dump.ts";
import type { Command } from "./command.ts";
import { readObject } from "./object.ts";
import { InputError, parseCommand, UsageError } from "./usage.ts";

const HELP = `usage: cli.ts btf FILE.o

Prints the object's .BTF section in the raw format of
'bpftool btf dump file FILE.o' ([1] STRUCT 'foo' size=16 vlen=2 ...).`;

/** The `btf` command. */
export const btfCommand: Command = {
  name: "btf",
  summary: "dump an object's BTF like bpftool",
  help: HELP,
  run(args, io) {
    const { values, positionals } = parseCommand("btf", args, {});
    if (values.help) {
      io.out(HELP);
      return 0;
    }
    if (positionals.length !== 1) {
      throw new UsageError("btf: expects exactly one FILE.o");
    }
    const obj = readObject(positionals[0]);
    if (obj.btf === undefined) {
      throw new InputError(`${positionals[0]}: no .BTF section`);
    }
    io.out(dumpBtf(obj.btf).replace(/\n$/, ""));
    return 0;
  },
};
