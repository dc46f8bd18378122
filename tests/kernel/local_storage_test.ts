/**
 * Local-storage maps (sk, task, cgroup storage) and the user ring buffer:
 * creation checks as `bpf_local_storage_map_alloc_check()` and
 * `ringbuf_map_alloc()` make them, the get / delete helpers on every owner
 * the simulated kernel has (the test run's socket, the per-CPU tasks, the
 * root cgroup), charging against `optmem_max`, and freeing when the owner
 * or the map goes. Expectations are computed by hand from the kernel's
 * code; the tc runs of tests/fixtures/runtime/storage are compared with
 * the real kernel by test_run_test.ts.
 */
import assert from "node:assert/strict";
import { loadObject } from "../../lib/elf/object.ts";
import { ExecError, MemoryFault } from "../../lib/exec/fault.ts";
import { simTaskAddress } from "../../lib/kernel/generic_helpers_task.ts";
import { Kernel } from "../../lib/kernel/kernel.ts";
import {
  simRootCgroupAddress,
  simRootCgroupStorageOwner,
  simTaskStorageOwner,
  sockStorageOwner,
  STORAGE_HELPER as H,
} from "../../lib/kernel/local_storage_helpers.ts";
import { createMap, mapAllocCheck } from "../../lib/kernel/maps/create.ts";
import {
  BPF_F_CLONE,
  type LocalStorageAttr,
  localStorageDestroy,
  type LocalStorageMap,
} from "../../lib/kernel/maps/local_storage.ts";
import type { BpfMap, MapAttr } from "../../lib/kernel/maps/map.ts";
import type { UserRingBuf } from "../../lib/kernel/maps/user_ringbuf.ts";
import { objectHelpers } from "../../lib/kernel/object_helpers.ts";
import type { LoadedObject } from "../../lib/kernel/object_loader.ts";
import { loadObjectWithRuntime } from "../../lib/kernel/object_runtime.ts";
import { SkbContext } from "../../lib/kernel/test_run_ctx.ts";
import { MAP_TYPE } from "../../lib/uapi/bpf.ts";
import { callHelper } from "./helper_call.ts";

const EINVAL = -22, E2BIG = -7, ENOENT = -2n, EBADF = -9, ENOTSUPP = -524;
const NO_PREALLOC = 1, CREATE = 1n;

function attr(over: Partial<MapAttr>): MapAttr {
  return {
    name: "st",
    type: MAP_TYPE.task_storage,
    keySize: 4,
    valueSize: 16,
    maxEntries: 0,
    flags: NO_PREALLOC,
    ...over,
  };
}

Deno.test("creation checks mirror bpf_local_storage_map_alloc_check() and ringbuf_map_alloc()", () => {
  for (
    const type of [
      MAP_TYPE.sk_storage,
      MAP_TYPE.task_storage,
      MAP_TYPE.cgrp_storage,
    ]
  ) {
    const check = (over: Partial<LocalStorageAttr>) =>
      mapAllocCheck({ ...attr({ type }), ...over });
    assert.equal(check({}), 0);
    assert.equal(check({ flags: NO_PREALLOC | BPF_F_CLONE }), 0);
    assert.equal(check({ flags: 0 }), EINVAL, "BPF_F_NO_PREALLOC required");
    assert.equal(check({ flags: NO_PREALLOC | 1 << 3 }), EINVAL, "RDONLY");
    assert.equal(check({ maxEntries: 1 }), EINVAL);
    assert.equal(check({ keySize: 8 }), EINVAL);
    assert.equal(check({ valueSize: 0 }), EINVAL);
    assert.equal(check({ valueSize: 65407 }), 0, "U16_MAX - 128");
    assert.equal(check({ valueSize: 65408 }), E2BIG);
    assert.equal(check({ btfKeyTypeId: 0 }), EINVAL, "BTF is required");
    assert.equal(check({ btfValueTypeId: 0 }), EINVAL);
    assert.equal(check({ name: "bad name" }), EINVAL);
  }
  const urb = (over: Partial<MapAttr>) =>
    mapAllocCheck(attr({
      type: MAP_TYPE.user_ringbuf,
      keySize: 0,
      valueSize: 0,
      maxEntries: 4096,
      flags: 0,
      ...over,
    }));
  assert.equal(urb({}), 0);
  assert.equal(urb({ maxEntries: 8192, flags: 1 << 2 }), 0, "NUMA_NODE");
  assert.equal(urb({ maxEntries: 4097 }), EINVAL);
  assert.equal(urb({ maxEntries: 2048 }), EINVAL, "not page aligned");
  assert.equal(urb({ keySize: 4 }), EINVAL);
  assert.equal(urb({ flags: NO_PREALLOC }), EINVAL);
});

