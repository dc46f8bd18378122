/**
 * Records of whole objects: allocatable program types at BTF load
 * (`btf_parse_struct_metas()` + `btf_check_and_fixup_fields()`, both run by
 * the kernel's `btf_parse()`) and map values at map creation (the field part
 * of `map_check_btf()` in kernel/bpf/syscall.c).
 * @module
 */
import type { Btf } from "./btf.ts";
import {
  BtfError,
  E2BIG,
  EACCES,
  EFAULT,
  EINVAL,
  ELOOP,
  EOPNOTSUPP,
} from "./errors.ts";
import {
  BPF_GRAPH_NODE,
  BPF_GRAPH_ROOT,
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
  BTF_FIELD_TYPES,
  type BtfFieldGraphRoot,
  btfFieldTypeName,
  type BtfRecord,
  PAGE_SIZE,
} from "./field_types.ts";
import { parseFields } from "./record.ts";
import type { FieldOptions } from "./field_parse.ts";
import { MAP_TYPE } from "../uapi/bpf.ts";

/** Records of program-allocatable structs by type id (`btf->struct_meta_tab`). */
export type BtfStructMetas = ReadonlyMap<number, BtfRecord>;

/** Field types looked for in allocatable structs (`btf_parse_struct_metas`). */
export const STRUCT_META_FIELD_MASK: number = BPF_SPIN_LOCK |
  BPF_RES_SPIN_LOCK |
  BPF_LIST_HEAD | BPF_LIST_NODE | BPF_RB_ROOT | BPF_RB_NODE | BPF_REFCOUNT |
  BPF_KPTR;

/** Field types looked for in map values (`map_check_btf`). */
export const MAP_VALUE_FIELD_MASK: number = BPF_SPIN_LOCK | BPF_RES_SPIN_LOCK |
  BPF_TIMER |
  BPF_KPTR | BPF_LIST_HEAD | BPF_RB_ROOT | BPF_REFCOUNT | BPF_WORKQUEUE |
  BPF_UPTR |
  BPF_TASK_WORK;

/** Struct names whose presence as a member makes a struct allocatable. */
const ALLOC_OBJ_FIELDS = [
  "bpf_spin_lock",
  "bpf_list_head",
  "bpf_list_node",
  "bpf_rb_root",
  "bpf_rb_node",
  "bpf_refcount",
];

/** True for a (volatile) PTR → one kptr TYPE_TAG → struct (`btf_find_kptr` FOUND). */
function isKptrPointer(btf: Btf, id: number): boolean {
  let t = btf.typeById(id);
  if (t.kind === "VOLATILE") t = btf.typeById(t.type);
  if (t.kind !== "PTR") return false;
  const tag = btf.typeById(t.type);
  if (tag.kind !== "TYPE_TAG" || tag.kflag) return false;
  if (btf.typeById(tag.type).kind === "TYPE_TAG") return false;
  if (!["kptr", "kptr_untrusted", "percpu_kptr"].includes(tag.name)) {
    return false;
  }
  return btf.resolve(tag.type).type.kind === "STRUCT";
}

/**
 * `btf_parse_struct_metas()` then `btf_check_and_fixup_fields()` on each:
 * the record of every struct with a lock, graph, refcount or kptr member.
 * Throws `BtfError` with the errno the kernel's BPF_BTF_LOAD returns.
 */
export function parseStructMetas(
  btf: Btf,
  opts: FieldOptions = {},
): Map<number, BtfRecord> {
  const special = new Set<number>();
  for (const name of ALLOC_OBJ_FIELDS) {
    const id = btf.findByName(name, "STRUCT");
    if (id !== undefined) special.add(id);
  }
  for (let id = 1; id < btf.typeCount; id++) {
    if (isKptrPointer(btf, id)) special.add(id);
  }
  const metas = new Map<number, BtfRecord>();
  if (special.size === 0) return metas;
  for (const t of btf.types) {
    if (t.kind !== "STRUCT" || !t.members.some((m) => special.has(m.type))) {
      continue;
    }
    const rec = parseFields(btf, t.id, STRUCT_META_FIELD_MASK, t.size, opts);
    if (rec === null) {
      throw new BtfError("allocatable struct has no special fields", {
        typeId: t.id,
        errno: EFAULT,
      });
    }
    metas.set(t.id, rec);
  }
  for (const rec of metas.values()) checkAndFixupFields(btf, rec, metas);
  return metas;
}

/**
 * `btf_check_and_fixup_fields()`: links each graph root to its element's
 * record (setting `graphRoot.valueRecord` in place, as the kernel does),
 * refuses ownership cycles (ELOOP) and bad uptrs.
 */
export function checkAndFixupFields(
  btf: Btf,
  rec: BtfRecord | null,
  metas: BtfStructMetas,
): void {
  if (rec === null || !(rec.fieldMask & (BPF_GRAPH_ROOT | BPF_UPTR))) return;
  for (const f of rec.fields) {
    if (f.type === BPF_UPTR) {
      if (f.kptr?.kernel) {
        throw new BtfError("uptr to a kernel struct", { errno: EINVAL });
      }
      const size = btf.sizeOf(f.kptr?.btfId ?? 0);
      if (size === 0) {
        throw new BtfError("uptr to an empty struct", { errno: EINVAL });
      }
      if (size > PAGE_SIZE) {
        throw new BtfError("uptr pointee exceeds a page", { errno: E2BIG });
      }
      continue;
    }
    if (!(f.type & BPF_GRAPH_ROOT) || !f.graphRoot) continue;
    const valueId = f.graphRoot.valueBtfId;
    const meta = metas.get(valueId);
    if (meta === undefined) {
      throw new BtfError(
        `${btf.nameOf(valueId)} has no special fields (no struct meta)`,
        {
          typeId: valueId,
          errno: EFAULT,
        },
      );
    }
    (f.graphRoot as { valueRecord: BtfFieldGraphRoot["valueRecord"] })
      .valueRecord = meta;
    // Only a type that is both root and node can close a cycle: its
    // elements may not be roots themselves.
    if (!(rec.fieldMask & BPF_GRAPH_NODE)) continue;
    if (meta.fieldMask & BPF_GRAPH_ROOT) {
      throw new BtfError(
        `ownership cycle: ${
          btf.nameOf(valueId)
        } is owned by a node type and owns others`,
        { typeId: valueId, errno: ELOOP },
      );
    }
  }
}

