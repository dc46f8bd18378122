/**
 * Conditional jumps: `check_cond_jmp_op()` — static decisions
 * (`is_branch_taken()`, with the pointer-vs-0 and packet-end cases), the
 * branch pushed for the other side, bounds refinement on both sides
 * (`reg_set_min_max()` from branch.ts, `sync_linked_regs()` for scalars
 * sharing an id), NULL checks (`mark_ptr_or_null_regs()`) and packet range
 * discovery (`try_match_pkt_pointers()` / `find_good_pkt_pointers()`).
 * @module
 */
import {
  collectLinkedRegs,
  markChainPrecision,
  pushJmpHistory,
} from "./precision.ts";
import type { CondJmpInsn, JmpOp } from "../isa/insn.ts";
import { isTrustedReg, regMayPointToSpinLock } from "./graph_state.ts";
import { checkRegArg } from "./check_alu.ts";
import { EINVAL, type Env } from "./env.ts";
import { printInsnState } from "./log.ts";
import { flipOpcode, isScalarBranchTaken, regSetMinMax } from "./branch.ts";
import {
  assignReg,
  BPF_ADD_CONST32,
  idAddConst,
  idBase,
  isPointerValue,
  notInitReg,
  type RegState,
} from "./reg_state.ts";
import {
  baseType,
  CONST_PTR_TO_MAP,
  PTR_MAYBE_NULL,
  PTR_TO_BTF_ID,
  PTR_TO_MAP_VALUE,
  PTR_TO_PACKET,
  PTR_TO_PACKET_END,
  PTR_TO_PACKET_META,
  PTR_TO_SOCKET,
  PTR_TO_XDP_SOCK,
  SCALAR_VALUE,
  typeIsNeverNull,
  typeIsPktPointer,
  typeMayBeNull,
} from "./reg_types.ts";
import { constScalar, isRegConst, regConstValue } from "./scalar.ts";
import { scalar32MinMaxAdd, scalarMinMaxAdd } from "./scalar_arith_bounds.ts";
import { zext32To64 } from "./scalar_coerce.ts";
import { tnumAdd } from "./tnum.ts";
import { curFrame, isSpilledReg, type VerifierState } from "./state.ts";
import { markScalarKnown, regBoundsSync } from "./bounds_sync.ts";

/** `AT_PKT_END`: the pointer equals pkt_end. */
const AT_PKT_END = -1;
/** `BEYOND_PKT_END`: the pointer is past pkt_end. */
const BEYOND_PKT_END = -2;
/** `MAX_PACKET_OFF`. */
const MAX_PACKET_OFF = 0xffff;
const BPF_MAP_TYPE_SOCKMAP = 15;
const BPF_MAP_TYPE_SOCKHASH = 18;
const BPF_MAP_TYPE_XSKMAP = 17;

/** Calls `fn` on every register and spilled register of every frame. */
export function forEachReg(
  vs: VerifierState,
  fn: (reg: RegState) => void,
): void {
  for (const f of vs.frames) {
    for (const r of f.regs) fn(r);
    for (const s of f.stack) if (isSpilledReg(s)) fn(s.spilled);
  }
}

// mirrors is_pkt_ptr_branch_taken()
function pktPtrBranchTaken(
  dst: RegState,
  src: RegState,
  op: JmpOp,
): number {
  let pkt: RegState;
  if (src.type === PTR_TO_PACKET_END) pkt = dst;
  else if (dst.type === PTR_TO_PACKET_END) {
    pkt = src;
    op = flipOpcode(op);
  } else return -1;
  if (pkt.range >= 0) return -1;
  if (op === "jle" || op === "jgt") {
    if (pkt.range === BEYOND_PKT_END) return op === "jgt" ? 1 : 0;
  } else if (op === "jlt" || op === "jge") {
    if (pkt.range === BEYOND_PKT_END || pkt.range === AT_PKT_END) {
      return op === "jge" ? 1 : 0;
    }
  }
  return -1;
}

function isPktAny(r: RegState): boolean {
  return typeIsPktPointer(r.type) || r.type === PTR_TO_PACKET_END;
}

