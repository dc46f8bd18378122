/**
 * Special fields of map values and allocated objects: the kernel's
 * `enum btf_field_type`, `struct btf_field` and `struct btf_record`
 * (include/linux/bpf.h), with the sizes and alignments of the uapi structs.
 * @module
 */

/** `struct bpf_spin_lock`. */
export const BPF_SPIN_LOCK = 1 << 0;
/** `struct bpf_timer`. */
export const BPF_TIMER = 1 << 1;
/** Pointer tagged `kptr_untrusted`. */
export const BPF_KPTR_UNREF = 1 << 2;
/** Pointer tagged `kptr`. */
export const BPF_KPTR_REF = 1 << 3;
/** Pointer tagged `percpu_kptr`. */
export const BPF_KPTR_PERCPU = 1 << 4;
/** Any kptr. */
export const BPF_KPTR = BPF_KPTR_UNREF | BPF_KPTR_REF | BPF_KPTR_PERCPU;
/** `struct bpf_list_head` (needs a `contains:` decl tag). */
export const BPF_LIST_HEAD = 1 << 5;
/** `struct bpf_list_node`. */
export const BPF_LIST_NODE = 1 << 6;
/** `struct bpf_rb_root` (needs a `contains:` decl tag). */
export const BPF_RB_ROOT = 1 << 7;
/** `struct bpf_rb_node`. */
export const BPF_RB_NODE = 1 << 8;
/** Graph nodes. */
export const BPF_GRAPH_NODE = BPF_RB_NODE | BPF_LIST_NODE;
/** Graph roots. */
export const BPF_GRAPH_ROOT = BPF_RB_ROOT | BPF_LIST_HEAD;
/** `struct bpf_refcount`. */
export const BPF_REFCOUNT = 1 << 9;
/** `struct bpf_wq`. */
export const BPF_WORKQUEUE = 1 << 10;
/** Pointer tagged `uptr` (task storage only). */
export const BPF_UPTR = 1 << 11;
/** `struct bpf_res_spin_lock`. */
export const BPF_RES_SPIN_LOCK = 1 << 12;
/** `struct bpf_task_work`. */
export const BPF_TASK_WORK = 1 << 13;

/** `BTF_FIELDS_MAX`: at most this many special fields per record. */
export const BTF_FIELDS_MAX = 11;
/** The kernel's `PAGE_SIZE` (x86-64), the limit on a uptr's pointee. */
export const PAGE_SIZE = 4096;
/** What the kernel stores in a `*_off` member that has no field (`-EINVAL`). */
export const NO_FIELD_OFF: number = -22;

/** Every single-bit field type, in bit order. */
export const BTF_FIELD_TYPES: readonly number[] = Array.from(
  { length: 14 },
  (_, i) => 1 << i,
);

/** `btf_field_type_name()`: `bpf_spin_lock`, `kptr`, `uptr`, … */
export function btfFieldTypeName(type: number): string {
  switch (type) {
    case BPF_SPIN_LOCK:
      return "bpf_spin_lock";
    case BPF_RES_SPIN_LOCK:
      return "bpf_res_spin_lock";
    case BPF_TIMER:
      return "bpf_timer";
    case BPF_WORKQUEUE:
      return "bpf_wq";
    case BPF_KPTR_UNREF:
    case BPF_KPTR_REF:
      return "kptr";
    case BPF_KPTR_PERCPU:
      return "percpu_kptr";
    case BPF_UPTR:
      return "uptr";
    case BPF_LIST_HEAD:
      return "bpf_list_head";
    case BPF_LIST_NODE:
      return "bpf_list_node";
    case BPF_RB_ROOT:
      return "bpf_rb_root";
    case BPF_RB_NODE:
      return "bpf_rb_node";
    case BPF_REFCOUNT:
      return "bpf_refcount";
    case BPF_TASK_WORK:
      return "bpf_task_work";
    default:
      return "unknown";
  }
}

/** `btf_field_type_size()`: sizeof the uapi struct (8 for pointers). */
export function btfFieldTypeSize(type: number): number {
  switch (type) {
    case BPF_SPIN_LOCK:
    case BPF_RES_SPIN_LOCK:
    case BPF_REFCOUNT:
      return 4;
    case BPF_TIMER:
    case BPF_WORKQUEUE:
    case BPF_LIST_HEAD:
    case BPF_RB_ROOT:
      return 16;
    case BPF_LIST_NODE:
      return 24;
    case BPF_RB_NODE:
      return 32;
    case BPF_KPTR_UNREF:
    case BPF_KPTR_REF:
    case BPF_KPTR_PERCPU:
    case BPF_UPTR:
    case BPF_TASK_WORK:
      return 8;
    default:
      return 0;
  }
}

/** `btf_field_type_align()`: alignof the uapi struct. */
export function btfFieldTypeAlign(type: number): number {
  switch (type) {
    case BPF_SPIN_LOCK:
    case BPF_RES_SPIN_LOCK:
    case BPF_REFCOUNT:
      return 4;
    case 0:
      return 0;
    default:
      return 8;
  }
}

/** A kptr's pointee: a program type (MEM_ALLOC) or a kernel type. */
export interface BtfFieldKptr {
  /** Type id of the pointee struct (in program BTF unless `kernel`). */
  readonly btfId: number;
  /** True when the pointee was found among kernel types. */
  readonly kernel: boolean;
}

/** What a `bpf_list_head` / `bpf_rb_root` owns. */
export interface BtfFieldGraphRoot {
  /** Type id of the element struct (`contains:TYPE:…`). */
  readonly valueBtfId: number;
  /** Byte offset of the node field inside the element struct. */
  readonly nodeOffset: number;
  /** Name of that node field (`contains:…:FIELD`). */
  readonly nodeName: string;
  /** The element struct's own record (set by `checkAndFixupFields`). */
  readonly valueRecord: BtfRecord | null;
}

/** One special field (`struct btf_field`). */
export interface BtfField {
  /** One of the `BPF_*` field-type bits. */
  readonly type: number;
  /** Byte offset in the value / object. */
  readonly offset: number;
  /** Size in bytes (`btf_field_type_size()`). */
  readonly size: number;
  /** For kptrs and uptrs: the pointee. */
  readonly kptr?: BtfFieldKptr;
  /** For list heads and rb roots: what they own. */
  readonly graphRoot?: BtfFieldGraphRoot;
}

/** The special fields of one struct / datasec (`struct btf_record`). */
export interface BtfRecord {
  /** Number of fields. */
  readonly cnt: number;
  /** OR of the field types present. */
  readonly fieldMask: number;
  /** Offsets cached as the kernel does; `NO_FIELD_OFF` (-22) when absent. */
  readonly spinLockOff: number;
  /** `bpf_res_spin_lock` offset. */
  readonly resSpinLockOff: number;
  /** `bpf_timer` offset. */
  readonly timerOff: number;
  /** `bpf_wq` offset. */
  readonly wqOff: number;
  /** `bpf_refcount` offset. */
  readonly refcountOff: number;
  /** `bpf_task_work` offset. */
  readonly taskWorkOff: number;
  /** Sorted by offset. */
  readonly fields: readonly BtfField[];
}

/** `btf_record_has_field()`. */
export function recordHasField(rec: BtfRecord | null, type: number): boolean {
  return rec !== null && (rec.fieldMask & type) !== 0;
}
