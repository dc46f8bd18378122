/**
 * What the recorded runs of tests/fixtures/runtime/cgroup_lwt cannot show
 * (test_run_test.ts compares those with the 6.18 kernel): the cgroup
 * storage of a test run across `repeat` runs and across test runs, what
 * user space sees of the maps, their creation checks, per-CPU copies;
 * the LWT test-run paths that would oops the real kernel, non-default
 * input and lwt_seg6local's refusal (its End.BPF hook:
 * seg6local_hook_test.ts).
 */
import assert from "node:assert/strict";
import { loadObject } from "../../lib/elf/object.ts";
import { ExecError, MemoryFault } from "../../lib/exec/fault.ts";
import { ENGINES } from "../../lib/exec/jit/step_jit.ts";
import { Kernel } from "../../lib/kernel/kernel.ts";
import type { LoadedObject } from "../../lib/kernel/object_loader.ts";
import { loadObjectWithRuntime } from "../../lib/kernel/object_runtime.ts";
import { testRun, TestRunError } from "../../lib/kernel/test_run.ts";
import { createMap } from "../../lib/kernel/maps/create.ts";
import {
  CgroupRunStorage,
  CgroupStorageMap,
} from "../../lib/kernel/maps/cgroup_storage.ts";
import { AddressSpace } from "../../lib/exec/memory.ts";
import { type MapAttr, MapError, u32Key } from "../../lib/kernel/maps/map.ts";
import { MAP_TYPE } from "../../lib/uapi/bpf.ts";
import {
  E2BIG,
  EBADMSG,
  EINVAL,
  ENOENT,
  ENOTSUPP,
} from "../../lib/uapi/errno.ts";

const DIR = new URL("../fixtures/runtime/cgroup_lwt/", import.meta.url);

function load(file: string): LoadedObject {
  const object = loadObject(Deno.readFileSync(new URL(file, DIR)), file);
  return loadObjectWithRuntime(new Kernel({ cpus: 2 }), object);
}

/** storage.c's globals: seen_shared, fresh_words, seen_percpu, data_len (the oracle's .bss layout). */
function globals(loaded: LoadedObject) {
  const bss = loaded.maps.find((m) => m.name.endsWith(".bss"))?.map;
  assert.ok(bss);
  const value = bss.lookupValueCopy(u32Key(0));
  assert.ok(value instanceof Uint8Array);
  const v = new DataView(value.buffer);
  return {
    seenShared: v.getBigUint64(0, true),
    freshWords: v.getBigUint64(8, true),
    seenPercpu: v.getUint32(16, true),
  };
}

function storageMap(loaded: LoadedObject, name: string): CgroupStorageMap {
  const map = loaded.maps.find((m) => m.name === name)?.map;
  assert.ok(map instanceof CgroupStorageMap);
  return map;
}

Deno.test("a test run's cgroup storage lasts for all its repeats, and the next test run starts from zero", async (t) => {
  // bpf_test_run() allocates the storages once, before its loop, and frees
  // them after; measured on 6.18: `oracle run --repeat 5 --dump-maps
  // storage.o shared_count` left seen_shared 4 and fresh_words 7 (the 7 a
  // previous repetition stored), `--repeat 7 … percpu_count` seen_percpu 6
  for (const engine of ENGINES) {
    await t.step(engine, () => {
      const loaded = load("storage.o");
      const r = testRun(loaded, "shared_count", { repeat: 5, engine });
      assert.equal(r.retval, 1);
      assert.equal(globals(loaded).seenShared, 4n);
      assert.equal(globals(loaded).freshWords, 7n);
      testRun(loaded, "percpu_count", { repeat: 7, engine });
      assert.equal(globals(loaded).seenPercpu, 6);
      // a new test run, a new zeroed storage
      testRun(loaded, "shared_count", { engine });
      assert.equal(globals(loaded).seenShared, 0n);
      assert.equal(globals(loaded).freshWords, 0n);
      testRun(loaded, "both", { repeat: 3, engine });
      assert.equal(globals(loaded).seenShared, 20n); // += 10 per run
      assert.equal(globals(loaded).seenPercpu, 40); // += 20 per run
    });
  }
});

