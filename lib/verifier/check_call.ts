/**
 * Calls: helper calls (`check_helper_call()` with `check_func_arg()` for the
 * argument kinds of helper_protos.ts, the return type, references acquired
 * and released, caller-saved registers), bpf-to-bpf calls
 * (`check_func_call()` / `setup_func_entry()` and `prepare_func_exit()`).
 * Kfunc calls are in check_kfunc.ts.
 * @module
 */
import { updateLiveStack } from "./stack_liveness.ts";
import type { CallInsn } from "../isa/insn.ts";
import { helperName } from "../isa/helper_ids.ts";
import { checkRegArg } from "./check_alu.ts";
import { E2BIG, EFAULT, EINVAL, ENOTSUPP, type Env } from "./env.ts";
import { checkGetFuncIp, resolveHelperCall } from "./helper_protos.ts";
import {
  assignReg,
  markRegNotInit,
  markRegPointer,
  markRegUnknown,
  registerIsNull,
  type RegState,
} from "./reg_state.ts";
import {
  MEM_ALLOC,
  MEM_PERCPU,
  MEM_RCU,
  MEM_RDONLY,
  MEM_RINGBUF,
  PTR_MAYBE_NULL,
  PTR_TO_BTF_ID,
  PTR_TO_MAP_VALUE,
  PTR_TO_MEM,
  PTR_TO_PACKET_END,
  PTR_TO_SOCK_COMMON,
  PTR_TO_SOCKET,
  PTR_TO_STACK,
  PTR_TO_TCP_SOCK,
  PTR_TRUSTED,
  SCALAR_VALUE,
  typeIsPktPointer,
} from "./reg_types.ts";
import { addTrail, curFrame, findPrevEntry, newFuncState } from "./state.ts";
import { findSubprog, MAX_CALL_FRAMES } from "./subprogs.ts";
import { printVerifierState } from "./log.ts";
import { checkMapFuncCompatibility } from "./map_compat.ts";
import { regBoundsSync } from "./bounds_sync.ts";
import { releaseReference } from "./graph_state.ts";
import { pushHelperCallback } from "./callbacks.ts";
import { releaseDynptr } from "./dynptr.ts";
import { checkRetvalRange } from "./exit.ts";
import { widenImpreciseScalars } from "./iter.ts";
import {
  BPF_KPTR_PERCPU,
  BPF_SPIN_LOCK,
  recordHasField,
} from "../btf/field_types.ts";

import {
  type CallMeta,
  checkFuncArg,
  FALLBACK_PROTOS,
} from "./check_func_arg.ts";
const BPF_FUNC_GET_SMP_PROCESSOR_ID = 8;
/** `nr_cpu_ids` of the machine the oracle runs on (2 CPUs). */
const NR_CPU_IDS = 2;
const BPF_MAP_TYPE_ARRAY = 2;
const BPF_MAP_TYPE_PERCPU_ARRAY = 6;
const BPF_FUNC_KPTR_XCHG = 194;
const BPF_FUNC_GET_FUNC_IP = 173;
const BPF_FUNC_GET_LOCAL_STORAGE = 81;
const BPF_FUNC_TAIL_CALL = 12;
/** What prepareFuncExit returns when a callback's path ends (do_check's PROCESS_BPF_EXIT). */
const CALLBACK_DONE = -1;

// mirrors bpf_helper_changes_pkt_data()
const CHANGES_PKT_DATA = new Set([
  9,
  10,
  11,
  13,
  18,
  19,
  31,
  32,
  38,
  39,
  43,
  44,
  50,
  54,
  63,
  65,
  73,
  74,
  75,
  76,
  90,
  91,
  143,
]);

// mirrors clear_all_pkt_pointers(): a privileged loader's stale packet
// pointers become unknown scalars (mark_reg_invalid())
function clearAllPktPointers(env: Env): void {
  for (const f of env.cur.frames) {
    for (const r of f.regs) {
      if (typeIsPktPointer(r.type) || r.type === PTR_TO_PACKET_END) {
        markRegUnknown(r);
      }
    }
    for (const s of f.stack) {
      const r = s.spilled;
      if (typeIsPktPointer(r.type) || r.type === PTR_TO_PACKET_END) {
        markRegUnknown(r);
      }
    }
  }
}

