/**
 * Decoding raw instruction slots into typed instructions, and encoding back.
 * Opcodes outside the kernel's instruction table are refused with the
 * kernel's wording (`unknown opcode 8d`); field values that the table allows
 * but the verifier forbids are checked separately (`validate.ts`).
 * @module
 */
import {
  BPF_ABS,
  BPF_ADD,
  BPF_ALU,
  BPF_ALU64,
  BPF_AND,
  BPF_ARSH,
  BPF_ATOMIC,
  BPF_CALL,
  BPF_CMPXCHG,
  BPF_DIV,
  BPF_DW,
  BPF_END,
  BPF_EXIT,
  BPF_FETCH,
  BPF_IMM,
  BPF_IND,
  BPF_JA,
  BPF_JCOND,
  BPF_JMP,
  BPF_JMP32,
  BPF_K,
  BPF_LD,
  BPF_LDX,
  BPF_LOAD_ACQ,
  BPF_LSH,
  BPF_MEM,
  BPF_MEMSX,
  BPF_MOD,
  BPF_MOV,
  BPF_MUL,
  BPF_NEG,
  BPF_OR,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_KFUNC_CALL,
  BPF_RSH,
  BPF_ST,
  BPF_STORE_REL,
  BPF_STX,
  BPF_SUB,
  BPF_TO_BE,
  BPF_X,
  BPF_XCHG,
  BPF_XOR,
  bpfClass,
  bpfMode,
  bpfOp,
  bpfSize,
  bpfSrc,
  INSN_SIZE,
  sizeBytes,
} from "./opcodes.ts";
import type {
  AluOp,
  AtomicOp,
  Insn,
  JmpOp,
  LdImm64HiInsn,
  LdImm64Insn,
  RawInsn,
} from "./insn.ts";
import { IsaError } from "./insn.ts";

const ALU_OPS: ReadonlyMap<number, AluOp> = new Map<number, AluOp>([
  [BPF_ADD, "add"],
  [BPF_SUB, "sub"],
  [BPF_MUL, "mul"],
  [BPF_DIV, "div"],
  [BPF_OR, "or"],
  [BPF_AND, "and"],
  [BPF_LSH, "lsh"],
  [BPF_RSH, "rsh"],
  [BPF_NEG, "neg"],
  [BPF_MOD, "mod"],
  [BPF_XOR, "xor"],
  [BPF_MOV, "mov"],
  [BPF_ARSH, "arsh"],
]);

const JMP_OPS: ReadonlyMap<number, JmpOp> = new Map<number, JmpOp>([
  [0x10, "jeq"],
  [0x20, "jgt"],
  [0x30, "jge"],
  [0x40, "jset"],
  [0x50, "jne"],
  [0x60, "jsgt"],
  [0x70, "jsge"],
  [0xa0, "jlt"],
  [0xb0, "jle"],
  [0xc0, "jslt"],
  [0xd0, "jsle"],
]);

const ATOMIC_OPS: ReadonlyMap<number, AtomicOp> = new Map<number, AtomicOp>([
  [BPF_ADD, "add"],
  [BPF_OR, "or"],
  [BPF_AND, "and"],
  [BPF_XOR, "xor"],
]);

/** Reads the raw fields of slot `index` of a little-endian instruction buffer. */
export function readRawInsn(bytes: Uint8Array, index: number): RawInsn {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const at = index * INSN_SIZE;
  const regs = bytes[at + 1];
  return {
    code: bytes[at],
    dst: regs & 0x0f,
    src: regs >> 4,
    off: view.getInt16(at + 2, true),
    imm: view.getInt32(at + 4, true),
  };
}

/** Splits a byte buffer into raw slots; its length must be a multiple of 8. */
export function readRawProgram(bytes: Uint8Array): RawInsn[] {
  if (bytes.length % INSN_SIZE !== 0) {
    throw new IsaError(
      -1,
      `program size ${bytes.length} is not a multiple of ${INSN_SIZE} bytes`,
    );
  }
  const out: RawInsn[] = [];
  for (let i = 0; i < bytes.length / INSN_SIZE; i++) {
    out.push(readRawInsn(bytes, i));
  }
  return out;
}

/** Decodes raw slots into typed instructions (see the module doc for `lddw`). */
export function decodeRaw(raws: readonly RawInsn[]): Insn[] {
  const out: Insn[] = [];
  for (let i = 0; i < raws.length; i++) {
    const raw = raws[i];
    if (raw.code === (BPF_LD | BPF_IMM | BPF_DW)) {
      const [lo, hi] = decodeLdImm64(raws, i);
      out.push(lo, hi);
      i++;
      continue;
    }
    out.push(decodeOne(raw, i));
  }
  return out;
}

