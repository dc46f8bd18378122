/**
 * Lock and ownership state for allocated objects and the graphs they live
 * in: the special-field record behind a pointer (`reg_btf_record()`), the
 * held bpf_spin_lock and its identity (`process_spin_lock()`,
 * `check_reg_allocation_locked()`), owning references turning non-owning on
 * push and dying at unlock (`ref_convert_owning_non_owning()`,
 * `invalidate_non_owning_refs()`), and `release_reference()`.
 * @module
 */
import {
  BPF_GRAPH_NODE,
  BPF_SPIN_LOCK,
  type BtfRecord,
  recordHasField,
} from "../btf/field_types.ts";
import { EFAULT, EINVAL, type Env } from "./env.ts";
import { markRegUnknown, type RegState } from "./reg_state.ts";
import {
  BASE_TYPE_MASK,
  baseType,
  MEM_ALLOC,
  MEM_RCU,
  NON_OWN_REF,
  PTR_TO_BTF_ID,
  PTR_TO_MAP_VALUE,
  PTR_TRUSTED,
} from "./reg_types.ts";
import { addTrail, curFrame, type VerifierState } from "./state.ts";
import { forEachReg } from "./check_jmp.ts";

/** `type_is_alloc()`: the pointer is to a program-allocated object. */
export function typeIsAlloc(type: number): boolean {
  return (type & MEM_ALLOC) !== 0;
}

/** `type_is_ptr_alloc_obj()`. */
export function typeIsPtrAllocObj(type: number): boolean {
  return baseType(type) === PTR_TO_BTF_ID && typeIsAlloc(type);
}

/** `type_is_non_owning_ref()`. */
export function typeIsNonOwningRef(type: number): boolean {
  return typeIsPtrAllocObj(type) && (type & NON_OWN_REF) !== 0;
}

/** Mirrors `is_trusted_reg()`: referenced, or only trusted modifiers. */
export function isTrustedReg(reg: RegState): boolean {
  if (reg.refObjId) return true;
  const flags = reg.type & ~BASE_TYPE_MASK;
  const trusted = MEM_ALLOC | PTR_TRUSTED | NON_OWN_REF;
  return (flags & trusted) !== 0 && (flags & ~trusted) === 0;
}

/** Mirrors `reg_btf_record()`: the special fields of what `reg` points to. */
export function regBtfRecord(reg: RegState): BtfRecord | null {
  if (reg.type === PTR_TO_MAP_VALUE) return reg.map?.record ?? null;
  if (typeIsPtrAllocObj(reg.type) && reg.btf) {
    return reg.btf.metas.get(reg.btfId) ?? null;
  }
  return null;
}

/** Mirrors `reg_may_point_to_spin_lock()`: its id names a lock, so it is kept. */
export function regMayPointToSpinLock(reg: RegState): boolean {
  return recordHasField(regBtfRecord(reg), BPF_SPIN_LOCK);
}

/** True when the object's record has a list or rb-tree node. */
export function recordHasGraphNode(rec: BtfRecord | null): boolean {
  return recordHasField(rec, BPF_GRAPH_NODE);
}

/**
 * Mirrors `release_reference()`: drops reference `refObjId` and turns every
 * copy of the pointer into an unknown scalar (`mark_reg_invalid()` for a
 * privileged loader). Returns false when no such reference is held.
 */
export function releaseReference(env: Env, refObjId: number): boolean {
  const idx = env.cur.refs.findIndex((r) =>
    r.type === "ptr" && r.id === refObjId
  );
  if (idx < 0) return false;
  const what = env.cur.refs[idx].what ?? "the reference";
  env.cur.refs.splice(idx, 1);
  noteInvalidated(
    env,
    (r) => r.refObjId === refObjId,
    `${what} was released there`,
  );
  forEachReg(env.cur, (r) => {
    if (r.refObjId === refObjId) markRegUnknown(r);
  });
  return true;
}

// records on the path which registers an instruction is about to invalidate
function noteInvalidated(
  env: Env,
  dies: (r: RegState) => boolean,
  why: string,
): void {
  const regs: number[] = [];
  curFrame(env.cur).regs.forEach((r, i) => {
    if (dies(r)) regs.push(i);
  });
  if (regs.length) addTrail(env.cur, env.insnIdx, env.insnIdx, regs, why);
}

/** Mirrors `invalidate_non_owning_refs()`: at unlock, non-owning references die. */
export function invalidateNonOwningRefs(env: Env): void {
  noteInvalidated(
    env,
    (r) => typeIsNonOwningRef(r.type),
    "bpf_spin_unlock ended the non-owning references taken under the lock",
  );
  forEachReg(env.cur, (r) => {
    if (typeIsNonOwningRef(r.type)) markRegUnknown(r);
  });
}

/** Mirrors `ref_set_non_owning()`. */
export function refSetNonOwning(env: Env, reg: RegState): void {
  if (!env.cur.activeLocks) {
    env.fail(
      EFAULT,
      "verifier internal error: ref_set_non_owning w/o active lock",
    );
  }
  if (reg.type & NON_OWN_REF) {
    env.fail(EFAULT, "verifier internal error: NON_OWN_REF already set");
  }
  reg.type |= NON_OWN_REF;
  const rec = regBtfRecord(reg);
  if (rec && rec.refcountOff >= 0) reg.type |= MEM_RCU;
}