/** A kernel with sk_storage.o loaded, a task and a cgroup storage map registered, and a caller. */
function setup() {
  const bytes = Deno.readFileSync(
    new URL("../fixtures/runtime/storage/sk_storage.o", import.meta.url),
  );
  const kernel = new Kernel({ cpus: 2 });
  const loaded = loadObjectWithRuntime(kernel, loadObject(bytes, "sk.o"));
  const space = kernel.space;
  const register = (map: BpfMap): bigint => {
    const address = space.mapRegion("kernel", 256, { name: map.attr.name });
    loaded.registry.add(address, map);
    return address;
  };
  const task = createMap(space, attr({ name: "task_st" })) as LocalStorageMap;
  const cgrp = createMap(
    space,
    attr({ name: "cgrp_st", type: MAP_TYPE.cgrp_storage, valueSize: 8 }),
  ) as LocalStorageMap;
  const urb = createMap(space, {
    name: "urb",
    type: MAP_TYPE.user_ringbuf,
    keySize: 0,
    valueSize: 0,
    maxEntries: 4096,
    flags: 0,
  }) as UserRingBuf;
  const helpers = objectHelpers(loaded);
  const call = (id: number, args: bigint[], cpu = 0): bigint =>
    callHelper(helpers, id, args, {
      mem: space,
      now: () => 0,
      owner: { cpu: kernel.cpus[cpu], level: 0 },
    });
  return {
    kernel,
    loaded,
    space,
    task,
    taskAddr: register(task),
    cgrp,
    cgrpAddr: register(cgrp),
    urb,
    urbAddr: register(urb),
    call,
    faults: (addr: bigint) =>
      assert.throws(() => space.read(addr, 1), MemoryFault),
  };
}

function mapAddress(loaded: LoadedObject, name: string): bigint {
  const m = loaded.maps.find((x) => x.name === name);
  assert.ok(m?.map, name);
  return m.address;
}

Deno.test("task storage: get / create / delete on the per-CPU tasks, freed when the task exits", () => {
  const s = setup();
  const t0 = simTaskAddress(s.kernel, 0), t1 = simTaskAddress(s.kernel, 1);
  const get = (task: bigint, value = 0n, flags = 0n, cpu = 0) =>
    s.call(H.task_storage_get, [s.taskAddr, task, value, flags], cpu);
  assert.equal(get(t0), 0n, "absent, no F_CREATE");
  assert.equal(get(0n, 0n, CREATE), 0n, "NULL task");
  assert.equal(get(t0, 0n, 2n), 0n, "flags beyond F_CREATE");
  assert.equal(get(t0, 0n, 3n), 0n);
  const init = s.space.mapRegion(
    "mem",
    Uint8Array.from({ length: 16 }, (_, i) => i + 1),
  );
  const v0 = get(t0, init, CREATE);
  assert.notEqual(v0, 0n);
  assert.deepEqual(
    [...s.space.readBytes(v0, 16)],
    [...Array(16).keys()].map((i) => i + 1),
  );
  assert.equal(get(t0), v0, "found without F_CREATE");
  assert.equal(get(t0, 0n, CREATE), v0, "F_CREATE finds the existing one");
  assert.equal(get(t0, 0n, 2n), 0n, "bad flags even when present");
  // CPU 1's task, asked from CPU 0 and from CPU 1: one element
  assert.equal(get(t1), 0n);
  const v1 = get(t1, 0n, CREATE);
  assert.notEqual(v1, v0);
  assert.deepEqual([...s.space.readBytes(v1, 16)], new Array(16).fill(0));
  assert.equal(get(t1, 0n, 0n, 1), v1);
  // delete: 0, then -ENOENT; NULL is -EINVAL
  const del = (task: bigint) =>
    s.call(H.task_storage_delete, [s.taskAddr, task]);
  assert.equal(del(0n), BigInt(EINVAL));
  assert.equal(del(t0), 0n);
  s.faults(v0); // freed (call_rcu ran at once: no reader is left)
  assert.equal(del(t0), ENOENT);
  assert.equal(get(t0), 0n);
  // the task exits: bpf_task_storage_free(), and no new storage after
  localStorageDestroy(simTaskStorageOwner(s.kernel, 1));
  s.faults(v1);
  assert.equal(get(t1, 0n, CREATE), 0n);
  assert.equal(del(t1), ENOENT);
  // a pointer that is no task
  assert.throws(() => get(init), ExecError);
});

Deno.test("cgroup storage: the root cgroup owns it; NULL and bad flags give NULL / -EINVAL", () => {
  const s = setup();
  const root = simRootCgroupAddress(s.kernel);
  assert.equal(simRootCgroupAddress(s.kernel), root, "one root per kernel");
  assert.throws(() => s.space.write(root, 8, 1n), MemoryFault, "read-only");
  const get = (cg: bigint, value = 0n, flags = 0n) =>
    s.call(H.cgrp_storage_get, [s.cgrpAddr, cg, value, flags]);
  const del = (cg: bigint) => s.call(H.cgrp_storage_delete, [s.cgrpAddr, cg]);
  assert.equal(get(root), 0n);
  assert.equal(get(0n, 0n, CREATE), 0n);
  assert.equal(get(root, 0n, 2n), 0n);
  assert.equal(del(root), ENOENT);
  assert.equal(del(0n), BigInt(EINVAL));
  const init = s.space.mapRegion("mem", Uint8Array.of(9, 8, 7, 6, 5, 4, 3, 2));
  const v = get(root, init, CREATE);
  assert.equal(s.space.read(v, 8), 0x0203040506070809n);
  s.space.write(v, 8, 77n);
  assert.equal(s.space.read(get(root), 8), 77n);
  assert.equal(del(root), 0n);
  s.faults(v);
  // a task pointer is not a cgroup
  assert.throws(() => get(simTaskAddress(s.kernel, 0)), ExecError);
  // and a task storage map is not a cgroup storage map
  assert.throws(
    () => s.call(H.cgrp_storage_get, [s.taskAddr, root, 0n, CREATE]),
    /a cgroup cannot own task storage/,
  );
});

