/**
 * Runtime of the local-storage helpers (net/core/bpf_sk_storage.c,
 * kernel/bpf/bpf_task_storage.c, kernel/bpf/bpf_cgrp_storage.c,
 * kernel/bpf/bpf_inode_storage.c) over the
 * owners the simulated kernel has:
 * - sockets: the dummy `skb->sk` of a test run ({@link TestRunSock},
 *   recognised by the hooked region the pointer lands in). Its storage is
 *   freed when the socket goes at the end of the run (`sk_free()` →
 *   `bpf_sk_storage_free()`): the run releases the socket's region, and the
 *   next operation on any storage map holding an element of it frees that
 *   element — or at once, with {@link bpfSkStorageFree};
 * - tasks: the one task per CPU of `generic_helpers_task.ts`, whose
 *   `task_struct` address `bpf_get_current_task_btf()` gives. They never
 *   exit on their own; {@link simTaskStorageOwner} with
 *   `localStorageDestroy()` is `bpf_task_storage_free()` at exit;
 * - cgroups: the root cgroup of the default hierarchy (id 1, where every
 *   simulated task lives). A `struct cgroup *` is the address of a
 *   zero-filled read-only `kernel` region of {@link SIM_CGROUP_STRUCT_SIZE}
 *   bytes, one per kernel, mapped on first use ({@link simRootCgroupAddress});
 *   its fields are not laid out, as for the fake `task_struct`;
 * - inodes: the simulated inodes of the LSM environment (`lsm_env.ts`),
 *   recognised by address; their storage is freed when the inode is
 *   destroyed (`LsmEnv.destroyInode()`, `bpf_inode_storage_free()`).
 * @module
 */
import { ExecError } from "../exec/fault.ts";
import type { AddressSpace } from "../exec/memory.ts";
import type { CallContext, HelperFn } from "../exec/state.ts";
import { cpuOf, simTaskAddress } from "./generic_helpers_task.ts";
import type { Kernel } from "./kernel.ts";
import { lsmEnv } from "./hooks/lsm/lsm_env.ts";
import {
  BPF_LOCAL_STORAGE_GET_F_CREATE,
  localStorageDestroy,
  LocalStorageMap,
  StorageOwner,
} from "./maps/local_storage.ts";
import { EINVAL } from "./maps/map.ts";
import type { ObjectHelperEnv } from "./object_helpers.ts";
import { TestRunSock } from "./net/packet_sock.ts";

/** Helper ids (include/uapi/linux/bpf.h). */
export const STORAGE_HELPER = {
  sk_storage_get: 107,
  sk_storage_delete: 108,
  task_storage_get: 156,
  task_storage_delete: 157,
  cgrp_storage_get: 210,
  cgrp_storage_delete: 211,
  inode_storage_get: 145,
  inode_storage_delete: 146,
} as const;

/** Bytes of the fake root `struct cgroup` region (at least the real size). */
export const SIM_CGROUP_STRUCT_SIZE = 8192;

/** Storage owners of test-run sockets. */
const SOCK_OWNERS = new WeakMap<TestRunSock, StorageOwner>();
/** Storage owners of each kernel's tasks, by CPU. */
const TASK_OWNERS = new WeakMap<Kernel, StorageOwner[]>();
/** Each kernel's root cgroup: its address and storage owner. */
const ROOT_CGROUPS = new WeakMap<
  Kernel,
  { address: bigint; owner: StorageOwner }
>();

/** The test-run socket whose `struct bpf_sock` starts at `address`, if any. */
function testRunSockAt(
  space: AddressSpace,
  address: bigint,
): TestRunSock | undefined {
  const region = space.regionAt(address);
  if (region === undefined || !region.live) return undefined;
  const hook = region.hook;
  return hook instanceof TestRunSock && hook.is(address) ? hook : undefined;
}

