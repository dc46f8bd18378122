/**
 * The disassembler: instructions printed exactly as the kernel verifier log
 * prints them (`print_bpf_insn()` in kernel/bpf/disasm.c, with do_check()'s
 * `%d: ` index in front), e.g. `3: (7a) *(u64 *)(r10 -8) = 0`.
 *
 * Formats follow disasm.c to the character: ALU immediates in decimal, jump
 * immediates as `0x%x` of the 32-bit field, offsets as `%+d`, 64-bit
 * constants as `0x%llx`. One exception: the kernel has no format for
 * bpf_conformance's `callx` (0x8d, refused before anything is printed), so it
 * is shown as LLVM shows it, `callx r2`.
 * @module
 */
import type { CallInsn, Insn, LdImm64Insn } from "./insn.ts";
import {
  BPF_ALU,
  BPF_DW,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_KFUNC_CALL,
  BPF_PSEUDO_MAP_FD,
  BPF_PSEUDO_MAP_VALUE,
  BPF_TO_BE,
  BPF_X,
  bpfClass,
  bpfOp,
  bpfSize,
  bpfSrc,
} from "./opcodes.ts";
import { helperName } from "./helper_ids.ts";

/** Options of `formatInsn` / `disassemble`, mirroring `struct bpf_insn_cbs`. */
export interface DisasmOptions {
  /** Print the `N: (xx) ` index and opcode prefix (default true). */
  readonly prefix?: boolean;
  /**
   * `cb_call`: the name of a call the helper table does not name (kfuncs,
   * unknown helpers, local calls). Returning undefined falls back to
   * disasm.c's defaults: `pc%+d` for local calls, `kernel-function` for
   * kfuncs, `unknown` otherwise.
   */
  readonly callName?: (insn: CallInsn) => string | undefined;
  /** `cb_imm`: the text for a 64-bit constant instead of `0x%llx`. */
  readonly immName?: (insn: LdImm64Insn) => string | undefined;
  /** When false, map pointers (`src` 1 and 2) print as 0x0, as for unprivileged loads (default true). */
  readonly allowPtrLeaks?: boolean;
}

/** `bpf_alu_string`, indexed by `BPF_OP(code) >> 4`. */
const ALU_STRING: readonly string[] = [
  "+=",
  "-=",
  "*=",
  "/=",
  "|=",
  "&=",
  "<<=",
  ">>=",
  "neg",
  "%=",
  "^=",
  "=",
  "s>>=",
  "endian",
];

/** `bpf_jmp_string`, indexed by `BPF_OP(code) >> 4` (gaps print as `(null)`, like printf). */
const JMP_STRING: readonly string[] = [
  "jmp",
  "==",
  ">",
  ">=",
  "&",
  "!=",
  "s>",
  "s>=",
  "call",
  "exit",
  "<",
  "<=",
  "s<",
  "s<=",
];

/** `bpf_ldst_string` / `bpf_ldsx_string` by access size in bytes. */
const LDST_STRING: Readonly<Record<number, string>> = {
  1: "u8",
  2: "u16",
  4: "u32",
  8: "u64",
};
const LDSX_STRING: Readonly<Record<number, string>> = {
  1: "s8",
  2: "s16",
  4: "s32",
};

/** `bpf_atomic_alu_string`. */
const ATOMIC_ALU_STRING: Readonly<Record<string, string>> = {
  add: "add",
  or: "or",
  and: "and",
  xor: "xor",
};

/** `%+d`. */
function signed(value: number): string {
  return value < 0 ? `${value}` : `+${value}`;
}

/** `0x%x` of a 32-bit field. */
function hex32(value: number): string {
  return `0x${(value >>> 0).toString(16)}`;
}

/** `%02x` of the opcode. */
function hex8(code: number): string {
  return code.toString(16).padStart(2, "0");
}

/** Formats one instruction; `index` is its slot. See `DisasmOptions` for the prefix. */
export function formatInsn(
  insn: Insn,
  index: number,
  options: DisasmOptions = {},
): string {
  const body = formatBody(insn, options);
  if (options.prefix === false) return body;
  // disasm.c prints BUG_… lines without the "(xx) " column
  return body.startsWith("BUG_")
    ? `${index}: ${body}`
    : `${index}: (${hex8(insn.code)}) ${body}`;
}

/**
 * Disassembles a slot-indexed program, one line per instruction; the second
 * slot of an `lddw` is skipped, as in the verifier log.
 */
export function disassemble(
  insns: readonly Insn[],
  options: DisasmOptions = {},
): string[] {
  const lines: string[] = [];
  insns.forEach((insn, index) => {
    if (insn.kind !== "ld_imm64_hi") {
      lines.push(formatInsn(insn, index, options));
    }
  });
  return lines;
}

