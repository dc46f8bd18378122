/**
 * Operands of the uBPF / bpf_conformance assembler dialect: splitting a line
 * into words, and reading registers, immediates, memory operands and jump
 * targets, each refusal an AsmError at the operand's column.
 * @module
 */
import { rawInsn } from "./decode.ts";
import type { SourcePos } from "./asm_error.ts";
import {
  fitsField,
  type ProgramBuilder,
  type TargetField,
} from "./asm_builder.ts";

/** One whitespace-separated word and where it starts. */
export interface Word {
  /** The word as written. */
  readonly text: string;
  /** 1-based column of its first character. */
  readonly column: number;
}

const INT32_MIN = -(2n ** 31n);
const INT32_MAX = 2n ** 31n - 1n;
const UINT32_MAX = 2n ** 32n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/** Per-line context: the builder plus the line number, for error positions. */
export interface Line {
  /** The program being built. */
  readonly builder: ProgramBuilder;
  /** 1-based line number. */
  readonly line: number;
}

// The helpers below read one operand each and throw AsmError at its column.

/** Where `word` is, for errors and the listing. */
export function wordPos(ctx: Line, word: Word): SourcePos {
  return { line: ctx.line, column: word.column, token: word.text };
}

/** An AsmError at `word`, to throw. */
export function failAt(ctx: Line, word: Word, reason: string): Error {
  return ctx.builder.error(wordPos(ctx, word), reason);
}

/** `%rN` (0-15), or an error at `word`. */
export function register(ctx: Line, word: Word): number {
  const match = /^%r(\d+)$/.exec(word.text);
  const reg = match === null ? NaN : Number(match[1]);
  // %r11-%r15 encode fine and let tests build invalid programs, as upstream allows
  if (!(reg >= 0 && reg <= 15)) {
    throw failAt(ctx, word, `invalid register '${word.text}'`);
  }
  return reg;
}

/** A 32-bit immediate: signed decimal, or a `0x` bit pattern up to 0xffffffff. */
export function imm32(ctx: Line, word: Word): number {
  const text = word.text;
  let value: bigint;
  if (/^[+-]?[0-9]+$/.test(text)) {
    value = BigInt(text);
    if (value < INT32_MIN || value > INT32_MAX) {
      throw failAt(ctx, word, `immediate out of 32-bit range: ${text}`);
    }
  } else if (/^0x[0-9a-fA-F]+$/.test(text)) {
    value = BigInt(text);
    if (value > UINT32_MAX) {
      throw failAt(ctx, word, `immediate out of 32-bit range: ${text}`);
    }
  } else {
    throw failAt(ctx, word, `invalid immediate '${text}'`);
  }
  return Number(BigInt.asIntN(32, value));
}

/** The 64-bit `lddw` immediate: hex, unsigned decimal or negative decimal. */
export function imm64(ctx: Line, word: Word): bigint {
  const text = word.text;
  if (!/^(0x[0-9a-fA-F]+|[+-]?[0-9]+)$/.test(text)) {
    throw failAt(ctx, word, `invalid immediate '${text}'`);
  }
  const value = BigInt(text);
  if (value > UINT64_MAX || value < -(2n ** 63n)) {
    throw failAt(ctx, word, `immediate out of 64-bit range: ${text}`);
  }
  return BigInt.asUintN(64, value);
}

/** `[%rN]`, `[%rN+off]`, `[%rN-off]` with a decimal or `0x` offset that fits int16. */
export function memory(ctx: Line, word: Word): { reg: number; off: number } {
  const match = /^\[([^\]+-]+)(?:([+-])(0x[0-9a-fA-F]+|[0-9]+))?\]$/.exec(
    word.text,
  );
  if (match === null) {
    throw failAt(ctx, word, `invalid memory operand '${word.text}'`);
  }
  const reg = register(ctx, { text: match[1], column: word.column + 1 });
  const magnitude = match[3] === undefined ? 0n : BigInt(match[3]);
  const off = Number(match[2] === "-" ? -magnitude : magnitude);
  if (!fitsField(off, "off")) {
    throw failAt(ctx, word, `offset out of 16-bit range: ${word.text}`);
  }
  return { reg, off };
}

/** Emits `code` with a jump target: a label or a signed slot count (`+1`, `-3`). */
export function emitJump(
  ctx: Line,
  fields: { code: number; dst: number; src: number; imm: number },
  field: TargetField,
  target: Word,
  mnemonic: Word,
): void {
  const { code, dst, src, imm } = fields;
  const pos = wordPos(ctx, mnemonic);
  const number = /^[+-](0x[0-9a-fA-F]+|[0-9]+)$/.exec(target.text);
  if (number !== null) {
    const distance = Number(BigInt(target.text.slice(1))) *
      (target.text[0] === "-" ? -1 : 1);
    if (!fitsField(distance, field)) {
      const bits = field === "off" ? 16 : 32;
      throw failAt(
        ctx,
        target,
        `jump offset out of ${bits}-bit range: ${target.text}`,
      );
    }
    const off = field === "off" ? distance : 0;
    const value = field === "imm" ? distance : imm;
    ctx.builder.emit(rawInsn(code, dst, src, off, value), pos);
    return;
  }
  if (!/^[A-Za-z_.$][\w.$]*$/.test(target.text)) {
    throw failAt(ctx, target, `invalid jump target '${target.text}'`);
  }
  ctx.builder.emitTargeted(
    rawInsn(code, dst, src, 0, imm),
    field,
    target.text,
    pos,
    wordPos(ctx, target),
  );
}

/** Splits a line into words, keeping `[%r1 + 2]` together and dropping one trailing comma per operand. */
export function splitWords(text: string): Word[] {
  const words: Word[] = [];
  for (const match of text.matchAll(/\S+/g)) {
    const column = (match.index ?? 0) + 1;
    const last = words.at(-1);
    if (
      last !== undefined && last.text.startsWith("[") &&
      !last.text.includes("]")
    ) {
      words[words.length - 1] = {
        text: last.text + match[0],
        column: last.column,
      };
    } else {
      words.push({ text: match[0], column });
    }
  }
  return words.map((word, i) =>
    i > 0 && word.text.endsWith(",")
      ? { ...word, text: word.text.slice(0, -1) }
      : word
  );
}

/** Refuses an operand count other than `count`, at the mnemonic. */
export function expectOperands(
  ctx: Line,
  mnemonic: Word,
  operands: Word[],
  count: number,
): void {
  if (operands.length !== count) {
    throw failAt(
      ctx,
      mnemonic,
      `invalid number of operands for '${mnemonic.text}': expected ${count}, found ${operands.length}`,
    );
  }
}