/** The storage owner of a test-run socket mapped at `address`. */
function sockOwner(sock: TestRunSock, address: bigint): StorageOwner {
  let owner = SOCK_OWNERS.get(sock);
  if (owner === undefined) {
    // the socket lives while its region is mapped at this address
    owner = new StorageOwner("sk", "sock (test run)", () => sock.is(address));
    SOCK_OWNERS.set(sock, owner);
  }
  return owner;
}

/** The storage owner of `sock`, once a helper gave it storage. */
export function sockStorageOwner(sock: TestRunSock): StorageOwner | undefined {
  return SOCK_OWNERS.get(sock);
}

/**
 * Mirrors `bpf_sk_storage_free()` (from `__sk_destruct()`): frees every
 * storage element of `sock`. For whoever releases a test run's socket.
 */
export function bpfSkStorageFree(sock: TestRunSock): void {
  const owner = SOCK_OWNERS.get(sock);
  if (owner !== undefined) localStorageDestroy(owner);
}

/** The storage owner of the simulated task current on `cpu` of `kernel`. */
export function simTaskStorageOwner(kernel: Kernel, cpu: number): StorageOwner {
  let owners = TASK_OWNERS.get(kernel);
  if (owners === undefined) TASK_OWNERS.set(kernel, owners = []);
  return owners[cpu] ??= new StorageOwner("task", `task[cpu${cpu}]`);
}

/** The root cgroup of `kernel`: its fake `struct cgroup` and storage owner. */
function rootCgroup(kernel: Kernel): { address: bigint; owner: StorageOwner } {
  let root = ROOT_CGROUPS.get(kernel);
  if (root === undefined) {
    const address = kernel.space.mapRegion("kernel", SIM_CGROUP_STRUCT_SIZE, {
      name: "cgroup (root)",
      write: false,
    });
    root = { address, owner: new StorageOwner("cgroup", "cgroup (root)") };
    ROOT_CGROUPS.set(kernel, root);
  }
  return root;
}

/** Address of the root cgroup's `struct cgroup` in `kernel` (mapped on first use). */
export function simRootCgroupAddress(kernel: Kernel): bigint {
  return rootCgroup(kernel).address;
}

/** The storage owner of `kernel`'s root cgroup. */
export function simRootCgroupStorageOwner(kernel: Kernel): StorageOwner {
  return rootCgroup(kernel).owner;
}

