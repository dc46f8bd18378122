/**
 * Special-field discovery, step for step as kernel/bpf/btf.c does it:
 * `btf_find_field()` walks a struct (or a datasec's variables), descending
 * into nested structs and arrays; `record.ts` turns what it finds into a
 * `BtfRecord`. The kernel logs nothing on these failures, so errors carry
 * its errno and a reason naming the rule.
 * @module
 */
import type { Btf } from "./btf.ts";
import { MAX_RESOLVE_DEPTH } from "./btf.ts";
import { BtfError, E2BIG, EINVAL, ENOENT } from "./errors.ts";
import {
  BPF_KPTR,
  BPF_KPTR_PERCPU,
  BPF_KPTR_REF,
  BPF_KPTR_UNREF,
  BPF_LIST_HEAD,
  BPF_LIST_NODE,
  BPF_RB_NODE,
  BPF_RB_ROOT,
  BPF_REFCOUNT,
  BPF_RES_SPIN_LOCK,
  BPF_SPIN_LOCK,
  BPF_TASK_WORK,
  BPF_TIMER,
  BPF_UPTR,
  BPF_WORKQUEUE,
  BTF_FIELDS_MAX,
  btfFieldTypeAlign,
  btfFieldTypeName,
  btfFieldTypeSize,
} from "./field_types.ts";
import type { BtfComposite, BtfDatasec, BtfType } from "./types.ts";

/** A field as `btf_find_field()` reports it (`struct btf_field_info`). */
export interface BtfFieldInfo {
  /** One of the `BPF_*` field-type bits. */
  readonly type: number;
  /** Byte offset in the struct / datasec. */
  readonly off: number;
  /** Kptrs: the pointee struct id (modifiers skipped). */
  readonly kptrTypeId?: number;
  /** Graph roots: element struct id and node field name. */
  readonly graphRoot?: {
    readonly valueBtfId: number;
    readonly nodeName: string;
  };
}

/** Thrown errors name the container type and the errno. */
function fail(typeId: number, errno: number, reason: string): never {
  throw new BtfError(reason, { typeId, errno });
}

/**
 * Special fields of STRUCT or DATASEC `typeId` matching `fieldMask`, in
 * discovery order (`btf_find_field()`); at most `BTF_FIELDS_MAX`.
 */
export function findFields(
  btf: Btf,
  typeId: number,
  fieldMask: number,
): BtfFieldInfo[] {
  const t = btf.typeById(typeId);
  const out: BtfFieldInfo[] = [];
  if (t.kind === "STRUCT") findStructFields(btf, t, fieldMask, out, 0);
  else if (t.kind === "DATASEC") findDatasecFields(btf, t, fieldMask, out);
  else {fail(
      typeId,
      EINVAL,
      `btf_find_field: ${t.kind} is neither a STRUCT nor a DATASEC`,
    );}
  return out;
}

/** `btf_find_struct_field()`: each member, with its own unique-field mask. */
function findStructFields(
  btf: Btf,
  t: BtfComposite,
  mask: number,
  out: BtfFieldInfo[],
  level: number,
): void {
  const seen = { mask: 0 };
  t.members.forEach((m, i) => {
    if (m.bitOffset % 8 !== 0) {
      fail(t.id, EINVAL, `member '${m.name}' is not byte aligned`);
    }
    findFieldOne(
      btf,
      t,
      btf.typeById(m.type),
      i,
      m.bitOffset / 8,
      0,
      mask,
      seen,
      out,
      level,
    );
  });
}

/** `btf_find_datasec_var()`: each variable, sized by its secinfo. */
function findDatasecFields(
  btf: Btf,
  t: BtfDatasec,
  mask: number,
  out: BtfFieldInfo[],
): void {
  const seen = { mask: 0 };
  for (const vsi of t.vars) {
    const v = btf.typeById(vsi.type);
    const varType = btf.typeById((v as { type: number }).type);
    findFieldOne(btf, v, varType, -1, vsi.offset, vsi.size, mask, seen, out, 0);
  }
}

