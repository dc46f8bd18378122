/**
 * The kernel/LLVM assembler syntax, line by line. Besides bare statements
 * (`r0 = 1`) it reads the prefixes that verifier logs and `llvm-objdump -d`
 * put in front of them, so their output assembles back:
 *
 * - `12: (b7) r0 = 1` — slot index (ignored) and opcode column (checked
 *   against the encoding; `(18)` marks a constant load as `lddw`);
 * - `12:\tb7 00 00 00 01 00 00 00\tr0 = 0x1` — objdump's bytes (checked
 *   after labels are resolved; `<unknown>` takes the bytes as they are);
 * - `0000000000000000 <prog>:` symbol lines and `name:` labels;
 * - comments after `;` (the log's register states), `//`, or a `#` that
 *   starts a word (`call bpf_foo#1` keeps its `#`); assembler directives
 *   (`.text`, `.globl prog`) are skipped.
 * @module
 */
import { encodeProgram, OPCODE, rawInsn, readRawInsn } from "./decode.ts";
import type { SourcePos } from "./asm_error.ts";
import { type BuiltProgram, ProgramBuilder } from "./asm_builder.ts";
import { TokenStream } from "./asm_lexer.ts";
import { splitLines } from "./asm_tables.ts";
import { isRegister, type KernelLine, register } from "./asm_kernel_ops.ts";
import {
  assembleLock,
  assembleStore,
  assembleStoreRelease,
} from "./asm_kernel_mem.ts";
import {
  assembleAluAssign,
  assembleAssign,
  assembleCall,
  assembleConditionalJump,
  assembleGoto,
} from "./asm_kernel_stmt.ts";

/** Options of the kernel-syntax assembler. */
export interface KernelAsmOptions {
  /** Maps a kfunc name to its BTF id, for `call name` without `#id`. */
  readonly resolveCall?: (name: string) => number | undefined;
}

/** Bytes printed by objdump for a line, to compare with what we encode. */
interface ExpectedBytes {
  readonly firstSlot: number;
  readonly bytes: Uint8Array;
  readonly pos: SourcePos;
}

const HEX_BYTE = "[0-9a-fA-F]{2}";
const OBJDUMP_BYTES = new RegExp(
  `^(${HEX_BYTE}(?: ${HEX_BYTE}){7}(?: ${HEX_BYTE}(?: ${HEX_BYTE}){7})?)(?:\\s+|$)`,
);

/** Cuts comments: `;…`, `//…`, and `#…` when `#` starts a word. */
function stripComment(text: string): string {
  let end = text.length;
  const semicolon = text.indexOf(";");
  if (semicolon >= 0) end = semicolon;
  const slashes = text.indexOf("//");
  if (slashes >= 0 && slashes < end) end = slashes;
  const hash = /(^|\s)#/.exec(text);
  if (hash !== null && hash.index < end) end = hash.index;
  const code = text.slice(0, end);
  // objdump appends the target symbol to jumps and calls: `goto +0x26 <prog+0x188>`
  return /\b(goto|gotol|may_goto|call)\b/.test(code)
    ? code.replace(/\s<[^<>\s]*>\s*$/, "")
    : code;
}

/** Assembles kernel/LLVM-syntax `text`; errors name `fileName`. */
export function assembleKernel(
  text: string,
  fileName: string,
  options: KernelAsmOptions = {},
): BuiltProgram {
  const builder = new ProgramBuilder(fileName);
  const expected: ExpectedBytes[] = [];
  for (const { line, text: full } of splitLines(text)) {
    const source = stripComment(full);
    const trimmed = source.trim();
    if (
      trimmed === "" || trimmed.startsWith("Disassembly of section") ||
      /:\s+file format /.test(trimmed) || /^\.[A-Za-z]\w*(\s|$)/.test(trimmed)
    ) {
      continue;
    }
    const symbol = /^\s*[0-9a-fA-F]+\s+<([^>]+)>:\s*$/.exec(source);
    if (symbol !== null) {
      builder.defineLabel(symbol[1], {
        line,
        column: source.indexOf("<") + 2,
        token: symbol[1],
      });
      continue;
    }
    assembleLine(builder, expected, line, source, options);
  }
  const program = builder.build();
  const encoded = encodeProgram(program.raws);
  for (const { firstSlot, bytes, pos } of expected) {
    const actual = encoded.subarray(
      firstSlot * 8,
      firstSlot * 8 + bytes.length,
    );
    if (
      actual.length !== bytes.length || actual.some((b, i) => b !== bytes[i])
    ) {
      throw builder.error(
        pos,
        `instruction encodes as ${hex(actual)}, not the listed ${hex(bytes)}`,
      );
    }
  }
  return program;
}