/** Decodes a little-endian byte buffer of instructions. */
export function decodeProgram(bytes: Uint8Array): Insn[] {
  return decodeRaw(readRawProgram(bytes));
}

/** Encodes instructions (their raw fields) back into little-endian bytes. */
export function encodeProgram(insns: readonly RawInsn[]): Uint8Array {
  const bytes = new Uint8Array(insns.length * INSN_SIZE);
  const view = new DataView(bytes.buffer);
  insns.forEach((insn, i) => {
    const at = i * INSN_SIZE;
    bytes[at] = insn.code;
    bytes[at + 1] = (insn.dst & 0x0f) | ((insn.src & 0x0f) << 4);
    view.setInt16(at + 2, insn.off, true);
    view.setInt32(at + 4, insn.imm, true);
  });
  return bytes;
}

function decodeLdImm64(
  raws: readonly RawInsn[],
  i: number,
): [LdImm64Insn, LdImm64HiInsn] {
  const raw = raws[i];
  const next = raws[i + 1];
  // mirrors resolve_pseudo_ldimm64(): the second half must be all zero but imm
  if (
    next === undefined || next.code !== 0 || next.dst !== 0 ||
    next.src !== 0 || next.off !== 0
  ) {
    throw new IsaError(i, "invalid bpf_ld_imm64 insn");
  }
  const imm64 = (BigInt(next.imm >>> 0) << 32n) | BigInt(raw.imm >>> 0);
  return [
    { ...raw, kind: "ld_imm64", imm64, imm2: next.imm },
    { ...next, kind: "ld_imm64_hi" },
  ];
}

function unknown(raw: RawInsn, i: number): IsaError {
  return new IsaError(
    i,
    `unknown opcode ${raw.code.toString(16).padStart(2, "0")}`,
  );
}

/** Decodes one slot (not the first half of an `lddw`). */
function decodeOne(raw: RawInsn, i: number): Insn {
  const code = raw.code;
  switch (bpfClass(code)) {
    case BPF_ALU:
    case BPF_ALU64:
      return decodeAlu(raw, i);
    case BPF_JMP:
    case BPF_JMP32:
      return decodeJmp(raw, i);
    case BPF_LDX: {
      const mode = bpfMode(code);
      const size = sizeBytes(bpfSize(code));
      if (mode === BPF_MEM) {
        return { ...raw, kind: "ldx", size, signExtend: false };
      }
      if (mode === BPF_MEMSX && size !== 8) {
        return { ...raw, kind: "ldx", size, signExtend: true };
      }
      throw unknown(raw, i);
    }
    case BPF_ST:
      if (bpfMode(code) === BPF_MEM) {
        return { ...raw, kind: "st", size: sizeBytes(bpfSize(code)) };
      }
      throw unknown(raw, i);
    case BPF_STX: {
      const size = sizeBytes(bpfSize(code));
      if (bpfMode(code) === BPF_MEM) return { ...raw, kind: "stx", size };
      if (bpfMode(code) === BPF_ATOMIC) return decodeAtomic(raw, i, size);
      throw unknown(raw, i);
    }
    default: { // BPF_LD
      const mode = bpfMode(code);
      const size = sizeBytes(bpfSize(code));
      if ((mode === BPF_ABS || mode === BPF_IND) && size !== 8) {
        return { ...raw, kind: mode === BPF_ABS ? "ld_abs" : "ld_ind", size };
      }
      throw unknown(raw, i);
    }
  }
}

function decodeAlu(raw: RawInsn, i: number): Insn {
  const code = raw.code;
  const alu64 = bpfClass(code) === BPF_ALU64;
  const opBits = bpfOp(code);
  if (opBits === BPF_END) {
    if (alu64 && bpfSrc(code) === BPF_TO_BE) throw unknown(raw, i);
    const order = alu64 ? "swap" : bpfSrc(code) === BPF_TO_BE ? "be" : "le";
    const bits = raw.imm === 16 || raw.imm === 32 ? raw.imm : 64;
    return { ...raw, kind: "endian", order, bits };
  }
  const base = ALU_OPS.get(opBits);
  if (base === undefined) throw unknown(raw, i);
  if (base === "neg" && bpfSrc(code) === BPF_X) throw unknown(raw, i);
  const source = bpfSrc(code) === BPF_X ? "reg" : "imm";
  let op: AluOp = base;
  let extendBits: 0 | 8 | 16 | 32 = 0;
  if (raw.off === 1 && (base === "div" || base === "mod")) {
    op = base === "div" ? "sdiv" : "smod";
  } else if (base === "mov" && source === "reg" && raw.off !== 0) {
    if (alu64 && raw.off === 1) op = "addr_space_cast";
    else if (raw.off === 8 || raw.off === 16 || raw.off === 32) {
      op = "movsx";
      extendBits = raw.off;
    }
  }
  return { ...raw, kind: "alu", alu64, op, source, extendBits };
}