/** `btf_get_field_type()`: which special type a member's type names. */
function fieldTypeOf(
  t: BtfType,
  mask: number,
  seen: { mask: number },
  container: number,
): number {
  const named: readonly [number, string, boolean][] = [
    [BPF_SPIN_LOCK, "bpf_spin_lock", true],
    [BPF_RES_SPIN_LOCK, "bpf_res_spin_lock", true],
    [BPF_TIMER, "bpf_timer", true],
    [BPF_WORKQUEUE, "bpf_wq", true],
    [BPF_TASK_WORK, "bpf_task_work", true],
    [BPF_LIST_HEAD, "bpf_list_head", false],
    [BPF_LIST_NODE, "bpf_list_node", false],
    [BPF_RB_ROOT, "bpf_rb_root", false],
    [BPF_RB_NODE, "bpf_rb_node", false],
    [BPF_REFCOUNT, "bpf_refcount", false],
  ];
  for (const [type, name, unique] of named) {
    if (!(mask & type) || t.name !== name) continue;
    if (unique) {
      if (seen.mask & type) {
        fail(container, E2BIG, `more than one ${name} in the same struct`);
      }
      seen.mask |= type;
    }
    return type;
  }
  // Only a non-struct can be a kptr; the pointer check comes later.
  if (mask & (BPF_KPTR | BPF_UPTR) && t.kind !== "STRUCT") return BPF_KPTR_REF;
  return 0;
}

/** `btf_find_field_one()`: one member or variable, arrays flattened. */
function findFieldOne(
  btf: Btf,
  owner: BtfType,
  varTypeIn: BtfType,
  varIdx: number,
  off: number,
  expectedSize: number,
  mask: number,
  seen: { mask: number },
  out: BtfFieldInfo[],
  level: number,
): void {
  let varType = varTypeIn;
  let nelems = 1;
  let depth = 0;
  for (; depth < MAX_RESOLVE_DEPTH && varType.kind === "ARRAY"; depth++) {
    nelems *= varType.nelems;
    varType = btf.typeById(varType.type);
  }
  if (depth === MAX_RESOLVE_DEPTH) {
    fail(owner.id, E2BIG, "array nesting too deep");
  }
  if (nelems === 0) return;
  const fieldType = fieldTypeOf(varType, mask, seen, owner.id);
  if (fieldType === 0 && varType.kind === "STRUCT") {
    if (expectedSize && expectedSize !== varType.size * nelems) return;
    findNestedStruct(btf, varType, off, nelems, mask, out, level);
    return;
  }
  if (fieldType === 0) return;
  const size = btfFieldTypeSize(fieldType);
  if (expectedSize && expectedSize !== size * nelems) return;
  // A special field at a misaligned offset is silently not a field.
  if (off % btfFieldTypeAlign(fieldType)) return;
  let info: BtfFieldInfo | undefined;
  if (fieldType & (BPF_LIST_HEAD | BPF_RB_ROOT)) {
    info = findGraphRoot(btf, owner, varType, varIdx, off, size, fieldType);
  } else if (fieldType & (BPF_KPTR | BPF_UPTR)) {
    info = findKptr(btf, varType, off, mask, owner.id);
  } else if (varType.kind === "STRUCT" && varType.size === size) {
    info = { type: fieldType, off }; // btf_find_struct()
  }
  if (info === undefined) return;
  if (out.length >= BTF_FIELDS_MAX) {
    fail(owner.id, E2BIG, `more than ${BTF_FIELDS_MAX} special fields`);
  }
  const first = out.length;
  out.push(info);
  if (nelems > 1) repeatFields(out, first, nelems - 1, size, owner.id);
}

/** `btf_find_nested_struct()`: a struct member's own fields, shifted. */
function findNestedStruct(
  btf: Btf,
  t: BtfComposite,
  off: number,
  nelems: number,
  mask: number,
  out: BtfFieldInfo[],
  levelIn: number,
): void {
  const level = levelIn + 1;
  if (level >= MAX_RESOLVE_DEPTH) fail(t.id, E2BIG, "struct nesting too deep");
  const first = out.length;
  findStructFields(btf, t, mask, out, level);
  if (out.length === first) return;
  for (let i = first; i < out.length; i++) {
    out[i] = { ...out[i], off: out[i].off + off };
  }
  if (nelems > 1) repeatFields(out, first, nelems - 1, t.size, t.id);
}

