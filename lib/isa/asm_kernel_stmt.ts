/**
 * Kernel-syntax statements other than memory accesses: ALU operations,
 * 64-bit constants, jumps and calls, as printed by the verifier log
 * (kernel/bpf/disasm.c) and by `llvm-objdump -d`.
 * @module
 */
import {
  BPF_ALU,
  BPF_ALU64,
  BPF_END,
  BPF_JA,
  BPF_JCOND,
  BPF_JMP,
  BPF_JMP32,
  BPF_K,
  BPF_MOV,
  BPF_NEG,
  BPF_PSEUDO_BTF_ID,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_KFUNC_CALL,
  BPF_PSEUDO_MAP_FD,
  BPF_PSEUDO_MAP_IDX,
  BPF_PSEUDO_MAP_IDX_VALUE,
  BPF_PSEUDO_MAP_VALUE,
  BPF_TO_BE,
  BPF_TO_LE,
  BPF_X,
} from "./opcodes.ts";
import { OPCODE } from "./decode.ts";
import { helperId } from "./helper_ids.ts";
import { ALU_ASSIGN_OPS, JMP_COMPARE_OPS } from "./asm_tables.ts";
import {
  emit,
  emitWithTarget,
  immediate,
  immField,
  isRegister,
  type KernelLine,
  register,
  registerOfWidth,
  type RegOperand,
  startPos,
} from "./asm_kernel_ops.ts";
import { assembleAtomicCall, assembleLoad } from "./asm_kernel_mem.ts";
import type { Token } from "./asm_lexer.ts";

const INT32_MIN = -(2n ** 31n);
const INT32_MAX = 2n ** 31n - 1n;

/** Pseudo `lddw` sources written as `map_fd(N)`, `map_value(N, OFF)`, …: src_reg and whether an offset follows. */
const PSEUDO_LD_IMM64: ReadonlyMap<
  string,
  { src: number; withOffset: boolean }
> = new Map([
  ["map_fd", { src: BPF_PSEUDO_MAP_FD, withOffset: false }],
  ["map_value", { src: BPF_PSEUDO_MAP_VALUE, withOffset: true }],
  ["btf_id", { src: BPF_PSEUDO_BTF_ID, withOffset: false }],
  ["map_idx", { src: BPF_PSEUDO_MAP_IDX, withOffset: false }],
  ["map_idx_value", { src: BPF_PSEUDO_MAP_IDX_VALUE, withOffset: true }],
]);

/** `dst op= src|imm` for every compound assignment; the cursor is at the operator. */
export function assembleAluAssign(line: KernelLine, dst: RegOperand): void {
  const { ts } = line;
  const opToken = ts.next();
  const alu = ALU_ASSIGN_OPS.get(opToken.text);
  if (alu === undefined) throw ts.unexpected(opToken, "an assignment operator");
  const cls = dst.wide ? BPF_ALU64 : BPF_ALU;
  if (isRegister(ts.peek())) {
    const src = registerOfWidth(ts, dst.wide);
    emit(line, cls | alu.op | BPF_X, dst.reg, src.reg, alu.off, 0);
  } else {
    const imm = immediate(ts, dst.wide ? "s32" : "bits32");
    emit(line, cls | alu.op | BPF_K, dst.reg, 0, alu.off, imm);
  }
}

/** Everything of the form `dst = …`; the cursor is after `=`. */
export function assembleAssign(line: KernelLine, dst: RegOperand): void {
  const { ts } = line;
  const cls = dst.wide ? BPF_ALU64 : BPF_ALU;
  const next = ts.peek();
  if (next.text === "-" && isRegister(ts.peek(1))) {
    ts.next();
    const src = registerOfWidth(ts, dst.wide);
    if (src.reg !== dst.reg) {
      throw ts.fail(src.token, "negation works in place: write rN = -rN");
    }
    emit(line, cls | BPF_NEG | BPF_K, dst.reg, 0, 0, 0);
  } else if (next.text === "(") {
    ts.next();
    const cast = ts.next();
    const bits = { s8: 8, s16: 16, s32: 32 }[cast.text];
    if (bits === undefined || (bits === 32 && !dst.wide)) {
      throw ts.unexpected(
        cast,
        dst.wide ? "(s8), (s16) or (s32)" : "(s8) or (s16)",
      );
    }
    ts.expect(")");
    const src = registerOfWidth(ts, dst.wide);
    emit(line, cls | BPF_MOV | BPF_X, dst.reg, src.reg, bits, 0);
  } else if (next.text === "*") {
    assembleLoad(line, dst);
  } else if (isRegister(next)) {
    const src = registerOfWidth(ts, dst.wide);
    emit(line, cls | BPF_MOV | BPF_X, dst.reg, src.reg, 0, 0);
  } else if (next.kind === "id") {
    assembleNamedAssign(line, dst, next);
  } else {
    assembleConstant(line, dst);
  }
}

