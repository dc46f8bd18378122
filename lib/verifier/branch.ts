/**
 * Conditional jumps on scalars: deciding a branch statically (the kernel's
 * `is_scalar_branch_taken()`) and narrowing both operands on each side of it
 * (`regs_refine_cond_op()` driven by `reg_set_min_max()`), in 64-bit (JMP)
 * and 32-bit (JMP32) forms.
 * @module
 */

import type { JmpOp } from "../isa/insn.ts";
import {
  markScalarUnbounded,
  regBoundsSanityCheck,
  regBoundsSync,
} from "./bounds_sync.ts";
import { isRegConst, regConstValue, type Scalar } from "./scalar.ts";
import {
  type Tnum,
  tnumAnd,
  tnumConst,
  tnumIntersect,
  tnumIsConst,
  tnumOr,
  tnumOverlap,
  tnumSubreg,
  tnumWithSubreg,
  U64_MAX,
} from "./tnum.ts";

/**
 * A condition as `regs_refine_cond_op()` sees it: a jump opcode, or `jnset`
 * for the false side of `jset`, which the kernel spells `BPF_JSET | BPF_X`.
 */
export type CondOp = JmpOp | "jnset";

/** Outcome of a branch decision: taken, not taken, or unknown (-1). */
export type BranchDecision = 1 | 0 | -1;

/** `b op a` for `a op b` (mirrors `flip_opcode()`). */
export function flipOpcode(op: JmpOp): JmpOp {
  switch (op) {
    case "jge":
      return "jle";
    case "jgt":
      return "jlt";
    case "jle":
      return "jge";
    case "jlt":
      return "jgt";
    case "jsge":
      return "jsle";
    case "jsgt":
      return "jslt";
    case "jsle":
      return "jsge";
    case "jslt":
      return "jsgt";
    default:
      return op; // jeq, jne, jset are symmetric
  }
}

/** The condition of the fall-through side (mirrors `rev_opcode()`). */
export function revOpcode(op: CondOp): CondOp {
  switch (op) {
    case "jeq":
      return "jne";
    case "jne":
      return "jeq";
    case "jset":
      return "jnset";
    case "jnset":
      return "jset";
    case "jge":
      return "jlt";
    case "jgt":
      return "jle";
    case "jle":
      return "jgt";
    case "jlt":
      return "jge";
    case "jsge":
      return "jslt";
    case "jsgt":
      return "jsle";
    case "jsle":
      return "jsgt";
    case "jslt":
      return "jsge";
  }
}

/**
 * Decides `if (reg1 op reg2)` from the bounds alone (mirrors
 * `is_scalar_branch_taken()`): 1 when always true, 0 when always false, -1
 * when both sides are possible. `jmp32` compares the low 32 bits.
 */
export function isScalarBranchTaken(
  reg1: Scalar,
  reg2: Scalar,
  op: JmpOp,
  jmp32: boolean,
): BranchDecision {
  let t1: Tnum = jmp32 ? tnumSubreg(reg1.varOff) : reg1.varOff;
  let t2: Tnum = jmp32 ? tnumSubreg(reg2.varOff) : reg2.varOff;
  const umin1 = jmp32 ? BigInt(reg1.u32Min) : reg1.umin;
  const umax1 = jmp32 ? BigInt(reg1.u32Max) : reg1.umax;
  const smin1 = jmp32 ? BigInt(reg1.s32Min) : reg1.smin;
  const smax1 = jmp32 ? BigInt(reg1.s32Max) : reg1.smax;
  const umin2 = jmp32 ? BigInt(reg2.u32Min) : reg2.umin;
  const umax2 = jmp32 ? BigInt(reg2.u32Max) : reg2.umax;
  const smin2 = jmp32 ? BigInt(reg2.s32Min) : reg2.smin;
  const smax2 = jmp32 ? BigInt(reg2.s32Max) : reg2.smax;

  switch (op) {
    case "jeq":
    case "jne": {
      // "equal is impossible" decides both: jeq not taken, jne taken
      const differ = op === "jne" ? 1 : 0;
      if (tnumIsConst(t1) && tnumIsConst(t2)) {
        return (t1.value === t2.value) === (op === "jeq") ? 1 : 0;
      }
      if (!tnumOverlap(t1, t2)) return differ;
      if (umin1 > umax2 || umax1 < umin2) return differ;
      if (smin1 > smax2 || smax1 < smin2) return differ;
      if (!jmp32) {
        // 64-bit ranges inconclusive: the subregister ranges may still differ
        if (reg1.u32Min > reg2.u32Max || reg1.u32Max < reg2.u32Min) {
          return differ;
        }
        if (reg1.s32Min > reg2.s32Max || reg1.s32Max < reg2.s32Min) {
          return differ;
        }
      }
      return -1;
    }
    case "jset": {
      if (!isRegConst(reg2, jmp32)) {
        [reg1, reg2] = [reg2, reg1];
        [t1, t2] = [t2, t1];
      }
      if (!isRegConst(reg2, jmp32)) return -1;
      if (t1.value & t2.value) return 1; // a known 1 bit is tested
      if (!((t1.mask | t1.value) & t2.value)) return 0; // every tested bit known 0
      return -1;
    }
    case "jgt":
      if (umin1 > umax2) return 1;
      if (umax1 <= umin2) return 0;
      return -1;
    case "jsgt":
      if (smin1 > smax2) return 1;
      if (smax1 <= smin2) return 0;
      return -1;
    case "jlt":
      if (umax1 < umin2) return 1;
      if (umin1 >= umax2) return 0;
      return -1;
    case "jslt":
      if (smax1 < smin2) return 1;
      if (smin1 >= smax2) return 0;
      return -1;
    case "jge":
      if (umin1 >= umax2) return 1;
      if (umax1 < umin2) return 0;
      return -1;
    case "jsge":
      if (smin1 >= smax2) return 1;
      if (smax1 < smin2) return 0;
      return -1;
    case "jle":
      if (umax1 <= umin2) return 1;
      if (umin1 > umax2) return 0;
      return -1;
    case "jsle":
      if (smax1 <= smin2) return 1;
      if (smin1 > smax2) return 0;
      return -1;
  }
}

