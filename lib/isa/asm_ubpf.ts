/**
 * The uBPF / bpf_conformance assembler dialect (`mov %r0, 1`,
 * `ldxh %r2, [%r1+2]`, `jne %r0, %r1, exit`, `lock fetch add [%r10-8], %r1`),
 * following the grammar in `shared/conformance/README.md` ("Assembler dialect").
 * @module
 */
import {
  BPF_ALU,
  BPF_ALU64,
  BPF_ATOMIC,
  BPF_CMPXCHG,
  BPF_END,
  BPF_FETCH,
  BPF_JA,
  BPF_JMP,
  BPF_JMP32,
  BPF_K,
  BPF_LDX,
  BPF_MEM,
  BPF_MEMSX,
  BPF_NEG,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_KFUNC_CALL,
  BPF_ST,
  BPF_STX,
  BPF_TO_BE,
  BPF_TO_LE,
  BPF_X,
  BPF_XCHG,
} from "./opcodes.ts";
import { OPCODE, rawInsn } from "./decode.ts";
import type { SourcePos } from "./asm_error.ts";
import { type BuiltProgram, fitsField, ProgramBuilder } from "./asm_builder.ts";
import type { TargetField } from "./asm_builder.ts";
import {
  ALU_OP_BITS,
  ATOMIC_OP_BITS,
  JMP_OP_BITS,
  SIZE_BITS,
  splitLines,
} from "./asm_tables.ts";

/** One whitespace-separated word and where it starts. */
interface Word {
  readonly text: string;
  readonly column: number;
}

const INT32_MIN = -(2n ** 31n);
const INT32_MAX = 2n ** 31n - 1n;
const UINT32_MAX = 2n ** 32n - 1n;
const UINT64_MAX = 2n ** 64n - 1n;

/** Per-line context: the builder plus the line number, for error positions. */
interface Line {
  readonly builder: ProgramBuilder;
  readonly line: number;
}

// The helpers below read one operand each and throw AsmError at its column.

function wordPos(ctx: Line, word: Word): SourcePos {
  return { line: ctx.line, column: word.column, token: word.text };
}

function failAt(ctx: Line, word: Word, reason: string): Error {
  return ctx.builder.error(wordPos(ctx, word), reason);
}

function register(ctx: Line, word: Word): number {
  const match = /^%r(\d+)$/.exec(word.text);
  const reg = match === null ? NaN : Number(match[1]);
  // %r11-%r15 encode fine and let tests build invalid programs, as upstream allows
  if (!(reg >= 0 && reg <= 15)) {
    throw failAt(ctx, word, `invalid register '${word.text}'`);
  }
  return reg;
}

