/**
 * `bpf_sys_bpf(cmd, attr, attr_size)`: the `bpf()` commands a
 * `BPF_PROG_TYPE_SYSCALL` program may issue (kernel/bpf/syscall.c:
 * `bpf_sys_bpf()` then `__sys_bpf()` on a kernel `bpfptr_t`), carried out
 * on the simulated kernel's maps and its process's fd table
 * (`syscall_fds.ts`).
 *
 * ## Commands
 * - Refused by the helper's own switch, before `attr` is read: everything
 *   but the nine below — -EINVAL. That includes `BPF_MAP_LOOKUP_ELEM` and
 *   `BPF_PROG_TEST_RUN` (only `kern_sys_bpf()`, the light skeleton's entry
 *   from kernel modules, runs a program; the helper does not).
 * - Then `__sys_bpf()`: -E2BIG for `attr_size` over a page, or for nonzero
 *   bytes beyond `sizeof(union bpf_attr)` (168 bytes in 6.18, measured on
 *   the oracle); `attr` is read as `min(attr_size, 168)` bytes, the rest
 *   zero.
 * - Carried out: `BPF_MAP_CREATE` (the map types `createMap` models; a map
 *   type the kernel has but bpfsim does not, `map_ifindex` offload,
 *   struct_ops and `BPF_F_TOKEN_FD` with a token are ExecErrors),
 *   `BPF_MAP_UPDATE_ELEM` and `BPF_MAP_DELETE_ELEM` (on array, hash, queue,
 *   stack and ring buffer maps; other types throw), `BPF_MAP_FREEZE` and
 *   `BPF_MAP_GET_FD_BY_ID`, each with the kernel's `CHECK_ATTR()` of the
 *   bytes past its last field and its errnos in the kernel's order. Keys
 *   and values are copied with `copy_from_kernel_nofault()`: a pointer that
 *   does not map gives -EFAULT.
 * - Allowed by the kernel but not carried out: `BPF_PROG_LOAD`,
 *   `BPF_BTF_LOAD`, `BPF_LINK_CREATE` and `BPF_RAW_TRACEPOINT_OPEN` pass the
 *   `__sys_bpf()` checks above and then throw an ExecError naming the
 *   command: bpfsim cannot load a program, BTF or link from inside a run.
 *
 * The simulated process has no BTF objects, so a map asking for BTF types
 * fails as the kernel fails for an fd that is not BTF (-EBADF for a free
 * fd, -EINVAL for any other). `excl_prog_hash` is checked (32 bytes,
 * readable) but a created map is reachable only by fd here, so the
 * exclusivity it asks for has nothing to act on. Map names are checked
 * with ASCII `isalnum()`: the kernel's ctype also takes the Latin-1
 * letters (bytes 0xc0–0xff but 0xd7 and 0xf7; the oracle creates a map
 * named "\xe9"), which bpfsim refuses with -EINVAL.
 * @module
 */
import { ExecError, MemoryFault } from "../../exec/fault.ts";
import type { CallContext } from "../../exec/state.ts";
import { MAP_TYPE, mapTypeName } from "../../uapi/bpf.ts";
import {
  E2BIG,
  EBADF,
  EFAULT,
  EINVAL,
  ENOENT,
  ENOTSUPP,
  EPERM,
} from "../../uapi/errno.ts";
import { cpuOf } from "../generic_helpers_task.ts";
import { createMap, mapAllocCheck } from "../maps/create.ts";
import {
  BPF_F_LOCK,
  BPF_F_NUMA_NODE,
  BPF_F_RDONLY,
  BPF_F_WRONLY,
  type BpfMap,
  MapError,
} from "../maps/map.ts";
import { BPF_MAP_STRUCT_SIZE } from "../object_loader.ts";
import type { ObjectHelperEnv } from "../object_helpers.ts";
import { type FdFile, type SimProcess, simProcess } from "./syscall_fds.ts";
import { BPF_SPIN_LOCK } from "../../btf/field_types.ts";

/** `enum bpf_cmd` numbers bpfsim knows by name. */
export const BPF_CMD = {
  map_create: 0,
  map_lookup_elem: 1,
  map_update_elem: 2,
  map_delete_elem: 3,
  prog_load: 5,
  prog_test_run: 10,
  map_get_fd_by_id: 14,
  raw_tracepoint_open: 17,
  btf_load: 18,
  map_freeze: 22,
  link_create: 28,
} as const;