Deno.test("user space finds a cgroup storage map empty: storages of test runs are never linked", () => {
  const loaded = load("storage.o");
  testRun(loaded, "both");
  const shared = storageMap(loaded, "shared");
  const percpu = storageMap(loaded, "percpu");
  assert.equal(shared.syscallValueSize, 32); // struct big
  assert.equal(percpu.syscallValueSize, 16); // round_up(4, 8) per CPU, 2 CPUs
  // cgroup_storage_lookup() finds nothing: lookup, update and next key fail
  const key16 = new Uint8Array(16), key8 = new Uint8Array(8);
  assert.equal(shared.lookupValueCopy(key16), -ENOENT);
  assert.equal(shared.getNextKey(null), -ENOENT);
  assert.equal(shared.updateFromSyscall(key16, new Uint8Array(32), 0), -ENOENT);
  // cgroup_storage_update_elem(): flags beyond BPF_F_LOCK | BPF_EXIST first
  assert.equal(shared.updateFromSyscall(key16, new Uint8Array(32), 1), -EINVAL);
  // BPF_F_LOCK without a bpf_spin_lock in the value
  assert.equal(shared.updateFromSyscall(key16, new Uint8Array(32), 4), -EINVAL);
  assert.equal(shared.deleteFromSyscall(key16), -EINVAL); // always
  assert.deepEqual(shared.dump(), []);
  assert.equal(percpu.lookupValueCopy(key8), -ENOENT);
  // bpf_percpu_cgroup_storage_update(): BPF_ANY or BPF_EXIST only
  assert.equal(percpu.updateFromSyscall(key8, new Uint8Array(16), 1), -EINVAL);
  assert.equal(percpu.updateFromSyscall(key8, new Uint8Array(16), 2), -ENOENT);
  assert.equal(percpu.lookup(key8, 0), null); // what a program's lookup would find
});

Deno.test("creating a cgroup storage map makes cgroup_storage_map_alloc()'s checks", () => {
  const space = new AddressSpace();
  const attr: MapAttr = {
    name: "st",
    type: MAP_TYPE.cgroup_storage,
    keySize: 16,
    valueSize: 8,
    maxEntries: 0,
    flags: 0,
  };
  const errno = (a: Partial<MapAttr>) => {
    try {
      createMap(space, { ...attr, ...a }, { nrCpus: 4 });
      return 0;
    } catch (e) {
      assert.ok(e instanceof MapError, String(e));
      return e.errno;
    }
  };
  assert.equal(errno({}), 0);
  assert.equal(errno({ keySize: 8 }), 0); // the cgroup inode id alone
  assert.equal(errno({ keySize: 12 }), EINVAL);
  assert.equal(errno({ valueSize: 0 }), EINVAL);
  // BPF_LOCAL_STORAGE_MAX_VALUE_SIZE: U16_MAX - sizeof(struct bpf_local_storage_elem)
  assert.equal(errno({ valueSize: 0xffff - 128 }), 0);
  assert.equal(errno({ valueSize: 0xffff - 127 }), E2BIG);
  // the key is checked before the value
  assert.equal(errno({ keySize: 4, valueSize: 0 }), EINVAL);
  const percpu = MAP_TYPE.percpu_cgroup_storage;
  assert.equal(errno({ type: percpu, valueSize: 32768 }), 0); // PCPU_MIN_UNIT_SIZE
  assert.equal(errno({ type: percpu, valueSize: 32769 }), E2BIG);
  assert.equal(errno({ maxEntries: 1 }), EINVAL); // max_entries must be 0
  assert.equal(errno({ flags: 1 }), EINVAL); // BPF_F_NO_PREALLOC
  assert.equal(errno({ flags: 1 << 3 }), 0); // BPF_F_RDONLY
  assert.equal(errno({ flags: (1 << 7) | (1 << 8) }), EINVAL); // both _PROG
  const map = createMap(space, { ...attr, type: percpu }, { nrCpus: 4 });
  assert.equal(map.syscallValueSize, 32); // 8 bytes for each of 4 CPUs
});