function decodeJmp(raw: RawInsn, i: number): Insn {
  const code = raw.code;
  const jmp32 = bpfClass(code) === BPF_JMP32;
  const opBits = bpfOp(code);
  const source = bpfSrc(code) === BPF_X ? "reg" : "imm";
  if (opBits === BPF_JA) {
    if (source === "reg") throw unknown(raw, i);
    const long = jmp32;
    return {
      ...raw,
      kind: "ja",
      long,
      target: i + 1 + (long ? raw.imm : raw.off),
    };
  }
  if (opBits === BPF_CALL || opBits === BPF_EXIT || opBits === BPF_JCOND) {
    if (jmp32) throw unknown(raw, i);
    if (opBits === BPF_EXIT) {
      if (source === "reg") throw unknown(raw, i);
      return { ...raw, kind: "exit" };
    }
    if (opBits === BPF_JCOND) {
      if (source === "reg") throw unknown(raw, i);
      return { ...raw, kind: "may_goto", target: i + 1 + raw.off };
    }
    if (source === "reg") {
      return { ...raw, kind: "call", callee: "reg", target: -1 };
    }
    const callee = raw.src === BPF_PSEUDO_CALL
      ? "local"
      : raw.src === BPF_PSEUDO_KFUNC_CALL
      ? "kfunc"
      : "helper";
    const target = callee === "local" ? i + 1 + raw.imm : -1;
    return { ...raw, kind: "call", callee, target };
  }
  const op = JMP_OPS.get(opBits);
  if (op === undefined) throw unknown(raw, i);
  return { ...raw, kind: "jcond", jmp32, op, source, target: i + 1 + raw.off };
}

function decodeAtomic(raw: RawInsn, i: number, size: 1 | 2 | 4 | 8): Insn {
  const imm = raw.imm;
  let op: AtomicOp | undefined;
  let fetch = false;
  if (imm === BPF_XCHG || imm === BPF_CMPXCHG) {
    op = imm === BPF_XCHG ? "xchg" : "cmpxchg";
    fetch = true;
  } else if (imm === BPF_LOAD_ACQ) op = "load_acq";
  else if (imm === BPF_STORE_REL) op = "store_rel";
  else if ((imm & ~(0xf0 | BPF_FETCH)) === 0) {
    op = ATOMIC_OPS.get(imm & 0xf0);
    fetch = (imm & BPF_FETCH) !== 0;
  }
  const rmw = op !== "load_acq" && op !== "store_rel";
  if (op === undefined) {
    throw new IsaError(
      i,
      `BPF_ATOMIC uses invalid atomic opcode ${
        (imm >>> 0).toString(16).padStart(2, "0")
      }`,
    );
  }
  // read-modify-write atomics exist only as BPF_W and BPF_DW
  if (rmw && size < 4) throw unknown(raw, i);
  return { ...raw, kind: "atomic", size, op, fetch };
}

/** Builds a raw slot from fields (assembler helper); validates ranges. */
export function rawInsn(
  code: number,
  dst: number,
  src: number,
  off: number,
  imm: number,
): RawInsn {
  return { code: code & 0xff, dst, src, off: (off << 16) >> 16, imm: imm | 0 };
}

/** Opcode byte helpers kept here so callers need not compose bits. */
export const OPCODE = {
  /** `BPF_JMP | BPF_EXIT`. */
  exit: BPF_JMP | BPF_EXIT,
  /** `BPF_JMP | BPF_CALL`. */
  call: BPF_JMP | BPF_CALL,
  /** `BPF_LD | BPF_IMM | BPF_DW`. */
  lddw: BPF_LD | BPF_IMM | BPF_DW,
  /** `BPF_ALU64 | BPF_MOV | BPF_K`. */
  mov64Imm: BPF_ALU64 | BPF_MOV | BPF_K,
} as const;