function hex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join(" ");
}

/** One line after comments: prefixes, an optional label, then one statement. */
function assembleLine(
  builder: ProgramBuilder,
  expected: ExpectedBytes[],
  line: number,
  source: string,
  options: KernelAsmOptions,
): void {
  let at = source.length - source.trimStart().length;
  const skipSpaces = () => {
    while (at < source.length && /\s/.test(source[at])) at++;
  };
  const rest = () => source.slice(at);
  let opcodeColumn: { code: number; pos: SourcePos } | undefined;
  let listedBytes: { bytes: Uint8Array; pos: SourcePos } | undefined;

  const index = /^[0-9]+:/.exec(rest());
  if (index !== null) {
    at += index[0].length;
    skipSpaces();
    const column = /^\(([0-9a-fA-F]{2})\)/.exec(rest());
    const bytes = OBJDUMP_BYTES.exec(rest());
    if (column !== null) {
      opcodeColumn = {
        code: parseInt(column[1], 16),
        pos: { line, column: at + 1, token: column[0] },
      };
      at += column[0].length;
    } else if (bytes !== null) {
      const values = bytes[1].split(" ").map((b) => parseInt(b, 16));
      listedBytes = {
        bytes: Uint8Array.from(values),
        pos: { line, column: at + 1, token: bytes[1] },
      };
      at += bytes[0].length;
    }
    skipSpaces();
  }
  const label = /^([A-Za-z_.$][\w.$]*):/.exec(rest());
  if (label !== null) {
    builder.defineLabel(label[1], { line, column: at + 1, token: label[1] });
    at += label[0].length;
    skipSpaces();
  }
  if (rest().trim() === "") return;

  const firstSlot = builder.slotCount;
  if (rest().trim() === "<unknown>" && listedBytes !== undefined) {
    // objdump could not print it; its bytes are the instruction
    const bytes = listedBytes.bytes;
    for (let slot = 0; slot < bytes.length / 8; slot++) {
      builder.emit(readRawInsn(bytes, slot), listedBytes.pos);
    }
    return;
  }
  const ts = new TokenStream(builder.fileName, line, source, at);
  const ctx: KernelLine = {
    ts,
    builder,
    start: ts.peek(),
    forceLdImm64: opcodeColumn?.code === 0x18,
    resolveCall: options.resolveCall,
  };
  assembleStatement(ctx);
  ts.expectEnd();
  if (opcodeColumn !== undefined) {
    const slot = builder.slotAt(firstSlot);
    if (slot.code !== opcodeColumn.code) {
      const listed = opcodeColumn.code.toString(16).padStart(2, "0");
      const actual = slot.code.toString(16).padStart(2, "0");
      throw builder.error(
        opcodeColumn.pos,
        `opcode column (${listed}) does not match the instruction's opcode ${actual}`,
      );
    }
  }
  if (listedBytes !== undefined) expected.push({ firstSlot, ...listedBytes });
}

/** Dispatches on the first token of a statement. */
function assembleStatement(ctx: KernelLine): void {
  const { ts } = ctx;
  const first = ts.peek();
  if (isRegister(first)) {
    const dst = register(ts);
    if (ts.accept("=")) assembleAssign(ctx, dst);
    else assembleAluAssign(ctx, dst);
    return;
  }
  switch (first.text) {
    case "if":
      ts.next();
      return assembleConditionalJump(ctx);
    case "goto":
    case "gotol":
    case "may_goto":
      ts.next();
      return assembleGoto(ctx, first.text);
    case "call":
    case "callx":
      ts.next();
      return assembleCall(ctx, first.text);
    case "exit":
      ts.next();
      ctx.builder.emit(rawInsn(OPCODE.exit, 0, 0, 0, 0), ts.pos(first));
      return;
    case "lock":
      ts.next();
      return assembleLock(ctx);
    case "*":
      return assembleStore(ctx);
    case "store_release":
      return assembleStoreRelease(ctx);
    default:
      throw ts.fail(first, `unknown instruction '${first.text}'`);
  }
}
