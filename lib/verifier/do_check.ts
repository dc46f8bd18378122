/**
 * The main pass: `do_check()` walking one path at a time with the branch
 * stack (`push_stack()` / `pop_stack()`), counting `insn_processed` against
 * the 1M complexity limit, consulting `is_state_visited()` at prune points,
 * printing the level 1/2 log, and dispatching each instruction class in
 * `do_check_insn()`'s order. `doCheckCommon()` mirrors `do_check_common()`:
 * the initial state of the main program or of a global function.
 * @module
 */
import type { Insn, LdImm64Insn } from "../isa/insn.ts";
import { formatInsn } from "../isa/disasm.ts";
import { encodingFieldError } from "../isa/field_checks.ts";
import {
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_MAP_FD,
  BPF_PSEUDO_MAP_IDX,
  BPF_PSEUDO_MAP_IDX_VALUE,
  BPF_PSEUDO_MAP_VALUE,
} from "../isa/opcodes.ts";
import { checkAluOp, checkEndian, checkRegArg } from "./check_alu.ts";
import {
  abnormalSubprogExit,
  checkFuncCall,
  checkHelperCall,
  prepareFuncExit,
} from "./check_call.ts";
import { checkKfuncCall } from "./check_kfunc.ts";
import { markGlobalArgStackReads } from "./check_helper_mem.ts";
import { widenImpreciseScalars } from "./iter.ts";
import { findSubprog } from "./subprogs.ts";
import { checkCondJmp } from "./check_jmp.ts";
import { checkAtomic, checkLoad, checkStore } from "./check_mem.ts";
import { E2BIG, EFAULT, EINVAL, type Env } from "./env.ts";
import { checkResourceLeak, checkReturnCode } from "./exit.ts";
import {
  mapAddress,
  printInsnState,
  printLineInfo,
  printVerifierState,
} from "./log.ts";
import { isStateVisited } from "./prune.ts";
import { updateBranchCounts } from "./state_counts.ts";
import {
  commitStackWriteMarks,
  resetLiveStackCallchain,
  resetStackWriteMarks,
  updateLiveStack,
} from "./stack_liveness.ts";
import { pushJmpHistory } from "./precision.ts";
import { logLiveRegs } from "./liveness.ts";
import {
  after as precisionAfter,
  before as precisionBefore,
} from "./insn_precision.ts";
import {
  markRegKnown,
  markRegNotInit,
  markRegPointer,
  markRegUnknown,
  type RegState,
} from "./reg_state.ts";
import {
  CONST_PTR_TO_MAP,
  PTR_TO_CTX,
  PTR_TO_FUNC,
  PTR_TO_MAP_VALUE,
} from "./reg_types.ts";
import {
  addTrail,
  curFrame,
  newFuncState,
  newVerifierState,
  prevTrip,
} from "./state.ts";

/** Helper id of `bpf_spin_unlock`, the one call allowed under a lock. */
const BPF_FUNC_SPIN_UNLOCK = 94;

/** `BPF_COMPLEXITY_LIMIT_INSNS`. */
export const BPF_COMPLEXITY_LIMIT_INSNS = 1_000_000;

/** What `doCheckInsn` returns for an `exit` of the main function. */
export const PROCESS_BPF_EXIT = -1;

/** How a function's arguments start (`btf_prepare_func_args()` outcome). */
export type ArgInit = (regs: RegState[]) => void;

// mirrors check_ld_imm()
function checkLdImm(env: Env, insn: LdImm64Insn): void {
  const dst = checkRegArg(env, insn.dst, "dst");
  switch (insn.src) {
    case 0:
      markRegKnown(dst, insn.imm64);
      return;
    case BPF_PSEUDO_MAP_IDX:
    case BPF_PSEUDO_MAP_FD:
      markRegPointer(dst, CONST_PTR_TO_MAP);
      dst.map = env.maps[insn.imm] ?? null;
      return;
    case BPF_PSEUDO_MAP_IDX_VALUE:
    case BPF_PSEUDO_MAP_VALUE:
      markRegPointer(dst, PTR_TO_MAP_VALUE);
      dst.map = env.maps[insn.imm] ?? null;
      dst.off = insn.imm2;
      return;
    case BPF_PSEUDO_FUNC:
      markRegPointer(dst, PTR_TO_FUNC);
      dst.subprogno = findSubprog(
        env.layout.subprogs,
        env.insnIdx + insn.imm + 1,
      );
      return;
    default:
      // __ksym variables: their BTF types are not modelled
      markRegUnknown(dst);
  }
}

