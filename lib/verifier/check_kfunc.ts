/**
 * Kfunc calls: `check_kfunc_call()` for the allocated-object, list, rb-tree,
 * refcount, RCU and preemption kfuncs — availability per program type, the
 * lock rules, arguments (kfunc_args.ts), releasing and converting references,
 * and the type of R0 (owning, non-owning, maybe NULL). What the kernel's
 * `fixup_kfunc_call()` later needs (object size, struct meta, node offset)
 * is kept per instruction in `env.kfuncAux`.
 * @module
 */
import type { CallInsn } from "../isa/insn.ts";
import { KFUNC_ALIASES, kfuncName } from "../kernel/kfunc_ids.ts";
import type { BtfType } from "../btf/types.ts";
import { checkRegArg } from "./check_alu.ts";
import { EACCES, EFAULT, EINVAL, type Env } from "./env.ts";
import {
  refConvertOwningNonOwning,
  refSetNonOwning,
  regMayPointToSpinLock,
  releaseReference,
} from "./graph_state.ts";
import { checkKfuncArgs, type KfuncMeta } from "./kfunc_args.ts";
import { pushRbtreeLessCallback } from "./callbacks.ts";
import {
  KF_ACQUIRE,
  KF_RET_NULL,
  kfuncAllowed,
  type KfuncDesc,
  KFUNCS,
  kfuncSpinAllowed,
} from "./kfunc_table.ts";
import {
  markRegNotInit,
  markRegPointer,
  markRegUnknown,
  type RegState,
} from "./reg_state.ts";
import {
  MEM_ALLOC,
  MEM_PERCPU,
  MEM_RDONLY,
  PTR_MAYBE_NULL,
  PTR_TO_BTF_ID,
  PTR_TO_MEM,
} from "./reg_types.ts";
import { processIterNextCall } from "./iter.ts";
import { addTrail, curFrame, prevTrip } from "./state.ts";

/** `BPF_GLOBAL_PERCPU_MA_MAX_SIZE`: the largest per-CPU object. */
export const BPF_GLOBAL_PERCPU_MA_MAX_SIZE = 512;

/** What `fixup_kfunc_call()` needs from verification, per call slot. */
export interface KfuncAux {
  /** The kfunc's name. */
  readonly name: string;
  /** `obj_new_size`: the object's size for obj_new. */
  objNewSize: number;
  /** Type id whose struct meta is passed (`kptr_struct_meta`), 0 for none. */
  structMetaId: number;
  /** `insert_off`: the node's offset in the object for push/add. */
  insertOff: number;
}

function aux(env: Env, idx: number, name: string): KfuncAux {
  let a = env.kfuncAux.get(idx);
  if (!a) {
    a = { name, objNewSize: 0, structMetaId: 0, insertOff: 0 };
    env.kfuncAux.set(idx, a);
  }
  return a;
}

// btf_find_struct_meta(): the type id, when that type has special fields
function structMetaOf(env: Env, typeId: number): number {
  return env.progBtf?.metas.has(typeId) ? typeId : 0;
}

// __btf_type_is_scalar_struct()
function isScalarStruct(env: Env, t: BtfType, depth: number): boolean {
  if (t.kind !== "STRUCT") return false;
  const btf = env.progBtf!.btf;
  for (const m of t.members) {
    let mt = btf.resolve(m.type).type;
    if (mt.kind === "STRUCT") {
      if (depth >= 3) {
        env.log.write("max struct nesting depth exceeded\n");
        return false;
      }
      if (!isScalarStruct(env, mt, depth + 1)) return false;
      continue;
    }
    if (mt.kind === "ARRAY") {
      if (!mt.nelems) return false;
      mt = btf.resolve(mt.type).type;
    }
    if (mt.kind !== "INT" && mt.kind !== "ENUM" && mt.kind !== "ENUM64") {
      return false;
    }
  }
  return true;
}