Deno.test("destroying a map frees each owner's element of it, and only it", () => {
  const s = setup();
  const t0 = simTaskAddress(s.kernel, 0), t1 = simTaskAddress(s.kernel, 1);
  const root = simRootCgroupAddress(s.kernel);
  const a = s.call(H.task_storage_get, [s.taskAddr, t0, 0n, CREATE]);
  const b = s.call(H.task_storage_get, [s.taskAddr, t1, 0n, CREATE]);
  const c = s.call(H.cgrp_storage_get, [s.cgrpAddr, root, 0n, CREATE]);
  assert.equal(s.task.liveOwners().length, 2);
  s.task.destroy();
  s.faults(a);
  s.faults(b);
  assert.equal(simTaskStorageOwner(s.kernel, 0).elems.size, 0);
  assert.equal(s.space.read(c, 8), 0n, "the cgroup map's element lives on");
  assert.equal(simRootCgroupStorageOwner(s.kernel).elems.size, 1);
  assert.throws(() => s.task.lookupOwner(simTaskStorageOwner(s.kernel, 0)));
});

Deno.test("sk storage on the test run's socket: charged against optmem_max, freed with the socket", () => {
  const s = setup();
  const skb = new SkbContext(s.space, new Uint8Array(64), { isL2: true });
  const sk = skb.sock.address;
  const u64 = mapAddress(s.loaded, "sk_u64");
  const val = mapAddress(s.loaded, "sk_val");
  const get = (map: bigint, value = 0n, flags = 0n, at = sk) =>
    s.call(H.sk_storage_get, [map, at, value, flags]);
  assert.equal(get(u64, 0n, CREATE, 0n), 0n, "NULL socket");
  assert.equal(s.call(H.sk_storage_delete, [u64, 0n]), BigInt(EINVAL));
  assert.equal(get(u64, 0n, 2n), 0n);
  const p = get(u64, 0n, CREATE);
  const q = get(val, 0n, CREATE);
  const owner = sockStorageOwner(skb.sock);
  assert.ok(owner);
  // elem_size = 72 + value_size each, plus sizeof(struct bpf_local_storage)
  assert.equal(owner.charged, (72 + 8) + (72 + 16) + 176);
  assert.equal(s.call(H.sk_storage_delete, [u64, sk]), 0n);
  s.faults(p);
  assert.equal(owner.charged, (72 + 16) + 176);
  // the run ends: the socket goes, and its storage with it
  skb.release();
  s.faults(q);
  assert.equal(owner.charged, 0);
  const other = new SkbContext(s.space, new Uint8Array(64), { isL2: true });
  assert.equal(
    get(val, 0n, 0n, other.sock.address),
    0n,
    "a new socket has none",
  );
  assert.throws(() => get(u64, 0n, CREATE, s.taskAddr), ExecError);
  other.release();
});

Deno.test("local storage from user space: fd-keyed, so -EBADF here; no next key, nothing to dump", () => {
  const s = setup();
  const key = new Uint8Array(4);
  assert.equal(s.task.lookupValueCopy(key), EBADF);
  assert.equal(s.task.updateFromSyscall(key, new Uint8Array(16), 0), EBADF);
  assert.equal(s.task.deleteFromSyscall(key), EBADF);
  assert.equal(s.task.getNextKey(null), ENOTSUPP);
  assert.deepEqual(s.task.dump(), []);
});

Deno.test("bpf_user_ringbuf_drain on an empty ring: 0 samples, -EINVAL for unknown flags, FORCE_WAKEUP wakes", () => {
  const s = setup();
  const drain = (flags: bigint) => s.call(209, [s.urbAddr, 0x1000n, 0n, flags]);
  assert.equal(drain(0n), 0n);
  assert.equal(s.urb.wakeups, 0, "no sample, no wake-up");
  assert.equal(drain(1n), 0n); // BPF_RB_NO_WAKEUP
  assert.equal(drain(2n), 0n); // BPF_RB_FORCE_WAKEUP
  assert.equal(s.urb.wakeups, 1);
  assert.equal(drain(4n), BigInt(EINVAL));
  assert.equal(drain(3n), 0n);
  assert.equal(s.urb.wakeups, 2);
  assert.throws(() => s.call(209, [s.taskAddr, 0n, 0n, 0n]), ExecError);
});