/** The local-storage helpers, by id. */
export function localStorageHelpers(
  env: ObjectHelperEnv,
): Map<number, HelperFn> {
  const { registry, kernel } = env.loaded;
  const H = STORAGE_HELPER;
  const mapArg = (vm: CallContext): LocalStorageMap => {
    const map = registry.at(vm.arg(1));
    if (!(map instanceof LocalStorageMap)) {
      throw new ExecError(
        vm.insnIndex,
        `R1: ${registry.describe(vm.arg(1))} (a local-storage map)`,
      );
    }
    return map;
  };
  const unknown = (vm: CallContext, what: string): never => {
    throw new ExecError(
      vm.insnIndex,
      `0x${vm.arg(2).toString(16)} is not ${what} bpfsim models`,
    );
  };
  const sk = (vm: CallContext): TestRunSock =>
    testRunSockAt(vm.mem, vm.arg(2)) ??
      unknown(vm, "the test run's socket, the only socket");
  const task = (vm: CallContext): StorageOwner => {
    const ptr = vm.arg(2);
    // the current task first: looking at another CPU's maps its task_struct
    const here = cpuOf(vm);
    if (simTaskAddress(kernel, here) === ptr) {
      return simTaskStorageOwner(kernel, here);
    }
    for (let c = 0; c < kernel.cpus.length; c++) {
      if (simTaskAddress(kernel, c) === ptr) {
        return simTaskStorageOwner(kernel, c);
      }
    }
    return unknown(vm, "a task");
  };
  const cgroup = (vm: CallContext): StorageOwner => {
    const root = rootCgroup(kernel);
    return vm.arg(2) === root.address
      ? root.owner
      : unknown(vm, "the root cgroup, the only cgroup");
  };
  const inode = (vm: CallContext): StorageOwner =>
    lsmEnv(kernel).inodeAt(vm.arg(2))?.owner ?? unknown(vm, "an inode");
  /**
   * The get helpers after their own NULL checks: the element's value, or
   * with `BPF_LOCAL_STORAGE_GET_F_CREATE` a new one (`BPF_NOEXIST`) holding
   * the value at r3 (zeroes when r3 is NULL), or NULL when that fails.
   */
  const get = (vm: CallContext, owner: StorageOwner): bigint => {
    const map = mapArg(vm);
    const found = map.lookupOwner(owner);
    if (found !== null) return found;
    if ((vm.arg(4) & BigInt(BPF_LOCAL_STORAGE_GET_F_CREATE)) === 0n) return 0n;
    const valuePtr = vm.arg(3);
    const value = valuePtr === 0n
      ? null
      : vm.mem.readBytes(valuePtr, map.attr.valueSize, vm.insnIndex);
    const r = map.create(owner, value);
    return typeof r === "bigint" ? r : 0n;
  };
  const flagsOk = (vm: CallContext): boolean =>
    (vm.arg(4) & ~BigInt(BPF_LOCAL_STORAGE_GET_F_CREATE)) === 0n;
  return new Map<number, HelperFn>([
    // bpf_sk_storage_get(): NULL for NULL, a non-full socket, flags > 1;
    // the test run's socket is a full one with a reference held
    [H.sk_storage_get, (vm) => {
      if (vm.arg(2) === 0n) return 0n;
      const sock = sk(vm);
      if (!sock.fullsock || !flagsOk(vm)) return 0n;
      return get(vm, sockOwner(sock, vm.arg(2)));
    }],
    // bpf_sk_storage_delete(): -EINVAL for NULL or a non-full socket, else
    // bpf_sk_storage_del()
    [H.sk_storage_delete, (vm) => {
      if (vm.arg(2) === 0n) return -EINVAL;
      const sock = sk(vm);
      if (!sock.fullsock) return -EINVAL;
      return mapArg(vm).deleteOwner(sockOwner(sock, vm.arg(2)));
    }],
    // bpf_task_storage_get(): flags first, then the NULL task
    [H.task_storage_get, (vm) => {
      if (!flagsOk(vm) || vm.arg(2) === 0n) return 0n;
      return get(vm, task(vm));
    }],
    // bpf_task_storage_delete(): -EINVAL for NULL, -ENOENT when absent
    [H.task_storage_delete, (vm) => {
      if (vm.arg(2) === 0n) return -EINVAL;
      return mapArg(vm).deleteOwner(task(vm));
    }],
    // bpf_cgrp_storage_get(): flags first, then the NULL cgroup
    [H.cgrp_storage_get, (vm) => {
      if (!flagsOk(vm) || vm.arg(2) === 0n) return 0n;
      return get(vm, cgroup(vm));
    }],
    // bpf_cgrp_storage_delete(): -EINVAL for NULL; the busy lock is never
    // held here (one helper call at a time), so never -EBUSY
    [H.cgrp_storage_delete, (vm) => {
      if (vm.arg(2) === 0n) return -EINVAL;
      return mapArg(vm).deleteOwner(cgroup(vm));
    }],
    // bpf_inode_storage_get(): flags first, then the NULL inode (every
    // inode has the bpf LSM's blob: the bpf LSM is enabled)
    [H.inode_storage_get, (vm) => {
      if (!flagsOk(vm) || vm.arg(2) === 0n) return 0n;
      return get(vm, inode(vm));
    }],
    // bpf_inode_storage_delete(): -EINVAL for NULL, else
    // inode_storage_delete(): -ENOENT when absent
    [H.inode_storage_delete, (vm) => {
      if (vm.arg(2) === 0n) return -EINVAL;
      return mapArg(vm).deleteOwner(inode(vm));
    }],
  ]);
}
