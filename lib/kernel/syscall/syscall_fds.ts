/**
 * The simulated kernel's one user process, as far as a `BPF_PROG_TYPE_SYSCALL`
 * program sees it: its file descriptor table and the kernel's map id space
 * (`map_idr`). A syscall program runs in the task that called
 * `BPF_PROG_TEST_RUN`, so the maps it creates with `bpf_sys_bpf` land in
 * that task's table and `bpf_sys_close` closes that task's fds.
 *
 * ## What the simulated process holds
 * - fds 0, 1 and 2 are open on non-BPF files (stdin, stdout, stderr): a BPF
 *   command given one fails with -EINVAL ("not a map", "not BTF"), and
 *   `bpf_sys_close` may close them like any fd.
 * - The loader's objects hold no fds here: bpfsim's loader keeps maps by
 *   address, not by fd. {@link openMapFd} gives an existing map an fd (and
 *   an id), as libbpf's process holds one for each map it created, so that a
 *   test or script can pass it to a program in its context.
 * - A new fd is the lowest free number (`alloc_fd()`), below the process's
 *   `RLIMIT_NOFILE` of {@link SIM_NOFILE}; past it, -EMFILE.
 * - Map ids come from `idr_alloc_cyclic(&map_idr, map, 1, INT_MAX)`: 1, 2, …
 *   in creation order, only for maps that got an fd here. A map
 *   `bpf_sys_bpf` created is freed (its id released) when its last fd is
 *   closed; a map {@link openMapFd} opened stays with its object.
 *
 * The real process's numbers differ (the oracle's libbpf process already
 * holds fds 3 to 5 when its program runs), so fixtures never compare fd
 * numbers, only what the commands do with them.
 * @module
 */
import { EBADF, EMFILE } from "../../uapi/errno.ts";
import type { Kernel } from "../kernel.ts";
import type { BpfMap } from "../maps/map.ts";

/** `RLIMIT_NOFILE` of the simulated process (the usual soft limit, 1024). */
export const SIM_NOFILE = 1024;

/** A map as the kernel's `map_idr` holds it: the map and how many fds refer to it. */
export interface MapHandle {
  /** The live map. */
  readonly map: BpfMap;
  /** `map->id`. */
  readonly id: number;
  /** Address of its `struct bpf_map` (what a program's `lddw` would hold). */
  readonly address: bigint;
  /** True when the last fd's close frees it (created by `bpf_sys_bpf`). */
  readonly ownedByFds: boolean;
}

/** One open file of the simulated process. */
export type FdFile =
  | {
    /** A file that is not a BPF object (the standard streams). */
    readonly kind: "other";
    /** What it is, for messages. */
    readonly name: string;
  }
  | {
    /** A map file (`bpf_map_fops`). */
    readonly kind: "map";
    /** The map. */
    readonly handle: MapHandle;
    /** `FMODE_CAN_READ` (not opened `BPF_F_WRONLY`). */
    readonly canRead: boolean;
    /** `FMODE_CAN_WRITE` (not opened `BPF_F_RDONLY`). */
    readonly canWrite: boolean;
  };

/** The fd table of the simulated process and the kernel's map ids. */
export class SimProcess {
  private readonly files: (FdFile | undefined)[] = [
    { kind: "other", name: "stdin" },
    { kind: "other", name: "stdout" },
    { kind: "other", name: "stderr" },
  ];
  private readonly maps = new Map<number, MapHandle>();
  private readonly idsByMap = new Map<BpfMap, MapHandle>();
  private readonly fdCounts = new Map<MapHandle, number>();
  private nextMapId = 1;

  /** The file open at `fd`, or undefined for a free fd (`fdget()` failing). */
  file(fd: number): FdFile | undefined {
    return Number.isInteger(fd) && fd >= 0 ? this.files[fd] : undefined;
  }

  /** The fds open now, in order. */
  openFds(): number[] {
    const out: number[] = [];
    this.files.forEach((f, fd) => {
      if (f !== undefined) out.push(fd);
    });
    return out;
  }

