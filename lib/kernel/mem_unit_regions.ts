/**
 * How the BPF memory allocator's objects appear in the interpreter's
 * {@link AddressSpace}, and how a pointer handed back is traced to its unit.
 *
 * ## Memory model (a deliberate choice)
 * Each handed-out object is one `alloc` region of `unit_size` bytes: the
 * header at offset 0, the object at offset {@link LLIST_NODE_SZ}, and the
 * returned pointer points past the header, as in the kernel. A region lives
 * exactly as long as the object is handed out (for `_rcu` frees: until the
 * RCU grace period ends). The *unit* (the slab memory) is recycled as the
 * kernel recycles it, but every reuse maps a fresh region id, so a stale
 * pointer faults `use-after-free` naming the old region (until the address
 * space, out of its ~30k ids, recycles that id: its quarantine). This is
 * stricter than the kernel, where `bpf_mem_free()`d memory is reused in place
 * at once and a stale read silently sees the new owner's bytes; reuse is
 * observable through `BpfMemAlloc.objectInfo()`'s `slot`. Freeing another
 * allocator's object is also refused (the kernel would accept it, the memory
 * being plain slab either way). The unit's bytes are shared by its
 * successive regions and zeroed at every hand-out (the kernel zeroes only
 * fresh kmalloc memory; its users initialise what they read), so runs never
 * depend on stale contents.
 * @module
 */
import { type AddressSpace, regionAddress } from "../exec/memory.ts";
import { MemAllocError } from "./mem_alloc_error.ts";
import type { ObjectInfo } from "./mem_alloc_stats.ts";
import { LLIST_NODE_SZ } from "./mem_cache_sizes.ts";
import type { MemUnit } from "./mem_unit.ts";

/** Allocation and free sites of an object ("" when not known / not freed). */
export interface UnitSites {
  /** Site of the object's allocation. */
  readonly allocSite: string;
  /** Site of its free, "" while it is live. */
  readonly freeSite: string;
}

/**
 * The regions of one allocator's handed-out units, by region id, and the
 * sites of the regions it has since unmapped (bounded: ids are recycled).
 */
export class UnitRegions {
  private readonly space: AddressSpace;
  private readonly name: string;
  private readonly units = new Map<number, MemUnit>();
  private readonly freed = new Map<number, UnitSites>();

  /** Regions in `space`, named and reported after the allocator `name`. */
  constructor(space: AddressSpace, name: string) {
    this.space = space;
    this.name = name;
  }

  /** Regions currently mapped (in use, or `_rcu`-freed awaiting the GP). */
  get mappedCount(): number {
    return this.units.size;
  }

  /**
   * Maps a fresh, zeroed region for `unit`, handed out on `cpu` at `site`,
   * and returns the object pointer (past the header).
   */
  map(unit: MemUnit, cpu: number, site: string): bigint {
    unit.bytes.fill(0);
    const id = this.space.mapRegionId("alloc", unit.bytes, {
      name:
        `${this.name}[cpu${unit.owner.cpu}:${unit.owner.unitSize}]#${unit.slot}`,
    });
    this.freed.delete(id);
    unit.regionId = id;
    unit.state = "allocated";
    unit.allocSite = site;
    unit.allocCpu = cpu;
    unit.freeSite = "";
    this.units.set(id, unit);
    return this.objectAddress(unit);
  }

  /** Unmaps the unit's region, remembering its sites for later reports. */
  unmap(unit: MemUnit): void {
    if (unit.regionId === 0) return;
    this.space.unmapRegion(regionAddress(unit.regionId));
    this.units.delete(unit.regionId);
    this.freed.set(unit.regionId, {
      allocSite: unit.allocSite,
      freeSite: unit.freeSite,
    });
    unit.regionId = 0;
  }

  /** Units currently handed out (not `_rcu`-freed), in mapping order. */
  handedOut(): MemUnit[] {
    return [...this.units.values()].filter((u) => u.state === "allocated");
  }

  /** The object pointer of a mapped unit. */
  objectAddress(unit: MemUnit): bigint {
    return regionAddress(unit.regionId) + BigInt(LLIST_NODE_SZ);
  }

  /** A `leak` report (not thrown) for a unit still handed out. */
  leakReport(unit: MemUnit): MemAllocError {
    return new MemAllocError(
      "leak",
      this.objectAddress(unit),
      `${this.describe(unit)} leaked`,
      { allocSite: unit.allocSite },
    );
  }

  /** What is known about a live (or `_rcu`-freed) object pointer. */
  objectInfo(ptr: bigint): ObjectInfo | undefined {
    const region = this.space.regionAt(ptr);
    const unit = region === undefined ? undefined : this.units.get(region.id);
    if (unit === undefined) return undefined;
    return {
      slot: unit.slot,
      unitSize: unit.owner.unitSize,
      cpu: unit.owner.cpu,
      state: unit.state,
      allocSite: unit.allocSite,
    };
  }

  /**
   * The sites of the object `ptr` points into, live, waiting for a grace
   * period or already released; undefined when the address was never one
   * of ours (or its region id has since been reused).
   */
  sitesOf(ptr: bigint): UnitSites | undefined {
    const region = this.space.regionAt(ptr);
    if (region === undefined) return undefined;
    const unit = this.units.get(region.id);
    if (unit !== undefined) {
      return { allocSite: unit.allocSite, freeSite: unit.freeSite };
    }
    if (region.live || !region.name.startsWith(`${this.name}[`)) {
      return undefined;
    }
    return this.freed.get(region.id);
  }

  /**
   * The handed-out unit `ptr` points to, for a free on `cpu` at `site`, or
   * a thrown {@link MemAllocError}: not mapped, not ours, already freed, or
   * not pointing at the object's start.
   */
  lookup(cpu: number, ptr: bigint, site: string): MemUnit {
    const region = this.space.regionAt(ptr);
    if (region === undefined) {
      throw new MemAllocError("invalid-free", ptr, "not a mapped object", {
        cpu,
        site,
      });
    }
    const unit = this.units.get(region.id);
    if (unit === undefined) {
      // region ids are finite and recycled: the record speaks only while
      // the id is still unmapped (then its last owner was one of ours)
      const past = region.live || !region.name.startsWith(`${this.name}[`)
        ? undefined
        : this.freed.get(region.id);
      throw past !== undefined
        ? new MemAllocError("double-free", ptr, `'${region.name}' freed`, {
          cpu,
          site,
          ...past,
        })
        : new MemAllocError(
          "invalid-free",
          ptr,
          `${region.kind} region '${region.name}' is not from ${this.name}`,
          { cpu, site },
        );
    }
    const sites = { cpu, site, allocSite: unit.allocSite };
    if (unit.state !== "allocated") {
      const detail = `${this.describe(unit)} freed, waiting for an RCU GP`;
      throw new MemAllocError("double-free", ptr, detail, {
        ...sites,
        freeSite: unit.freeSite,
      });
    }
    const offset = this.space.offsetOf(ptr);
    if (offset !== LLIST_NODE_SZ) {
      const detail = `pointer is at offset ${offset} of ${
        this.describe(unit)
      }, the object starts at ${LLIST_NODE_SZ}`;
      throw new MemAllocError("invalid-free", ptr, detail, sites);
    }
    return unit;
  }

  /** `N-byte unit #slot of <name> cpuK`, for reports. */
  describe(unit: MemUnit): string {
    return `${unit.owner.unitSize}-byte unit #${unit.slot} of ${this.name} cpu${unit.owner.cpu}`;
  }
}
