/**
 * Shared pieces of the command line: argument parsing that turns every
 * mistake into a `UsageError` (exit 2), and reading input files with errors
 * that name the file.
 * @module
 */
import { parseArgs } from "node:util";

/** A mistake in how a command was called; the CLI prints it and exits 2. */
export class UsageError extends Error {
  /** Builds the error with the text shown to the user. */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}

/** Input the command could not read or understand; the CLI exits 2. */
export class InputError extends Error {
  /** Builds the error with the text shown to the user. */
  constructor(message: string) {
    super(message);
    this.name = "InputError";
  }
}

/** Option declarations as `node:util` parseArgs takes them. */
export type OptionSpec = Record<
  string,
  { type: "string" | "boolean"; short?: string; multiple?: boolean }
>;

/** Parsed options and positional arguments. */
export interface Parsed {
  /** Option values by name. */
  values: Record<string, string | boolean | string[] | boolean[] | undefined>;
  /** Arguments that are not options. */
  positionals: string[];
}

/** Parses `args` strictly; unknown options and missing values are usage errors. */
export function parseCommand(
  command: string,
  args: readonly string[],
  options: OptionSpec,
): Parsed {
  try {
    const { values, positionals } = parseArgs({
      args: [...args],
      options: { ...options, help: { type: "boolean", short: "h" } },
      allowPositionals: true,
      strict: true,
    });
    return { values, positionals };
  } catch (e) {
    throw new UsageError(`${command}: ${(e as Error).message}`);
  }
}

/** Reads a file as bytes; a missing or unreadable file is an `InputError` naming it. */
export function readInput(path: string): Uint8Array {
  try {
    return Deno.readFileSync(path);
  } catch (e) {
    const reason = e instanceof Deno.errors.NotFound
      ? "no such file"
      : (e as Error).message;
    throw new InputError(`${path}: cannot read: ${reason}`);
  }
}

/** Parses a hex string (spaces allowed) into bytes, or throws a `UsageError`. */
export function parseHex(option: string, text: string): Uint8Array {
  const clean = text.replace(/\s+/g, "").replace(/^0x/i, "");
  if (clean.length % 2 !== 0 || /[^0-9a-f]/i.test(clean)) {
    throw new UsageError(`${option}: not an even-length hex string: '${text}'`);
  }
  const out = new Uint8Array(clean.length / 2);
  for (let i = 0; i < out.length; i++) {
    out[i] = parseInt(clean.slice(2 * i, 2 * i + 2), 16);
  }
  return out;
}

/** Parses a positive integer option, or throws a `UsageError`. */
export function parsePositiveInt(option: string, text: string): number {
  if (!/^[0-9]+$/.test(text) || Number(text) < 1) {
    throw new UsageError(
      `${option}: expected a positive integer, got '${text}'`,
    );
  }
  return Number(text);
}

/** Formats a 64-bit value as the CLI contract's hex string (`0x2a`). */
export function hex64(value: bigint): string {
  return "0x" + BigInt.asUintN(64, value).toString(16);
}
