/**
 * The per-field second pass of `btf_parse_fields()`: resolving a kptr's
 * pointee (`btf_parse_kptr()`) and a graph root's node field
 * (`btf_parse_graph_root()`).
 * @module
 */
import type { Btf } from "./btf.ts";
import { BtfError, EINVAL, ENOENT } from "./errors.ts";
import {
  BPF_KPTR_REF,
  type BtfFieldGraphRoot,
  type BtfFieldKptr,
} from "./field_types.ts";
import type { BtfKindName } from "./types.ts";

/** A type that exists in the (simulated) kernel's BTF. */
export interface KernelTypeRef {
  /** Its id in the kernel BTF. */
  readonly btfId: number;
  /** Whether a destructor kfunc is registered (`btf_find_dtor_kfunc()`). */
  readonly hasDtor: boolean;
}

/** Options of special-field parsing. */
export interface FieldOptions {
  /**
   * Looks a kptr pointee up by name and kind among kernel types, as
   * `bpf_find_btf_id()` searches vmlinux. Absent (the default), every
   * pointee is a program type, i.e. an object from `bpf_obj_new`.
   */
  readonly kernelType?: (
    name: string,
    kind: BtfKindName,
  ) => KernelTypeRef | undefined;
}

/** `btf_parse_kptr()`: program type (MEM_ALLOC) or kernel type with dtor. */
export function parseKptr(
  btf: Btf,
  fieldType: number,
  pointeeId: number,
  container: number,
  opts: FieldOptions,
): BtfFieldKptr {
  const t = btf.typeById(pointeeId);
  const kernel = opts.kernelType?.(t.name, t.kind);
  if (kernel === undefined) return { btfId: pointeeId, kernel: false };
  if (fieldType === BPF_KPTR_REF && !kernel.hasDtor) {
    throw new BtfError(
      `kptr to kernel struct ${t.name} has no destructor kfunc`,
      {
        typeId: container,
        errno: ENOENT,
      },
    );
  }
  return { btfId: kernel.btfId, kernel: true };
}

/**
 * `btf_parse_graph_root()`: finds member `nodeName` of the element struct,
 * which must be a `nodeTypeName` struct at an 8-byte aligned offset.
 */
export function parseGraphRoot(
  btf: Btf,
  root: { readonly valueBtfId: number; readonly nodeName: string },
  nodeTypeName: string,
  container: number,
): BtfFieldGraphRoot {
  const fail = (errno: number, reason: string): never => {
    throw new BtfError(reason, { typeId: container, errno });
  };
  const t = btf.typeById(root.valueBtfId);
  const members = t.kind === "STRUCT" || t.kind === "UNION" ? t.members : [];
  const what = `contains:${t.name}:${root.nodeName}`;
  let nodeOffset = -1;
  for (const m of members) {
    if (m.name !== root.nodeName) continue;
    if (nodeOffset >= 0) fail(EINVAL, `${what}: two members named '${m.name}'`);
    const n = btf.typeById(m.type);
    if (n.kind !== "STRUCT") fail(EINVAL, `${what}: member is not a struct`);
    if (n.name !== nodeTypeName) {
      fail(EINVAL, `${what}: member is ${n.name}, not ${nodeTypeName}`);
    }
    // The kernel reads the offset with the *node* struct's kflag (it passes
    // `n` to __btf_member_bit_offset); for the usual kflag-0 node that is
    // the raw offset word.
    const bits = n.kflag ? m.rawOffset & 0xffffff : m.rawOffset;
    if (bits % 8) fail(EINVAL, `${what}: node is not byte aligned`);
    if ((bits / 8) % 8) {
      fail(EINVAL, `${what}: node offset ${bits / 8} is not 8-byte aligned`);
    }
    nodeOffset = bits / 8;
  }
  if (nodeOffset < 0) {
    fail(ENOENT, `${what}: no such member in struct ${t.name}`);
  }
  return {
    valueBtfId: root.valueBtfId,
    nodeOffset,
    nodeName: root.nodeName,
    valueRecord: null,
  };
}
