/**
 * The syscall-program helpers on what the oracle cannot show: the simulated
 * process's fd table (numbers, lowest free fd, EMFILE), maps really created
 * with the attributes asked for, map ids and map lifetime, commands bpfsim
 * does not carry out, and the names the simulated BTF and kallsyms hold.
 * What the 6.18 kernel returns is compared by tests/kernel/test_run_test.ts
 * on tests/fixtures/runtime/syscall/*.oracle-run.json.
 */
import assert from "node:assert/strict";
import { ExecError } from "../../../lib/exec/fault.ts";
import { loadObject } from "../../../lib/elf/object.ts";
import { Kernel } from "../../../lib/kernel/kernel.ts";
import { createMap } from "../../../lib/kernel/maps/create.ts";
import { u32Key } from "../../../lib/kernel/maps/map.ts";
import { objectHelpers } from "../../../lib/kernel/object_helpers.ts";
import type { LoadedObject } from "../../../lib/kernel/object_loader.ts";
import { loadObjectWithRuntime } from "../../../lib/kernel/object_runtime.ts";
import { BPF_CMD } from "../../../lib/kernel/syscall/syscall_bpf.ts";
import {
  openMapFd,
  SIM_NOFILE,
  simProcess,
} from "../../../lib/kernel/syscall/syscall_fds.ts";
import { EMFILE } from "../../../lib/uapi/errno.ts";
import {
  SIM_BPF_CALL_BASE,
  SYSCALL_HELPER as H,
} from "../../../lib/kernel/syscall/syscall_helpers.ts";
import { testRun } from "../../../lib/kernel/test_run.ts";
import { KERNEL_KFUNCS } from "../../../lib/kernel/kfunc_ids.ts";
import { MAP_TYPE } from "../../../lib/uapi/bpf.ts";
import { callHelper } from "../helper_call.ts";

const FIXTURE = new URL(
  "../../fixtures/runtime/syscall/sys_bpf.o",
  import.meta.url,
);
const EINVAL = -22n, EBADF = -9n, ENOENT = -2n, EPERM = -1n, E2BIG = -7n;

/** A fresh one-CPU kernel with the fixture loaded, and a helper caller. */
function setup() {
  const kernel = new Kernel({ cpus: 1 });
  const loaded: LoadedObject = loadObjectWithRuntime(
    kernel,
    loadObject(Deno.readFileSync(FIXTURE), "sys_bpf.o"),
    { verify: false },
  );
  const helpers = objectHelpers(loaded);
  const env = { mem: kernel.space, now: () => 0, owner: undefined };
  const call = (id: number, ...args: bigint[]) =>
    callHelper(helpers, id, args, env);
  /** Copies `bytes` into a fresh readable region: its address. */
  const put = (bytes: Uint8Array) =>
    kernel.space.mapRegion("stack", bytes.slice(), { name: "arg" });
  /** bpf_sys_bpf(cmd, attr, size ?? attr.length). */
  const sysBpf = (cmd: number, attr: Uint8Array, size = attr.length) =>
    call(H.sys_bpf, BigInt(cmd), put(attr), BigInt(size));
  return { kernel, loaded, call, put, sysBpf };
}

/** A `BPF_MAP_CREATE` attr (6.18 layout, 96 bytes). */
function createAttr(
  type: number,
  keySize: number,
  valueSize: number,
  maxEntries: number,
  flags = 0,
  name = "",
): Uint8Array {
  const a = new Uint8Array(96);
  const v = new DataView(a.buffer);
  [type, keySize, valueSize, maxEntries, flags].forEach((x, i) =>
    v.setUint32(i * 4, x, true)
  );
  a.set(new TextEncoder().encode(name), 28);
  return a;
}

/** A `BPF_MAP_*_ELEM` attr. */
function elemAttr(fd: number, key: bigint, value: bigint, flags = 0n) {
  const a = new Uint8Array(32);
  const v = new DataView(a.buffer);
  v.setUint32(0, fd, true);
  v.setBigUint64(8, key, true);
  v.setBigUint64(16, value, true);
  v.setBigUint64(24, flags, true);
  return a;
}