/**
 * `is_branch_taken()` for two scalars, which is `is_scalar_branch_taken()`;
 * the pointer cases belong to the verifier.
 */
export const isBranchTaken: (
  reg1: Scalar,
  reg2: Scalar,
  op: JmpOp,
  jmp32: boolean,
) => BranchDecision = isScalarBranchTaken;

const u64Dec = (x: bigint) => (x - 1n) & U64_MAX;
const u64Inc = (x: bigint) => (x + 1n) & U64_MAX;
const s64Dec = (x: bigint) => BigInt.asIntN(64, x - 1n);
const s64Inc = (x: bigint) => BigInt.asIntN(64, x + 1n);

/**
 * Narrows `reg1` and `reg2` assuming `reg1 op reg2` holds (mirrors
 * `regs_refine_cond_op()`). Only bounds of the compared width change; the
 * caller runs `reg_bounds_sync()` afterwards. Off-by-one adjustments wrap
 * like the kernel's C arithmetic.
 */
export function regsRefineCondOp(
  reg1: Scalar,
  reg2: Scalar,
  op: CondOp,
  jmp32: boolean,
): void {
  // GE/GT/SGE/SGT reuse the LE/LT/SLE/SLT logic with the operands swapped
  if (op === "jge" || op === "jgt" || op === "jsge" || op === "jsgt") {
    op = flipOpcode(op);
    [reg1, reg2] = [reg2, reg1];
  }
  switch (op) {
    case "jeq":
      if (jmp32) {
        reg1.u32Min = Math.max(reg1.u32Min, reg2.u32Min);
        reg1.u32Max = Math.min(reg1.u32Max, reg2.u32Max);
        reg1.s32Min = Math.max(reg1.s32Min, reg2.s32Min);
        reg1.s32Max = Math.min(reg1.s32Max, reg2.s32Max);
        reg2.u32Min = reg1.u32Min;
        reg2.u32Max = reg1.u32Max;
        reg2.s32Min = reg1.s32Min;
        reg2.s32Max = reg1.s32Max;
        const t = tnumIntersect(
          tnumSubreg(reg1.varOff),
          tnumSubreg(reg2.varOff),
        );
        reg1.varOff = tnumWithSubreg(reg1.varOff, t);
        reg2.varOff = tnumWithSubreg(reg2.varOff, t);
      } else {
        if (reg2.umin > reg1.umin) reg1.umin = reg2.umin;
        if (reg2.umax < reg1.umax) reg1.umax = reg2.umax;
        if (reg2.smin > reg1.smin) reg1.smin = reg2.smin;
        if (reg2.smax < reg1.smax) reg1.smax = reg2.smax;
        reg2.umin = reg1.umin;
        reg2.umax = reg1.umax;
        reg2.smin = reg1.smin;
        reg2.smax = reg1.smax;
        reg1.varOff = tnumIntersect(reg1.varOff, reg2.varOff);
        reg2.varOff = reg1.varOff;
      }
      return;
    case "jne": {
      if (!isRegConst(reg2, jmp32)) [reg1, reg2] = [reg2, reg1];
      if (!isRegConst(reg2, jmp32)) return;
      // a constant at the very edge of reg1's range can be cut off
      const val = regConstValue(reg2, jmp32);
      if (jmp32) {
        const u = Number(val);
        if (reg1.u32Min === u) reg1.u32Min = (reg1.u32Min + 1) >>> 0;
        if (reg1.u32Max === u) reg1.u32Max = (reg1.u32Max - 1) >>> 0;
        if (reg1.s32Min === (u | 0)) reg1.s32Min = (reg1.s32Min + 1) | 0;
        if (reg1.s32Max === (u | 0)) reg1.s32Max = (reg1.s32Max - 1) | 0;
      } else {
        const sv = BigInt.asIntN(64, val);
        if (reg1.umin === val) reg1.umin = u64Inc(reg1.umin);
        if (reg1.umax === val) reg1.umax = u64Dec(reg1.umax);
        if (reg1.smin === sv) reg1.smin = s64Inc(reg1.smin);
        if (reg1.smax === sv) reg1.smax = s64Dec(reg1.smax);
      }
      return;
    }
    case "jset": {
      if (!isRegConst(reg2, jmp32)) [reg1, reg2] = [reg2, reg1];
      if (!isRegConst(reg2, jmp32)) return;
      // "r1 & val" being true pins a bit only when val has a single bit
      const val = regConstValue(reg2, jmp32);
      if (val === 0n || (val & (val - 1n)) !== 0n) return;
      if (jmp32) {
        const t = tnumOr(tnumSubreg(reg1.varOff), tnumConst(val));
        reg1.varOff = tnumWithSubreg(reg1.varOff, t);
      } else {
        reg1.varOff = tnumOr(reg1.varOff, tnumConst(val));
      }
      return;
    }
    case "jnset": {
      if (!isRegConst(reg2, jmp32)) [reg1, reg2] = [reg2, reg1];
      if (!isRegConst(reg2, jmp32)) return;
      const val = regConstValue(reg2, jmp32);
      // Forget the ranges before narrowing the tnum, so that a dead branch
      // cannot end with contradicting bounds.
      markScalarUnbounded(reg1);
      const notVal = tnumConst(~val & U64_MAX);
      if (jmp32) {
        const t = tnumAnd(tnumSubreg(reg1.varOff), notVal);
        reg1.varOff = tnumWithSubreg(reg1.varOff, t);
      } else {
        reg1.varOff = tnumAnd(reg1.varOff, notVal);
      }
      return;
    }
    case "jle":
      if (jmp32) {
        reg1.u32Max = Math.min(reg1.u32Max, reg2.u32Max);
        reg2.u32Min = Math.max(reg1.u32Min, reg2.u32Min);
      } else {
        if (reg2.umax < reg1.umax) reg1.umax = reg2.umax;
        if (reg1.umin > reg2.umin) reg2.umin = reg1.umin;
      }
      return;
    case "jlt":
      if (jmp32) {
        reg1.u32Max = Math.min(reg1.u32Max, (reg2.u32Max - 1) >>> 0);
        reg2.u32Min = Math.max((reg1.u32Min + 1) >>> 0, reg2.u32Min);
      } else {
        const lim = u64Dec(reg2.umax);
        if (lim < reg1.umax) reg1.umax = lim;
        const low = u64Inc(reg1.umin);
        if (low > reg2.umin) reg2.umin = low;
      }
      return;
    case "jsle":
      if (jmp32) {
        reg1.s32Max = Math.min(reg1.s32Max, reg2.s32Max);
        reg2.s32Min = Math.max(reg1.s32Min, reg2.s32Min);
      } else {
        if (reg2.smax < reg1.smax) reg1.smax = reg2.smax;
        if (reg1.smin > reg2.smin) reg2.smin = reg1.smin;
      }
      return;
    case "jslt":
      if (jmp32) {
        reg1.s32Max = Math.min(reg1.s32Max, (reg2.s32Max - 1) | 0);
        reg2.s32Min = Math.max((reg1.s32Min + 1) | 0, reg2.s32Min);
      } else {
        const lim = s64Dec(reg2.smax);
        if (lim < reg1.smax) reg1.smax = lim;
        const low = s64Inc(reg1.smin);
        if (low > reg2.smin) reg2.smin = low;
      }
      return;
  }
}