/** `dst = be16 dst`, `bswap64`, `addr_space_cast(…)`, pseudo constants, atomics. */
function assembleNamedAssign(
  line: KernelLine,
  dst: RegOperand,
  name: Token,
): void {
  const { ts } = line;
  const endian = /^(le|be|bswap)(16|32|64)$/.exec(name.text);
  if (endian !== null) {
    ts.next();
    const operand = register(ts);
    if (operand.reg !== dst.reg) {
      throw ts.fail(
        operand.token,
        "byte swaps work in place: write rN = be16 rN",
      );
    }
    const code = endian[1] === "le"
      ? BPF_ALU | BPF_END | BPF_TO_LE
      : endian[1] === "be"
      ? BPF_ALU | BPF_END | BPF_TO_BE
      : BPF_ALU64 | BPF_END | BPF_TO_LE;
    emit(line, code, dst.reg, 0, 0, Number(endian[2]));
    return;
  }
  if (name.text === "addr_space_cast") {
    ts.next();
    ts.expect("(");
    const src = registerOfWidth(ts, true);
    ts.expect(",");
    const to = immediate(ts, "s32");
    ts.expect(",");
    const from = immediate(ts, "s32");
    ts.expect(")");
    if (to < 0 || to > 0xffff || from < 0 || from > 0xffff) {
      throw ts.fail(name, "address spaces are 16-bit numbers");
    }
    // disasm.c prints imm >> 16 first, then (u16)imm
    emit(
      line,
      BPF_ALU64 | BPF_MOV | BPF_X,
      dst.reg,
      src.reg,
      1,
      (to << 16) | from,
    );
    return;
  }
  const pseudo = PSEUDO_LD_IMM64.get(name.text);
  if (pseudo !== undefined || name.text === "func") {
    assemblePseudoConstant(line, dst, pseudo);
    return;
  }
  if (!assembleAtomicCall(line, dst, name)) {
    throw ts.fail(name, `unknown operand '${name.text}'`);
  }
}

/** `dst = map_fd(N)`, `map_value(N, OFF)`, `btf_id(N)`, `map_idx(N)`, `map_idx_value(N, OFF)`, `func(TARGET)` — all `lddw`s. */
function assemblePseudoConstant(
  line: KernelLine,
  dst: RegOperand,
  pseudo: { src: number; withOffset: boolean } | undefined,
): void {
  const { ts } = line;
  if (!dst.wide) {
    throw ts.fail(dst.token, `a 64-bit constant needs r${dst.reg}`);
  }
  ts.next();
  ts.expect("(");
  if (pseudo === undefined) {
    // func(TARGET): imm is the callee's distance, like a local call
    emitWithTarget(line, {
      code: OPCODE.lddw,
      dst: dst.reg,
      src: BPF_PSEUDO_FUNC,
      off: 0,
      imm: 0,
    }, "imm");
    ts.expect(")");
    emit(line, 0, 0, 0, 0, 0);
  } else {
    const imm = immediate(ts, "s32");
    let imm2 = 0;
    if (pseudo.withOffset) {
      ts.expect(",");
      imm2 = immediate(ts, "bits32");
    }
    ts.expect(")");
    emit(line, OPCODE.lddw, dst.reg, pseudo.src, 0, imm);
    emit(line, 0, 0, 0, 0, imm2);
  }
  ts.accept("ll");
}

/** `dst = N` (mov) or `dst = N ll` (lddw); constants outside int32 become an `lddw` too. */
function assembleConstant(line: KernelLine, dst: RegOperand): void {
  const { ts } = line;
  const { value, token } = ts.signedNumber(
    "a register, a number or an operand",
  );
  const wantsLdImm64 = ts.accept("ll") || line.forceLdImm64;
  if (!dst.wide) {
    if (wantsLdImm64) {
      throw ts.fail(dst.token, `a 64-bit constant needs r${dst.reg}`);
    }
    emit(
      line,
      BPF_ALU | BPF_MOV | BPF_K,
      dst.reg,
      0,
      0,
      immField(ts, token, value, "bits32"),
    );
    return;
  }
  if (!wantsLdImm64 && value >= INT32_MIN && value <= INT32_MAX) {
    emit(line, BPF_ALU64 | BPF_MOV | BPF_K, dst.reg, 0, 0, Number(value));
    return;
  }
  if (value < -(2n ** 63n) || value >= 2n ** 64n) {
    throw ts.fail(token, `constant out of 64-bit range: ${value}`);
  }
  const bits = BigInt.asUintN(64, value);
  emit(line, OPCODE.lddw, dst.reg, 0, 0, Number(BigInt.asIntN(32, bits)));
  emit(line, 0, 0, 0, 0, Number(BigInt.asIntN(32, bits >> 32n)));
}

