/**
 * Allocated objects (`bpf_obj_new()` / `bpf_obj_drop()`, kernel/bpf/helpers.c):
 * the {@link GraphRuntime} that owns the object table, allocates from
 * `bpf_global_ma` and frees an object's special fields before the object.
 *
 * ## Types
 * In the kernel the verifier rewrites `bpf_obj_new_impl(local_type_id, NULL)`
 * into `(size, meta)` where `meta` is the type's `struct btf_struct_meta`.
 * Here the runtime resolves the program's `local_type_id` itself through
 * {@link GraphEnv.types} (the program's BTF and its struct metas), and
 * remembers each object's type by its region, so later kfuncs find the
 * record (and a node's offset in its object) from the pointer alone. When
 * the verifier's rewrite lands, `meta`/`size` can be supplied directly.
 *
 * ## Per-CPU objects
 * The allocator model has no per-CPU unit allocator, so a per-CPU object
 * of `size` bytes is one unit of `nr_cpus × round_up(size, 8)` bytes from a
 * fixed-size `bpf_global_percpu_ma[size]`: CPU `c`'s copy is at
 * `ptr + c × round_up(size, 8)` ({@link GraphRuntime.percpuCopy}).
 * @module
 */
import type { Btf } from "../../btf/btf.ts";
import {
  BPF_LIST_HEAD,
  BPF_LIST_NODE,
  BPF_RB_NODE,
  BPF_REFCOUNT,
  type BtfRecord,
} from "../../btf/field_types.ts";
import { ExecError } from "../../exec/fault.ts";
import { type AddressSpace, PERM_RW } from "../../exec/memory.ts";
import type { CallContext } from "../../exec/state.ts";
import { type BpfMemAlloc, bpfMemAllocInit } from "../mem_alloc.ts";
import { bpfObjFreeFields, type FieldFreer } from "../maps/special_fields.ts";
import type { BpfCallbacks } from "./callback.ts";
import { graphFieldFreer } from "./field_freer.ts";
import { GraphCorruption, initListHead, px, rbClearNode } from "./layouts.ts";

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
    return { typeId: id, size: btf.sizeOf(id), record: metas.get(id) ?? null };
  };
}

function defaultCpuOf(vm: CallContext): number {
  const owner = vm.owner as { cpu?: { id?: unknown } } | undefined;
  const id = owner?.cpu?.id;
  return typeof id === "number" ? id : 0;
}

/** The state of the graph runtime: objects, allocators, warnings. */
export class GraphRuntime {
  /** The simulated memory. */
  readonly space: AddressSpace;
  /** `bpf_global_ma`. */
  readonly ma: BpfMemAlloc;
  /** What {@link GraphEnv} gave. */
  readonly env: GraphEnv;
  /** Live objects. */
  readonly objects: ObjectTable;
  /** `WARN_ON_ONCE()`s that fired, in order. */
  readonly warnings: string[] = [];
  /**
   * CPU of the last kfunc call; frees that come from maps (which name no
   * CPU) go to this CPU's caches.
   */
  cpu = 0;
  private readonly percpuMas = new Map<number, BpfMemAlloc>();
  private freer: FieldFreer | undefined = undefined;

  /** A runtime over `env`. */
  constructor(env: GraphEnv) {
    this.env = env;
    this.space = env.space;
    this.ma = env.ma;
    this.objects = env.objects ?? new Map();
  }

  /** Records the CPU of call `vm` and returns it. */
  enter(vm: CallContext): number {
    this.cpu = (this.env.cpuOf ?? defaultCpuOf)(vm);
    return this.cpu;
  }

  /** The live object whose region holds `address`, if any. */
  objectAt(address: bigint): ObjEntry | undefined {
    const region = this.space.regionAt(address);
    const entry = region === undefined
      ? undefined
      : this.objects.get(region.id);
    return entry !== undefined && region!.live ? entry : undefined;
  }

  /** Resolves `typeId` or throws an {@link ExecError}. */
  typeOf(typeId: bigint): ObjType {
    const type = typeId < 0x80000000n
      ? this.env.types(Number(typeId))
      : undefined;
    if (type === undefined) {
      throw new ExecError(
        -1,
        `type id ${typeId} is not a struct of the program's BTF`,
      );
    }
    return type;
  }

  /** Mirrors bpf_obj_new_impl(): a zeroed, `bpf_obj_init()`ed object, or 0n. */
  objNew(cpu: number, type: ObjType, site: string): bigint {
    const p = this.ma.alloc(cpu, type.size, site);
    if (p === 0n) return 0n;
    this.track(p, type, this.ma, false);
    this.objInit(type.record, p);
    return p;
  }

