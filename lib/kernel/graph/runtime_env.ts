/**
 * What a graph runtime runs on and keeps track of: its environment
 * ({@link GraphEnv}), the types of allocated objects and their table, the
 * trace of its events, and the small helpers that describe objects.
 * @module
 */
import type { Btf } from "../../btf/btf.ts";
import type { BtfRecord } from "../../btf/field_types.ts";
import type { AddressSpace } from "../../exec/memory.ts";
import type { CallContext } from "../../exec/state.ts";
import type { BpfMemAlloc } from "../mem_alloc.ts";
import type { BpfCallbacks } from "./callback.ts";

/** `BPF_GLOBAL_PERCPU_MA_MAX_SIZE`: the largest per-CPU object. */
export const BPF_GLOBAL_PERCPU_MA_MAX_SIZE = 512;

/** What a program-local BTF type id stands for. */
export interface ObjType {
  /** The type id in the program's BTF. */
  readonly typeId: number;
  /** `sizeof` the type. */
  readonly size: number;
  /** Its special fields (its struct meta), or null. */
  readonly record: BtfRecord | null;
  /** Its BTF name (`item` for `struct item`), for traces and reports. */
  readonly name?: string;
}

/** One live object. */
export interface ObjEntry {
  /** Its type. */
  readonly type: ObjType;
  /** The allocator it came from. */
  readonly ma: BpfMemAlloc;
  /** Allocated by `bpf_percpu_obj_new()`. */
  readonly percpu: boolean;
  /** Address handed to the program. */
  readonly address: bigint;
}

/** Kinds of events the graph runtime traces. */
export type GraphEventKind = "alloc" | "free" | "push" | "pop";

/**
 * Receives the runtime's events: what, on which CPU, during which call
 * (undefined when no program called: a map freeing what it owns), the
 * object's address and a short detail (type and size, list or tree head).
 */
export type GraphTrace = (
  ev: GraphEventKind,
  cpu: number,
  vm: CallContext | undefined,
  address: bigint,
  detail: string,
) => void;

/** Live objects by region id; share one between runtimes that share objects. */
export type ObjectTable = Map<number, ObjEntry>;

/** What a {@link GraphRuntime} runs on. */
export interface GraphEnv {
  /** The simulated memory. */
  readonly space: AddressSpace;
  /** `bpf_global_ma`: a kmalloc-style (`size == 0`) allocator. */
  readonly ma: BpfMemAlloc;
  /** Resolves a program-local type id (see {@link btfTypes}). */
  readonly types: (localTypeId: number) => ObjType | undefined;
  /** Records of kptr pointees by BTF id (struct metas), for kptr drops. */
  readonly metas?: ReadonlyMap<number, BtfRecord>;
  /** Callback addresses (rb-tree `less`); required by `bpf_rbtree_add_impl`. */
  readonly callbacks?: BpfCallbacks;
  /** The CPU a call runs on; default: `owner.cpu.id` of the state, else 0. */
  readonly cpuOf?: (vm: CallContext) => number;
  /** Live objects; default a fresh table. */
  readonly objects?: ObjectTable;
  /** Where alloc/free/push/pop events go; default nowhere. */
  readonly trace?: GraphTrace;
  /** The program a call belongs to, for allocation and free sites. */
  readonly progOf?: (vm: CallContext) => string | undefined;
  /**
   * Whether the caller holds a `bpf_spin_lock` living in the same
   * allocation as the list head `head` (what the verifier demands). When
   * given and false, list operations run as the unlocked kernel code would
   * race: reads and list_debug checks first, then the CPU may be
   * interrupted, then the writes (see lib/kernel/graph/list.ts). Default:
   * every operation is atomic.
   */
  readonly lockHeld?: (vm: CallContext, head: bigint) => boolean;
  /** Hears each `WARN_ON_ONCE()` (with the call it fired in), e.g. to report it. */
  readonly onWarn?: (message: string, vm: CallContext | undefined) => void;
}

/**
 * Type resolution from a program's BTF: the size of `id` and its struct
 * meta (from `parseStructMetas(btf)`), as `btf_find_struct_meta()` finds it.
 */
export function btfTypes(
  btf: Btf,
  metas: ReadonlyMap<number, BtfRecord>,
): (localTypeId: number) => ObjType | undefined {
  return (typeId) => {
    if (typeId <= 0 || typeId >= btf.typeCount) return undefined;
    const id = btf.resolve(typeId).id;
    if (btf.typeById(id).kind !== "STRUCT") return undefined;
    return {
      typeId: id,
      size: btf.sizeOf(id),
      record: metas.get(id) ?? null,
      name: btf.typeById(id).name,
    };
  };
}

/** An unlocked list operation between its reads and its writes. */
export interface RacingListOp {
  /** A list add or del. */
  readonly kind: "list";
  /** The entry being added or removed. */
  readonly entry: bigint;
  /** Its `prev` as read (and checked) before the CPU was interrupted. */
  readonly prev: bigint;
  /** Its `next` as read (and checked). */
  readonly next: bigint;
  /** Address of the object holding the entry, as known at the reads. */
  readonly object: bigint;
}

/**
 * An unlocked rb-tree operation between its reads and its writes: an add
 * that found where to link the node (`rb_add`), or a remove that checked
 * the node's owner (`rb_remove`).
 */
export interface RacingRbOp {
  /** Which operation. */
  readonly kind: "rb_add" | "rb_remove";
  /** The `bpf_rb_node` being added or removed. */
  readonly entry: bigint;
  /** rb_add: the parent found on the way down (0n: the root's top). */
  readonly parent: bigint;
  /** rb_add: link as the parent's left child. */
  readonly asLeft: boolean;
  /** rb_add: the node becomes the leftmost. */
  readonly leftmost: boolean;
  /** Address of the object holding the node. */
  readonly object: bigint;
}

/** A graph operation a CPU was interrupted in (see `GraphRuntime.racing`). */
export type RacingOp = RacingListOp | RacingRbOp;

/** `struct item (24 B)`: a type for traces. */
export function typeLabel(type: ObjType): string {
  // a rewritten obj_new of a type without special fields knows only a size
  const name = type.name
    ? `struct ${type.name}`
    : type.typeId
    ? `type ${type.typeId}`
    : "object";
  return `${name} (${type.size} B)`;
}

/** `round_up(n, 8)`. */
export function roundUp8(n: number): number {
  return (n + 7) & ~7;
}