/** The text after the `(xx) ` column. */
function formatBody(insn: Insn, options: DisasmOptions): string {
  switch (insn.kind) {
    case "alu":
    case "endian":
      return formatAlu(insn);
    case "ldx": {
      const type = insn.signExtend
        ? LDSX_STRING[insn.size] ?? "(null)"
        : LDST_STRING[insn.size];
      return `r${insn.dst} = *(${type} *)(r${insn.src} ${signed(insn.off)})`;
    }
    case "st":
      return `*(${LDST_STRING[insn.size]} *)(r${insn.dst} ${
        signed(insn.off)
      }) = ${insn.imm}`;
    case "stx":
      return `*(${LDST_STRING[insn.size]} *)(r${insn.dst} ${
        signed(insn.off)
      }) = r${insn.src}`;
    case "atomic":
      return formatAtomic(insn);
    case "ld_abs":
      return `r0 = *(${LDST_STRING[insn.size]} *)skb[${insn.imm}]`;
    case "ld_ind":
      return `r0 = *(${
        LDST_STRING[insn.size]
      } *)skb[r${insn.src} + ${insn.imm}]`;
    case "ld_imm64": {
      const isPtr = insn.src === BPF_PSEUDO_MAP_FD ||
        insn.src === BPF_PSEUDO_MAP_VALUE;
      const value = isPtr && options.allowPtrLeaks === false ? 0n : insn.imm64;
      return `r${insn.dst} = ${
        options.immName?.(insn) ?? `0x${value.toString(16)}`
      }`;
    }
    case "ld_imm64_hi":
      // a lone second half: class LD, mode IMM, size W
      return `BUG_ld_${hex8(insn.code)}`;
    case "call":
      return formatCall(insn, options);
    case "ja":
      return insn.long
        ? `gotol pc${signed(insn.imm)}`
        : `goto pc${signed(insn.off)}`;
    case "may_goto":
      return insn.src === 0
        ? `may_goto pc${signed(insn.off)}`
        : `if r${insn.dst} (null) ${hex32(insn.imm)} goto pc${
          signed(insn.off)
        }`;
    case "exit":
      return "exit";
    case "jcond": {
      const reg = insn.jmp32 ? "w" : "r";
      const op = JMP_STRING[bpfOp(insn.code) >> 4] ?? "(null)";
      const rhs = bpfSrc(insn.code) === BPF_X
        ? `${reg}${insn.src}`
        : hex32(insn.imm);
      return `if ${reg}${insn.dst} ${op} ${rhs} goto pc${signed(insn.off)}`;
    }
  }
}

function formatAlu(insn: Insn & { kind: "alu" | "endian" }): string {
  const alu32 = bpfClass(insn.code) === BPF_ALU;
  const reg = alu32 ? "w" : "r";
  if (insn.kind === "endian") {
    if (!alu32) return `r${insn.dst} = bswap${insn.imm} r${insn.dst}`;
    const order = bpfSrc(insn.code) === BPF_TO_BE ? "be" : "le";
    return `r${insn.dst} = ${order}${insn.imm} r${insn.dst}`;
  }
  if (insn.op === "neg") return `${reg}${insn.dst} = -${reg}${insn.dst}`;
  if (insn.op === "addr_space_cast") {
    return `r${insn.dst} = addr_space_cast(r${insn.src}, ${insn.imm >>> 16}, ${
      insn.imm & 0xffff
    })`;
  }
  const opIndex = bpfOp(insn.code) >> 4;
  const op = insn.op === "sdiv"
    ? "s/="
    : insn.op === "smod"
    ? "s%="
    : ALU_STRING[opIndex];
  if (insn.source === "reg") {
    const cast = insn.op === "movsx" ? `(s${insn.extendBits})` : "";
    return `${reg}${insn.dst} ${op} ${cast}${reg}${insn.src}`;
  }
  return `${reg}${insn.dst} ${op} ${insn.imm}`;
}

function formatAtomic(insn: Insn & { kind: "atomic" }): string {
  const type = LDST_STRING[insn.size];
  const where = `(${type} *)(r${insn.dst} ${signed(insn.off)})`;
  const width = bpfSize(insn.code) === BPF_DW ? "64" : "";
  switch (insn.op) {
    case "load_acq":
      return `r${insn.dst} = load_acquire((${type} *)(r${insn.src} ${
        signed(insn.off)
      }))`;
    case "store_rel":
      return `store_release(${where}, r${insn.src})`;
    case "xchg":
      return `r${insn.src} = atomic${width}_xchg(${where}, r${insn.src})`;
    case "cmpxchg":
      return `r0 = atomic${width}_cmpxchg(${where}, r0, r${insn.src})`;
    default: {
      if (insn.fetch) {
        return `r${insn.src} = atomic${width}_fetch_${
          ATOMIC_ALU_STRING[insn.op]
        }(${where}, r${insn.src})`;
      }
      const op = ALU_STRING[insn.imm >> 4];
      return `lock *(${type} *)(r${insn.dst} ${
        signed(insn.off)
      }) ${op} r${insn.src}`;
    }
  }
}

/** `call name#id`, `call pc+N`, or the `callx rN` extension; mirrors __func_get_name(). */
function formatCall(insn: CallInsn, options: DisasmOptions): string {
  if (insn.callee === "reg") return `callx r${insn.dst}`;
  const helper = insn.src === 0 ? helperName(insn.imm) : undefined;
  let name = helper ?? options.callName?.(insn);
  if (name === undefined) {
    name = insn.src === BPF_PSEUDO_CALL
      ? signed(insn.imm)
      : insn.src === BPF_PSEUDO_KFUNC_CALL
      ? "kernel-function"
      : "unknown";
  }
  return insn.src === BPF_PSEUDO_CALL
    ? `call pc${name}`
    : `call ${name}#${insn.imm}`;
}