const ACQUIRE_HELPERS = new Set([84, 85, 99, 131, 194]);
const RET_TYPES: Record<string, number> = {
  RET_PTR_TO_SOCKET: PTR_TO_SOCKET,
  RET_PTR_TO_TCP_SOCK: PTR_TO_TCP_SOCK,
  RET_PTR_TO_SOCK_COMMON: PTR_TO_SOCK_COMMON,
  RET_PTR_TO_MEM: PTR_TO_MEM,
  RET_PTR_TO_MEM_OR_BTF_ID: PTR_TO_MEM,
  RET_PTR_TO_BTF_ID: PTR_TO_BTF_ID,
};

/** Mirrors `check_helper_call()`; returns the next slot. */
export function checkHelperCall(env: Env, insn: CallInsn, idx: number): number {
  const id = insn.imm;
  const name = helperName(id);
  const res = resolveHelperCall(env.progType, id, {
    gplCompatible: env.gplCompatible,
    sleepable: (env.prog.progFlags & (1 << 4)) !== 0,
    attachType: env.prog.expectedAttachType ?? undefined,
    // a struct_ops program's attach_func_name is its member's name
    attachTarget: env.prog.structOps?.member ?? env.prog.attachTarget ??
      undefined,
  });
  const p = res.ok ? res.proto : FALLBACK_PROTOS[id];
  if (!p) {
    env.fail(EINVAL, res.ok ? `unknown func ${name}#${id}` : res.message);
  }
  const meta: CallMeta = {
    mapRegno: -1,
    constMapKey: -1n,
    rawRegno: -1,
    rawSize: 0,
    releaseRegno: -1,
    memSize: 0,
  };
  for (let i = 0; i < p.args.length; i++) checkFuncArg(env, p, i, meta);
  pushHelperCallback(env, idx, id);
  const regs = curFrame(env.cur).regs;
  if (meta.releaseRegno >= 0 && meta.releaseDynptr) {
    releaseDynptr(env, meta.releaseRegno);
  } else if (meta.releaseRegno >= 0) {
    const rel = regs[meta.releaseRegno];
    if (rel.refObjId) {
      if (!releaseReference(env, rel.refObjId)) {
        env.fail(
          EINVAL,
          `func ${name}#${id} reference has not been acquired before`,
        );
      }
    } else if (!(rel.type === SCALAR_VALUE)) {
      env.fail(
        EINVAL,
        `R${meta.releaseRegno} must be referenced when passed to release function`,
      );
    }
  }
  // get_local_storage() cannot return an error, so it takes no flags
  if (id === BPF_FUNC_GET_LOCAL_STORAGE && !registerIsNull(regs[2])) {
    env.fail(EINVAL, "get_local_storage() doesn't support non-zero flags");
  }
  const map = meta.mapRegno >= 0 ? regs[meta.mapRegno].map : null;
  if (map) {
    const err = checkMapFuncCompatibility(map.typeId, id, {
      progType: env.progType,
      attachType: env.prog.expectedAttachType ?? undefined,
    });
    if (err) env.fail(EINVAL, err);
  }
  for (const r of [0, 1, 2, 3, 4, 5]) {
    markRegNotInit(regs[r]);
    checkRegArg(env, r, "dst_no_mark");
  }
  if (id === BPF_FUNC_GET_FUNC_IP) {
    const err = checkGetFuncIp(env.progType, {
      attachType: env.prog.expectedAttachType ?? undefined,
    });
    if (err) env.fail(ENOTSUPP, err);
  }
  if (CHANGES_PKT_DATA.has(id)) clearAllPktPointers(env);
  const r0 = regs[0];
  const maybeNull = p.ret.flags.includes("PTR_MAYBE_NULL");
  switch (p.ret.base) {
    case "RET_INTEGER":
      markRegUnknown(r0);
      if (id === BPF_FUNC_GET_SMP_PROCESSOR_ID) {
        // do_refine_retval_range(): a CPU number is below nr_cpu_ids
        r0.s.umax = r0.s.smax = BigInt(NR_CPU_IDS - 1);
        r0.s.u32Max = r0.s.s32Max = NR_CPU_IDS - 1;
        r0.s.smin = 0n;
        r0.s.s32Min = 0;
        regBoundsSync(r0.s);
      }
      break;
    case "RET_VOID":
      break;
    case "RET_PTR_TO_MAP_VALUE": {
      if (!map) env.fail(EFAULT, "verifier bug: unexpected null map_ptr");
      let nullable = maybeNull;
      if (
        id === 1 && meta.constMapKey >= 0n &&
        meta.constMapKey < BigInt(map.maxEntries) &&
        (map.typeId === BPF_MAP_TYPE_ARRAY ||
          map.typeId === BPF_MAP_TYPE_PERCPU_ARRAY)
      ) nullable = false;
      markRegPointer(r0, PTR_TO_MAP_VALUE | (nullable ? PTR_MAYBE_NULL : 0));
      r0.map = map;
      // a value holding a bpf_spin_lock gets an id: it names the lock
      if (nullable || recordHasField(map.record ?? null, BPF_SPIN_LOCK)) {
        r0.id = env.newId();
      }
      break;
    }
    default: {
      const t = RET_TYPES[p.ret.base];
      if (t === undefined) {
        markRegUnknown(r0);
        break;
      }
      let flags = maybeNull ? PTR_MAYBE_NULL : 0;
      if (p.ret.flags.includes("MEM_RINGBUF")) flags |= MEM_RINGBUF;
      if (p.ret.flags.includes("MEM_RDONLY")) flags |= MEM_RDONLY;
      if (p.ret.flags.includes("PTR_TRUSTED")) flags |= PTR_TRUSTED;
      if (p.ret.flags.includes("MEM_RCU")) flags |= MEM_RCU;
      if (p.ret.flags.includes("MEM_PERCPU")) flags |= MEM_PERCPU;
      markRegPointer(r0, t | flags);
      r0.memSize = meta.memSize;
      const from = meta.retBtfFrom;
      if (p.ret.base === "RET_PTR_TO_MEM_OR_BTF_ID" && from?.btf) {
        // a per-CPU object's own copy: an RCU-protected allocated object
        r0.type = from.type & MEM_RCU
          ? PTR_TO_BTF_ID | MEM_ALLOC | MEM_RCU
          : PTR_TO_BTF_ID | (flags & ~MEM_RDONLY);
        r0.btf = from.btf;
        r0.btfId = from.btfId;
        r0.btfName = from.btfName;
      }
      if (id === BPF_FUNC_KPTR_XCHG && meta.kptrField) {
        // the kptr's type; a program-BTF type is an allocated object
        const field = meta.kptrField;
        r0.btfId = field.kptr?.btfId ?? 0;
        r0.btf = env.progBtf;
        r0.btfName = env.progBtf && r0.btfId
          ? env.progBtf.btf.typeById(r0.btfId).name
          : "";
        if (!field.kptr?.kernel) {
          r0.type |= MEM_ALLOC;
          if (field.type === BPF_KPTR_PERCPU) r0.type |= MEM_PERCPU;
        }
      }
      // an id for the NULL check, when the final type may be NULL
      if (r0.type & PTR_MAYBE_NULL) r0.id = env.newId();
      if (ACQUIRE_HELPERS.has(id)) {
        const refId = env.newId();
        env.cur.refs.push({
          type: "ptr",
          id: refId,
          insnIdx: idx,
          what: `${
            r0.btfName ? `struct ${r0.btfName}` : "the pointer"
          } from ${name}`,
        });
        addTrail(env.cur, idx, idx, [], `acquire:${refId}`);
        r0.id = refId;
        r0.refObjId = refId;
      }
    }
  }
  // a tail call from a subprogram that succeeds never comes back: the
  // subprogram returns to its caller, R0 unknown, packet pointers stale
  if (id === BPF_FUNC_TAIL_CALL && env.cur.curframe) {
    return abnormalSubprogExit(env, idx, (reg) => {
      clearAllPktPointers(env);
      markRegUnknown(reg);
    });
  }
  return idx + 1;
}

