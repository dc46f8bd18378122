/**
 * Kernel-syntax memory statements: loads and stores, legacy packet loads,
 * atomics (both the verifier log's `atomic64_fetch_add(…)` spelling and
 * LLVM's `xchg_64(…)` / `cmpxchg32_32(…)`), and acquire/release.
 * @module
 */
import {
  BPF_ABS,
  BPF_ATOMIC,
  BPF_CMPXCHG,
  BPF_DW,
  BPF_FETCH,
  BPF_IND,
  BPF_LD,
  BPF_LDX,
  BPF_LOAD_ACQ,
  BPF_MEM,
  BPF_MEMSX,
  BPF_ST,
  BPF_STORE_REL,
  BPF_STX,
  BPF_W,
  BPF_XCHG,
} from "./opcodes.ts";
import { ATOMIC_OP_BITS } from "./asm_tables.ts";
import {
  accessType,
  baseAndOffset,
  emit,
  immediate,
  isRegister,
  type KernelLine,
  memoryOperand,
  register,
  type RegOperand,
} from "./asm_kernel_ops.ts";
import type { Token } from "./asm_lexer.ts";

/** Compound assignments allowed after `lock *(…)`. */
const LOCK_OPS: ReadonlyMap<string, string> = new Map([
  ["+=", "add"],
  ["|=", "or"],
  ["&=", "and"],
  ["^=", "xor"],
]);

/** `dst = *(TYPE *)(src ±off)` or the packet loads `r0 = *(TYPE *)skb[…]`; the cursor is at `*`. */
export function assembleLoad(line: KernelLine, dst: RegOperand): void {
  const { ts } = line;
  ts.expect("*");
  const type = accessType(ts);
  if (ts.peek().text === "skb") {
    assemblePacketLoad(line, dst, type);
    return;
  }
  if (!dst.wide && type.bytes === 8) {
    throw ts.fail(dst.token, `a u64 load needs r${dst.reg}`);
  }
  const { reg, off } = memoryOperand(ts);
  const mode = type.signed ? BPF_MEMSX : BPF_MEM;
  emit(line, BPF_LDX | mode | type.size, dst.reg, reg, off, 0);
}

/** `r0 = *(u16 *)skb[23]` (ld_abs) or `r0 = *(u16 *)skb[r7 + 2]` (ld_ind). */
function assemblePacketLoad(
  line: KernelLine,
  dst: RegOperand,
  type: { size: number; bytes: number; signed: boolean; token: Token },
): void {
  const { ts } = line;
  if (type.signed || type.bytes === 8) {
    throw ts.fail(
      type.token,
      `packet loads take u8, u16 or u32, not ${type.token.text}`,
    );
  }
  if (dst.reg !== 0 || !dst.wide) {
    throw ts.fail(
      dst.token,
      "packet loads (ld_abs/ld_ind) always load into r0",
    );
  }
  ts.expect("skb");
  ts.expect("[");
  if (isRegister(ts.peek())) {
    const { reg, off } = baseAndOffset(ts);
    ts.expect("]");
    emit(line, BPF_LD | BPF_IND | type.size, 0, reg, 0, off);
    return;
  }
  const imm = immediate(ts, "s32");
  ts.expect("]");
  emit(line, BPF_LD | BPF_ABS | type.size, 0, 0, 0, imm);
}

/** `*(TYPE *)(dst ±off) = src|imm`; the cursor is at `*`. */
export function assembleStore(line: KernelLine): void {
  const { ts } = line;
  ts.expect("*");
  const type = accessType(ts);
  if (type.signed) {
    throw ts.fail(type.token, "stores take unsigned access types");
  }
  const { reg, off } = memoryOperand(ts);
  ts.expect("=");
  if (isRegister(ts.peek())) {
    const src = register(ts);
    if (!src.wide && type.bytes === 8) {
      throw ts.fail(src.token, `a u64 store needs r${src.reg}`);
    }
    emit(line, BPF_STX | BPF_MEM | type.size, reg, src.reg, off, 0);
    return;
  }
  // a 64-bit store sign-extends imm, so only int32 values mean what they say
  const imm = immediate(ts, type.bytes === 8 ? "s32" : "bits32");
  emit(line, BPF_ST | BPF_MEM | type.size, reg, 0, off, imm);
}

/** Atomic access width: BPF_W or BPF_DW, and whether `w` registers fit. */
function atomicSize(
  line: KernelLine,
  type: { size: number; token: Token },
): number {
  if (type.size !== BPF_W && type.size !== BPF_DW) {
    throw line.ts.fail(type.token, "atomic read-modify-write needs u32 or u64");
  }
  return type.size;
}

