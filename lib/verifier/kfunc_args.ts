/**
 * `check_kfunc_args()` for the kfuncs of kfunc_table.ts: scalars and
 * constants, allocated objects and refcounted kptrs, graph roots (which must
 * be locked: `__process_kf_arg_ptr_to_graph_root()`) and graph nodes (which
 * must match the root's `contains:` tag: `__process_kf_arg_ptr_to_graph_node()`),
 * callbacks, and the references an argument carries or releases.
 * @module
 */
import {
  BPF_LIST_HEAD,
  BPF_LIST_NODE,
  BPF_RB_NODE,
  BPF_RB_ROOT,
  type BtfField,
  btfFieldTypeName,
} from "../btf/field_types.ts";
import { EACCES, EFAULT, EINVAL, type Env } from "./env.ts";
import { inRbtreeCallback } from "./callbacks.ts";
import { type IterSlot, processIterArg } from "./iter.ts";
import {
  isTrustedReg,
  regAllocationLocked,
  regBtfRecord,
  typeIsNonOwningRef,
  typeIsPtrAllocObj,
} from "./graph_state.ts";
import {
  KF_RCU,
  KF_RELEASE,
  KF_TRUSTED_ARGS,
  type KfuncArgKind,
  type KfuncDesc,
} from "./kfunc_table.ts";
import { type RegBtf, registerIsNull, type RegState } from "./reg_state.ts";
import {
  MEM_ALLOC,
  MEM_PERCPU,
  MEM_RCU,
  PTR_TO_BTF_ID,
  PTR_TO_FUNC,
  PTR_TO_MAP_VALUE,
  SCALAR_VALUE,
  typeMayBeNull,
} from "./reg_types.ts";
import { curFrame } from "./state.ts";
import { checkArgRegOff } from "./ptr_off.ts";

/** What argument checking learned (`struct bpf_kfunc_call_arg_meta`). */
export interface KfuncMeta {
  /** The kfunc. */
  readonly k: KfuncDesc;
  /** The name the program called it by (an alias, or `k.name`). */
  calledName: string;
  /** `arg_constant`: the `__k` argument's value, when found. */
  constant: bigint | null;
  /** `ref_obj_id` of the referenced argument. */
  refObjId: number;
  /** Register released by a `KF_RELEASE` kfunc (0 if none). */
  releaseRegno: number;
  /** Type id and BTF of the object argument (`arg_btf`, `arg_btf_id`). */
  argBtfId: number;
  /** `arg_btf`. */
  argBtf: RegBtf | null;
  /** The graph root field argument (`arg_list_head` / `arg_rbtree_root`). */
  rootField: BtfField | null;
  /** `arg_owning_ref`: refcount_acquire got an owning reference. */
  argOwningRef: boolean;
  /** The callback's subprogram (rbtree `less`), -1 if none. */
  callbackSubprog: number;
  /** The iterator argument's slots (`meta->iter`). */
  iterSlot: IterSlot | null;
}

// mirrors is_rcu_reg()
function isRcuReg(reg: RegState): boolean {
  return (reg.type & MEM_RCU) !== 0;
}

const ROOT_FIELD: Partial<Record<KfuncArgKind, number>> = {
  list_head: BPF_LIST_HEAD,
  rb_root: BPF_RB_ROOT,
};

// mirrors __process_kf_arg_ptr_to_graph_root()
function graphRoot(
  env: Env,
  reg: RegState,
  regno: number,
  meta: KfuncMeta,
  fieldType: number,
): void {
  const name = btfFieldTypeName(fieldType);
  if (reg.s.varOff.mask !== 0n) {
    env.fail(
      EINVAL,
      `R${regno} doesn't have constant offset. ${name} has to be at the constant offset`,
    );
  }
  const rec = regBtfRecord(reg);
  const off = reg.off + Number(reg.s.varOff.value);
  const field = rec?.fields.find((f) =>
    f.offset === off && (f.type & fieldType) !== 0
  );
  if (!field) env.fail(EINVAL, `${name} not found at offset=${off}`);
  if (!regAllocationLocked(env, reg)) {
    env.fail(
      EINVAL,
      `bpf_spin_lock at off=${rec!.spinLockOff} must be held for ${name}`,
    );
  }
  meta.rootField = field;
}

