/**
 * The assembler's error type and the source positions it carries.
 * @module
 */

/** Where a token sits in the assembler input (1-based line and column). */
export interface SourcePos {
  /** 1-based line number in the input text. */
  readonly line: number;
  /** 1-based column of the token's first character. */
  readonly column: number;
  /** The offending token as written (may be empty at end of line). */
  readonly token: string;
}

/**
 * An assembly failure: which input, which line and column, which token and
 * why. The message reads `name:line:column: reason`, like a compiler's.
 */
export class AsmError extends Error {
  /** Name of the input (file name, or `<input>`). */
  readonly fileName: string;
  /** 1-based line number. */
  readonly line: number;
  /** 1-based column. */
  readonly column: number;
  /** The offending token. */
  readonly token: string;
  /** The reason alone, e.g. `invalid register '%r50'`. */
  readonly reason: string;

  /** Builds the error from a position and a reason. */
  constructor(fileName: string, pos: SourcePos, reason: string) {
    super(`${fileName}:${pos.line}:${pos.column}: ${reason}`);
    this.name = "AsmError";
    this.fileName = fileName;
    this.line = pos.line;
    this.column = pos.column;
    this.token = pos.token;
    this.reason = reason;
  }
}
