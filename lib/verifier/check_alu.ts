/**
 * ALU instructions: `check_alu_op()`, `adjust_reg_min_max_vals()` and
 * `adjust_ptr_min_max_vals()` (pointer arithmetic and its refusals), plus
 * `check_reg_arg()`, which every instruction uses to read and write
 * registers. The loader is privileged (the oracle runs as root), so
 * `allow_ptr_leaks` and `bypass_spec_v1` hold: pointers may be copied into
 * 32-bit registers or subtracted, and no Spectre sanitation applies.
 * @module
 */
import { markChainPrecision } from "./precision.ts";
import type { AluInsn, EndianInsn } from "../isa/insn.ts";
import { constantOperandError } from "../isa/field_checks.ts";
import { EACCES, EINVAL, type Env } from "./env.ts";
import {
  assignReg,
  BPF_ADD_CONST32,
  BPF_ADD_CONST64,
  idAddConst,
  markRegKnown,
  markRegUnknown,
  type RegState,
} from "./reg_state.ts";
import {
  baseType,
  CONST_PTR_TO_MAP,
  NOT_INIT,
  PTR_MAYBE_NULL,
  PTR_TO_FLOW_KEYS,
  PTR_TO_PACKET_END,
  PTR_TO_SOCK_COMMON,
  PTR_TO_SOCKET,
  PTR_TO_STACK,
  PTR_TO_TCP_SOCK,
  PTR_TO_XDP_SOCK,
  regTypeStr,
  SCALAR_VALUE,
  typeIsPktPointer,
} from "./reg_types.ts";
import { curFrame } from "./state.ts";
import {
  adjustScalarMinMaxVals,
  type ScalarAluOp,
  scalarByteSwap,
  scalarMov,
} from "./scalar_alu.ts";
import {
  markScalar32Unbounded,
  markScalarUnknown,
  regBoundsSync,
} from "./bounds_sync.ts";
import {
  constScalar,
  copyScalar,
  isRegConst,
  regConstValue,
  S64_MAX,
  S64_MIN,
} from "./scalar.ts";
import { tnumAdd, tnumIsConst, tnumSub, U64_MAX } from "./tnum.ts";

/** How an instruction uses a register (`enum reg_arg_type`). */
export type RegArg = "src" | "dst" | "dst_no_mark";

/** `BPF_MAX_VAR_OFF`: pointer offsets must stay within ±2^29. */
const BPF_MAX_VAR_OFF = 1 << 29;

const ALU_STR: Record<string, string> = {
  add: "+=",
  sub: "-=",
  mul: "*=",
  div: "/=",
  sdiv: "s/=",
  or: "|=",
  and: "&=",
  lsh: "<<=",
  rsh: ">>=",
  neg: "neg",
  mod: "%=",
  smod: "s%=",
  xor: "^=",
  mov: "=",
  movsx: "=",
  arsh: "s>>=",
};

/** Mirrors `check_reg_arg()`: `R%d !read_ok`, `frame pointer is read only`. */
export function checkRegArg(env: Env, regno: number, t: RegArg): RegState {
  if (regno > 10) env.fail(EINVAL, `R${regno} is invalid`);
  env.log.scratchReg(regno);
  const reg = curFrame(env.cur).regs[regno];
  if (t === "src") {
    if (reg.type === NOT_INIT) env.fail(EACCES, `R${regno} !read_ok`);
    return reg;
  }
  if (regno === 10) env.fail(EACCES, "frame pointer is read only");
  if (t === "dst") markRegUnknown(reg);
  return reg;
}