/** `sizeof(union bpf_attr)` in 6.18 (the oracle's kernel: a nonzero byte 168 is -E2BIG). */
export const BPF_ATTR_SIZE = 168;
/** `PAGE_SIZE`: `bpf_check_uarg_tail_zero()` refuses a larger attr. */
const PAGE_SIZE = 4096;
/** `BPF_F_TOKEN_FD`: the attr names a BPF token. */
export const BPF_F_TOKEN_FD = 1 << 16;
/** Map types 6.18 has (`bpf_map_types[]`): 1 to `BPF_MAP_TYPE_ARENA`. */
const MAX_MAP_TYPE: number = MAP_TYPE.arena;
/** `SHA256_DIGEST_SIZE`: the length `excl_prog_hash` must have. */
const SHA256_DIGEST_SIZE = 32;
/** Map types whose update / delete by fd bpfsim carries out. */
const FD_OPS_MAP_TYPES: ReadonlySet<number> = new Set([
  MAP_TYPE.hash,
  MAP_TYPE.array,
  MAP_TYPE.percpu_hash,
  MAP_TYPE.percpu_array,
  MAP_TYPE.lru_hash,
  MAP_TYPE.lru_percpu_hash,
  MAP_TYPE.queue,
  MAP_TYPE.stack,
  MAP_TYPE.ringbuf,
]);

/** Names of the commands the helper lets through but bpfsim cannot carry out. */
const UNMODELLED: ReadonlyMap<number, string> = new Map([
  [BPF_CMD.prog_load, "BPF_PROG_LOAD"],
  [BPF_CMD.raw_tracepoint_open, "BPF_RAW_TRACEPOINT_OPEN"],
  [BPF_CMD.btf_load, "BPF_BTF_LOAD"],
  [BPF_CMD.link_create, "BPF_LINK_CREATE"],
]);

/** Byte just past each command's `*_LAST_FIELD`: `CHECK_ATTR()` wants zeros from there. */
const ATTR_END = {
  map_create: 92, // excl_prog_hash_size
  map_update_elem: 32, // flags
  map_delete_elem: 16, // key
  map_freeze: 4, // map_fd
  map_get_fd_by_id: 12, // open_flags
} as const;

/** The attr as `__sys_bpf()` holds it: 168 bytes, zero past what was given. */
class Attr {
  private readonly view: DataView;
  constructor(readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  }
  u32(off: number): number {
    return this.view.getUint32(off, true);
  }
  u64(off: number): bigint {
    return this.view.getBigUint64(off, true);
  }
  /** `CHECK_ATTR()`: true when a byte from `end` on is nonzero. */
  unusedSet(end: number): boolean {
    return this.bytes.subarray(end).some((b) => b !== 0);
  }
}

/**
 * Mirrors `bpf_sys_bpf()`: the command's result (an fd, 0, or a negative
 * errno), or an ExecError for what bpfsim does not carry out.
 */
export function sysBpf(env: ObjectHelperEnv, vm: CallContext): number {
  const cmd = vm.argLo(1);
  const allowed = cmd === BPF_CMD.map_create ||
    cmd === BPF_CMD.map_update_elem || cmd === BPF_CMD.map_delete_elem ||
    cmd === BPF_CMD.map_freeze || cmd === BPF_CMD.map_get_fd_by_id ||
    UNMODELLED.has(cmd);
  if (!allowed) return -EINVAL;
  // __sys_bpf(): bpf_check_uarg_tail_zero(), then copy min(size, 168) bytes
  const size = vm.argLo(3) >>> 0;
  if (size > PAGE_SIZE) return -E2BIG;
  const given = vm.mem.readBytes(vm.arg(2), size);
  if (given.subarray(BPF_ATTR_SIZE).some((b) => b !== 0)) return -E2BIG;
  const bytes = new Uint8Array(BPF_ATTR_SIZE);
  bytes.set(given.subarray(0, BPF_ATTR_SIZE));
  const attr = new Attr(bytes);
  const process = simProcess(env.loaded.kernel);
  switch (cmd) {
    case BPF_CMD.map_create:
      return mapCreate(env, vm, process, attr);
    case BPF_CMD.map_update_elem:
      return mapUpdateElem(vm, process, attr);
    case BPF_CMD.map_delete_elem:
      return mapDeleteElem(vm, process, attr);
    case BPF_CMD.map_freeze:
      return mapFreeze(process, attr);
    case BPF_CMD.map_get_fd_by_id:
      return mapGetFdById(process, attr);
  }
  throw new ExecError(
    vm.insnIndex,
    `bpf_sys_bpf command ${
      UNMODELLED.get(cmd)
    } is not modelled by bpfsim's runtime`,
  );
}

/** `__bpf_map_get(fdget(fd))`: the map file, or -EBADF / -EINVAL. */
function mapFile(
  process: SimProcess,
  fd: number,
): Extract<FdFile, { kind: "map" }> | number {
  const file = process.file(fd);
  if (file === undefined) return -EBADF;
  return file.kind === "map" ? file : -EINVAL;
}