  /** Installs `file` at the lowest free fd: the fd, or -EMFILE. */
  install(file: FdFile): number {
    let fd = this.files.findIndex((f) => f === undefined);
    if (fd < 0) fd = this.files.length;
    if (fd >= SIM_NOFILE) return -EMFILE;
    this.files[fd] = file;
    if (file.kind === "map") {
      const n = this.fdCounts.get(file.handle) ?? 0;
      this.fdCounts.set(file.handle, n + 1);
    }
    return fd;
  }

  /**
   * `close_fd()`: 0, or -EBADF for a free fd. Closing a map's last fd frees
   * a map `bpf_sys_bpf` created (`bpf_map_put_with_uref()`).
   */
  close(fd: number): number {
    const file = this.file(fd);
    if (file === undefined) return -EBADF;
    this.files[fd] = undefined;
    if (file.kind === "map") {
      const left = (this.fdCounts.get(file.handle) ?? 1) - 1;
      this.fdCounts.set(file.handle, left);
      this.releaseIfUnused(file.handle);
    }
    return 0;
  }

  /**
   * Frees a map `bpf_sys_bpf` created once no fd refers to it: its id is
   * released and its elements freed (`__bpf_map_put()`).
   */
  releaseIfUnused(handle: MapHandle): void {
    if (!handle.ownedByFds || this.fdCount(handle) > 0) return;
    if (this.maps.get(handle.id) !== handle) return;
    this.maps.delete(handle.id);
    this.idsByMap.delete(handle.map);
    this.fdCounts.delete(handle);
    handle.map.destroy();
  }

  /**
   * `bpf_map_alloc_id()`: gives `map` the next id (once; a map already
   * known keeps its handle).
   */
  registerMap(map: BpfMap, address: bigint, ownedByFds: boolean): MapHandle {
    const known = this.idsByMap.get(map);
    if (known !== undefined) return known;
    const handle: MapHandle = {
      map,
      id: this.nextMapId++,
      address,
      ownedByFds,
    };
    this.maps.set(handle.id, handle);
    this.idsByMap.set(map, handle);
    return handle;
  }

  /** The map with id `id` (`idr_find(&map_idr, id)`), if alive. */
  mapById(id: number): MapHandle | undefined {
    return this.maps.get(id);
  }

  /** How many fds refer to `handle`'s map. */
  fdCount(handle: MapHandle): number {
    return this.fdCounts.get(handle) ?? 0;
  }
}

const PROCESSES = new WeakMap<Kernel, SimProcess>();

/** The simulated process of `kernel` (made on first use). */
export function simProcess(kernel: Kernel): SimProcess {
  let process = PROCESSES.get(kernel);
  if (process === undefined) PROCESSES.set(kernel, process = new SimProcess());
  return process;
}

/** Options of {@link openMapFd}. */
export interface OpenMapFdOptions {
  /** `BPF_F_RDONLY`: an fd that cannot write. */
  readonly readOnly?: boolean;
  /** `BPF_F_WRONLY`: an fd that cannot read. */
  readonly writeOnly?: boolean;
}

/**
 * Opens an fd of `kernel`'s process on an existing map (one of a loaded
 * object's, at `address`), giving the map an id if it has none, as the
 * process that loaded it holds one. Returns the fd, or -EMFILE.
 * @example
 * ```ts
 * const fd = openMapFd(kernel, loaded.maps[0].map!, loaded.maps[0].address);
 * ```
 */
export function openMapFd(
  kernel: Kernel,
  map: BpfMap,
  address: bigint,
  opts: OpenMapFdOptions = {},
): number {
  const process = simProcess(kernel);
  const handle = process.registerMap(map, address, false);
  return process.install({
    kind: "map",
    handle,
    canRead: opts.writeOnly !== true,
    canWrite: opts.readOnly !== true,
  });
}