/** Mirrors `check_alu_op()` for ALU/ALU64 instructions (field checks done). */
export function checkAluOp(env: Env, insn: AluInsn): void {
  const regs = curFrame(env.cur).regs;
  if (insn.op === "mov" || insn.op === "movsx") {
    if (insn.source === "reg") checkRegArg(env, insn.src, "src");
    const dst = checkRegArg(env, insn.dst, "dst_no_mark");
    if (insn.source === "imm") {
      markRegKnown(dst, insn.alu64 ? BigInt(insn.imm) : BigInt(insn.imm >>> 0));
      return;
    }
    const src = regs[insn.src];
    if (insn.alu64 && insn.extendBits === 0) {
      if (src !== dst) assignScalarIdBeforeMov(env, src);
      assignReg(dst, src);
      return;
    }
    if (src.type !== SCALAR_VALUE) {
      markRegUnknown(dst);
      return;
    }
    // a 32-bit copy, or a sign extension that changes nothing, keeps the
    // link: the value is the same (check_alu_op(): is_src_reg_u32, no_sext)
    const keepsValue = insn.extendBits === 0
      ? src.s.umax <= 0xffff_ffffn
      : src.s.umax < 1n << BigInt(insn.extendBits - 1);
    if (keepsValue) assignScalarIdBeforeMov(env, src);
    const s = copyScalar(src.s);
    const srcCopy = { ...src, s };
    assignReg(dst, srcCopy);
    if (!keepsValue) {
      dst.id = 0;
      dst.off = 0;
    }
    scalarMov(dst.s, s, insn.alu64, insn.extendBits);
    return;
  }
  if (insn.op === "addr_space_cast") {
    checkRegArg(env, insn.src, "src");
    markRegUnknown(checkRegArg(env, insn.dst, "dst_no_mark"));
    return;
  }
  if (insn.op === "neg") {
    const dst = checkRegArg(env, insn.dst, "src");
    checkRegArg(env, insn.dst, "dst_no_mark");
    if (dst.type !== SCALAR_VALUE) markRegUnknown(dst);
    else {
      dst.id = 0;
      dst.off = 0;
      adjustScalarMinMaxVals(dst.s, dst.s, "neg", insn.alu64);
    }
    return;
  }
  if (insn.source === "reg") checkRegArg(env, insn.src, "src");
  checkRegArg(env, insn.dst, "src");
  const constErr = constantOperandError(insn);
  if (constErr) env.fail(EINVAL, constErr);
  checkRegArg(env, insn.dst, "dst_no_mark");
  adjustRegMinMaxVals(env, insn);
}

/** `BPF_END`: byte swaps (mirrors the BPF_END arm of `check_alu_op()`). */
export function checkEndian(env: Env, insn: EndianInsn): void {
  const dst = checkRegArg(env, insn.dst, "src");
  checkRegArg(env, insn.dst, "dst_no_mark");
  if (dst.type !== SCALAR_VALUE) {
    markRegUnknown(dst);
    return;
  }
  dst.id = 0;
  dst.off = 0;
  scalarByteSwap(dst.s, insn.order, insn.bits);
}

// mirrors adjust_reg_min_max_vals()
function adjustRegMinMaxVals(env: Env, insn: AluInsn): void {
  const regs = curFrame(env.cur).regs;
  const dst = regs[insn.dst];
  const op = insn.op as ScalarAluOp;
  let src: RegState;
  if (insn.source === "reg") {
    src = regs[insn.src];
    if (src.type !== SCALAR_VALUE) {
      if (dst.type !== SCALAR_VALUE) {
        if (op === "sub") { // allow_ptr_leaks: the difference is a scalar
          markRegUnknown(dst);
          return;
        }
        env.fail(
          EACCES,
          `R${insn.dst} pointer ${ALU_STR[op]} pointer prohibited`,
        );
      }
      // scalar += pointer: the scalar's exact range becomes the offset
      markChainPrecision(env, insn.dst);
      adjustPtrMinMaxVals(env, insn, src, dst);
      return;
    }
    if (dst.type !== SCALAR_VALUE) {
      markChainPrecision(env, insn.src);
      adjustPtrMinMaxVals(env, insn, dst, src);
      return;
    }
    // a precise result needs a precise operand
    if (dst.precise) markChainPrecision(env, insn.src);
  } else {
    src = { ...dst, type: SCALAR_VALUE, s: constScalar(BigInt(insn.imm)) };
    if (dst.type !== SCALAR_VALUE) {
      adjustPtrMinMaxVals(env, insn, dst, src);
      return;
    }
  }
  const dstUmax = dst.s.umax;
  adjustScalarMinMaxVals(dst.s, src.s, op, insn.alu64, (zero) => {
    // maybe_fork_scalars(): the 0 variant re-runs this instruction's successor
    const branch = env.pushStack(env.insnIdx + 1, env.insnIdx);
    curFrame(branch).regs[insn.dst].s = zero;
  });
  linkConstDelta(dst, src, op, !insn.alu64, dstUmax);
}