/** A `BPF_MAP_GET_FD_BY_ID` attr. */
function idAttr(id: number, openFlags = 0) {
  const a = new Uint8Array(12);
  new DataView(a.buffer).setUint32(0, id, true);
  new DataView(a.buffer).setUint32(8, openFlags, true);
  return a;
}

const u64 = (n: bigint) => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, n, true);
  return b;
};

Deno.test("bpf_sys_bpf: the simulated process's fd table and the maps created", async (t) => {
  await t.step(
    "BPF_MAP_CREATE makes the map asked for, at the lowest free fd ≥ 3, with ids 1, 2, …",
    () => {
      const { kernel, loaded, sysBpf } = setup();
      const process = simProcess(kernel);
      assert.deepEqual(process.openFds(), [0, 1, 2]);
      const attr = createAttr(MAP_TYPE.hash, 4, 8, 16, 1, "counts");
      assert.equal(sysBpf(BPF_CMD.map_create, attr), 3n);
      assert.equal(sysBpf(BPF_CMD.map_create, attr), 4n);
      const file = process.file(3);
      assert.equal(file?.kind, "map");
      if (file?.kind !== "map") return;
      assert.deepEqual(file.handle.map.attr, {
        name: "counts",
        type: MAP_TYPE.hash,
        keySize: 4,
        valueSize: 8,
        maxEntries: 16,
        flags: 1, // BPF_F_NO_PREALLOC
      });
      assert.equal(file.handle.id, 1);
      assert.equal(loaded.registry.at(file.handle.address), file.handle.map);
      const second = process.file(4);
      assert.equal(second?.kind === "map" && second.handle.id, 2);
    },
  );

  await t.step(
    "closing frees the fd for the next map and the map with its last fd",
    () => {
      const { kernel, call, sysBpf } = setup();
      const process = simProcess(kernel);
      const attr = createAttr(MAP_TYPE.array, 4, 4, 1);
      assert.equal(sysBpf(BPF_CMD.map_create, attr), 3n);
      assert.equal(sysBpf(BPF_CMD.map_create, attr), 4n);
      assert.equal(call(H.sys_close, 3n), 0n);
      assert.equal(process.mapById(1), undefined, "map 1 freed");
      assert.equal(call(H.sys_close, 3n), EBADF);
      assert.equal(sysBpf(BPF_CMD.map_create, attr), 3n, "lowest free fd");
      assert.equal(process.mapById(3)?.map.attr.type, MAP_TYPE.array);
      // the standard streams are fds like any other: close_fd() closes them
      assert.equal(call(H.sys_close, 0n), 0n);
      assert.equal(sysBpf(BPF_CMD.map_create, attr), 0n);
    },
  );

  await t.step(
    "BPF_MAP_UPDATE_ELEM / DELETE_ELEM act on the map behind the fd",
    () => {
      const { kernel, put, sysBpf } = setup();
      const attr = createAttr(MAP_TYPE.hash, 4, 8, 4);
      const fd = Number(sysBpf(BPF_CMD.map_create, attr));
      const key = put(u32Key(7)), value = put(u64(0x1122334455667788n));
      assert.equal(
        sysBpf(BPF_CMD.map_update_elem, elemAttr(fd, key, value)),
        0n,
      );
      const map = simProcess(kernel).mapById(1)!.map;
      assert.deepEqual(
        map.lookupValueCopy(u32Key(7)),
        u64(0x1122334455667788n),
      );
      assert.equal(sysBpf(BPF_CMD.map_delete_elem, elemAttr(fd, key, 0n)), 0n);
      assert.equal(map.lookupValueCopy(u32Key(7)), Number(ENOENT));
    },
  );

  await t.step(
    "BPF_MAP_GET_FD_BY_ID opens another fd with its own access; the map lives until the last closes",
    () => {
      const { kernel, call, put, sysBpf } = setup();
      const process = simProcess(kernel);
      const fd = sysBpf(
        BPF_CMD.map_create,
        createAttr(MAP_TYPE.array, 4, 4, 2),
      );
      const rdonly = sysBpf(BPF_CMD.map_get_fd_by_id, idAttr(1, 1 << 3));
      assert.equal(rdonly, 4n);
      const key = put(u32Key(1)), value = put(u32Key(5));
      const update = (f: bigint) =>
        sysBpf(BPF_CMD.map_update_elem, elemAttr(Number(f), key, value));
      assert.equal(update(rdonly), EPERM);
      assert.equal(update(fd), 0n);
      assert.equal(call(H.sys_close, fd), 0n);
      assert.ok(process.mapById(1), "still open through the second fd");
      assert.equal(call(H.sys_close, rdonly), 0n);
      assert.equal(process.mapById(1), undefined);
      assert.equal(sysBpf(BPF_CMD.map_get_fd_by_id, idAttr(1)), ENOENT);
    },
  );

  await t.step(
    "openMapFd gives a loader's map an fd; closing it leaves the map",
    () => {
      const { kernel, call, put, sysBpf } = setup();
      const map = createMap(kernel.space, {
        name: "shared",
        type: MAP_TYPE.array,
        keySize: 4,
        valueSize: 8,
        maxEntries: 2,
        flags: 0,
      });
      const fd = openMapFd(kernel, map, 0x1000n);
      assert.equal(fd, 3);
      const attr = elemAttr(fd, put(u32Key(1)), put(u64(99n)));
      assert.equal(sysBpf(BPF_CMD.map_update_elem, attr), 0n);
      assert.deepEqual(map.lookupValueCopy(u32Key(1)), u64(99n));
      assert.equal(call(H.sys_close, BigInt(fd)), 0n);
      assert.deepEqual(map.lookupValueCopy(u32Key(1)), u64(99n));
      assert.equal(simProcess(kernel).mapById(1)?.map, map, "keeps its id");
    },
  );

  await t.step("past RLIMIT_NOFILE, -EMFILE and no map is left behind", () => {
    const { kernel, sysBpf } = setup();
    const process = simProcess(kernel);
    for (let fd = 3; fd < SIM_NOFILE; fd++) {
      process.install({ kind: "other", name: `file${fd}` });
    }
    const attr = createAttr(MAP_TYPE.array, 4, 4, 1);
    assert.equal(sysBpf(BPF_CMD.map_create, attr), BigInt(-EMFILE));
    assert.equal(process.mapById(1), undefined);
  });

  await t.step("a fixture run closes what it opens", () => {
    const { kernel, loaded } = setup();
    for (const name of ["array_create_update_close", "hash_one_entry"]) {
      testRun(loaded, name);
    }
    assert.deepEqual(simProcess(kernel).openFds(), [0, 1, 2]);
    assert.equal(simProcess(kernel).mapById(1), undefined);
  });
});