// the obj_new / percpu_obj_new arm of check_kfunc_call()'s return handling
function objNewResult(env: Env, meta: KfuncMeta, r0: RegState, a: KfuncAux) {
  const percpu = meta.k.name === "bpf_percpu_obj_new_impl";
  const value = meta.constant ?? 0n;
  if (BigInt.asUintN(32, value) !== value) {
    env.fail(EINVAL, "local type ID argument must be in range [0, U32_MAX]");
  }
  const pb = env.progBtf;
  if (!pb) {
    env.fail(EINVAL, "bpf_obj_new/bpf_percpu_obj_new requires prog BTF");
  }
  const id = Number(value);
  const t = id > 0 && id < pb.btf.typeCount ? pb.btf.typeById(id) : null;
  if (!t || (t.kind !== "STRUCT")) {
    env.fail(
      EINVAL,
      "bpf_obj_new/bpf_percpu_obj_new type ID argument must be of a struct",
    );
  }
  if (percpu && t.size > BPF_GLOBAL_PERCPU_MA_MAX_SIZE) {
    env.fail(
      EINVAL,
      `bpf_percpu_obj_new type size (${t.size}) is greater than ${BPF_GLOBAL_PERCPU_MA_MAX_SIZE}`,
    );
  }
  const metaId = structMetaOf(env, id);
  if (percpu) {
    if (!isScalarStruct(env, t, 0)) {
      env.fail(
        EINVAL,
        "bpf_percpu_obj_new type ID argument must be of a struct of scalars",
      );
    }
    if (metaId) {
      env.fail(
        EINVAL,
        "bpf_percpu_obj_new type ID argument must not contain special fields",
      );
    }
  }
  markBtfPtr(
    r0,
    PTR_TO_BTF_ID | MEM_ALLOC | (percpu ? MEM_PERCPU : 0),
    env,
    id,
  );
  a.objNewSize = t.size;
  a.structMetaId = metaId;
}

/** A pointer to type `btfId` of the program's BTF (`mark_reg_known_zero()` + btf). */
export function markBtfPtr(
  r: RegState,
  type: number,
  env: Env,
  btfId: number,
): void {
  markRegPointer(r, type);
  r.btf = env.progBtf;
  r.btfId = btfId;
  r.btfName = env.progBtf?.btf.typeById(btfId).name ?? "";
}

// check_kfunc_call()'s "Check return type" block for pointer returns
function pointerResult(env: Env, meta: KfuncMeta, r0: RegState, a: KfuncAux) {
  const k = meta.k;
  if (k.name === "bpf_obj_new_impl" || k.name === "bpf_percpu_obj_new_impl") {
    objNewResult(env, meta, r0, a);
  } else if (k.name === "bpf_refcount_acquire_impl") {
    markBtfPtr(r0, PTR_TO_BTF_ID | MEM_ALLOC, env, meta.argBtfId);
    a.structMetaId = structMetaOf(env, meta.argBtfId);
  } else {
    // mark_reg_graph_node(): the element the root holds, at its node
    const root = meta.rootField?.graphRoot;
    if (!root) env.fail(EFAULT, "verifier internal error: no graph root");
    markBtfPtr(r0, PTR_TO_BTF_ID | MEM_ALLOC, env, root.valueBtfId);
    r0.off = root.nodeOffset;
  }
  const retNull = (k.flags & KF_RET_NULL) !== 0 &&
    !(k.name === "bpf_refcount_acquire_impl" && meta.argOwningRef);
  if (retNull) {
    r0.type |= PTR_MAYBE_NULL;
    r0.id = env.newId();
  }
  if (k.flags & KF_ACQUIRE) {
    const id = env.newId();
    env.cur.refs.push({
      type: "ptr",
      id,
      insnIdx: env.insnIdx,
      what: `struct ${r0.btfName} from ${meta.calledName}`,
    });
    addTrail(env.cur, env.insnIdx, env.insnIdx, [], `acquire:${id}`);
    if (retNull) r0.id = id;
    r0.refObjId = id;
  } else if (k.ret === "list_node" || k.ret === "rb_node") {
    refSetNonOwning(env, r0);
  }
  if (regMayPointToSpinLock(r0) && !r0.id) r0.id = env.newId();
}

