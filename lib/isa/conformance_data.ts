/**
 * Parser of the bpf_conformance `.data` test format (see
 * `shared/conformance/README.md`, "File format"): sections `-- asm`,
 * `-- raw`, `-- mem`, `-- result`, `-- error`, and the ignored `-- c` and
 * `-- no register offset`.
 * @module
 */
import type { RawInsn } from "./insn.ts";
import { readRawProgram } from "./decode.ts";
import { assembleRaw } from "./asm.ts";

/** One parsed `.data` file. */
export interface DataFile {
  /** The name given to the parser (used in errors). */
  readonly name: string;
  /**
   * The `-- asm` section as assembler input: the whole file with every line
   * outside the section blanked, so line numbers in `AsmError`s are the
   * file's. Null when the file has no asm section.
   */
  readonly asm: string | null;
  /** The `-- raw` program as little-endian bytes, or null. */
  readonly raw: Uint8Array | null;
  /** The `-- mem` input bytes (empty when there is no mem section). */
  readonly mem: Uint8Array;
  /** The expected r0 (unsigned 64-bit), or null. */
  readonly result: bigint | null;
  /** The expected error text (`""`: any load-time rejection), or null. */
  readonly error: string | null;
}

/** A malformed `.data` file: which file and line, and why. */
export class DataFileError extends Error {
  /** The file's name. */
  readonly fileName: string;
  /** 1-based line number. */
  readonly line: number;

  /** Builds the error; the message reads `name:line: reason`. */
  constructor(fileName: string, line: number, reason: string) {
    super(`${fileName}:${line}: ${reason}`);
    this.name = "DataFileError";
    this.fileName = fileName;
    this.line = line;
  }
}

type Section = "asm" | "raw" | "mem" | "result" | "error" | "ignore";

/** Section header words, in the order upstream's parser tries them. */
const HEADERS: readonly [string, Section][] = [
  ["asm", "asm"],
  ["result", "result"],
  ["mem", "mem"],
  ["raw", "raw"],
  ["no register offset", "ignore"],
  [" c", "ignore"],
  ["error", "error"],
];

interface Collected {
  readonly lines: { line: number; text: string }[];
  present: boolean;
}

/** Parses `.data` text; throws `DataFileError` naming `name` and the line. */
export function parseDataFile(text: string, name = "<data>"): DataFile {
  const lines = text.split("\n").map((
    l,
  ) => (l.endsWith("\r") ? l.slice(0, -1) : l));
  const sections = new Map<Section, Collected>();
  for (const [, section] of HEADERS) {
    sections.set(section, { lines: [], present: false });
  }
  const asmLines: string[] = lines.map(() => "");
  let current: Section = "ignore";
  lines.forEach((line, i) => {
    if (line.includes("--")) {
      const header = HEADERS.find(([word]) => line.includes(word));
      if (header === undefined) {
        throw new DataFileError(
          name,
          i + 1,
          `unknown section header '${line.trim()}'`,
        );
      }
      current = header[1];
      const collected = sections.get(current);
      if (collected !== undefined) collected.present = true;
      return;
    }
    if (current === "asm") asmLines[i] = line;
    const hash = line.indexOf("#");
    const content = (hash < 0 ? line : line.slice(0, hash)).trim();
    if (content !== "") {
      sections.get(current)?.lines.push({ line: i + 1, text: content });
    }
  });
  const get = (section: Section): Collected =>
    sections.get(section) ?? { lines: [], present: false };
  return {
    name,
    asm: get("asm").present ? asmLines.join("\n") : null,
    raw: get("raw").present ? parseRaw(name, get("raw").lines) : null,
    mem: parseMem(name, get("mem").lines),
    result: get("result").present
      ? parseResult(name, get("result").lines)
      : null,
    error: get("error").present
      ? (get("error").lines.at(-1)?.text ?? "")
      : null,
  };
}

function tokens(
  lines: { line: number; text: string }[],
): { line: number; text: string }[] {
  return lines.flatMap(({ line, text }) =>
    text.split(/\s+/).map((t) => ({ line, text: t }))
  );
}

/**
 * `-- raw`: whole 64-bit words (`0x…` or decimal), or — when no token starts
 * with `0x` and every token is two hex digits — single bytes in memory order.
 */
function parseRaw(
  name: string,
  lines: { line: number; text: string }[],
): Uint8Array {
  const words = tokens(lines);
  const asBytes = words.length > 0 &&
    words.every((w) => /^[0-9a-fA-F]{2}$/.test(w.text));
  if (asBytes) {
    if (words.length % 8 !== 0) {
      const last = words[words.length - 1];
      throw new DataFileError(
        name,
        last.line,
        `${words.length} raw bytes is not a whole number of instructions`,
      );
    }
    return Uint8Array.from(words.map((w) => parseInt(w.text, 16)));
  }
  const bytes = new Uint8Array(words.length * 8);
  const view = new DataView(bytes.buffer);
  words.forEach((word, i) => {
    if (!/^(0x[0-9a-fA-F]+|[0-9]+)$/.test(word.text)) {
      throw new DataFileError(
        name,
        word.line,
        `invalid raw instruction word '${word.text}'`,
      );
    }
    const value = BigInt(word.text);
    if (value >= 2n ** 64n) {
      throw new DataFileError(
        name,
        word.line,
        `raw word '${word.text}' exceeds 64 bits`,
      );
    }
    view.setBigUint64(i * 8, value, true);
  });
  return bytes;
}

/** `-- mem`: hex bytes separated by white space, over any number of lines. */
function parseMem(
  name: string,
  lines: { line: number; text: string }[],
): Uint8Array {
  return Uint8Array.from(
    tokens(lines).map((token) => {
      if (!/^[0-9a-fA-F]{1,2}$/.test(token.text)) {
        throw new DataFileError(
          name,
          token.line,
          `invalid mem byte '${token.text}'`,
        );
      }
      return parseInt(token.text, 16);
    }),
  );
}

/** `-- result`: the last non-blank line, `0x…` hex or decimal, as an unsigned 64-bit value. */
function parseResult(
  name: string,
  lines: { line: number; text: string }[],
): bigint | null {
  const last = lines.at(-1);
  if (last === undefined) return null;
  const match = /^(0x[0-9a-fA-F]+|[0-9]+)$/.exec(last.text);
  const value = match === null ? undefined : BigInt(last.text);
  if (value === undefined || value >= 2n ** 64n) {
    throw new DataFileError(name, last.line, `invalid result '${last.text}'`);
  }
  return value;
}

/**
 * The file's program as raw slots: the `-- raw` section when present (as
 * upstream prefers it), else the assembled `-- asm` section; empty if neither.
 */
export function dataFileProgram(file: DataFile): RawInsn[] {
  if (file.raw !== null) return readRawProgram(file.raw);
  if (file.asm !== null) {
    return assembleRaw(file.asm, { name: file.name, dialect: "conformance" });
  }
  return [];
}