Deno.test("bpf_sys_bpf: refused and unmodelled commands", async (t) => {
  // kernel/bpf/syscall.c bpf_sys_bpf(): the nine commands it lets through
  const allowed = [0, 2, 3, 22, 14, 5, 18, 28, 17];
  await t.step("every other command is -EINVAL before attr is read", () => {
    const { sysBpf } = setup();
    for (let cmd = 0; cmd < 40; cmd++) {
      if (allowed.includes(cmd)) continue;
      assert.equal(sysBpf(cmd, new Uint8Array(168)), EINVAL, `cmd ${cmd}`);
    }
  });

  await t.step(
    "PROG_LOAD, BTF_LOAD, LINK_CREATE, RAW_TRACEPOINT_OPEN throw, naming the command",
    () => {
      const { sysBpf } = setup();
      const names: [number, string][] = [
        [5, "BPF_PROG_LOAD"],
        [18, "BPF_BTF_LOAD"],
        [28, "BPF_LINK_CREATE"],
        [17, "BPF_RAW_TRACEPOINT_OPEN"],
      ];
      for (const [cmd, name] of names) {
        assert.throws(
          () => sysBpf(cmd, new Uint8Array(144)),
          (e) =>
            e instanceof ExecError &&
            e.reason ===
              `bpf_sys_bpf command ${name} is not modelled by bpfsim's runtime`,
        );
        // __sys_bpf()'s own checks come first
        const tail = new Uint8Array(200);
        tail[180] = 1;
        assert.equal(sysBpf(cmd, tail), E2BIG);
      }
    },
  );

  await t.step(
    "a map type the kernel has but bpfsim does not model throws",
    () => {
      const { sysBpf } = setup();
      const lpm = createAttr(MAP_TYPE.lpm_trie, 8, 8, 4, 1);
      assert.throws(
        () => sysBpf(BPF_CMD.map_create, lpm),
        (e) =>
          e instanceof ExecError &&
          /lpm_trie maps is not modelled/.test(e.message),
      );
    },
  );

  await t.step(
    "update by fd of a map type bpfsim does not carry out throws",
    () => {
      const { kernel, put, sysBpf } = setup();
      const fd = sysBpf(
        BPF_CMD.map_create,
        createAttr(MAP_TYPE.devmap, 4, 4, 1),
      );
      assert.equal(simProcess(kernel).file(Number(fd))?.kind, "map");
      const attr = elemAttr(Number(fd), put(u32Key(0)), put(u32Key(1)));
      assert.throws(
        () => sysBpf(BPF_CMD.map_update_elem, attr),
        /BPF_MAP_UPDATE_ELEM on a devmap map is not modelled/,
      );
    },
  );
});

