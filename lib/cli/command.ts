/**
 * The shape every `cli.ts` command has: a name, a one-line summary, its
 * `--help` text, and a function that runs it and returns the exit code.
 * @module
 */

/** Where a command writes; tests pass their own to capture output. */
export interface Output {
  /** Writes one line to standard output. */
  out(line: string): void;
  /** Writes one line to standard error. */
  err(line: string): void;
}

/** A CLI command. */
export interface Command {
  /** The word after `cli.ts`. */
  readonly name: string;
  /** One line for the top-level help. */
  readonly summary: string;
  /** The full `--help` text. */
  readonly help: string;
  /** Runs the command; returns the exit code. Throws UsageError / InputError for exit 2. */
  run(args: readonly string[], io: Output): number | Promise<number>;
}

/** Output to the process's standard streams. */
export const STDIO: Output = {
  out: (line) => console.log(line),
  err: (line) => console.error(line),
};