// mirrors __process_kf_arg_ptr_to_graph_node()
function graphNode(
  env: Env,
  reg: RegState,
  regno: number,
  meta: KfuncMeta,
  rootType: number,
  nodeType: number,
): void {
  const name = btfFieldTypeName(nodeType);
  if (reg.s.varOff.mask !== 0n) {
    env.fail(
      EINVAL,
      `R${regno} doesn't have constant offset. ${name} has to be at the constant offset`,
    );
  }
  const off = reg.off + Number(reg.s.varOff.value);
  const rec = regBtfRecord(reg);
  if (!rec?.fields.some((f) => f.offset === off && f.type === nodeType)) {
    env.fail(EINVAL, `${name} not found at offset=${off}`);
  }
  const root = meta.rootField?.graphRoot;
  if (!root) env.fail(EFAULT, "verifier internal error: graph root missing");
  const btf = env.progBtf!.btf;
  const elemName = btf.typeById(root.valueBtfId).name;
  if (reg.btfId !== root.valueBtfId) {
    env.fail(
      EINVAL,
      `operation on ${
        btfFieldTypeName(rootType)
      } expects arg#1 ${name} at offset=${root.nodeOffset} in struct ${elemName}, but arg is at offset=${off} in struct ${reg.btfName}`,
    );
  }
  meta.argBtf = reg.btf;
  meta.argBtfId = reg.btfId;
  if (off !== root.nodeOffset) {
    env.fail(
      EINVAL,
      `arg#1 offset=${off}, but expected ${name} at offset=${root.nodeOffset} in struct ${elemName}`,
    );
  }
}

// the pointer-argument checks shared by owning-object kinds
function requireOwned(env: Env, reg: RegState, argNo: number): void {
  if (reg.type !== (PTR_TO_BTF_ID | MEM_ALLOC)) {
    env.fail(EINVAL, `arg#${argNo} expected pointer to allocated object`);
  }
  if (!reg.refObjId) env.fail(EINVAL, "allocated object must be referenced");
}

function checkPointerArg(
  env: Env,
  meta: KfuncMeta,
  reg: RegState,
  regno: number,
  kind: KfuncArgKind,
): void {
  const argNo = regno - 1;
  const k = meta.k;
  const name = k.name;
  const release = (k.flags & KF_RELEASE) !== 0 && reg.refObjId !== 0;
  if (kind !== "callback") checkArgRegOff(env, reg, regno, release);
  if (kind === "alloc_obj" && (k.flags & (KF_TRUSTED_ARGS | KF_RCU))) {
    if (!isTrustedReg(reg)) {
      if (!(k.flags & KF_RCU)) {
        env.fail(EINVAL, `R${regno} must be referenced or trusted`);
      }
      if (!isRcuReg(reg)) env.fail(EINVAL, `R${regno} must be a rcu pointer`);
    }
  }
  switch (kind) {
    case "alloc_obj":
      if (reg.type === (PTR_TO_BTF_ID | MEM_ALLOC)) {
        if (name !== "bpf_obj_drop_impl") {
          env.fail(EINVAL, `arg#${argNo} expected for bpf_obj_drop_impl()`);
        }
      } else if (reg.type === (PTR_TO_BTF_ID | MEM_ALLOC | MEM_PERCPU)) {
        if (name !== "bpf_percpu_obj_drop_impl") {
          env.fail(
            EINVAL,
            `arg#${argNo} expected for bpf_percpu_obj_drop_impl()`,
          );
        }
      } else {
        env.fail(EINVAL, `arg#${argNo} expected pointer to allocated object`);
      }
      if (!reg.refObjId) {
        env.fail(EINVAL, "allocated object must be referenced");
      }
      meta.argBtf = reg.btf;
      meta.argBtfId = reg.btfId;
      return;
    case "list_head":
    case "rb_root":
      if (
        reg.type !== PTR_TO_MAP_VALUE &&
        reg.type !== (PTR_TO_BTF_ID | MEM_ALLOC)
      ) {
        env.fail(
          EINVAL,
          `arg#${argNo} expected pointer to map value or allocated object`,
        );
      }
      if (reg.type === (PTR_TO_BTF_ID | MEM_ALLOC) && !reg.refObjId) {
        env.fail(EINVAL, "allocated object must be referenced");
      }
      graphRoot(env, reg, regno, meta, ROOT_FIELD[kind]!);
      return;
    case "list_node":
      requireOwned(env, reg, argNo);
      graphNode(env, reg, regno, meta, BPF_LIST_HEAD, BPF_LIST_NODE);
      return;
    case "rb_node":
      if (name === "bpf_rbtree_add_impl") requireOwned(env, reg, argNo);
      else {
        // 6.16+: a refcounted owning node may be removed too
        if (!typeIsNonOwningRef(reg.type) && !reg.refObjId) {
          env.fail(
            EINVAL,
            `${name} can only take non-owning or refcounted bpf_rb_node pointer`,
          );
        }
        if (inRbtreeCallback(env)) {
          env.fail(EINVAL, `${name} not allowed in rbtree cb`);
        }
      }
      graphNode(env, reg, regno, meta, BPF_RB_ROOT, BPF_RB_NODE);
      return;
    case "refcounted_kptr": {
      if (!typeIsPtrAllocObj(reg.type)) {
        env.fail(EINVAL, `arg#${argNo} is neither owning or non-owning ref`);
      }
      if (!typeIsNonOwningRef(reg.type) && reg.refObjId) {
        meta.argOwningRef = true;
      }
      const rec = regBtfRecord(reg);
      if (!rec || rec.refcountOff < 0) {
        env.fail(
          EINVAL,
          `arg#${argNo} doesn't point to a type with bpf_refcount field`,
        );
      }
      meta.argBtf = reg.btf;
      meta.argBtfId = reg.btfId;
      return;
    }
    case "iter":
      meta.iterSlot = processIterArg(env, regno, k.iter!.kind, k.iter!.op);
      return;
    case "callback":
      if (reg.type !== PTR_TO_FUNC) {
        env.fail(EINVAL, `arg${argNo} expected pointer to func`);
      }
      meta.callbackSubprog = reg.subprogno;
      return;
  }
}

