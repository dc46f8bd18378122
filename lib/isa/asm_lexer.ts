/**
 * Tokens for the kernel/LLVM assembler syntax (`r1 += -8`,
 * `if w1 s< 5 goto pc-2`, `*(u32 *)(r10 -8) = r1`) and the number literal
 * rules both dialects share.
 * @module
 */
import { AsmError, type SourcePos } from "./asm_error.ts";

/** A token: identifier, unsigned number literal, operator, or end of line. */
export interface Token {
  /** Identifier, number literal, operator, or the end of the line. */
  readonly kind: "id" | "num" | "op" | "end";
  /** The token as written (empty for `end`). */
  readonly text: string;
  /** 1-based column in the source line. */
  readonly column: number;
}

/** Operators, longest first so that `s>>=` wins over `s>` and `>>=` over `>`. */
const OPERATORS: readonly string[] = [
  "s>>=",
  "<<=",
  ">>=",
  "s>=",
  "s<=",
  "s/=",
  "s%=",
  "+=",
  "-=",
  "*=",
  "/=",
  "|=",
  "&=",
  "%=",
  "^=",
  "==",
  "!=",
  ">=",
  "<=",
  "s>",
  "s<",
  ">",
  "<",
  "&",
  "=",
  "(",
  ")",
  "*",
  "+",
  "-",
  "[",
  "]",
  ",",
  ":",
  "#",
];

const IDENT_START = /[A-Za-z_.$]/;
const IDENT_REST = /[A-Za-z0-9_.$]/;
const DIGIT = /[0-9]/;

/** Parses an unsigned `0x…` or decimal literal; undefined if `text` is not one. */
export function parseUnsignedLiteral(text: string): bigint | undefined {
  return /^(0[xX][0-9a-fA-F]+|[0-9]+)$/.test(text) ? BigInt(text) : undefined;
}

/** Splits `text` (one line) into tokens; `start` is the 0-based index to begin at. */
export function tokenize(text: string, start: number): Token[] {
  const tokens: Token[] = [];
  let i = start;
  while (i < text.length) {
    const ch = text[i];
    if (ch === " " || ch === "\t") {
      i++;
      continue;
    }
    const column = i + 1;
    // `s>` and friends begin with an identifier character, so try them first
    const signedOp = ch === "s" && /[<>/%]/.test(text[i + 1] ?? "")
      ? OPERATORS.find((op) => op.startsWith("s") && text.startsWith(op, i))
      : undefined;
    if (signedOp !== undefined) {
      tokens.push({ kind: "op", text: signedOp, column });
      i += signedOp.length;
      continue;
    }
    if (IDENT_START.test(ch) || DIGIT.test(ch)) {
      // a number glued to letters (`12ab`) is one bad token, not two
      let j = i + 1;
      while (j < text.length && IDENT_REST.test(text[j])) j++;
      const kind = DIGIT.test(ch) ? "num" : "id";
      tokens.push({ kind, text: text.slice(i, j), column });
      i = j;
      continue;
    }
    const op = OPERATORS.find((candidate) => text.startsWith(candidate, i));
    tokens.push({ kind: "op", text: op ?? ch, column });
    i += op?.length ?? 1;
  }
  tokens.push({ kind: "end", text: "", column: text.length + 1 });
  return tokens;
}

/** A cursor over one line's tokens that raises `AsmError`s at the right column. */
export class TokenStream {
  readonly #tokens: Token[];
  readonly #fileName: string;
  readonly #line: number;
  #index = 0;

  /** Tokenizes `text` from index `start`; errors name `fileName` and `line`. */
  constructor(fileName: string, line: number, text: string, start: number) {
    this.#fileName = fileName;
    this.#line = line;
    this.#tokens = tokenize(text, start);
  }

  /** The token `ahead` positions from the cursor (the end token past the end). */
  peek(ahead = 0): Token {
    const at = Math.min(this.#index + ahead, this.#tokens.length - 1);
    return this.#tokens[at];
  }

  /** Consumes and returns the next token. */
  next(): Token {
    const token = this.peek();
    if (token.kind !== "end") this.#index++;
    return token;
  }

  /** Consumes the next token if its text is `text`. */
  accept(text: string): boolean {
    const token = this.peek();
    if (token.kind === "end" || token.text !== text) return false;
    this.#index++;
    return true;
  }

  /** Consumes the next token, which must read `text`. */
  expect(text: string): Token {
    const token = this.peek();
    if (token.kind === "end" || token.text !== text) {
      throw this.unexpected(token, `'${text}'`);
    }
    return this.next();
  }

  /** Requires the end of the line. */
  expectEnd(): void {
    const token = this.peek();
    if (token.kind !== "end") {
      throw this.fail(token, `unexpected '${token.text}' after instruction`);
    }
  }

  /** Source position of `token`. */
  pos(token: Token): SourcePos {
    return { line: this.#line, column: token.column, token: token.text };
  }

  /** An error at `token` (the caller throws it). */
  fail(token: Token, reason: string): AsmError {
    return new AsmError(this.#fileName, this.pos(token), reason);
  }

  /** An `expected X, found Y` error at `token`. */
  unexpected(token: Token, expected: string): AsmError {
    const found = token.kind === "end" ? "end of line" : `'${token.text}'`;
    return this.fail(token, `expected ${expected}, found ${found}`);
  }

  /**
   * Reads an optionally signed number (`-8`, `+0x10`, `- 8`), returning its
   * value and the token where it started.
   */
  signedNumber(what: string): { value: bigint; token: Token } {
    const first = this.peek();
    let negative = false;
    if (first.text === "-" || first.text === "+") {
      negative = first.text === "-";
      this.next();
    }
    const digits = this.next();
    const value = digits.kind === "num"
      ? parseUnsignedLiteral(digits.text)
      : undefined;
    if (value === undefined) throw this.unexpected(digits, what);
    return { value: negative ? -value : value, token: first };
  }
}