/** Checks a data register against the access width (w only for 32-bit). */
function dataRegister(
  line: KernelLine,
  size: number,
  operand: RegOperand,
): number {
  if (!operand.wide && size === BPF_DW) {
    throw line.ts.fail(operand.token, `a 64-bit atomic needs r${operand.reg}`);
  }
  return operand.reg;
}

/** `lock *(u64 *)(r1 +0) += r2` (also `|=`, `&=`, `^=`); the cursor is after `lock`. */
export function assembleLock(line: KernelLine): void {
  const { ts } = line;
  ts.expect("*");
  const size = atomicSize(line, accessType(ts));
  const { reg, off } = memoryOperand(ts);
  const opToken = ts.next();
  const op = ATOMIC_OP_BITS.get(LOCK_OPS.get(opToken.text) ?? "");
  if (op === undefined) {
    throw ts.unexpected(opToken, "'+=', '|=', '&=' or '^='");
  }
  const src = dataRegister(line, size, register(ts));
  emit(line, BPF_STX | BPF_ATOMIC | size, reg, src, off, op);
}

/**
 * `dst = NAME(…)` for atomics and load-acquire, where NAME is one of
 * `atomic[64]_fetch_{add,or,and,xor}`, `atomic[64]_xchg`,
 * `atomic[64]_cmpxchg`, `xchg_64`, `xchg32_32`, `cmpxchg_64`,
 * `cmpxchg32_32`, `load_acquire`. Returns false when NAME is none of them.
 */
export function assembleAtomicCall(
  line: KernelLine,
  dst: RegOperand,
  name: Token,
): boolean {
  const { ts } = line;
  const kernel = /^atomic(64)?_(fetch_(add|or|and|xor)|xchg|cmpxchg)$/.exec(
    name.text,
  );
  const llvm = /^(xchg|cmpxchg)(_64|32_32)$/.exec(name.text);
  if (name.text === "load_acquire") {
    ts.next();
    ts.expect("(");
    const type = accessType(ts);
    const { reg, off } = memoryOperand(ts);
    ts.expect(")");
    if (type.signed) {
      throw ts.fail(type.token, "load_acquire takes unsigned types");
    }
    if (!dst.wide && type.bytes === 8) {
      throw ts.fail(dst.token, `a u64 load needs r${dst.reg}`);
    }
    emit(
      line,
      BPF_STX | BPF_ATOMIC | type.size,
      dst.reg,
      reg,
      off,
      BPF_LOAD_ACQ,
    );
    return true;
  }
  if (kernel === null && llvm === null) return false;
  ts.next();
  ts.expect("(");
  let size: number;
  let base: { reg: number; off: number };
  if (kernel !== null) {
    const type = accessType(ts);
    size = atomicSize(line, type);
    if (kernel[1] === "64" && size !== BPF_DW) {
      throw ts.fail(type.token, `${name.text} needs a u64 access`);
    }
    base = memoryOperand(ts);
  } else {
    size = llvm?.[2] === "_64" ? BPF_DW : BPF_W;
    base = baseAndOffset(ts);
  }
  ts.expect(",");
  const operation = kernel?.[2] ?? llvm?.[1] ?? "";
  let imm: number;
  if (operation === "cmpxchg") {
    const old = register(ts);
    if (old.reg !== 0 || dst.reg !== 0) {
      throw ts.fail(
        old.reg !== 0 ? old.token : dst.token,
        "cmpxchg compares with and returns r0",
      );
    }
    ts.expect(",");
    imm = BPF_CMPXCHG;
  } else {
    imm = operation === "xchg"
      ? BPF_XCHG
      : (ATOMIC_OP_BITS.get(kernel?.[3] ?? "") ?? 0) | BPF_FETCH;
  }
  const src = register(ts);
  ts.expect(")");
  if (operation !== "cmpxchg" && src.reg !== dst.reg) {
    throw ts.fail(
      src.token,
      `${name.text} returns the old value in its source register r${src.reg}`,
    );
  }
  dataRegister(line, size, dst);
  emit(
    line,
    BPF_STX | BPF_ATOMIC | size,
    base.reg,
    dataRegister(line, size, src),
    base.off,
    imm,
  );
  return true;
}

/** `store_release((u64 *)(r1 +0), r2)`; the cursor is at `store_release`. */
export function assembleStoreRelease(line: KernelLine): void {
  const { ts } = line;
  ts.next();
  ts.expect("(");
  const type = accessType(ts);
  if (type.signed) {
    throw ts.fail(type.token, "store_release takes unsigned types");
  }
  const { reg, off } = memoryOperand(ts);
  ts.expect(",");
  const src = register(ts);
  if (!src.wide && type.bytes === 8) {
    throw ts.fail(src.token, `a u64 store needs r${src.reg}`);
  }
  ts.expect(")");
  emit(
    line,
    BPF_STX | BPF_ATOMIC | type.size,
    reg,
    src.reg,
    off,
    BPF_STORE_REL,
  );
}