/** Mirrors `is_branch_taken()`: 1 taken, 0 not taken, -1 unknown. */
export function isBranchTaken(
  r1: RegState,
  r2: RegState,
  op: JmpOp,
  jmp32: boolean,
): number {
  if (isPktAny(r1) && isPktAny(r2) && !jmp32) {
    return pktPtrBranchTaken(r1, r2, op);
  }
  if (isPointerValue(r1) || isPointerValue(r2)) {
    if (r2.type !== SCALAR_VALUE || !isRegConst(r2.s, jmp32)) {
      op = flipOpcode(op);
      [r1, r2] = [r2, r1];
    }
    if (r2.type !== SCALAR_VALUE || !isRegConst(r2.s, jmp32)) return -1;
    if (!typeIsNeverNull(r1.type, isTrustedReg(r1))) return -1;
    if (regConstValue(r2.s, jmp32) !== 0n) return -1;
    if (op === "jeq") return 0;
    if (op === "jne") return 1;
    return -1;
  }
  return isScalarBranchTaken(r1.s, r2.s, op, jmp32);
}

// mirrors mark_ptr_not_null_reg()
function markPtrNotNull(reg: RegState): void {
  if (!typeMayBeNull(reg.type)) return;
  if (baseType(reg.type) === PTR_TO_MAP_VALUE && reg.map) {
    const map = reg.map;
    if (map.inner) {
      reg.type = CONST_PTR_TO_MAP;
      reg.map = map.inner;
    } else if (map.typeId === BPF_MAP_TYPE_XSKMAP) reg.type = PTR_TO_XDP_SOCK;
    else if (
      map.typeId === BPF_MAP_TYPE_SOCKMAP ||
      map.typeId === BPF_MAP_TYPE_SOCKHASH
    ) reg.type = PTR_TO_SOCKET;
    else reg.type = PTR_TO_MAP_VALUE;
    return;
  }
  reg.type &= ~PTR_MAYBE_NULL;
}

/** Mirrors `mark_ptr_or_null_regs()`: every copy of register `regno`'s pointer. */
export function markPtrOrNullRegs(
  vs: VerifierState,
  regno: number,
  isNull: boolean,
): void {
  const r = curFrame(vs).regs[regno];
  const id = r.id;
  const refObjId = r.refObjId;
  if (refObjId && refObjId === id && isNull) {
    // release_reference_nomark(): a NULL pointer holds no reference
    vs.refs = vs.refs.filter((x) => x.id !== refObjId);
  }
  forEachReg(vs, (reg) => {
    if (!typeMayBeNull(reg.type) || reg.id !== id) return;
    if (isNull) {
      reg.type = SCALAR_VALUE;
      reg.id = 0;
      reg.refObjId = 0;
      reg.map = null;
      markScalarKnown(reg.s, 0n);
      return;
    }
    markPtrNotNull(reg);
    // the id of a pointer to a bpf_spin_lock names the lock: it stays
    if (!regMayPointToSpinLock(reg)) reg.id = 0;
  });
}

// mirrors find_good_pkt_pointers()
function findGoodPktPointers(
  vs: VerifierState,
  dst: RegState,
  type: number,
  rightOpen: boolean,
): void {
  if (dst.off < 0 || (dst.off === 0 && rightOpen)) return;
  if (
    dst.s.umax > BigInt(MAX_PACKET_OFF) ||
    dst.s.umax + BigInt(dst.off) > BigInt(MAX_PACKET_OFF)
  ) return;
  const newRange = dst.off + (rightOpen ? 1 : 0);
  const id = dst.id, t = dst.type;
  void type;
  forEachReg(vs, (reg) => {
    if (reg.type === t && reg.id === id) {
      reg.range = Math.max(reg.range, newRange);
    }
  });
}

// mirrors mark_pkt_end()
function markPktEnd(
  vs: VerifierState,
  regno: number,
  rangeOpen: boolean,
): void {
  const reg = curFrame(vs).regs[regno];
  if (!typeIsPktPointer(reg.type)) return;
  reg.range = rangeOpen ? BEYOND_PKT_END : AT_PKT_END;
}

function isInitPkt(r: RegState): boolean {
  return r.type === PTR_TO_PACKET && r.off === 0 &&
    r.s.varOff.mask === 0n && r.s.varOff.value === 0n;
}

