/**
 * Turns typed instructions into the interpreter's dense form: one row of
 * {@link STRIDE} int32 words per slot, so the hot loop reads numbers from a
 * single `Int32Array` and dispatches with a `switch` over small integers.
 *
 * Row layout: `[op, d, s, off, immLo, immHi, target, aux]` where `d`/`s` are
 * register numbers times two (the index of the low half in the register
 * file), `immHi` is the sign extension of imm (or the second `lddw` half),
 * and `target` is the absolute slot a jump or local call goes to.
 *
 * Rows after the program are *trap* rows: one where execution falls off the
 * end, and one per jump whose target is out of range, so the hot loop never
 * bounds-checks `pc`; a trap raises an {@link ExecError} naming the
 * instruction that got there.
 * @module
 */
import type { Insn, LdImm64Insn } from "../isa/insn.ts";
import {
  BPF_ADD,
  BPF_AND,
  BPF_CMPXCHG,
  BPF_FETCH,
  BPF_OR,
  BPF_XCHG,
  BPF_XOR,
} from "../isa/opcodes.ts";

/** int32 words per instruction row. */
export const STRIDE = 8;

/** ALU operations in handler order: ALU handler id = 4 × index + form. */
export const ALU_ORDER: readonly string[] = [
  "add",
  "sub",
  "mul",
  "div",
  "sdiv",
  "mod",
  "smod",
  "or",
  "and",
  "lsh",
  "rsh",
  "arsh",
  "xor",
  "mov",
]; // deno-fmt-ignore

/** Conditional jumps in handler order: id = {@link OP}.JMP_BASE + 4 × index + form. */
export const JMP_ORDER: readonly string[] = [
  "jeq", "jne", "jgt", "jge", "jlt", "jle", "jset",
  "jsgt", "jsge", "jslt", "jsle",
]; // deno-fmt-ignore

/**
 * Handler ids. ALU ids are `4 × ALU_ORDER index + form` and conditional
 * jumps `JMP_BASE + 4 × JMP_ORDER index + form`, with form 0 = 64-bit imm,
 * 1 = 64-bit reg, 2 = 32-bit imm, 3 = 32-bit reg. `interp.ts` switches on
 * the literal values (V8 builds a jump table only for literal cases).
 */
export const OP = {
  NEG64: 56,
  NEG32: 57,
  /** aux = 32 - width: `(x << aux) >> aux` sign-extends. */
  MOVSX64: 58,
  MOVSX32: 59,
  LE16: 60,
  LE32: 61,
  LE64: 62,
  BE16: 63,
  BE32: 64,
  BE64: 65,
  LDDW: 66,
  /** Loads and stores: aux = access size. */
  LDXB: 67,
  LDXH: 68,
  LDXW: 69,
  LDXDW: 70,
  LDXSB: 71,
  LDXSH: 72,
  LDXSW: 73,
  STB: 74,
  STH: 75,
  STW: 76,
  STDW: 77,
  STXB: 78,
  STXH: 79,
  STXW: 80,
  STXDW: 81,
  /** aux = the atomic operation (imm of the instruction). */
  ATOMIC32: 82,
  ATOMIC64: 83,
  JA: 84,
  JMP_BASE: 85,
  MAY_GOTO: 129,
  CALL_HELPER: 130,
  CALLX: 131,
  CALL_KFUNC: 132,
  CALL_LOCAL: 133,
  EXIT: 134,
  /** aux = access size. */
  LD_ABS: 135,
  LD_IND: 136,
  /** immLo = slot index to report, aux = index into `traps`. */
  TRAP: 137,
} as const;

/** A program in the interpreter's form; compile once, run many times. */
export interface CompiledProgram {
  /** Rows, {@link STRIDE} words each: the program's slots, then trap rows. */
  readonly code: Int32Array;
  /** Number of program slots (trap rows start here). */
  readonly length: number;
  /** The typed instructions compiled. */
  readonly insns: readonly Insn[];
  /** Messages of trap rows. */
  readonly traps: readonly string[];
}

/** Options of {@link compileProgram}. */
export interface CompileOptions {
  /**
   * Value of each `lddw`. The default is the raw 64-bit immediate; the
   * kernel passes a resolver that turns pseudo values (map fds, BTF ids,
   * map values) into addresses, as `resolve_pseudo_ldimm64()` does.
   */
  readonly ldImm64?: (insn: LdImm64Insn, index: number) => bigint;
}

const ATOMIC_RMW = new Set([
  BPF_ADD,
  BPF_OR,
  BPF_AND,
  BPF_XOR,
  BPF_ADD | BPF_FETCH,
  BPF_OR | BPF_FETCH,
  BPF_AND | BPF_FETCH,
  BPF_XOR | BPF_FETCH,
  BPF_XCHG,
  BPF_CMPXCHG,
]); // deno-fmt-ignore

const LDX_OPS: Record<number, number> = { 1: OP.LDXB, 2: OP.LDXH, 4: OP.LDXW, 8: OP.LDXDW };
const LDXS_OPS: Record<number, number> = {
  1: OP.LDXSB,
  2: OP.LDXSH,
  4: OP.LDXSW,
};
const ST_OPS: Record<number, number> = {
  1: OP.STB,
  2: OP.STH,
  4: OP.STW,
  8: OP.STDW,
};
const STX_OPS: Record<number, number> = {
  1: OP.STXB,
  2: OP.STXH,
  4: OP.STXW,
  8: OP.STXDW,
};

