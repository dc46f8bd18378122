/**
 * The command dispatcher behind `cli.ts`: picks the command, turns usage and
 * input errors into a message and exit code 2, and never shows a stack trace
 * for a user's mistake.
 * @module
 */
import { asmCommand } from "./asm.ts";
import { type Command, type Output, STDIO } from "./command.ts";
import { btfCommand } from "./btf.ts";
import { disasmCommand } from "./disasm.ts";
import { fuzzCommand } from "./fuzz.ts";
import { inspectCommand } from "./inspect.ts";
import { runCommand } from "./run.ts";
import { scenarioCommand } from "./scenario.ts";
import { verifyCommand } from "./verify.ts";
import { InputError, UsageError } from "./usage.ts";

/** Every command, in the order the help lists them. */
export const COMMANDS: readonly Command[] = [
  asmCommand,
  disasmCommand,
  runCommand,
  verifyCommand,
  inspectCommand,
  btfCommand,
  scenarioCommand,
  fuzzCommand,
];

function topHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return [
    "usage: cli.ts COMMAND [options] ...",
    "",
    "bpfsim: a simulator of the Linux BPF subsystem.",
    "",
    "commands:",
    ...COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`),
    "",
    "Run 'cli.ts COMMAND --help' for a command's options.",
  ].join("\n");
}

/** Runs the CLI with `args`; returns the exit code. */
export async function main(
  args: readonly string[],
  io: Output = STDIO,
): Promise<number> {
  const [name, ...rest] = args;
  if (
    name === undefined || name === "--help" || name === "-h" || name === "help"
  ) {
    io.out(topHelp());
    return name === undefined ? 2 : 0;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (command === undefined) {
    io.err(`cli.ts: unknown command '${name}'\n\n${topHelp()}`);
    return 2;
  }
  try {
    return await command.run(rest, io);
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`${e.message}\n(see 'cli.ts ${name} --help')`);
      return 2;
    }
    if (e instanceof InputError) {
      io.err(e.message);
      return 2;
    }
    throw e;
  }
}