/** `bpfptr` copies from a kernel pointer (`copy_from_kernel_nofault()`). */
function copyIn(vm: CallContext, ptr: bigint, len: number): Uint8Array | null {
  if (len === 0) return new Uint8Array(0);
  try {
    return vm.mem.readBytes(ptr, len);
  } catch (e) {
    if (e instanceof MemoryFault) return null;
    throw e;
  }
}

/** Mirrors `map_create()` (see the module comment for what is refused how). */
function mapCreate(
  env: ObjectHelperEnv,
  vm: CallContext,
  process: SimProcess,
  attr: Attr,
): number {
  if (attr.unusedSet(ATTR_END.map_create)) return -EINVAL;
  const type = attr.u32(0);
  const rawFlags = attr.u32(16);
  const tokenFlag = (rawFlags & BPF_F_TOKEN_FD) !== 0;
  const flags = rawFlags & ~BPF_F_TOKEN_FD;
  const btfKey = attr.u32(52), btfValue = attr.u32(56);
  if (attr.u32(60) !== 0) {
    if (type !== MAP_TYPE.struct_ops || btfKey || btfValue) return -EINVAL;
    throw unmodelledMap(vm, "struct_ops maps");
  } else if (btfKey && !btfValue) return -EINVAL;
  const bloomOrArena = type === MAP_TYPE.bloom_filter ||
    type === MAP_TYPE.arena;
  if (!bloomOrArena && attr.u64(64) !== 0n) return -EINVAL;
  if ((flags & BPF_F_RDONLY) && (flags & BPF_F_WRONLY)) return -EINVAL;
  // one NUMA node (0): bpf_map_attr_numa_node() past nr_node_ids
  if ((flags & BPF_F_NUMA_NODE) && attr.u32(24) !== 0) return -EINVAL;
  if (type === 0 || type > MAX_MAP_TYPE) return -EINVAL;
  const mapAttr = {
    name: mapName(attr.bytes.subarray(28, 44)),
    type,
    keySize: attr.u32(4),
    valueSize: attr.u32(8),
    maxEntries: attr.u32(12),
    flags,
  };
  let err: number;
  try {
    // map_alloc_check() alone: the name is checked after the token
    err = mapAllocCheck({ ...mapAttr, name: "" });
  } catch (e) {
    if (e instanceof MapError && e.errno === 0) {
      throw unmodelledMap(vm, `${mapTypeName(type)} maps`);
    }
    throw e;
  }
  if (err) return err;
  if (attr.u32(44) !== 0) throw unmodelledMap(vm, "offloaded (map_ifindex)");
  // no BPF tokens in the simulated process: the fd is free or some other file
  if (tokenFlag) {
    return process.file(attr.u32(76)) === undefined ? -EBADF : -EINVAL;
  }
  // bpf_obj_name_cpy(), once the map is allocated
  if (!OBJ_NAME.test(mapAttr.name)) return -EINVAL;
  if (btfKey || btfValue) {
    // btf_get_by_fd(): the simulated process holds no BTF object
    return process.file(attr.u32(48)) === undefined ? -EBADF : -EINVAL;
  }
  const hash = attr.u64(80), hashSize = attr.u32(88);
  if (hash !== 0n) {
    if (hashSize !== SHA256_DIGEST_SIZE) return -EINVAL;
    if (copyIn(vm, hash, SHA256_DIGEST_SIZE) === null) return -EFAULT;
  } else if (hashSize !== 0) return -EINVAL;
  // bpf_map_flags_retain_permanent(): RDONLY / WRONLY belong to the fd
  const kernel = env.loaded.kernel;
  const map = createMap(kernel.space, {
    ...mapAttr,
    flags: flags & ~(BPF_F_RDONLY | BPF_F_WRONLY),
  }, { nrCpus: kernel.cpus.length });
  const address = kernel.space.mapRegion("kernel", BPF_MAP_STRUCT_SIZE, {
    name: `bpf_map:${mapAttr.name}`,
    read: false,
    write: false,
  });
  env.loaded.registry.add(address, map);
  const handle = process.registerMap(map, address, true);
  const fd = process.install({
    kind: "map",
    handle,
    canRead: (flags & BPF_F_WRONLY) === 0,
    canWrite: (flags & BPF_F_RDONLY) === 0,
  });
  // no fd: bpf_map_put_with_uref() frees the map again
  if (fd < 0) process.releaseIfUnused(handle);
  return fd;
}

/**
 * What `bpf_obj_name_cpy()` accepts: up to 15 characters before a NUL,
 * each `isalnum()` (ASCII here), `_` or `.`.
 */
const OBJ_NAME = /^[A-Za-z0-9_.]{0,15}$/;

/**
 * `attr->map_name` as `bpf_obj_name_cpy()` reads it: up to the NUL; with
 * no NUL in 16 bytes, the 16 characters (which the name check refuses).
 */
