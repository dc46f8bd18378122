// Runs cli.ts's main() in-process and collects what it printed.
import { main } from "../../lib/cli/main.ts";
import type { Output } from "../../lib/cli/command.ts";

/** The exit code and the stdout / stderr lines of one CLI invocation. */
export interface CliRun {
  /** Exit code. */
  readonly code: number;
  /** Standard output, lines joined with "\n". */
  readonly out: string;
  /** Standard error, lines joined with "\n". */
  readonly err: string;
}

/** Runs `cli.ts ARGS…` in this process. */
export async function cli(...args: string[]): Promise<CliRun> {
  const out: string[] = [];
  const err: string[] = [];
  const io: Output = { out: (l) => out.push(l), err: (l) => err.push(l) };
  const code = await main(args, io);
  return { code, out: out.join("\n"), err: err.join("\n") };
}