Deno.test("a per-CPU storage has a copy per CPU, a shared one a single value; both go when freed", () => {
  const space = new AddressSpace();
  const make = (type: number) =>
    createMap(space, {
      name: "st",
      type,
      keySize: 8,
      valueSize: 4,
      maxEntries: 0,
      flags: 0,
    }, { nrCpus: 2 }) as CgroupStorageMap;
  const percpu = new CgroupRunStorage(make(MAP_TYPE.percpu_cgroup_storage));
  assert.notEqual(percpu.address(0), percpu.address(1));
  space.writeBytes(percpu.address(0), new Uint8Array([9, 9, 9, 9]));
  assert.deepEqual(
    [...space.readBytes(percpu.address(1), 8)],
    new Array(8).fill(0),
  );
  const shared = new CgroupRunStorage(make(MAP_TYPE.cgroup_storage));
  assert.equal(shared.address(0), shared.address(1));
  const at = shared.address(1);
  shared.free();
  assert.throws(() => space.readBytes(at, 4), MemoryFault);
});

Deno.test("lwt_seg6local cannot be test-run: the kernel answers -ENOTSUPP", () => {
  // lwt_seg6local_prog_ops has no .test_run; on 6.18 `oracle run lwt.o
  // s6_end` fails with "Unknown error 524"
  const loaded = load("lwt.o");
  assert.throws(
    () => testRun(loaded, "s6_end"),
    (e) => e instanceof TestRunError && e.errno === ENOTSUPP,
  );
});

/** A 64-byte Ethernet frame of `etherType` whose payload counts 0, 1, 2 … */
function frame(etherType: number): Uint8Array {
  const f = new Uint8Array(64);
  f[12] = etherType >> 8;
  f[13] = etherType & 0xff;
  for (let i = 14; i < 64; i++) f[i] = i - 14;
  return f;
}

/** RFC 1071 checksum of `bytes`, as big-endian bytes. */
function rfc1071(bytes: Uint8Array): [number, number] {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) {
    sum += (bytes[i] << 8) | bytes[i + 1];
  }
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  const c = ~sum & 0xffff;
  return [c >> 8, c & 0xff];
}

Deno.test("lwt_in's IP encap pushes the header before the network header of an IPv6 packet", () => {
  // bpf_lwt_push_ip_encap(): the data becomes header + old packet, the
  // protocol IPv4, the zero checksum filled in; the test run puts back a
  // zeroed MAC header in front (6.18: `oracle run --data-hex <this frame>
  // lwt.o in_ip4` gave the same bytes and retval)
  const input = frame(0x86dd);
  const loaded = load("lwt.o");
  const r = testRun(loaded, "in_ip4", { data: input });
  const header = [
    0x45,
    0,
    0,
    70,
    0x12,
    0x34,
    0x40,
    0,
    64,
    4,
    0,
    0,
    10,
    0,
    0,
    1,
    10,
    0,
    0,
    2,
  ];
  const [c0, c1] = rfc1071(new Uint8Array(header));
  header[10] = c0;
  header[11] = c1;
  assert.deepEqual(
    [...(r.dataOut ?? [])],
    [...new Array(14).fill(0), ...header, ...input.subarray(14)],
  );
  assert.equal(r.retval, (50 + 20) | (0x0008 << 16)); // len | htons(ETH_P_IP)
});

Deno.test("LWT encaps the test-run skb cannot survive stop the run; SEG6_INLINE of a non-IPv6 skb is -EBADMSG", () => {
  const loaded = loadObjectWithRuntime(
    new Kernel({ cpus: 1 }),
    loadObject(
      Deno.readFileSync(new URL("bpfsim_only/oops.o", DIR)),
      "oops.o",
    ),
  );
  const stops = (name: string, data: Uint8Array, why: RegExp) =>
    assert.throws(
      () => testRun(loaded, name, { data }),
      (e) => e instanceof ExecError && why.test(e.reason),
    );
  const zeros = new Uint8Array(64);
  stops("xmit_ip4", zeros, /skb_dst\(skb\)->dev.*no dst/);
  stops("in_seg6_encap", zeros, /seg6_do_srh_encap\(\).*no dst/);
  stops("in_seg6_inline", frame(0x86dd), /seg6_lookup_nexthop/);
  const r = testRun(loaded, "in_seg6_inline", { data: zeros });
  assert.equal(r.retval, 2 ** 32 - EBADMSG);
});