/**
 * Refines copies of both operands for both sides of `if (reg1 op reg2)`
 * (mirrors `reg_set_min_max()`): the `false*` scalars get the reversed
 * condition, the `true*` ones the condition itself, then all four are
 * synced. When both operands are one register (`if r1 > r1`) pass the same
 * object twice on each side: like the kernel 6.18, which neither decides nor
 * skips such compares, the refinement then runs through the alias (the true
 * side of `r1 > r1` becomes [1, U64_MAX-1]).
 *
 * Finally each scalar goes through `reg_bounds_sanity_check()` in the order
 * true_reg1, true_reg2, false_reg1, false_reg2: a contradiction (a dead
 * branch the kernel could not rule out) opens that scalar's bounds. The
 * returned messages are what the kernel logs after `verifier bug: `.
 */
export function regSetMinMax(
  trueReg1: Scalar,
  trueReg2: Scalar,
  falseReg1: Scalar,
  falseReg2: Scalar,
  op: JmpOp,
  jmp32: boolean,
): string[] {
  regsRefineCondOp(falseReg1, falseReg2, revOpcode(op), jmp32);
  regBoundsSync(falseReg1);
  regBoundsSync(falseReg2);
  regsRefineCondOp(trueReg1, trueReg2, op, jmp32);
  regBoundsSync(trueReg1);
  regBoundsSync(trueReg2);
  const msgs: string[] = [];
  const checks: [Scalar, string][] = [
    [trueReg1, "true_reg1"],
    [trueReg2, "true_reg2"],
    [falseReg1, "false_reg1"],
    [falseReg2, "false_reg2"],
  ];
  for (const [reg, ctx] of checks) {
    const msg = regBoundsSanityCheck(reg, ctx);
    if (msg) msgs.push(msg);
  }
  return msgs;
}
