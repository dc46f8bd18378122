/**
 * Shared pieces of the kernel-syntax assembler: the per-line context,
 * registers, immediates with their range rules, and memory operands.
 * @module
 */
import type { SourcePos } from "./asm_error.ts";
import type { ProgramBuilder, TargetField } from "./asm_builder.ts";
import { fitsField } from "./asm_builder.ts";
import type { Token, TokenStream } from "./asm_lexer.ts";
import { ACCESS_TYPES } from "./asm_tables.ts";
import { rawInsn } from "./decode.ts";

/** Everything a statement parser needs: tokens, output and options. */
export interface KernelLine {
  /** The statement's tokens. */
  readonly ts: TokenStream;
  /** Where slots go. */
  readonly builder: ProgramBuilder;
  /** First token of the statement: the position every slot of it carries. */
  readonly start: Token;
  /** The line carried the kernel log's `(18)` column: a constant load is an `lddw`. */
  readonly forceLdImm64: boolean;
  /** Maps a kfunc name to its BTF id for `call name`. */
  readonly resolveCall?: (name: string) => number | undefined;
}

/** A register operand: `rN` (64-bit view) or `wN` (32-bit view). */
export interface RegOperand {
  /** Register number, 0–15. */
  readonly reg: number;
  /** True for `rN`. */
  readonly wide: boolean;
  /** Where it was written. */
  readonly token: Token;
}

/** Immediate range rules: `s32` for sign-extended 64-bit uses, `bits32` where a 32-bit bit pattern (up to 0xffffffff) means the same thing. */
export type ImmRange = "s32" | "bits32";

const INT32_MIN = -(2n ** 31n);
const INT32_MAX = 2n ** 31n - 1n;
const UINT32_MAX = 2n ** 32n - 1n;

/** True when the next token is a register name. */
export function isRegister(token: Token): boolean {
  return token.kind === "id" && /^[rw][0-9]+$/.test(token.text);
}

/** Reads a register `r0`–`r15` / `w0`–`w15` (11–15 only encode invalid programs). */
export function register(ts: TokenStream): RegOperand {
  const token = ts.next();
  const match = token.kind === "id"
    ? /^([rw])([0-9]+)$/.exec(token.text)
    : null;
  if (match === null) throw ts.unexpected(token, "a register");
  const reg = Number(match[2]);
  if (reg > 15) throw ts.fail(token, `invalid register '${token.text}'`);
  return { reg, wide: match[1] === "r", token };
}

/** Reads a register that must have the width `wide` (`r` when true). */
export function registerOfWidth(ts: TokenStream, wide: boolean): RegOperand {
  const operand = register(ts);
  if (operand.wide !== wide) {
    throw ts.fail(
      operand.token,
      `register '${operand.token.text}' mixes 32- and 64-bit views; write ${
        wide ? "r" : "w"
      }${operand.reg}`,
    );
  }
  return operand;
}

/** Checks a parsed constant against `range` and returns the 32-bit imm field. */
export function immField(
  ts: TokenStream,
  token: Token,
  value: bigint,
  range: ImmRange,
): number {
  const max = range === "s32" ? INT32_MAX : UINT32_MAX;
  if (value < INT32_MIN || value > max) {
    throw ts.fail(token, `immediate out of 32-bit range: ${value}`);
  }
  return Number(BigInt.asIntN(32, value));
}

/** Reads an optionally signed constant into a 32-bit imm field. */
export function immediate(ts: TokenStream, range: ImmRange): number {
  const { value, token } = ts.signedNumber("a number");
  return immField(ts, token, value, range);
}

/** Reads `(TYPE *)`: `u8` … `u64`, `s8` … `s32`. */
export function accessType(
  ts: TokenStream,
): { size: number; bytes: number; signed: boolean; token: Token } {
  ts.expect("(");
  const token = ts.next();
  const type = ACCESS_TYPES.get(token.text);
  if (type === undefined) {
    throw ts.unexpected(token, "an access type (u8 … u64, s8 … s32)");
  }
  ts.expect("*");
  ts.expect(")");
  return { ...type, token };
}

/** Reads a base register and offset: `rN`, `rN +8`, `rN - 0x8`, `rN + -8`. */
export function baseAndOffset(ts: TokenStream): { reg: number; off: number } {
  const base = registerOfWidth(ts, true);
  const sign = ts.peek();
  if (sign.text !== "+" && sign.text !== "-") return { reg: base.reg, off: 0 };
  ts.next();
  const { value, token } = ts.signedNumber("an offset");
  const off = Number(sign.text === "-" ? -value : value);
  if (!fitsField(off, "off")) {
    throw ts.fail(token, `offset out of 16-bit range: ${off}`);
  }
  return { reg: base.reg, off };
}

/** Reads `(rN +off)`. */
export function memoryOperand(ts: TokenStream): { reg: number; off: number } {
  ts.expect("(");
  const operand = baseAndOffset(ts);
  ts.expect(")");
  return operand;
}

/** Source position of the statement (all its slots share it). */
export function startPos(line: KernelLine): SourcePos {
  return line.ts.pos(line.start);
}

/** Emits one slot at the statement's position. */
export function emit(
  line: KernelLine,
  code: number,
  dst: number,
  src: number,
  off: number,
  imm: number,
): void {
  line.builder.emit(rawInsn(code, dst, src, off, imm), startPos(line));
}

/**
 * Reads a jump target — `pc+N`, `+N`, `-N` (slots after the next
 * instruction) or a label — and emits the slot with it in `field`.
 */
export function emitWithTarget(
  line: KernelLine,
  fields: { code: number; dst: number; src: number; off: number; imm: number },
  field: TargetField,
): void {
  const { ts } = line;
  const first = ts.peek();
  const isPc = first.text === "pc" && /^[+-]$/.test(ts.peek(1).text);
  if (isPc) ts.next();
  if (isPc || first.text === "+" || first.text === "-") {
    const { value, token } = ts.signedNumber("a jump offset");
    if (!fitsField(Number(value), field)) {
      const bits = field === "off" ? 16 : 32;
      throw ts.fail(token, `jump offset out of ${bits}-bit range: ${value}`);
    }
    const distance = Number(value);
    const off = field === "off" ? distance : fields.off;
    const imm = field === "imm" ? distance : fields.imm;
    emit(line, fields.code, fields.dst, fields.src, off, imm);
    return;
  }
  const label = ts.next();
  if (label.kind !== "id") {
    throw ts.unexpected(label, "a jump target (pc+N, +N or a label)");
  }
  const raw = rawInsn(
    fields.code,
    fields.dst,
    fields.src,
    fields.off,
    fields.imm,
  );
  line.builder.emitTargeted(
    raw,
    field,
    label.text,
    startPos(line),
    ts.pos(label),
  );
}
