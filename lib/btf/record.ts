/**
 * `btf_parse_fields()`: from the fields `btf_find_field()` found to a
 * `BtfRecord` — overlap and bounds checks, kptr and graph-root resolution,
 * and the rules that tie fields together (a graph root needs a lock, …).
 * @module
 */
import type { Btf } from "./btf.ts";
import { BtfError, EEXIST, EFAULT, EINVAL } from "./errors.ts";
import {
  BPF_LIST_HEAD,
  BPF_LIST_NODE,
  BPF_RB_NODE,
  BPF_RB_ROOT,
  BPF_REFCOUNT,
  BPF_RES_SPIN_LOCK,
  BPF_SPIN_LOCK,
  BPF_TASK_WORK,
  BPF_TIMER,
  BPF_WORKQUEUE,
  type BtfField,
  btfFieldTypeSize,
  type BtfRecord,
  NO_FIELD_OFF,
} from "./field_types.ts";
import { type FieldOptions, parseGraphRoot, parseKptr } from "./field_parse.ts";
import { findFields } from "./fields.ts";

function fail(typeId: number, errno: number, reason: string): never {
  throw new BtfError(reason, { typeId, errno });
}

/**
 * `btf_parse_fields()`: the record of STRUCT/DATASEC `typeId` for the field
 * types in `fieldMask`, or null when it has none. Throws `BtfError` with the
 * kernel's errno (E2BIG, EINVAL, ENOENT, EEXIST, EFAULT).
 */
export function parseFields(
  btf: Btf,
  typeId: number,
  fieldMask: number,
  valueSize: number,
  opts: FieldOptions = {},
): BtfRecord | null {
  const infos = findFields(btf, typeId, fieldMask);
  if (infos.length === 0) return null;
  const offs = {
    spinLockOff: NO_FIELD_OFF,
    resSpinLockOff: NO_FIELD_OFF,
    timerOff: NO_FIELD_OFF,
    wqOff: NO_FIELD_OFF,
    refcountOff: NO_FIELD_OFF,
    taskWorkOff: NO_FIELD_OFF,
  };
  const cachedOff: Record<number, keyof typeof offs> = {
    [BPF_SPIN_LOCK]: "spinLockOff",
    [BPF_RES_SPIN_LOCK]: "resSpinLockOff",
    [BPF_TIMER]: "timerOff",
    [BPF_WORKQUEUE]: "wqOff",
    [BPF_TASK_WORK]: "taskWorkOff",
    [BPF_REFCOUNT]: "refcountOff",
  };
  const fields: BtfField[] = [];
  let fieldMaskOut = 0;
  let nextOff = 0;
  for (const info of infos) {
    const size = btfFieldTypeSize(info.type);
    if (info.off + size > valueSize) {
      fail(
        typeId,
        EFAULT,
        `field at ${info.off} (+${size}) exceeds value size ${valueSize}`,
      );
    }
    if (info.off < nextOff) {
      fail(typeId, EEXIST, `special fields overlap at offset ${info.off}`);
    }
    nextOff = info.off + size;
    fieldMaskOut |= info.type;
    const field: BtfField = { type: info.type, offset: info.off, size };
    const cached = cachedOff[info.type];
    if (cached) offs[cached] = info.off;
    if (info.kptrTypeId !== undefined) {
      fields.push({
        ...field,
        kptr: parseKptr(btf, info.type, info.kptrTypeId, typeId, opts),
      });
    } else if (info.graphRoot) {
      const nodeType = info.type === BPF_LIST_HEAD
        ? "bpf_list_node"
        : "bpf_rb_node";
      const root = parseGraphRoot(btf, info.graphRoot, nodeType, typeId);
      fields.push({ ...field, graphRoot: root });
    } else {
      fields.push(field);
    }
  }
  if (offs.spinLockOff >= 0 && offs.resSpinLockOff >= 0) {
    fail(
      typeId,
      EINVAL,
      "bpf_spin_lock and bpf_res_spin_lock in the same struct",
    );
  }
  if (
    fieldMaskOut & (BPF_LIST_HEAD | BPF_RB_ROOT) && offs.spinLockOff < 0 &&
    offs.resSpinLockOff < 0
  ) {
    fail(
      typeId,
      EINVAL,
      "bpf_list_head / bpf_rb_root require a bpf_spin_lock in the same struct",
    );
  }
  if (
    offs.refcountOff < 0 && fieldMaskOut & BPF_LIST_NODE &&
    fieldMaskOut & BPF_RB_NODE
  ) {
    fail(
      typeId,
      EINVAL,
      "bpf_list_node and bpf_rb_node together require a bpf_refcount",
    );
  }
  fields.sort((a, b) => a.offset - b.offset);
  return { cnt: fields.length, fieldMask: fieldMaskOut, ...offs, fields };
}