/**
 * Mirrors `ref_convert_owning_non_owning()`: every copy of the owning
 * pointer `refObjId` (being pushed) becomes a non-owning reference.
 */
export function refConvertOwningNonOwning(env: Env, refObjId: number): void {
  if (!refObjId) {
    env.fail(
      EFAULT,
      "verifier internal error: ref_obj_id is zero for owning -> non-owning conversion",
    );
  }
  if (!env.cur.refs.some((r) => r.type === "ptr" && r.id === refObjId)) {
    env.fail(
      EFAULT,
      "verifier internal error: ref state missing for ref_obj_id",
    );
  }
  noteInvalidated(
    env,
    (r) => r.refObjId === refObjId,
    "its object was pushed (it is now a non-owning reference, valid until bpf_spin_unlock)",
  );
  forEachReg(env.cur, (r) => {
    if (r.refObjId !== refObjId) return;
    r.refObjId = 0;
    refSetNonOwning(env, r);
  });
}

/** The allocation a lock or graph root lives in: the map, or the program BTF. */
function allocationPtr(reg: RegState): object | null {
  if (reg.type === PTR_TO_MAP_VALUE) return reg.map;
  return reg.btf;
}

/**
 * Mirrors `check_reg_allocation_locked()`: is the lock of the allocation
 * `reg` points into held? Logs "held lock and object are not in the same
 * allocation" when another one is; returns false when not held.
 */
export function regAllocationLocked(env: Env, reg: RegState): boolean {
  if (
    reg.type !== PTR_TO_MAP_VALUE && reg.type !== (PTR_TO_BTF_ID | MEM_ALLOC)
  ) {
    env.fail(
      EFAULT,
      "verifier internal error: unknown reg type for lock check",
    );
  }
  const vs = env.cur;
  if (!vs.activeLocks) return false;
  const ptr = allocationPtr(reg);
  const held = vs.refs.some((r) =>
    r.type === "lock" && r.id === reg.id && r.ptr === ptr
  );
  if (!held) {
    env.log.write("held lock and object are not in the same allocation\n");
    return false;
  }
  return true;
}

/**
 * Mirrors `process_spin_lock()` for `bpf_spin_lock` (`isLock`) and
 * `bpf_spin_unlock`: the lock must be the record's bpf_spin_lock at a
 * constant offset; one lock at a time; unlock must name the held lock and
 * kills the non-owning references taken under it.
 */
export function processSpinLock(
  env: Env,
  regno: number,
  isLock: boolean,
): void {
  const reg = curFrame(env.cur).regs[regno];
  const vs = env.cur;
  if (!isConstOff(reg)) {
    env.fail(
      EINVAL,
      `R${regno} doesn't have constant offset. bpf_spin_lock has to be at the constant offset`,
    );
  }
  const map = reg.type === PTR_TO_MAP_VALUE ? reg.map : null;
  if (map && !map.hasBtf) {
    env.fail(
      EINVAL,
      `map '${map.name}' has to have BTF in order to use bpf_spin_lock`,
    );
  }
  const rec = regBtfRecord(reg);
  if (!recordHasField(rec, BPF_SPIN_LOCK)) {
    env.fail(
      EINVAL,
      `${map ? "map" : "local"} '${
        map ? map.name : "kptr"
      }' has no valid bpf_spin_lock`,
    );
  }
  const off = Number(reg.s.varOff.value) + reg.off;
  if (rec!.spinLockOff !== off) {
    env.fail(
      EINVAL,
      `off ${off} doesn't point to 'struct bpf_spin_lock' that is at ${
        rec!.spinLockOff
      }`,
    );
  }
  const ptr = allocationPtr(reg);
  if (isLock) {
    if (vs.activeLocks && vs.refs.some((r) => r.type === "lock")) {
      env.fail(EINVAL, "Locking two bpf_spin_locks are not allowed");
    }
    vs.refs.push({ type: "lock", id: reg.id, insnIdx: env.insnIdx, ptr });
    addTrail(vs, env.insnIdx, env.insnIdx, [], "lock");
    vs.activeLocks++;
    vs.activeLockId = reg.id;
    vs.activeLockPtr = ptr;
    return;
  }
  if (!vs.activeLocks) {
    env.fail(EINVAL, "bpf_spin_unlock without taking a lock");
  }
  const idx = vs.refs.findIndex((r) =>
    r.type === "lock" && r.id === reg.id && r.ptr === ptr
  );
  if (idx < 0) env.fail(EINVAL, "bpf_spin_unlock of different lock");
  vs.refs.splice(idx, 1);
  vs.activeLocks--;
  const last = vs.refs.findLast((r) => r.type === "lock");
  vs.activeLockId = last?.id ?? 0;
  vs.activeLockPtr = last?.ptr ?? null;
  invalidateNonOwningRefs(env);
}

function isConstOff(reg: RegState): boolean {
  return reg.s.varOff.mask === 0n;
}

/** Where the held lock was taken (for explanations), or -1. */
export function lockInsn(vs: VerifierState): number {
  return vs.refs.find((r) => r.type === "lock")?.insnIdx ?? -1;
}