/** Compiles typed instructions (indexed by slot) into rows. */
export function compileProgram(
  insns: readonly Insn[],
  opts: CompileOptions = {},
): CompiledProgram {
  const n = insns.length;
  const rows: number[][] = [];
  const traps: string[] = [];
  const trapRows: number[][] = [];
  const trap = (reportAt: number, message: string): number[] => {
    traps.push(message);
    return [OP.TRAP, 0, 0, 0, reportAt, 0, 0, traps.length - 1];
  };
  /** Where a jump from `i` to `target` lands: the slot or a trap row. */
  const jumpTarget = (i: number, target: number): number => {
    if (target >= 0 && target < n) return target;
    trapRows.push(trap(i, `jump out of range from insn ${i} to ${target}`));
    return n + trapRows.length; // row n is the fall-off trap
  };
  for (let i = 0; i < n; i++) {
    rows.push(compileOne(insns[i], i, opts, jumpTarget, trap));
  }
  // Row n: reached only by falling through the last slot.
  const last = n >= 2 && insns[n - 1].kind === "ld_imm64_hi" ? n - 2 : n - 1;
  const fallOff = trap(last, "fell off the end of the program");
  const code = new Int32Array((n + 1 + trapRows.length) * STRIDE);
  [...rows, fallOff, ...trapRows].forEach((row, r) =>
    code.set(row, r * STRIDE)
  );
  return { code, length: n, insns, traps };
}

function compileOne(
  insn: Insn,
  i: number,
  opts: CompileOptions,
  jumpTarget: (i: number, target: number) => number,
  trap: (reportAt: number, message: string) => number[],
): number[] {
  if (insn.dst > 10 || insn.src > 10) {
    const bad = insn.dst > 10 ? insn.dst : insn.src;
    if (insn.kind !== "ld_imm64_hi") return trap(i, `R${bad} is invalid`);
  }
  const d = insn.dst * 2, s = insn.src * 2, imm = insn.imm;
  const row = (
    op: number,
    immLo = imm,
    immHi = imm >> 31,
    target = 0,
    aux = 0,
  ) => [
    op,
    d,
    s,
    insn.off,
    immLo,
    immHi,
    target,
    aux,
  ];
  switch (insn.kind) {
    case "alu": {
      if (insn.op === "addr_space_cast") {
        return trap(
          i,
          "addr_space_cast needs an arena, which the interpreter lacks",
        );
      }
      if (insn.op === "neg") return row(insn.alu64 ? OP.NEG64 : OP.NEG32);
      if (insn.op === "movsx") {
        return row(
          insn.alu64 ? OP.MOVSX64 : OP.MOVSX32,
          imm,
          0,
          0,
          32 - insn.extendBits,
        );
      }
      const form = (insn.alu64 ? 0 : 2) + (insn.source === "reg" ? 1 : 0);
      let lo = imm;
      // Immediate shift counts are masked here once (RFC 9669: & 63 / & 31).
      if (
        insn.source === "imm" &&
        (insn.op === "lsh" || insn.op === "rsh" || insn.op === "arsh")
      ) {
        lo = imm & (insn.alu64 ? 63 : 31);
      }
      return row(4 * ALU_ORDER.indexOf(insn.op) + form, lo);
    }
    case "endian": {
      const base = insn.order === "le" ? OP.LE16 : OP.BE16; // swap == be on a LE host
      return row(base + (insn.bits === 16 ? 0 : insn.bits === 32 ? 1 : 2));
    }
    case "ld_imm64": {
      const value = BigInt.asUintN(64, opts.ldImm64?.(insn, i) ?? insn.imm64);
      return row(
        OP.LDDW,
        Number(value & 0xffffffffn) | 0,
        Number(value >> 32n) | 0,
      );
    }
    case "ld_imm64_hi":
      return trap(i, "jump into the middle of ldimm64 insn");
    case "ldx":
      return row(
        (insn.signExtend ? LDXS_OPS : LDX_OPS)[insn.size],
        imm,
        0,
        0,
        insn.size,
      );
    case "st":
      return row(ST_OPS[insn.size], imm, imm >> 31, 0, insn.size);
    case "stx":
      return row(STX_OPS[insn.size], imm, 0, 0, insn.size);
    case "atomic":
      // load-acquire / store-release are plain loads / stores in a
      // sequentially consistent single-threaded step.
      if (insn.op === "load_acq") {
        return row(LDX_OPS[insn.size], imm, 0, 0, insn.size);
      }
      if (insn.op === "store_rel") {
        return row(STX_OPS[insn.size], imm, 0, 0, insn.size);
      }
      if (!ATOMIC_RMW.has(imm)) {
        return trap(i, `invalid atomic operation ${imm}`);
      }
      return row(insn.size === 8 ? OP.ATOMIC64 : OP.ATOMIC32, imm, 0, 0, imm);
    case "ja":
      return row(OP.JA, imm, 0, jumpTarget(i, insn.target));
    case "jcond": {
      const form = (insn.jmp32 ? 2 : 0) + (insn.source === "reg" ? 1 : 0);
      const op = OP.JMP_BASE + 4 * JMP_ORDER.indexOf(insn.op) + form;
      return row(op, imm, imm >> 31, jumpTarget(i, insn.target));
    }
    case "may_goto":
      return row(OP.MAY_GOTO, imm, 0, jumpTarget(i, insn.target));
    case "call":
      switch (insn.callee) {
        case "helper":
          return row(OP.CALL_HELPER);
        case "kfunc":
          return row(OP.CALL_KFUNC);
        case "reg":
          return row(OP.CALLX);
        default:
          return row(OP.CALL_LOCAL, imm, 0, jumpTarget(i, insn.target));
      }
    case "exit":
      return row(OP.EXIT);
    case "ld_abs":
    case "ld_ind":
      return row(
        insn.kind === "ld_abs" ? OP.LD_ABS : OP.LD_IND,
        imm,
        0,
        0,
        insn.size,
      );
  }
}