/** Mirrors `check_kfunc_args()`; fills and returns the call's meta. */
export function checkKfuncArgs(env: Env, k: KfuncDesc): KfuncMeta {
  const meta: KfuncMeta = {
    k,
    calledName: k.name,
    constant: null,
    refObjId: 0,
    releaseRegno: 0,
    argBtfId: 0,
    argBtf: null,
    rootField: null,
    argOwningRef: false,
    callbackSubprog: -1,
    iterSlot: null,
  };
  const regs = curFrame(env.cur).regs;
  k.args.forEach((arg, i) => {
    const regno = i + 1;
    const reg = regs[regno];
    if (arg.kind === "ignore") return;
    if (arg.kind === "scalar" || arg.kind === "constant") {
      if (reg.type !== SCALAR_VALUE) {
        env.fail(EINVAL, `R${regno} is not a scalar`);
      }
      if (arg.kind === "constant") {
        if (reg.s.varOff.mask !== 0n) {
          env.fail(EINVAL, `R${regno} must be a known constant`);
        }
        reg.precise = true;
        meta.constant = reg.s.varOff.value;
      }
      return;
    }
    if (
      (k.flags & (KF_TRUSTED_ARGS | KF_RCU)) &&
      (registerIsNull(reg) || typeMayBeNull(reg.type))
    ) {
      env.fail(EACCES, `Possibly NULL pointer passed to trusted arg${i}`);
    }
    if (reg.refObjId) {
      if ((k.flags & KF_RELEASE) && meta.refObjId) {
        env.fail(
          EFAULT,
          `verifier internal error: more than one arg with ref_obj_id R${regno} ${reg.refObjId} ${meta.refObjId}`,
        );
      }
      meta.refObjId = reg.refObjId;
      if (k.flags & KF_RELEASE) meta.releaseRegno = regno;
    }
    checkPointerArg(env, meta, reg, regno, arg.kind);
  });
  if ((k.flags & KF_RELEASE) && !meta.releaseRegno) {
    env.fail(
      EINVAL,
      `release kernel function ${k.name} expects refcounted PTR_TO_BTF_ID`,
    );
  }
  return meta;
}