const M = {
  HASH: MAP_TYPE.hash,
  ARRAY: MAP_TYPE.array,
  PERCPU_HASH: MAP_TYPE.percpu_hash,
  PERCPU_ARRAY: MAP_TYPE.percpu_array,
  LRU_HASH: MAP_TYPE.lru_hash,
  LRU_PERCPU_HASH: MAP_TYPE.lru_percpu_hash,
  CGROUP_STORAGE: MAP_TYPE.cgroup_storage,
  SK_STORAGE: MAP_TYPE.sk_storage,
  INODE_STORAGE: MAP_TYPE.inode_storage,
  TASK_STORAGE: MAP_TYPE.task_storage,
  CGRP_STORAGE: MAP_TYPE.cgrp_storage,
} as const;
const LOCAL_STORAGE = [
  M.SK_STORAGE,
  M.INODE_STORAGE,
  M.TASK_STORAGE,
  M.CGRP_STORAGE,
];
/** Map types allowed per field type (the switch in `map_check_btf`). */
const ALLOWED_MAP_TYPES: ReadonlyMap<number, readonly number[]> = new Map([
  [BPF_SPIN_LOCK, [M.HASH, M.ARRAY, M.CGROUP_STORAGE, ...LOCAL_STORAGE]],
  [BPF_RES_SPIN_LOCK, [M.HASH, M.ARRAY, M.CGROUP_STORAGE, ...LOCAL_STORAGE]],
  [BPF_TIMER, [M.HASH, M.LRU_HASH, M.ARRAY]],
  [BPF_WORKQUEUE, [M.HASH, M.LRU_HASH, M.ARRAY]],
  [BPF_TASK_WORK, [M.HASH, M.LRU_HASH, M.ARRAY]],
  ...[BPF_KPTR_UNREF, BPF_KPTR_REF, BPF_KPTR_PERCPU, BPF_REFCOUNT].map((f) =>
    [f, [
      M.HASH,
      M.PERCPU_HASH,
      M.LRU_HASH,
      M.LRU_PERCPU_HASH,
      M.ARRAY,
      M.PERCPU_ARRAY,
      ...LOCAL_STORAGE,
    ]] as [number, number[]]
  ),
  [BPF_UPTR, [M.TASK_STORAGE]],
  [BPF_LIST_HEAD, [M.HASH, M.LRU_HASH, M.ARRAY]],
  [BPF_RB_ROOT, [M.HASH, M.LRU_HASH, M.ARRAY]],
]);

/** `BPF_F_RDONLY_PROG` | `BPF_F_WRONLY_PROG`. */
const PROG_ACCESS_FLAGS = (1 << 7) | (1 << 8);

/** What map creation keeps of a value type's special fields. */
export interface MapFieldsResult {
  /** The record, or null when the value has no special fields. */
  readonly record: BtfRecord | null;
  /**
   * Why `btf_parse_fields()` failed, if it did. The kernel stores the error
   * pointer as `map->record` and creates the map anyway: the map then
   * behaves as having no special fields (the verifier later says e.g.
   * "map 'm' has no valid bpf_spin_lock").
   */
  readonly recordError: BtfError | null;
}

/**
 * The special-field part of `map_check_btf()` for a map whose value type is
 * `valueTypeId` (modifiers are skipped, as `btf_type_id_size()` does).
 * Throws `BtfError` for what fails map creation: EACCES (prog access
 * flags), EOPNOTSUPP (field not allowed in this map type), and the errors
 * of `checkAndFixupFields`.
 */
export function mapCheckBtfFields(
  btf: Btf,
  valueTypeId: number,
  valueSize: number,
  mapType: number,
  metas: BtfStructMetas,
  opts: FieldOptions & { readonly mapFlags?: number } = {},
): MapFieldsResult {
  const valueId = btf.resolve(valueTypeId).id;
  let record: BtfRecord | null = null;
  try {
    record = parseFields(btf, valueId, MAP_VALUE_FIELD_MASK, valueSize, opts);
  } catch (e) {
    if (e instanceof BtfError) return { record: null, recordError: e };
    throw e;
  }
  if (record !== null) {
    if ((opts.mapFlags ?? 0) & PROG_ACCESS_FLAGS) {
      throw new BtfError(
        "special fields forbid BPF_F_RDONLY_PROG/BPF_F_WRONLY_PROG",
        {
          typeId: valueId,
          errno: EACCES,
        },
      );
    }
    for (const bit of BTF_FIELD_TYPES) {
      if (!(record.fieldMask & bit)) continue;
      if (!(ALLOWED_MAP_TYPES.get(bit) ?? []).includes(mapType)) {
        throw new BtfError(
          `${btfFieldTypeName(bit)} is not supported in map type ${mapType}`,
          {
            typeId: valueId,
            errno: EOPNOTSUPP,
          },
        );
      }
    }
  }
  checkAndFixupFields(btf, record, metas);
  return { record, recordError: null };
}
