/**
 * kptrs and other special fields of map values: `bpf_kptr_xchg`'s
 * destination (`process_kptr_func()`) and source (`map_kptr_match_type()`),
 * direct loads and stores of a kptr field (`check_map_kptr_access()`), and
 * the rule that no other special field is touched by load/store or helpers
 * (the field loop of `check_map_access()`).
 * @module
 */
import {
  BPF_KPTR,
  BPF_KPTR_PERCPU,
  BPF_KPTR_REF,
  BPF_KPTR_UNREF,
  BPF_UPTR,
  type BtfField,
  btfFieldTypeName,
  recordHasField,
} from "../btf/field_types.ts";
import { EACCES, EINVAL, type Env } from "./env.ts";
import { recordHasGraphNode, regBtfRecord } from "./graph_state.ts";
import { markRegPointer, registerIsNull, type RegState } from "./reg_state.ts";
import {
  BASE_TYPE_MASK,
  baseType,
  MEM_ALLOC,
  MEM_PERCPU,
  MEM_RCU,
  NON_OWN_REF,
  PTR_MAYBE_NULL,
  PTR_TO_BTF_ID,
  PTR_TO_MAP_VALUE,
  PTR_UNTRUSTED,
  regTypeStr,
} from "./reg_types.ts";
import { curFrame } from "./state.ts";

/** Where a map value is being accessed from (`enum bpf_access_src`). */
export type AccessSrc = "direct" | "helper";

/**
 * The field loop of `check_map_access()`: an access to `[off, off+size)` of
 * the value `reg` points into must not touch a special field, except a
 * kptr loaded or stored whole with one aligned 8-byte access.
 */
export function checkMapFieldsAccess(
  env: Env,
  reg: RegState,
  off: number,
  size: number,
  src: AccessSrc,
): void {
  const rec = reg.map?.record;
  if (!rec) return;
  for (const field of rec.fields) {
    const p = field.offset;
    const lo = reg.s.smin + BigInt(off), hi = reg.s.umax + BigInt(off + size);
    if (!(lo < BigInt(p + field.size) && BigInt(p) < hi)) continue;
    const name = btfFieldTypeName(field.type);
    if (!(field.type & (BPF_KPTR | BPF_UPTR))) {
      env.fail(EACCES, `${name} cannot be accessed directly by load/store`);
    }
    if (src !== "direct") {
      env.fail(EACCES, `${name} cannot be accessed indirectly by helper`);
    }
    if (reg.s.varOff.mask !== 0n) {
      env.fail(EACCES, `${name} access cannot have variable offset`);
    }
    const at = BigInt(off) + reg.s.varOff.value;
    if (BigInt(p) !== at) {
      env.fail(EACCES, `${name} access misaligned expected=${p} off=${at}`);
    }
    if (size !== 8) env.fail(EACCES, `${name} access size must be BPF_DW`);
  }
}

/** The kptr field at the constant offset `off` of `reg`'s value, if any. */
export function kptrFieldAt(reg: RegState, off: number): BtfField | null {
  if (reg.s.varOff.mask !== 0n) return null;
  const at = off + Number(reg.s.varOff.value);
  return reg.map?.record?.fields.find((f) =>
    f.offset === at && (f.type & BPF_KPTR) !== 0
  ) ?? null;
}

function kptrTargetName(env: Env, field: BtfField): string {
  const id = field.kptr?.btfId ?? 0;
  return env.progBtf && id ? env.progBtf.btf.typeById(id).name : "";
}

/**
 * Mirrors `map_kptr_match_type()`: may `reg` be stored into kptr `field`?
 * Its callers (`bpf_kptr_xchg`'s argument check, a direct store) answer a
 * mismatch with -EACCES.
 */