  /** Mirrors bpf_percpu_obj_new_impl(): `nr_cpus` zeroed copies, or 0n. */
  percpuObjNew(cpu: number, type: ObjType, site: string): bigint {
    if (type.size > BPF_GLOBAL_PERCPU_MA_MAX_SIZE || type.size === 0) return 0n;
    const ma = this.percpuMa(type.size);
    const p = ma.cacheAlloc(cpu, site);
    if (p !== 0n) this.track(p, type, ma, true);
    return p;
  }

  /** Address of CPU `cpu`'s copy of per-CPU object `ptr`. */
  percpuCopy(ptr: bigint, cpu: number): bigint {
    const entry = this.objectAt(ptr);
    if (entry === undefined || !entry.percpu) {
      throw new ExecError(-1, `0x${px(ptr)} is not a per-CPU object`);
    }
    return ptr + BigInt(cpu * roundUp8(entry.type.size));
  }

  /**
   * Mirrors __bpf_obj_drop_impl(): drops one reference of a refcounted
   * object; at zero (or without refcount) frees its fields, then the object
   * with `bpf_mem_free_rcu()`. `rec` is what the kernel's caller passes
   * (undefined: the object's own record).
   */
  objDrop(
    cpu: number,
    p: bigint,
    site: string,
    rec?: BtfRecord | null,
    percpu = false,
  ): void {
    const entry = this.objectAt(p);
    if (percpu && entry === undefined) {
      throw new ExecError(-1, `0x${px(p)} is not a live per-CPU object`);
    }
    const record = rec === undefined ? entry?.type.record ?? null : rec;
    if (record !== null && record.refcountOff >= 0) {
      if (!this.refcountDecAndTest(p + BigInt(record.refcountOff))) return;
    }
    if (record !== null) {
      const size = entry?.type.size ?? recordEnd(record);
      bpfObjFreeFields(
        record,
        this.space.slice(p, size, PERM_RW),
        p,
        this.fieldFreer(),
      );
    }
    const ma = entry?.ma ?? this.ma;
    if (entry !== undefined) this.untrack(p);
    if (percpu || entry?.percpu) ma.cacheFreeRcu(cpu, p, site);
    else ma.freeRcu(cpu, p, site);
  }

  /** The {@link FieldFreer} nested objects' fields are freed with. */
  fieldFreer(): FieldFreer {
    return this.freer ??= graphFieldFreer(this);
  }

  /** `refcount_dec_and_test()`: true when the count reached zero. */
  refcountDecAndTest(address: bigint): boolean {
    const count = this.space.read(address, 4);
    if (count === 0n) {
      throw new GraphCorruption("refcount_t: underflow; use-after-free.");
    }
    this.space.write(address, 4, count - 1n);
    return count === 1n;
  }

  /** Records a `WARN_ON_ONCE()`. */
  warn(message: string): void {
    this.warnings.push(message);
  }

  /** Mirrors bpf_obj_init(): the special fields get their initial state. */
  private objInit(rec: BtfRecord | null, p: bigint): void {
    if (rec === null) return;
    for (const f of rec.fields) {
      const at = p + BigInt(f.offset);
      switch (f.type) {
        case BPF_REFCOUNT:
          this.space.write(at, 4, 1n);
          break;
        case BPF_RB_NODE:
          rbClearNode(this.space, at);
          break;
        case BPF_LIST_HEAD:
        case BPF_LIST_NODE:
          initListHead(this.space, at);
          break;
        default: // zeroed by the allocator, as memset() leaves them
          break;
      }
    }
  }

  /** Enters a new object in the table. */
  private track(
    p: bigint,
    type: ObjType,
    ma: BpfMemAlloc,
    percpu: boolean,
  ): void {
    const region = this.space.regionAt(p)!;
    this.objects.set(region.id, { type, ma, percpu, address: p });
  }

  /** Removes a freed object from the table. */
  private untrack(p: bigint): void {
    this.objects.delete(this.space.regionAt(p)!.id);
  }

  /** `bpf_global_percpu_ma` for objects of `size` bytes. */
  private percpuMa(size: number): BpfMemAlloc {
    let ma = this.percpuMas.get(size);
    if (ma === undefined) {
      ma = bpfMemAllocInit(
        {
          space: this.space,
          rcu: this.ma.rcu,
          name: `bpf_global_percpu_ma${size}`,
        },
        roundUp8(size) * this.ma.nrCpus,
      );
      this.percpuMas.set(size, ma);
    }
    return ma;
  }
}

/** `round_up(n, 8)`. */
export function roundUp8(n: number): number {
  return (n + 7) & ~7;
}

/** End of the last special field: a lower bound of the object's size. */
function recordEnd(rec: BtfRecord): number {
  let end = 0;
  for (const f of rec.fields) end = Math.max(end, f.offset + f.size);
  return end;
}