/**
 * Mirrors `check_func_call()` for a static function: a new frame with
 * R1–R5 copied; returns the callee's first slot. Global functions are
 * assumed valid here and verified on their own (see do_check.ts).
 */
export function checkFuncCall(
  env: Env,
  insn: CallInsn,
  idx: number,
  isGlobal: (subprog: number) => boolean,
  funcName: (subprog: number) => string,
): number {
  const subprog = findSubprog(env.layout.subprogs, insn.target);
  if (subprog < 0) {
    env.fail(
      EFAULT,
      `verifier bug: target of func call at insn ${insn.target} is not a program`,
    );
  }
  const vs = env.cur;
  const caller = curFrame(vs);
  if (isGlobal(subprog)) {
    if (vs.activeLocks) {
      env.fail(
        EINVAL,
        "global function calls are not allowed while holding a lock,\nuse static function instead",
      );
    }
    if (env.log.level) {
      env.log.write(
        `Func#${subprog} ('${
          funcName(subprog)
        }') is global and assumed valid.\n`,
      );
    }
    env.calledGlobals.add(subprog);
    for (const r of [0, 1, 2, 3, 4, 5]) {
      markRegNotInit(caller.regs[r]);
      checkRegArg(env, r, "dst_no_mark");
    }
    markRegUnknown(caller.regs[0]);
    return idx + 1;
  }
  if (vs.curframe + 1 >= MAX_CALL_FRAMES) {
    env.fail(E2BIG, `the call stack of ${vs.curframe + 2} frames is too deep`);
  }
  const callee = newFuncState(vs.curframe + 1, idx, subprog);
  for (let i = 1; i <= 5; i++) assignReg(callee.regs[i], caller.regs[i]);
  vs.frames.push(callee);
  vs.curframe++;
  for (const r of [0, 1, 2, 3, 4, 5]) {
    markRegNotInit(caller.regs[r]);
    env.log.scratchReg(r);
  }
  env.log.scratchAll();
  if (env.log.level) {
    env.log.write("caller:\n");
    printVerifierState(env.log, vs, caller.frameno, true);
    env.log.write("callee:\n");
    printVerifierState(env.log, vs, vs.curframe, true);
  }
  return env.layout.subprogs[subprog].start;
}