/** A 32-bit immediate: signed decimal, or a `0x` bit pattern up to 0xffffffff. */
function imm32(ctx: Line, word: Word): number {
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
function imm64(ctx: Line, word: Word): bigint {
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
function memory(ctx: Line, word: Word): { reg: number; off: number } {
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
function emitJump(
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
function splitWords(text: string): Word[] {
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

function expectOperands(
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

/** Assembles conformance-dialect `text`; errors name `fileName`. */
export function assembleUbpf(text: string, fileName: string): BuiltProgram {
  const builder = new ProgramBuilder(fileName);
  for (const { line, text: source } of splitLines(text)) {
    const hash = source.indexOf("#");
    let words = splitWords(hash < 0 ? source : source.slice(0, hash));
    const ctx: Line = { builder, line };
    const first = words[0];
    if (first !== undefined && first.text.endsWith(":")) {
      const name = first.text.slice(0, -1);
      if (!/^[A-Za-z_.$][\w.$]*$/.test(name)) {
        throw failAt(ctx, first, `invalid label '${name}'`);
      }
      builder.defineLabel(name, wordPos(ctx, first));
      words = words.slice(1);
    }
    if (words.length > 0) assembleWords(ctx, words[0], words.slice(1));
  }
  return builder.build();
}

function assembleWords(ctx: Line, mnemonic: Word, operands: Word[]): void {
  const name = mnemonic.text;
  const pos = wordPos(ctx, mnemonic);
  const emit = (
    code: number,
    dst: number,
    src: number,
    off: number,
    imm: number,
  ) => ctx.builder.emit(rawInsn(code, dst, src, off, imm), pos);

  let match: RegExpExecArray | null;
  if (
    (match = /^(s?div|s?mod|add|sub|mul|or|and|lsh|rsh|xor|mov|arsh)(32)?$/
      .exec(name))
  ) {
    expectOperands(ctx, mnemonic, operands, 2);
    const cls = match[2] ? BPF_ALU : BPF_ALU64;
    const op = ALU_OP_BITS.get(match[1].replace(/^s(div|mod)$/, "$1")) ?? 0;
    const off = /^s(div|mod)$/.test(match[1]) ? 1 : 0;
    const dst = register(ctx, operands[0]);
    if (operands[1].text.startsWith("%")) {
      emit(cls | op | BPF_X, dst, register(ctx, operands[1]), off, 0);
    } else {
      emit(cls | op | BPF_K, dst, 0, off, imm32(ctx, operands[1]));
    }
  } else if ((match = /^neg(32)?$/.exec(name))) {
    expectOperands(ctx, mnemonic, operands, 1);
    emit(
      (match[1] ? BPF_ALU : BPF_ALU64) | BPF_NEG,
      register(ctx, operands[0]),
      0,
      0,
      0,
    );
  } else if (
    (match = /^movsx(8|16|32)(64|32)$/.exec(name)) && name !== "movsx3232"
  ) {
    expectOperands(ctx, mnemonic, operands, 2);
    const cls = match[2] === "64" ? BPF_ALU64 : BPF_ALU;
    const [dst, src] = [register(ctx, operands[0]), register(ctx, operands[1])];
    emit(
      cls | (ALU_OP_BITS.get("mov") ?? 0) | BPF_X,
      dst,
      src,
      Number(match[1]),
      0,
    );
  } else if ((match = /^(le|be|bswap|swap)(16|32|64)$/.exec(name))) {
    expectOperands(ctx, mnemonic, operands, 1);
    const code = match[1] === "le"
      ? BPF_ALU | BPF_END | BPF_TO_LE
      : match[1] === "be"
      ? BPF_ALU | BPF_END | BPF_TO_BE
      : BPF_ALU64 | BPF_END | BPF_TO_LE;
    emit(code, register(ctx, operands[0]), 0, 0, Number(match[2]));
  } else if (name === "lddw") {
    expectOperands(ctx, mnemonic, operands, 2);
    const dst = register(ctx, operands[0]);
    const value = imm64(ctx, operands[1]);
    emit(OPCODE.lddw, dst, 0, 0, Number(BigInt.asIntN(32, value)));
    emit(0, 0, 0, 0, Number(BigInt.asIntN(32, value >> 32n)));
  } else if ((match = /^ldx(s)?(b|h|w|dw)$/.exec(name)) && name !== "ldxsdw") {
    expectOperands(ctx, mnemonic, operands, 2);
    const dst = register(ctx, operands[0]);
    const { reg, off } = memory(ctx, operands[1]);
    const mode = match[1] ? BPF_MEMSX : BPF_MEM;
    emit(BPF_LDX | mode | (SIZE_BITS.get(match[2]) ?? 0), dst, reg, off, 0);
  } else if ((match = /^st(x)?(b|h|w|dw)$/.exec(name))) {
    expectOperands(ctx, mnemonic, operands, 2);
    const { reg, off } = memory(ctx, operands[0]);
    const size = SIZE_BITS.get(match[2]) ?? 0;
    if (match[1]) {
      emit(BPF_STX | BPF_MEM | size, reg, register(ctx, operands[1]), off, 0);
    } else {
      emit(BPF_ST | BPF_MEM | size, reg, 0, off, imm32(ctx, operands[1]));
    }
  } else if (name === "ja" || name === "ja32") {
    expectOperands(ctx, mnemonic, operands, 1);
    const long = name === "ja32";
    const code = (long ? BPF_JMP32 : BPF_JMP) | BPF_JA;
    emitJump(
      ctx,
      { code, dst: 0, src: 0, imm: 0 },
      long ? "imm" : "off",
      operands[0],
      mnemonic,
    );
  } else if (
    (match = /^(j[a-z]+?)(32)?$/.exec(name)) && JMP_OP_BITS.has(match[1])
  ) {
    expectOperands(ctx, mnemonic, operands, 3);
    const cls = match[2] ? BPF_JMP32 : BPF_JMP;
    const op = JMP_OP_BITS.get(match[1]) ?? 0;
    const dst = register(ctx, operands[0]);
    const byReg = operands[1].text.startsWith("%");
    const fields = byReg
      ? { code: cls | op | BPF_X, dst, src: register(ctx, operands[1]), imm: 0 }
      : { code: cls | op | BPF_K, dst, src: 0, imm: imm32(ctx, operands[1]) };
    emitJump(ctx, fields, "off", operands[2], mnemonic);
  } else if (name === "call") {
    assembleCall(ctx, mnemonic, operands);
  } else if (name === "exit") {
    expectOperands(ctx, mnemonic, operands, 0);
    ctx.builder.defineFallbackLabel("exit");
    emit(OPCODE.exit, 0, 0, 0, 0);
  } else if (name === "lock") {
    assembleLock(ctx, mnemonic, operands);
  } else {
    throw failAt(ctx, mnemonic, `invalid mnemonic '${name}'`);
  }
}

/** `call N`, `call %rN` (callx: 0x8d, register in dst), `call local LABEL`, `call runtime N`. */
function assembleCall(ctx: Line, mnemonic: Word, operands: Word[]): void {
  const pos = wordPos(ctx, mnemonic);
  const mode = operands.length === 2 ? operands[0].text : "helper";
  if (operands.length === 2 && mode === "local") {
    emitJump(
      ctx,
      { code: OPCODE.call, dst: 0, src: BPF_PSEUDO_CALL, imm: 0 },
      "imm",
      operands[1],
      mnemonic,
    );
    return;
  }
  if (operands.length === 1 && operands[0].text.startsWith("%")) {
    const reg = register(ctx, operands[0]);
    ctx.builder.emit(rawInsn(BPF_JMP | BPF_X | OPCODE.call, reg, 0, 0, 0), pos);
    return;
  }
  if (operands.length !== 1 && operands.length !== 2) {
    expectOperands(ctx, mnemonic, operands, 1);
  }
  if (mode !== "helper" && mode !== "runtime") {
    throw failAt(ctx, operands[0], `invalid call mode '${mode}'`);
  }
  const src = mode === "runtime" ? BPF_PSEUDO_KFUNC_CALL : 0;
  const imm = imm32(ctx, operands[operands.length - 1]);
  ctx.builder.emit(rawInsn(OPCODE.call, 0, src, 0, imm), pos);
}

/** `lock [fetch] OP[32] [%rD+off], %rS` and `lock xchg|cmpxchg[32] …`. */
function assembleLock(ctx: Line, mnemonic: Word, words: Word[]): void {
  const rest = words[0]?.text === "fetch" ? words.slice(1) : words;
  const fetch = rest !== words;
  const opWord = rest[0];
  const operands = rest.slice(1);
  if (opWord === undefined || operands.length !== 2) {
    throw failAt(
      ctx,
      opWord ?? mnemonic,
      "invalid number of operands for lock",
    );
  }
  const match = /^(add|or|and|xor|xchg|cmpxchg)(32)?$/.exec(opWord.text);
  if (match === null) {
    throw failAt(ctx, opWord, `invalid atomic operation '${opWord.text}'`);
  }
  const imm = match[1] === "xchg"
    ? BPF_XCHG
    : match[1] === "cmpxchg"
    ? BPF_CMPXCHG
    : (ATOMIC_OP_BITS.get(match[1]) ?? 0) | (fetch ? BPF_FETCH : 0);
  const size = SIZE_BITS.get(match[2] ? "w" : "dw") ?? 0;
  const { reg, off } = memory(ctx, operands[0]);
  const src = register(ctx, operands[1]);
  ctx.builder.emit(
    rawInsn(BPF_STX | BPF_ATOMIC | size, reg, src, off, imm),
    wordPos(ctx, mnemonic),
  );
}
