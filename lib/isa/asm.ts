/**
 * The BPF assembler. It reads two dialects and tells them apart per input:
 *
 * - **conformance** (uBPF / bpf_conformance): `mov %r0, 1`, `lddw %r1, 0x…`,
 *   `jne %r0, %r1, exit`, `lock fetch add [%r10-8], %r1` — see
 *   `shared/conformance/README.md`;
 * - **kernel** (verifier log and LLVM): `r0 = 1`, `w0 = w1`,
 *   `if r1 > r2 goto +3`, `*(u32 *)(r10 -8) = r1`, `call bpf_map_lookup_elem#1`,
 *   including the log's `12: (b7) ` prefix, so `disassemble()`'s output
 *   assembles back to the same bytes.
 *
 * An input is in the conformance dialect when a line uses a `%r` register or
 * starts with one of its mnemonics (`mov`, `jne`, `lddw`, …); otherwise it is
 * kernel syntax.
 *
 * @example
 * ```ts
 * const insns = assemble("r0 = 1\nexit");
 * const same = assemble("mov %r0, 1\nexit");
 * ```
 * @module
 */
import type { Insn, RawInsn } from "./insn.ts";
import { IsaError } from "./insn.ts";
import { decodeRaw } from "./decode.ts";
import { AsmError } from "./asm_error.ts";
import type { BuiltProgram } from "./asm_builder.ts";
import { assembleUbpf } from "./asm_ubpf.ts";
import { assembleKernel } from "./asm_kernel.ts";
import { splitLines } from "./asm_tables.ts";

export { AsmError } from "./asm_error.ts";
export type { SourcePos } from "./asm_error.ts";

/** The two accepted syntaxes. */
export type AsmDialect = "conformance" | "kernel";

/** Options of `assemble` / `assembleRaw`. */
export interface AssembleOptions {
  /** Name of the input in error messages (default `<input>`). */
  readonly name?: string;
  /** Forces a dialect instead of detecting it. */
  readonly dialect?: AsmDialect;
  /** Kernel syntax: maps a kfunc name to its BTF id, for `call name` without `#id`. */
  readonly resolveCall?: (name: string) => number | undefined;
}

/** Mnemonics that exist only in the conformance dialect (`exit` and `call` are shared). */
const CONFORMANCE_MNEMONIC =
  /^(ja|ja32|lddw|neg(32)?|(s?div|s?mod|add|sub|mul|or|and|lsh|rsh|xor|mov|arsh)(32)?|movsx\d+|(le|be|bswap|swap)(16|32|64)|ldxs?(b|h|w|dw)|stx?(b|h|w|dw)|j[a-z]+(32)?)$/;

/** Which dialect `text` is written in (see the module doc for the rule). */
export function detectDialect(text: string): AsmDialect {
  for (const { text: line } of splitLines(text)) {
    const code = line.replace(/(^|\s)#.*$/, "").replace(/;.*$/, "");
    if (code.includes("%r")) return "conformance";
    const words = code.trim().split(/\s+/);
    const at = words[0]?.endsWith(":") ? 1 : 0;
    const first = words[at];
    if (first === undefined || first === "") continue;
    // kernel syntax always writes `lock *(…)` and has no `call local|helper|runtime N`
    if (first === "lock" && !(words[at + 1] ?? "").startsWith("*")) {
      return "conformance";
    }
    if (
      first === "call" && /^(local|helper|runtime)$/.test(words[at + 1] ?? "")
    ) {
      return "conformance";
    }
    if (CONFORMANCE_MNEMONIC.test(first) && first !== "if") {
      return "conformance";
    }
  }
  return "kernel";
}

function build(text: string, options: AssembleOptions): BuiltProgram {
  const name = options.name ?? "<input>";
  const dialect = options.dialect ?? detectDialect(text);
  return dialect === "conformance"
    ? assembleUbpf(text, name)
    : assembleKernel(text, name, { resolveCall: options.resolveCall });
}

/**
 * Assembles `text` into raw instruction slots (an `lddw` fills two). Throws
 * `AsmError` naming the input, line, column and token.
 */
export function assembleRaw(
  text: string,
  options: AssembleOptions = {},
): RawInsn[] {
  return build(text, options).raws;
}

/**
 * Assembles `text` into a typed, slot-indexed program (`decodeRaw`). Throws
 * `AsmError`, also when the decoder refuses an encoding, pointing at the line
 * that produced the slot.
 */
export function assemble(text: string, options: AssembleOptions = {}): Insn[] {
  const program = build(text, options);
  try {
    return decodeRaw(program.raws);
  } catch (error) {
    if (!(error instanceof IsaError)) throw error;
    const pos = program.positions[error.insnIndex] ??
      { line: 1, column: 1, token: "" };
    throw new AsmError(options.name ?? "<input>", pos, error.reason);
  }
}
