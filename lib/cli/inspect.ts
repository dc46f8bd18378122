/**
 * `cli.ts inspect FILE.o`: what an object holds, as libbpf would load it.
 * @module
 */
import { formatInspect, inspectObject } from "../elf/inspect.ts";
import type { Command } from "./command.ts";
import { readObject } from "./object.ts";
import { parseCommand, UsageError } from "./usage.ts";

const HELP = `usage: cli.ts inspect [--json] FILE.o

Lists the object's programs (section, program type, instruction count after
linking subprograms, as libbpf submits them), its maps (type, key and value
sizes, max_entries, flags, special fields such as bpf_spin_lock,
bpf_list_head and kptrs) and its externs (kfuncs, ksyms, kconfig).

  --json   print the summary as one JSON object`;

/** The `inspect` command. */
export const inspectCommand: Command = {
  name: "inspect",
  summary: "list an object's programs, maps and externs",
  help: HELP,
  run(args, io) {
    const { values, positionals } = parseCommand("inspect", args, {
      json: { type: "boolean" },
    });
    if (values.help) {
      io.out(HELP);
      return 0;
    }
    if (positionals.length !== 1) {
      throw new UsageError("inspect: expects exactly one FILE.o");
    }
    const summary = inspectObject(readObject(positionals[0]));
    io.out(values.json ? JSON.stringify(summary) : formatInspect(summary));
    return 0;
  },
};