// the active_rcu_lock / active_preempt_lock block of check_kfunc_call()
function rcuAndPreempt(env: Env, name: string): void {
  const vs = env.cur;
  if (vs.activeRcuLock) {
    if (name === "bpf_rcu_read_lock") {
      env.fail(EINVAL, `nested rcu read lock (kernel function ${name})`);
    }
    if (name === "bpf_rcu_read_unlock") vs.activeRcuLock = false;
  } else if (name === "bpf_rcu_read_lock") vs.activeRcuLock = true;
  else if (name === "bpf_rcu_read_unlock") {
    env.fail(EINVAL, `unmatched rcu read unlock (kernel function ${name})`);
  }
  if (name === "bpf_preempt_disable") vs.activePreemptLocks++;
  else if (name === "bpf_preempt_enable") {
    if (!vs.activePreemptLocks) {
      env.fail(
        EINVAL,
        `unmatched attempt to enable preemption (kernel function ${name})`,
      );
    }
    vs.activePreemptLocks--;
  }
}

/** The kfunc a call names, or a refusal worded like the kernel's. */
export function lookupKfunc(env: Env, insn: CallInsn): KfuncDesc {
  const name = insn.off === 0 ? kfuncName(insn.imm >>> 0) : undefined;
  if (name === undefined) {
    env.fail(EINVAL, `kernel btf_id ${insn.imm >>> 0} is not a function`);
  }
  const k = KFUNCS.get(KFUNC_ALIASES.get(name) ?? name);
  if (!k) {
    env.fail(EINVAL, `kernel function ${name} is not modelled by bpfsim`);
  }
  return k;
}

/** Mirrors `check_kfunc_call()`; returns the next slot. */
export function checkKfuncCall(env: Env, insn: CallInsn, idx: number): number {
  const k = lookupKfunc(env, insn);
  if (env.cur.activeLocks && !kfuncSpinAllowed(k.name)) {
    env.fail(EINVAL, "function calls are not allowed while holding a lock");
  }
  if (!kfuncAllowed(k, env.progType)) {
    env.fail(EACCES, `calling kernel function ${k.name} is not allowed`);
  }
  const a = aux(env, idx, k.name);
  const meta = checkKfuncArgs(env, k);
  meta.calledName = kfuncName(insn.imm >>> 0) ?? k.name;
  if (k.name === "bpf_rbtree_add_impl") {
    pushRbtreeLessCallback(env, idx, meta.callbackSubprog, meta.rootField!);
  }
  rcuAndPreempt(env, k.name);
  const regs = curFrame(env.cur).regs;
  const id = insn.imm >>> 0;
  if (meta.releaseRegno) {
    if (!releaseReference(env, regs[meta.releaseRegno].refObjId)) {
      env.fail(
        EINVAL,
        `kfunc ${k.name}#${id} reference has not been acquired before`,
      );
    }
  }
  if (
    k.name === "bpf_list_push_front_impl" ||
    k.name === "bpf_list_push_back_impl" || k.name === "bpf_rbtree_add_impl"
  ) {
    const ref = regs[2].refObjId;
    a.insertOff = regs[2].off;
    a.structMetaId = structMetaOf(env, meta.argBtfId);
    refConvertOwningNonOwning(env, ref);
    if (!releaseReference(env, ref)) {
      env.fail(
        EINVAL,
        `kfunc ${k.name}#${id} reference has not been acquired before`,
      );
    }
  }
  if (k.name === "bpf_obj_drop_impl" || k.name === "bpf_percpu_obj_drop_impl") {
    a.structMetaId = structMetaOf(env, meta.argBtfId);
  }
  for (const r of [0, 1, 2, 3, 4, 5]) {
    markRegNotInit(regs[r]);
    checkRegArg(env, r, "dst_no_mark");
  }
  if (k.ret === "scalar") markRegUnknown(regs[0]);
  else if (k.ret === "rdonly_int_ptr") {
    // a kfunc returning `int *`: 4 read-only bytes, maybe NULL
    markRegPointer(regs[0], PTR_TO_MEM | MEM_RDONLY | PTR_MAYBE_NULL);
    regs[0].memSize = 4;
    regs[0].id = env.newId();
  } else if (k.ret !== "void") pointerResult(env, meta, regs[0], a);
  if (k.iter?.op === "next") {
    processIterNextCall(env, idx, meta.iterSlot!, prevTrip(env.cur, idx));
  }
  return idx + 1;
}
