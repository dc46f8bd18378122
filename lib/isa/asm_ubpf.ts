/**
 * The uBPF / bpf_conformance assembler dialect (`mov %r0, 1`,
 * `ldxh %r2, [%r1+2]`, `jne %r0, %r1, exit`, `lock fetch add [%r10-8], %r1`),
 * following the grammar in `shared/conformance/README.md` ("Assembler dialect").
 * Operands are read by `asm_ubpf_operands.ts`.
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
import { type BuiltProgram, ProgramBuilder } from "./asm_builder.ts";
import {
  emitJump,
  expectOperands,
  failAt,
  imm32,
  imm64,
  type Line,
  memory,
  register,
  splitWords,
  type Word,
  wordPos,
} from "./asm_ubpf_operands.ts";
import {
  ALU_OP_BITS,
  ATOMIC_OP_BITS,
  JMP_OP_BITS,
  SIZE_BITS,
  splitLines,
} from "./asm_tables.ts";

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