/** `if dst OP src|imm goto TARGET`; the cursor is after `if`. */
export function assembleConditionalJump(line: KernelLine): void {
  const { ts } = line;
  const dst = register(ts);
  const opToken = ts.next();
  const op = JMP_COMPARE_OPS.get(opToken.text);
  if (op === undefined) throw ts.unexpected(opToken, "a comparison operator");
  const cls = dst.wide ? BPF_JMP : BPF_JMP32;
  let fields: {
    code: number;
    dst: number;
    src: number;
    off: number;
    imm: number;
  };
  if (isRegister(ts.peek())) {
    const src = registerOfWidth(ts, dst.wide);
    fields = {
      code: cls | op | BPF_X,
      dst: dst.reg,
      src: src.reg,
      off: 0,
      imm: 0,
    };
  } else {
    // disasm.c prints the imm of a JMP as 0x%x, so 0xffffffff must read back as -1
    const imm = immediate(ts, "bits32");
    fields = { code: cls | op | BPF_K, dst: dst.reg, src: 0, off: 0, imm };
  }
  ts.expect("goto");
  emitWithTarget(line, fields, "off");
}

/** `goto T`, `gotol T`, `may_goto T`; the cursor is after the keyword. */
export function assembleGoto(line: KernelLine, keyword: string): void {
  const code = keyword === "gotol"
    ? BPF_JMP32 | BPF_JA
    : keyword === "may_goto"
    ? BPF_JMP | BPF_JCOND
    : BPF_JMP | BPF_JA;
  const fields = { code, dst: 0, src: 0, off: 0, imm: 0 };
  emitWithTarget(line, fields, keyword === "gotol" ? "imm" : "off");
}

/**
 * `call N`, `call bpf_name`, `call bpf_name#N`, `call unknown#N`,
 * `call kfunc_name#ID`, `call kernel-function#ID`, `call pc+N` / `call +N`
 * (local), `call LABEL` (local), `call rN` / `callx rN` (0x8d); the cursor is
 * after the keyword.
 */
export function assembleCall(line: KernelLine, keyword: string): void {
  const { ts } = line;
  const first = ts.peek();
  if (keyword === "callx" || isRegister(first)) {
    const target = registerOfWidth(ts, true);
    emit(line, BPF_JMP | BPF_X | OPCODE.call, target.reg, 0, 0, 0);
    return;
  }
  if (first.kind === "num") {
    emit(line, OPCODE.call, 0, 0, 0, immediate(ts, "s32"));
    return;
  }
  if (
    first.text === "+" || first.text === "-" ||
    (first.text === "pc" && /^[+-]$/.test(ts.peek(1).text))
  ) {
    emitWithTarget(line, {
      code: OPCODE.call,
      dst: 0,
      src: BPF_PSEUDO_CALL,
      off: 0,
      imm: 0,
    }, "imm");
    return;
  }
  const name = ts.next();
  if (name.kind !== "id") {
    throw ts.unexpected(name, "a helper id, a name or pc+N");
  }
  let text = name.text;
  if (
    text === "kernel" && ts.peek().text === "-" &&
    ts.peek(1).text === "function"
  ) {
    ts.next();
    ts.next();
    text = "kernel-function";
  }
  if (ts.accept("#")) {
    const id = immediate(ts, "s32");
    const known = helperId(text);
    if (text === "unknown" || known === id) {
      emit(line, OPCODE.call, 0, 0, 0, id);
    } else if (known !== undefined) {
      throw ts.fail(name, `${text} is helper ${known}, not ${id}`);
    } else {
      emit(line, OPCODE.call, 0, BPF_PSEUDO_KFUNC_CALL, 0, id);
    }
    return;
  }
  const helper = helperId(text);
  const kfunc = helper === undefined ? line.resolveCall?.(text) : undefined;
  if (helper !== undefined) {
    emit(line, OPCODE.call, 0, 0, 0, helper);
  } else if (kfunc !== undefined) {
    emit(line, OPCODE.call, 0, BPF_PSEUDO_KFUNC_CALL, 0, kfunc);
  } else {
    line.builder.emitTargeted(
      { code: OPCODE.call, dst: 0, src: BPF_PSEUDO_CALL, off: 0, imm: 0 },
      "imm",
      text,
      startPos(line),
      ts.pos(name),
    );
  }
}