/**
 * `assign_scalar_id_before_mov()`: before `rX = rY` the source gets an id
 * (not a constant: nothing to learn) that the copy shares, so a later
 * comparison narrows both; a source already linked by a delta starts a
 * new link instead.
 */
function assignScalarIdBeforeMov(env: Env, src: RegState): void {
  if (src.type !== SCALAR_VALUE) return;
  if (idAddConst(src.id)) {
    src.id = 0;
    src.off = 0;
  }
  if (!src.id && !tnumIsConst(src.s.varOff)) src.id = env.newId();
}

const S32_MIN_N = -0x8000_0000;

/**
 * The end of `adjust_reg_min_max_vals()`: `rX += K` / `rX -= K` (64-bit,
 * K an s32; or 32-bit on a value below 2^32) on a linked copy keeps the
 * link with the delta in `off` and a `BPF_ADD_CONST` flag on the id,
 * once (a second delta, or any other operation, unlinks it). Compilers
 * emit `r1 = r2; r1 += 1; if r2 < N` and use r1.
 */
function linkConstDelta(
  dst: RegState,
  src: RegState,
  op: ScalarAluOp,
  alu32: boolean,
  dstUmax: bigint,
): void {
  const unlink = () => {
    dst.id = 0;
    dst.off = 0;
  };
  if ((op !== "add" && op !== "sub") || !dst.id || !isRegConst(src.s, alu32)) {
    unlink();
    return;
  }
  const val = regConstValue(src.s, alu32);
  if (!alu32 && BigInt.asIntN(64, val) !== BigInt.asIntN(32, val)) {
    return unlink();
  }
  if (alu32 && dstUmax > 0xffff_ffffn) return unlink();
  let off = Number(BigInt.asIntN(32, val));
  if (op === "sub") {
    if (off === S32_MIN_N) return unlink(); // -S32_MIN overflows
    off = -off;
  }
  if (idAddConst(dst.id)) return unlink(); // deltas do not accumulate
  dst.id += alu32 ? BPF_ADD_CONST32 : BPF_ADD_CONST64;
  dst.off = off;
}

// mirrors check_reg_sane_offset(); its caller, adjust_ptr_min_max_vals(),
// answers a failure with -EINVAL
function checkRegSaneOffset(env: Env, reg: RegState, type: number): void {
  const t = regTypeStr(type);
  const val = BigInt.asIntN(64, reg.s.varOff.value);
  const lim = BigInt(BPF_MAX_VAR_OFF);
  if (tnumIsConst(reg.s.varOff) && (val >= lim || val <= -lim)) {
    env.fail(EINVAL, `math between ${t} pointer and ${val} is not allowed`);
  }
  if (reg.off >= BPF_MAX_VAR_OFF || reg.off <= -BPF_MAX_VAR_OFF) {
    env.fail(EINVAL, `${t} pointer offset ${reg.off} is not allowed`);
  }
  if (reg.s.smin === S64_MIN) {
    env.fail(
      EINVAL,
      `math between ${t} pointer and register with unbounded min value is not allowed`,
    );
  }
  if (reg.s.smin >= lim || reg.s.smin <= -lim) {
    env.fail(
      EINVAL,
      `value ${reg.s.smin} makes ${t} pointer be out of bounds`,
    );
  }
}