// mirrors try_match_pkt_pointers()
function tryMatchPktPointers(
  insn: CondJmpInsn,
  dst: RegState,
  src: RegState,
  thisBr: VerifierState,
  otherBr: VerifierState,
): boolean {
  if (insn.source !== "reg" || insn.jmp32) return false;
  const pktEnd = (d: RegState, s: RegState) =>
    (d.type === PTR_TO_PACKET && s.type === PTR_TO_PACKET_END) ||
    (d.type === PTR_TO_PACKET_META && isInitPkt(s));
  const endPkt = (d: RegState, s: RegState) =>
    (d.type === PTR_TO_PACKET_END && s.type === PTR_TO_PACKET) ||
    (isInitPkt(d) && s.type === PTR_TO_PACKET_META);
  const thisDst = curFrame(thisBr).regs[insn.dst];
  const thisSrc = curFrame(thisBr).regs[insn.src];
  const otherDst = curFrame(otherBr).regs[insn.dst];
  const otherSrc = curFrame(otherBr).regs[insn.src];
  // [branch with the good range, reg, right open, pkt-end branch, regno, open]
  let plan: [VerifierState, RegState, boolean, VerifierState, number, boolean];
  const fwd = pktEnd(dst, src), back = endPkt(dst, src);
  switch (insn.op) {
    case "jgt":
      if (fwd) plan = [thisBr, thisDst, false, otherBr, insn.dst, true];
      else if (back) plan = [otherBr, otherSrc, true, thisBr, insn.src, false];
      else return false;
      break;
    case "jlt":
      if (fwd) plan = [otherBr, otherDst, true, thisBr, insn.dst, false];
      else if (back) plan = [thisBr, thisSrc, false, otherBr, insn.src, true];
      else return false;
      break;
    case "jge":
      if (fwd) plan = [thisBr, thisDst, true, otherBr, insn.dst, false];
      else if (back) plan = [otherBr, otherSrc, false, thisBr, insn.src, true];
      else return false;
      break;
    case "jle":
      if (fwd) plan = [otherBr, otherDst, false, thisBr, insn.dst, true];
      else if (back) plan = [thisBr, thisSrc, true, otherBr, insn.src, false];
      else return false;
      break;
    default:
      return false;
  }
  const [goodBr, goodReg, open, endBr, endRegno, endOpen] = plan;
  findGoodPktPointers(goodBr, goodReg, goodReg.type, open);
  markPktEnd(endBr, endRegno, endOpen);
  return true;
}

/**
 * Mirrors `sync_linked_regs()`: the scalars linked to `known` (same base
 * id) learn its new bounds — a plain copy, or `known` plus the difference
 * of their `BPF_ADD_CONST` deltas (zero-extended when a link is 32-bit).
 * A 32-bit and a 64-bit delta do not link.
 */
function syncLinkedRegs(vs: VerifierState, known: RegState): void {
  const base = idBase(known.id);
  const knownFlags = idAddConst(known.id);
  forEachReg(vs, (reg) => {
    if (reg === known || reg.type !== SCALAR_VALUE) return;
    if (idBase(reg.id) !== base) return;
    const flags = idAddConst(reg.id);
    // ids are numbers past 2^31 with their flags: compare, do not mask
    if (flags && knownFlags && flags !== knownFlags) return;
    const id = reg.id, off = reg.off;
    if ((!flags && !knownFlags) || off === known.off) {
      assignReg(reg, known);
      reg.id = id;
      return;
    }
    assignReg(reg, known);
    reg.id = id;
    reg.off = off;
    const delta = constScalar(BigInt(off) - BigInt(known.off));
    scalar32MinMaxAdd(reg.s, delta);
    scalarMinMaxAdd(reg.s, delta);
    reg.s.varOff = tnumAdd(reg.s.varOff, delta.varOff);
    if (flags === BPF_ADD_CONST32 || knownFlags === BPF_ADD_CONST32) {
      zext32To64(reg.s);
    }
    regBoundsSync(reg.s);
  });
}