// mirrors check_ld_abs()
function checkLdAbs(
  env: Env,
  insn: Insn & { kind: "ld_abs" | "ld_ind" },
): void {
  const t = env.progType;
  if (t !== "socket_filter" && t !== "sched_cls" && t !== "sched_act") {
    env.fail(
      EINVAL,
      "BPF_LD_[ABS|IND] instructions not allowed for this program type",
    );
  }
  const ctx = checkRegArg(env, 6, "src");
  if (insn.kind === "ld_ind") checkRegArg(env, insn.src, "src");
  if (ctx.type !== PTR_TO_CTX) {
    env.fail(EINVAL, "at the time of BPF_LD_ABS|IND R6 != pointer to skb");
  }
  const regs = curFrame(env.cur).regs;
  for (const r of [0, 1, 2, 3, 4, 5]) {
    markRegNotInit(regs[r]);
    checkRegArg(env, r, "dst_no_mark");
  }
  markRegUnknown(regs[0]);
}

/** One instruction (mirrors `do_check_insn()`); returns the next slot. */
function doCheckInsn(env: Env, insn: Insn, idx: number): number {
  if (insn.kind !== "jcond") {
    const err = encodingFieldError(insn);
    if (err) env.fail(EINVAL, err);
  }
  switch (insn.kind) {
    case "alu":
      checkAluOp(env, insn);
      return idx + 1;
    case "endian":
      checkEndian(env, insn);
      return idx + 1;
    case "ldx":
      checkLoad(env, insn);
      return idx + 1;
    case "st":
    case "stx":
      checkStore(env, insn);
      return idx + 1;
    case "atomic":
      checkAtomic(env, insn);
      return idx + 1;
    case "ld_imm64":
      checkLdImm(env, insn);
      return idx + 2;
    case "ld_abs":
    case "ld_ind":
      checkLdAbs(env, insn);
      if (env.cur.curframe) {
        return abnormalSubprogExit(env, idx, (r0) => markRegKnown(r0, 0n));
      }
      return idx + 1;
    case "ld_imm64_hi":
      env.fail(EINVAL, `invalid BPF_LD_IMM insn`);
      break;
    case "ja":
      env.jmpsProcessed++;
      return insn.target;
    case "may_goto": {
      // the fall-through is queued one level deeper, its imprecise scalars
      // widened against the previous trip so the loop converges
      env.jmpsProcessed++;
      const prev = prevTrip(env.cur, idx);
      const queued = env.pushStack(idx + 1, idx);
      queued.loopDepth++;
      if (prev) widenImpreciseScalars(prev, queued);
      return insn.target;
    }
    case "jcond":
      env.jmpsProcessed++;
      return checkCondJmp(env, insn, idx);
    case "call":
      env.jmpsProcessed++;
      // do_check(): under a bpf_spin_lock only bpf_spin_unlock may be called
      // (kfuncs: the graph ones, checked in checkKfuncCall)
      if (
        env.cur.activeLocks && insn.callee === "helper" &&
        insn.imm !== BPF_FUNC_SPIN_UNLOCK
      ) env.fail(EINVAL, "function calls are not allowed while holding a lock");
      if (insn.callee === "helper") return checkHelperCall(env, insn, idx);
      if (insn.callee === "local") {
        const callee = findSubprog(env.layout.subprogs, insn.target);
        if (callee >= 0 && env.isGlobal(callee)) {
          markGlobalArgStackReads(env, callee);
        }
        return checkFuncCall(env, insn, idx, env.isGlobal, env.funcName);
      }
      if (insn.callee === "kfunc") return checkKfuncCall(env, insn, idx);
      env.fail(EINVAL, `unknown opcode ${insn.code.toString(16)}`);
      break;
    case "exit":
      env.jmpsProcessed++;
      if (env.cur.curframe) {
        env.doPrintState = true;
        updateLiveStack(env);
        return prepareFuncExit(env);
      }
      checkResourceLeak(env, "BPF_EXIT instruction in main prog");
      checkReturnCode(env);
      return PROCESS_BPF_EXIT;
  }
  env.fail(EFAULT, `verifier bug: unhandled insn ${idx}`);
}