// mirrors adjust_ptr_min_max_vals(): ptr op off, result in insn.dst
function adjustPtrMinMaxVals(
  env: Env,
  insn: AluInsn,
  ptr: RegState,
  offReg: RegState,
): void {
  const regs = curFrame(env.cur).regs;
  const dst = regs[insn.dst];
  const o = offReg.s;
  const known = tnumIsConst(o.varOff);
  const op = insn.op;
  if (
    (known && (o.smin !== o.smax || o.umin !== o.umax)) || o.smin > o.smax ||
    o.umin > o.umax
  ) {
    markRegUnknown(dst);
    return;
  }
  if (!insn.alu64) {
    if (op === "sub") {
      markRegUnknown(dst);
      return;
    }
    env.fail(EACCES, `R${insn.dst} 32-bit pointer arithmetic prohibited`);
  }
  if (ptr.type & PTR_MAYBE_NULL) {
    env.fail(
      EACCES,
      `R${insn.dst} pointer arithmetic on ${
        regTypeStr(ptr.type)
      } prohibited, null-check it first`,
    );
  }
  const b = baseType(ptr.type);
  let ok = true;
  if (b === PTR_TO_FLOW_KEYS) ok = known;
  else if (b === CONST_PTR_TO_MAP) ok = known && o.smin === 0n && op === "add";
  else if (b === SCALAR_VALUE || b === NOT_INIT) ok = false;
  else if (
    b === PTR_TO_TCP_SOCK || b === PTR_TO_SOCKET || b === PTR_TO_SOCK_COMMON ||
    b === PTR_TO_XDP_SOCK || b === PTR_TO_PACKET_END
  ) ok = false;
  if (!ok) {
    env.fail(
      EACCES,
      `R${insn.dst} pointer arithmetic on ${regTypeStr(ptr.type)} prohibited`,
    );
  }
  if (op === "and" || op === "or" || op === "xor") {
    env.fail(
      EACCES,
      `R${insn.dst} bitwise operator ${ALU_STR[op]} on pointer prohibited`,
    );
  }
  if (op !== "add" && op !== "sub") {
    env.fail(
      EACCES,
      `R${insn.dst} pointer arithmetic with ${ALU_STR[op]} operator prohibited`,
    );
  }
  if (op === "sub" && dst === offReg) {
    env.fail(EACCES, `R${insn.dst} tried to subtract pointer from scalar`);
  }
  if (op === "sub" && ptr.type === PTR_TO_STACK) {
    env.fail(EACCES, `R${insn.dst} subtraction from stack pointer prohibited`);
  }
  checkRegSaneOffset(env, offReg, ptr.type);
  checkRegSaneOffset(env, ptr, ptr.type);
  const p = copyScalar(ptr.s);
  const res: RegState = { ...ptr, s: p };
  markScalar32Unbounded(res.s);
  const k = o.smin;
  const newOff = op === "add" ? ptr.off + Number(k) : ptr.off - Number(k);
  if (known && newOff === (newOff | 0) && k >= -(1n << 31n) && k < 1n << 31n) {
    res.off = newOff;
  } else if (op === "add") {
    const smin = p.smin + o.smin, smax = p.smax + o.smax;
    const ovS = smin < S64_MIN || smax > S64_MAX;
    res.s.smin = ovS ? S64_MIN : smin;
    res.s.smax = ovS ? S64_MAX : smax;
    const umin = p.umin + o.umin, umax = p.umax + o.umax;
    const ovU = umax > U64_MAX;
    res.s.umin = ovU ? 0n : umin;
    res.s.umax = ovU ? U64_MAX : umax;
    res.s.varOff = tnumAdd(p.varOff, o.varOff);
    if (typeIsPktPointer(ptr.type)) {
      res.id = env.newId();
      res.range = 0;
    }
  } else {
    const smin = p.smin - o.smax, smax = p.smax - o.smin;
    const ovS = smin < S64_MIN || smax > S64_MAX;
    res.s.smin = ovS ? S64_MIN : smin;
    res.s.smax = ovS ? S64_MAX : smax;
    if (p.umin < o.umax) {
      res.s.umin = 0n;
      res.s.umax = U64_MAX;
    } else {
      res.s.umin = p.umin - o.umax;
      res.s.umax = p.umax - o.umin;
    }
    res.s.varOff = tnumSub(p.varOff, o.varOff);
    if (typeIsPktPointer(ptr.type)) {
      res.id = env.newId();
      if (o.smin < 0n) res.range = 0;
    }
  }
  checkRegSaneOffset(env, res, ptr.type);
  regBoundsSync(res.s);
  assignReg(dst, res);
}

/** Marks `reg` an unknown scalar but keeps nothing of a pointer (used by loads). */
export function markUnknownScalar(reg: RegState): void {
  markRegUnknown(reg);
  markScalarUnknown(reg.s);
}