/**
 * Mirrors `check_cond_jmp_op()`; returns the next slot to run on this path
 * (the other side, if any, is queued).
 */
export function checkCondJmp(env: Env, insn: CondJmpInsn, idx: number): number {
  const thisBr = env.cur;
  const regs = curFrame(thisBr).regs;
  const dst = checkRegArg(env, insn.dst, "src");
  let src: RegState;
  if (insn.source === "reg") {
    if (insn.imm !== 0) env.fail(EINVAL, "BPF_JMP/JMP32 uses reserved fields");
    src = checkRegArg(env, insn.src, "src");
  } else {
    if (insn.src !== 0) env.fail(EINVAL, "BPF_JMP/JMP32 uses reserved fields");
    src = notInitReg();
    src.type = SCALAR_VALUE;
    src.s = constScalar(BigInt(insn.imm));
  }
  const pred = isBranchTaken(dst, src, insn.op, insn.jmp32);
  if (pred === 1 || pred === 0) {
    // the decision relied on the operands' exact values
    if (dst.type === SCALAR_VALUE) markChainPrecision(env, insn.dst);
    if (insn.source === "reg" && src.type === SCALAR_VALUE) {
      markChainPrecision(env, insn.src);
    }
  }
  if (pred === 1 || pred === 0) {
    if (env.log.level) printInsnState(env.log, thisBr, idx);
    return pred === 1 ? insn.target : idx + 1;
  }
  // scalars sharing an id gain range together: record them, before the
  // fork, so backtracking through this jump links their precision
  const linked: number[] = [];
  if (insn.source === "reg" && src.type === SCALAR_VALUE && src.id) {
    collectLinkedRegs(thisBr, src.id, linked);
  }
  if (dst.type === SCALAR_VALUE && dst.id) {
    collectLinkedRegs(thisBr, dst.id, linked);
  }
  if (linked.length > 1) pushJmpHistory(env, thisBr, 0, linked);
  const other = env.pushStack(insn.target, idx);
  const oRegs = curFrame(other).regs;
  if (dst.type === SCALAR_VALUE && src.type === SCALAR_VALUE) {
    const oDst = oRegs[insn.dst];
    const oSrc = insn.source === "reg"
      ? oRegs[insn.src]
      : { ...src, s: constScalar(BigInt(insn.imm)) };
    const same = insn.source === "reg" && insn.src === insn.dst;
    const msgs = regSetMinMax(
      oDst.s,
      same ? oDst.s : oSrc.s,
      dst.s,
      same ? dst.s : src.s,
      insn.op,
      insn.jmp32,
    );
    for (const m of msgs) env.log.write(`verifier bug: ${m}\n`);
    if (insn.source === "reg" && src.id) {
      syncLinkedRegs(thisBr, src);
      syncLinkedRegs(other, oRegs[insn.src]);
    }
    if (dst.id) {
      syncLinkedRegs(thisBr, dst);
      syncLinkedRegs(other, oDst);
    }
  }
  if (
    !insn.jmp32 && insn.source === "reg" && isPointerValue(src) &&
    isPointerValue(dst) &&
    typeMayBeNull(src.type) !== typeMayBeNull(dst.type) &&
    baseType(src.type) !== PTR_TO_BTF_ID && baseType(dst.type) !== PTR_TO_BTF_ID
  ) {
    const eq = insn.op === "jeq" ? oRegs : insn.op === "jne" ? regs : null;
    if (eq) {
      markPtrNotNull(typeMayBeNull(src.type) ? eq[insn.src] : eq[insn.dst]);
    }
  }
  if (
    !insn.jmp32 && insn.source === "imm" && insn.imm === 0 &&
    (insn.op === "jeq" || insn.op === "jne") && typeMayBeNull(dst.type)
  ) {
    markPtrOrNullRegs(thisBr, insn.dst, insn.op === "jne");
    markPtrOrNullRegs(other, insn.dst, insn.op === "jeq");
  } else {
    // a privileged loader may compare any pointers (is_pointer_value() is
    // false), so a failed match is no error
    tryMatchPktPointers(insn, dst, src, thisBr, other);
  }
  if (env.log.level) printInsnState(env.log, thisBr, idx);
  return idx + 1;
}