/**
 * `btf_repeat_fields()`: copies `out[first..]` `repeat` times, each copy
 * `elemSize` further on. Only kptrs and graph roots may be repeated.
 */
function repeatFields(
  out: BtfFieldInfo[],
  first: number,
  repeat: number,
  elemSize: number,
  container: number,
): void {
  const group = out.slice(first);
  const repeatable = BPF_KPTR | BPF_UPTR | BPF_LIST_HEAD | BPF_RB_ROOT;
  for (const f of group) {
    if (!(f.type & repeatable)) {
      const name = btfFieldTypeName(f.type);
      fail(
        container,
        EINVAL,
        `${name} at offset ${f.off} cannot be in an array`,
      );
    }
  }
  if (first + group.length * (repeat + 1) > BTF_FIELDS_MAX) {
    fail(container, E2BIG, `more than ${BTF_FIELDS_MAX} special fields`);
  }
  for (let i = 1; i <= repeat; i++) {
    for (const f of group) out.push({ ...f, off: f.off + i * elemSize });
  }
}

/** `btf_find_kptr()`: PTR (maybe volatile) → one TYPE_TAG → struct. */
function findKptr(
  btf: Btf,
  tIn: BtfType,
  off: number,
  mask: number,
  container: number,
): BtfFieldInfo | undefined {
  let t = tIn;
  if (t.kind === "VOLATILE") t = btf.typeById(t.type);
  if (t.kind !== "PTR") return undefined;
  const tag = btf.typeById(t.type);
  if (tag.kind !== "TYPE_TAG" || tag.kflag) return undefined;
  if (btf.typeById(tag.type).kind === "TYPE_TAG") {
    fail(container, EINVAL, `kptr at offset ${off} has more than one type tag`);
  }
  const kinds: Record<string, number> = {
    kptr_untrusted: BPF_KPTR_UNREF,
    kptr: BPF_KPTR_REF,
    percpu_kptr: BPF_KPTR_PERCPU,
    uptr: BPF_UPTR,
  };
  const type = kinds[tag.name];
  if (type === undefined) {
    fail(
      container,
      EINVAL,
      `pointer at offset ${off} has unknown type tag '${tag.name}'`,
    );
  }
  if (!(type & mask)) return undefined;
  const target = btf.resolve(tag.type);
  if (target.type.kind !== "STRUCT") {
    fail(
      container,
      EINVAL,
      `${tag.name} at offset ${off} must point to a struct`,
    );
  }
  return { type, off, kptrTypeId: target.id };
}

/** `btf_find_graph_root()`: the `contains:TYPE:FIELD` tag decides the value. */
function findGraphRoot(
  btf: Btf,
  owner: BtfType,
  t: BtfType,
  idx: number,
  off: number,
  size: number,
  type: number,
): BtfFieldInfo | undefined {
  if (t.kind !== "STRUCT" || t.size !== size) return undefined;
  const what = `${t.name} at offset ${off}`;
  // btf_find_decl_tag_value(): ENOENT and EEXIST both end as EINVAL here.
  const tags = btf.declTagsOf(owner.id, idx).filter((s) =>
    s.startsWith("contains:")
  );
  if (tags.length === 0) {
    fail(owner.id, EINVAL, `${what} has no contains: decl tag`);
  }
  if (tags.length > 1) {
    fail(owner.id, EINVAL, `${what} has two contains: decl tags`);
  }
  const value = tags[0].slice("contains:".length);
  const colon = value.indexOf(":");
  if (colon < 0) {
    fail(owner.id, EINVAL, `${what}: contains:${value} lacks ':FIELD'`);
  }
  const typeName = value.slice(0, colon);
  const valueBtfId = btf.findByName(typeName, "STRUCT");
  if (valueBtfId === undefined) {
    fail(
      owner.id,
      ENOENT,
      `${what}: contains:${value} names no struct '${typeName}'`,
    );
  }
  const nodeName = value.slice(colon + 1);
  if (nodeName === "") {
    fail(
      owner.id,
      EINVAL,
      `${what}: contains:${value} has an empty field name`,
    );
  }
  return { type, off, graphRoot: { valueBtfId, nodeName } };
}