Deno.test("bpf_btf_find_by_name_kind and bpf_kallsyms_lookup_name: what the simulated kernel holds", async (t) => {
  const { kernel, call, put } = setup();
  const cstr = (s: string) => new TextEncoder().encode(s + "\0");
  const find = (name: string, kind: number) => {
    const bytes = cstr(name);
    return call(
      H.btf_find_by_name_kind,
      put(bytes),
      BigInt(bytes.length),
      BigInt(kind),
      0n,
    );
  };

  await t.step(
    "the simulated vmlinux BTF is the kfunc table, as FUNCs from id 100000",
    () => {
      assert.equal(find("bpf_obj_new_impl", 12), 100_000n);
      assert.equal(find("bpf_obj_drop_impl", 12), 100_001n);
      assert.equal(
        find("bpf_obj_new_impl", 0x100 | 12),
        100_000n,
        "kind is a u8",
      );
      assert.equal(find("bpf_obj_new_impl", 4), ENOENT, "not a STRUCT");
      assert.equal(find("task_struct", 4), ENOENT, "no kernel types");
      assert.equal(
        find("bpf_map_lookup_elem", 12),
        ENOENT,
        "helpers are not FUNCs here",
      );
      KERNEL_KFUNCS.forEach((name, i) =>
        assert.equal(find(name, 12), BigInt(100_000 + i), name)
      );
    },
  );

  await t.step(
    "kallsyms: __bpf_call_base and each kfunc at base + its call imm",
    () => {
      /** [return value, *res] of a lookup of `name` with *res preset to 7. */
      const k = (name: string): [bigint, bigint] => {
        const bytes = cstr(name);
        const res = put(u64(7n));
        const r = call(
          H.kallsyms_lookup_name,
          put(bytes),
          BigInt(bytes.length),
          0n,
          res,
        );
        const out = new DataView(kernel.space.readBytes(res, 8).buffer);
        return [r, out.getBigUint64(0, true)];
      };
      assert.deepEqual(k("__bpf_call_base"), [0n, SIM_BPF_CALL_BASE]);
      // fixup_kfunc_call(): imm = address - __bpf_call_base, and bpfsim's
      // rewritten imm of the first kfunc is 200000
      assert.deepEqual(k("bpf_obj_new_impl"), [
        0n,
        SIM_BPF_CALL_BASE + 200_000n,
      ]);
      assert.deepEqual(k("bpf_iter_num_next"), [
        0n,
        SIM_BPF_CALL_BASE + 200_000n +
        BigInt(KERNEL_KFUNCS.indexOf("bpf_iter_num_next")),
      ]);
      assert.deepEqual(k("bpf_map_lookup_elem"), [ENOENT, 0n]);
      assert.deepEqual(k("task_struct"), [ENOENT, 0n]);
    },
  );
});
