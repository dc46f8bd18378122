/**
 * Runtime of `bpf_get_local_storage()` (kernel/bpf/helpers.c) over the
 * storages a run gives the program (maps/cgroup_storage.ts).
 *
 * The kernel's helper ignores which map it is handed beyond its storage
 * type: it returns the storage of that type in the running program's
 * `bpf_prog_array_item` (`bpf_cg_run_ctx`), and the verifier allows one
 * cgroup storage map per type in a program (`bpf_cgroup_storage_assign()`).
 * For `BPF_PROG_TEST_RUN`, `bpf_test_run()` fills that item with storages
 * fresh from `bpf_cgroup_storage_alloc()` — zeroed, kept for all `repeat`
 * runs, freed afterwards. {@link CgroupRunStorages} is that item: it
 * allocates a type's storage when the program first asks for it (nothing
 * can tell the difference from allocating before the first run) and frees
 * them all at the end of the run. bpfsim attaches nothing to cgroups, so
 * every run — test run or a hook run with `runInContext()` — gets such
 * storages of its own.
 * @module
 */
import { ExecError } from "../exec/fault.ts";
import type { HelperFn } from "../exec/state.ts";
import { cpuOf } from "./generic_helpers_task.ts";
import {
  CgroupRunStorage,
  CgroupStorageMap,
  type CgroupStorageType,
} from "./maps/cgroup_storage.ts";
import type { MapRegistry } from "./object_loader.ts";

/** `BPF_FUNC_get_local_storage`. */
export const BPF_FUNC_get_local_storage = 81;

/** The cgroup storages of one run, by storage type (see the module comment). */
export class CgroupRunStorages {
  private readonly byType = new Map<CgroupStorageType, CgroupRunStorage>();

  /**
   * The run's storage of `map`'s type, allocated on first use. With the
   * verifier's one-map-per-type rule the map is always the same one.
   */
  storageFor(map: CgroupStorageMap): CgroupRunStorage {
    let storage = this.byType.get(map.storageType);
    if (storage === undefined) {
      storage = new CgroupRunStorage(map);
      this.byType.set(map.storageType, storage);
    }
    return storage;
  }

  /** `bpf_cgroup_storage_free()` of every storage (the end of the run). */
  free(): void {
    for (const storage of this.byType.values()) storage.free();
    this.byType.clear();
  }
}

/**
 * `bpf_get_local_storage(map, flags)` over `storages`: the address of the
 * run's storage of `map`'s type — on the calling CPU for the per-CPU type.
 * `flags` must be 0, which the verifier checks, so it is not looked at.
 */
export function cgroupStorageHelpers(
  registry: MapRegistry,
  storages: CgroupRunStorages,
): Map<number, HelperFn> {
  return new Map<number, HelperFn>([
    [BPF_FUNC_get_local_storage, (vm) => {
      const map = registry.at(vm.arg(1));
      if (!(map instanceof CgroupStorageMap)) {
        throw new ExecError(
          vm.insnIndex,
          `bpf_get_local_storage: R1 is not a cgroup storage map (${
            map === undefined ? registry.describe(vm.arg(1)) : map.attr.name
          })`,
        );
      }
      return storages.storageFor(map).address(cpuOf(vm));
    }],
  ]);
}