/**
 * The abnormal return of a subprogram (check_ld_abs(), check_helper_call()):
 * a load past the packet (`bpf_gen_ld_abs()`'s hidden `exit` with R0 = 0)
 * or a tail call that succeeds leaves the subprogram at once. The normal
 * path is queued; this one returns to the caller with R0 as `r0` sets it.
 * Returns the slot after the caller's call.
 */
export function abnormalSubprogExit(
  env: Env,
  idx: number,
  r0: (reg: RegState) => void,
): number {
  env.pushStack(idx + 1, idx);
  r0(curFrame(env.cur).regs[0]);
  updateLiveStack(env);
  return prepareFuncExit(env);
}

/** Mirrors `prepare_func_exit()`; returns the slot after the call. */
export function prepareFuncExit(env: Env): number {
  const vs = env.cur;
  const callee = curFrame(vs);
  const r0 = callee.regs[0];
  if (callee.inCallbackFn) {
    // the callback's R0 must lie in callback_ret_range
    checkRegArg(env, 0, "src");
    if (r0.type !== SCALAR_VALUE) {
      env.fail(EINVAL, "R0 not a scalar value");
    }
    checkRetvalRange(env, r0, callee.callbackRetRange, "At callback return");
    if (!callee.callbackLoops) return CALLBACK_DONE;
    // back to the call (prepare_func_exit()): it queues the next visit of
    // the callback; is_state_visited() ends the loop when states converge
    vs.frames.pop();
    vs.curframe--;
    env.log.scratchAll();
    // widen imprecise scalars against the previous visit of the call, so
    // callbacks counting in their context converge (prepare_func_exit())
    const prev = findPrevEntry(vs.parent, callee.callsite, vs);
    if (prev) widenImpreciseScalars(prev, vs);
    return callee.callsite;
  }
  if (r0.type === PTR_TO_STACK) {
    env.fail(EINVAL, "cannot return stack pointer to the caller");
  }
  const caller = vs.frames[vs.curframe - 1];
  assignReg(caller.regs[0], r0);
  const next = callee.callsite + 1;
  if (env.log.level) {
    env.log.write("returning from callee:\n");
    printVerifierState(env.log, vs, callee.frameno, true);
    env.log.write(`to caller at ${next}:\n`);
    printVerifierState(env.log, vs, caller.frameno, true);
  }
  vs.frames.pop();
  vs.curframe--;
  return next;
}