export function mapKptrMatchType(
  env: Env,
  field: BtfField,
  reg: RegState,
  regno: number,
): void {
  const targ = kptrTargetName(env, field);
  let perm = PTR_MAYBE_NULL | MEM_ALLOC;
  if (field.type === BPF_KPTR_PERCPU) perm |= MEM_PERCPU;
  const flags = reg.type & ~BASE_TYPE_MASK;
  const typeOk = baseType(reg.type) === PTR_TO_BTF_ID && !(flags & ~perm);
  const sameType = typeOk && reg.btfId === field.kptr?.btfId && reg.off === 0;
  if (typeOk && sameType && reg.s.varOff.mask === 0n) return;
  const regName = typeOk ? reg.btfName : "";
  let msg = `invalid kptr access, R${regno} type=${
    regTypeStr(reg.type)
  }${regName} expected=${regTypeStr(PTR_TO_BTF_ID)}${targ}`;
  if (field.type === BPF_KPTR_UNREF) {
    msg += ` or ${regTypeStr(PTR_TO_BTF_ID | PTR_UNTRUSTED)}${targ}`;
  }
  env.fail(EACCES, msg);
}

/**
 * Mirrors `process_kptr_func()` for `bpf_kptr_xchg`'s destination: a
 * referenced kptr field at a constant offset of a map value with BTF.
 */
export function processKptrFunc(env: Env, regno: number): BtfField {
  const reg = curFrame(env.cur).regs[regno];
  if (reg.s.varOff.mask !== 0n) {
    env.fail(
      EINVAL,
      `R${regno} doesn't have constant offset. kptr has to be at the constant offset`,
    );
  }
  const map = reg.type === PTR_TO_MAP_VALUE ? reg.map : null;
  if (map && !map.hasBtf) {
    env.fail(
      EINVAL,
      `map '${map.name}' has to have BTF in order to use bpf_kptr_xchg`,
    );
  }
  const rec = regBtfRecord(reg);
  if (!recordHasField(rec, BPF_KPTR)) {
    env.fail(EINVAL, `map '${map?.name ?? ""}' has no valid kptr`);
  }
  const off = reg.off + Number(reg.s.varOff.value);
  const field = rec!.fields.find((f) =>
    f.offset === off && (f.type & BPF_KPTR) !== 0
  );
  if (!field) env.fail(EACCES, `off=${off} doesn't point to kptr`);
  if (field.type !== BPF_KPTR_REF && field.type !== BPF_KPTR_PERCPU) {
    env.fail(EACCES, `off=${off} kptr isn't referenced kptr`);
  }
  return field;
}

/**
 * Mirrors `check_map_kptr_access()`: loads give an RCU-protected pointer
 * (non-sleepable programs are always in an RCU section) or an untrusted one;
 * stores of a referenced kptr are refused (use bpf_kptr_xchg).
 */
export function checkMapKptrAccess(
  env: Env,
  field: BtfField,
  isLoad: boolean,
  valueRegno: number,
): void {
  if (!isLoad && field.type !== BPF_KPTR_UNREF) {
    env.fail(EACCES, "store to referenced kptr disallowed");
  }
  if (!isLoad) {
    const v = valueRegno >= 0 ? curFrame(env.cur).regs[valueRegno] : null;
    if (v && !registerIsNull(v)) mapKptrMatchType(env, field, v, valueRegno);
    return;
  }
  if (valueRegno < 0) return;
  const dst = curFrame(env.cur).regs[valueRegno];
  const id = field.kptr?.btfId ?? 0;
  // btf_ld_kptr_type(): in an RCU section (always, for non-sleepable
  // programs) the pointer is RCU-protected, else untrusted
  let type = PTR_TO_BTF_ID | PTR_MAYBE_NULL;
  if (field.kptr?.kernel) type |= PTR_UNTRUSTED;
  else {
    type |= MEM_RCU;
    if (field.type === BPF_KPTR_PERCPU) type |= MEM_PERCPU;
    else type |= MEM_ALLOC;
    const rec = env.progBtf?.metas.get(id) ?? null;
    if (recordHasGraphNode(rec)) type |= NON_OWN_REF;
  }
  markRegPointer(dst, type);
  dst.btf = env.progBtf;
  dst.btfId = id;
  dst.btfName = kptrTargetName(env, field);
  dst.id = env.newId();
}