// the level-1 line for one instruction (do_check()'s printing block)
function logInsn(env: Env, insn: Insn, idx: number): void {
  const log = env.log;
  if (log.level >= 2 && env.doPrintState) {
    log.write(`\nfrom ${env.prevInsnIdx} to ${idx}:`);
    printVerifierState(log, env.cur, env.cur.curframe, true);
    env.doPrintState = false;
  }
  if (log.isScratched()) printInsnState(log, env.cur, idx);
  printLineInfo(log, env.prog.lineInfo, idx);
  log.prevLogPos = log.endPos;
  log.write(formatInsn(insn, idx, { immName: mapAddress }) + "\n");
  log.prevInsnPrintPos = log.endPos - log.prevLogPos;
  log.prevLogPos = log.endPos;
}

/** Mirrors `do_check()`: explores every path from `env.cur`. */
export function doCheck(env: Env): void {
  const insns = env.insns;
  for (;;) {
    const idx = env.insnIdx;
    if (idx < 0 || idx >= insns.length) {
      env.fail(EFAULT, `invalid insn idx ${idx} insn_cnt ${insns.length}`);
    }
    const insn = insns[idx];
    if (++env.insnProcessed > BPF_COMPLEXITY_LIMIT_INSNS) {
      env.fail(
        E2BIG,
        `BPF program is too large. Processed ${env.insnProcessed} insn`,
      );
    }
    env.cur.insnIdx = idx;
    env.cur.lastInsnIdx = env.prevInsnIdx;
    let exit = false;
    if (env.aux.isPrunePoint(idx) && isStateVisited(env, idx)) {
      if (env.log.level) {
        env.log.write(
          env.doPrintState
            ? `\nfrom ${env.prevInsnIdx} to ${idx}: safe\n`
            : `${idx}: safe\n`,
        );
      }
      exit = true;
    }
    if (!exit) {
      if (env.aux.isJmpPoint(idx)) pushJmpHistory(env, env.cur, 0, null);
      if (env.log.level) logInsn(env, insn, idx);
      env.aux.seen[idx] = 1;
      const pending = precisionBefore(env, insn);
      const depth = env.cur.curframe;
      resetStackWriteMarks(env, idx);
      const next = doCheckInsn(env, insn, idx);
      // entering a static function drops the call's marks, as the kernel's
      // check_func_call() does by resetting the call chain
      if (insn.kind === "call" && env.cur.curframe > depth) {
        resetLiveStackCallchain(env);
      }
      commitStackWriteMarks(env);
      precisionAfter(env, pending);
      if (insn.kind === "jcond") addTrail(env.cur, idx, next);
      if (next !== PROCESS_BPF_EXIT) {
        env.prevInsnIdx = idx;
        env.insnIdx = next;
        continue;
      }
    }
    // process_bpf_exit: this path is done, resume the next queued branch
    env.log.scratchAll();
    updateBranchCounts(env, env.cur);
    updateLiveStack(env);
    const elem = env.stack.pop();
    if (!elem) return;
    if (env.log.level === 1) env.log.reset(elem.logPos);
    env.cur = elem.state;
    env.insnIdx = elem.insnIdx;
    env.prevInsnIdx = elem.prevInsnIdx;
    env.doPrintState = true;
  }
}

/**
 * Mirrors `do_check_common()`: verifies function `subprog` from a fresh
 * state (`initArgs` sets R1–R5), rewinding the level-1 log on success.
 */
export function doCheckCommon(
  env: Env,
  subprog: number,
  initArgs: ArgInit,
): void {
  logLiveRegs(env);
  const start = env.log.endPos;
  env.log.prevLinfo = "";
  const frame = newFuncState(0, -1, subprog);
  initArgs(frame.regs);
  const state = newVerifierState(frame, env.layout.subprogs[subprog].start);
  env.cur = state;
  env.insnIdx = state.insnIdx;
  env.prevInsnIdx = -1;
  env.doPrintState = false;
  env.stack.length = 0;
  env.explored.clear();
  env.liveStates = 0;
  env.log.scratchAll();
  resetLiveStackCallchain(env);
  doCheck(env);
  if (env.log.level === 1) env.log.reset(start);
}

/** The main program starts with R1 = ctx. */
export const MAIN_ARGS: ArgInit = (regs) => markRegPointer(regs[1], PTR_TO_CTX);