function mapName(raw: Uint8Array): string {
  const end = raw.indexOf(0);
  const bytes = end < 0 ? raw : raw.subarray(0, end);
  return String.fromCharCode(...bytes);
}

function unmodelledMap(vm: CallContext, what: string): ExecError {
  return new ExecError(
    vm.insnIndex,
    `bpf_sys_bpf command BPF_MAP_CREATE of ${what} is not modelled by bpfsim's runtime`,
  );
}

/** The map of an update or delete, refusing types bpfsim does not carry out. */
function fdOpsMap(vm: CallContext, map: BpfMap, command: string): BpfMap {
  if (!FD_OPS_MAP_TYPES.has(map.attr.type)) {
    const type = mapTypeName(map.attr.type);
    throw new ExecError(
      vm.insnIndex,
      `bpf_sys_bpf command ${command} on a ${type} map is not modelled by bpfsim's runtime`,
    );
  }
  return map;
}

/** `___bpf_copy_key()`: the key, -EFAULT, or -EINVAL for a key a keyless map is given. */
function copyKey(
  vm: CallContext,
  map: BpfMap,
  ptr: bigint,
): Uint8Array | number {
  if (map.attr.keySize === 0) return ptr === 0n ? new Uint8Array(0) : -EINVAL;
  return copyIn(vm, ptr, map.attr.keySize) ?? -EFAULT;
}

/** Mirrors `map_update_elem()`. */
function mapUpdateElem(
  vm: CallContext,
  process: SimProcess,
  attr: Attr,
): number {
  if (attr.unusedSet(ATTR_END.map_update_elem)) return -EINVAL;
  const file = mapFile(process, attr.u32(0));
  if (typeof file === "number") return file;
  const map = fdOpsMap(vm, file.handle.map, "BPF_MAP_UPDATE_ELEM");
  // map_get_sys_perms(): a frozen map is not writable through any fd
  if (!file.canWrite || map.frozen) return -EPERM;
  const flags = attr.u64(24);
  const hasSpinLock = map.record !== null &&
    (map.record.fieldMask & BPF_SPIN_LOCK) !== 0;
  if ((flags & BigInt(BPF_F_LOCK)) && !hasSpinLock) return -EINVAL;
  const key = copyKey(vm, map, attr.u64(8));
  if (typeof key === "number") return key;
  const value = copyIn(vm, attr.u64(16), map.syscallValueSize);
  if (value === null) return -EFAULT;
  // every type here but the ring buffer (-ENOTSUPP first) refuses flags
  // above BPF_EXIST (and BPF_F_LOCK), so high bits are -EINVAL
  if (flags > 0xffffffffn) {
    return map.attr.type === MAP_TYPE.ringbuf ? -ENOTSUPP : -EINVAL;
  }
  return map.updateFromSyscall(key, value, Number(flags), cpuOf(vm));
}

/** Mirrors `map_delete_elem()`. */
function mapDeleteElem(
  vm: CallContext,
  process: SimProcess,
  attr: Attr,
): number {
  if (attr.unusedSet(ATTR_END.map_delete_elem)) return -EINVAL;
  const file = mapFile(process, attr.u32(0));
  if (typeof file === "number") return file;
  const map = fdOpsMap(vm, file.handle.map, "BPF_MAP_DELETE_ELEM");
  if (!file.canWrite || map.frozen) return -EPERM;
  const key = copyKey(vm, map, attr.u64(8));
  if (typeof key === "number") return key;
  return map.deleteFromSyscall(key);
}

/** Mirrors `map_freeze()`: special fields, then the fd's write permission, then frozen. */
function mapFreeze(process: SimProcess, attr: Attr): number {
  if (attr.unusedSet(ATTR_END.map_freeze)) return -EINVAL;
  const file = mapFile(process, attr.u32(0));
  if (typeof file === "number") return file;
  const map = file.handle.map;
  if (map.record !== null) return -ENOTSUPP;
  if (!file.canWrite) return -EPERM;
  return map.freeze();
}

/** Mirrors `bpf_map_get_fd_by_id()` (the task is root: CAP_SYS_ADMIN). */
function mapGetFdById(process: SimProcess, attr: Attr): number {
  if (attr.unusedSet(ATTR_END.map_get_fd_by_id)) return -EINVAL;
  const openFlags = attr.u32(8);
  if (openFlags & ~(BPF_F_RDONLY | BPF_F_WRONLY)) return -EINVAL;
  if ((openFlags & BPF_F_RDONLY) && (openFlags & BPF_F_WRONLY)) return -EINVAL;
  const handle = process.mapById(attr.u32(0));
  if (handle === undefined) return -ENOENT;
  return process.install({
    kind: "map",
    handle,
    canRead: (openFlags & BPF_F_WRONLY) === 0,
    canWrite: (openFlags & BPF_F_RDONLY) === 0,
  });
}
