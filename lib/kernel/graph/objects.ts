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
 *
 * The environment and object types are in `runtime_env.ts` (re-exported here).
 * @module
 */
import { structMetaTypeId } from "../struct_meta_addr.ts";
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
import { graphFieldFreer } from "./field_freer.ts";
import { GraphCorruption, initListHead, px, rbClearNode } from "./layouts.ts";
import {
  BPF_GLOBAL_PERCPU_MA_MAX_SIZE,
  type GraphEnv,
  type GraphEventKind,
  type ObjectTable,
  type ObjEntry,
  type ObjType,
  type RacingOp,
  roundUp8,
  typeLabel,
} from "./runtime_env.ts";

export {
  BPF_GLOBAL_PERCPU_MA_MAX_SIZE,
  btfTypes,
  type GraphEnv,
  type GraphEventKind,
  type GraphTrace,
  type ObjectTable,
  type ObjEntry,
  type ObjType,
  type RacingListOp,
  type RacingOp,
  type RacingRbOp,
  roundUp8,
  typeLabel,
} from "./runtime_env.ts";

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
  /** The kfunc call being served, if any (see {@link enter}). */
  vm: CallContext | undefined = undefined;
  /** Unlocked list and rb-tree operations between their reads and their writes, by call. */
  readonly racing: Map<CallContext, RacingOp> = new Map();
  private readonly percpuMas = new Map<number, BpfMemAlloc>();
  private freer: FieldFreer | undefined = undefined;

  /** A runtime over `env`. */
  constructor(env: GraphEnv) {
    this.env = env;
    this.space = env.space;
    this.ma = env.ma;
    this.objects = env.objects ?? new Map();
  }

  /** Records call `vm` and its CPU; returns the CPU. */
  enter(vm: CallContext): number {
    this.vm = vm;
    this.cpu = (this.env.cpuOf ?? defaultCpuOf)(vm);
    return this.cpu;
  }

  /** Ends the call {@link enter} recorded, back to `outer` (default: none). */
  leave(outer?: CallContext): void {
    this.vm = outer;
  }

  /** The site of the current call to `kfunc`: program, insn, kfunc. */
  site(kfunc: string): string {
    const vm = this.vm;
    if (vm === undefined) return kfunc;
    const prog = this.env.progOf?.(vm);
    return `${
      prog === undefined ? "" : `${prog} `
    }insn ${vm.insnIndex} (${kfunc})`;
  }

  /** True when events are traced (callers skip building details otherwise). */
  get tracing(): boolean {
    return this.env.trace !== undefined;
  }

  /** Traces an event of the current call. */
  event(ev: GraphEventKind, address: bigint, detail: string): void {
    this.env.trace?.(ev, this.cpu, this.vm, address, detail);
  }

  /**
   * True when the current call runs a list operation on `head` without the
   * lock the verifier requires (only known inside a kernel: see
   * {@link GraphEnv.lockHeld}).
   */
  unlocked(head: bigint): boolean {
    const held = this.env.lockHeld, vm = this.vm;
    return held !== undefined && vm !== undefined && !held(vm, head);
  }

  /** The live object whose region holds `address`, if any. */
  objectAt(address: bigint): ObjEntry | undefined {
    const region = this.space.regionAt(address);
    const entry = region === undefined
      ? undefined
      : this.objects.get(region.id);
    return entry !== undefined && region!.live ? entry : undefined;
  }

  /**
   * The type a rewritten `bpf_obj_new_impl(size, meta)` allocates: the
   * struct whose meta `meta` is, or a plain `size`-byte object (a type
   * without special fields has no meta: the kernel knows only its size).
   */
  typeFromFixup(size: bigint, meta: bigint): ObjType {
    if (meta !== 0n) {
      const id = structMetaTypeId(meta);
      if (id === undefined) {
        throw new ExecError(-1, `0x${meta.toString(16)} is not a struct meta`);
      }
      return this.typeOf(BigInt(id));
    }
    return { typeId: 0, size: Number(size & 0xffffffffn), record: null };
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
    if (this.tracing) this.event("alloc", p, typeLabel(type));
    return p;
  }

  /** Mirrors bpf_percpu_obj_new_impl(): `nr_cpus` zeroed copies, or 0n. */
  percpuObjNew(cpu: number, type: ObjType, site: string): bigint {
    if (type.size > BPF_GLOBAL_PERCPU_MA_MAX_SIZE || type.size === 0) return 0n;
    const ma = this.percpuMa(type.size);
    const p = ma.cacheAlloc(cpu, site);
    if (p !== 0n) {
      this.track(p, type, ma, true);
      if (this.tracing) this.event("alloc", p, `percpu ${typeLabel(type)}`);
    }
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
    if (this.tracing) {
      this.event("free", p, entry === undefined ? "?" : typeLabel(entry.type));
    }
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
    this.env.onWarn?.(message, this.vm);
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

/** End of the last special field: a lower bound of the object's size. */
function recordEnd(rec: BtfRecord): number {
  let end = 0;
  for (const f of rec.fields) end = Math.max(end, f.offset + f.size);
  return end;
}
