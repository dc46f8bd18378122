/**
 * BPF LSM programs on the simulated LSM environment
 * (tests/fixtures/runtime/lsm/lsm.c, run with runLsmProgram() on both
 * engines): inode storage, bpf_d_path, bpf_bprm_opts_set, the IMA helpers
 * and bpf_sock_from_file. The oracle's kernel cannot load LSM programs
 * (no trampolines: EPERM), so every expectation is computed by hand from
 * the kernel function named beside it.
 */
import assert from "node:assert/strict";
import { loadObject } from "../../../../lib/elf/object.ts";
import { ExecError, MemoryFault } from "../../../../lib/exec/fault.ts";
import type { Engine } from "../../../../lib/exec/jit/step_jit.ts";
import { Kernel } from "../../../../lib/kernel/kernel.ts";
import {
  lsmEnv,
  type SimInode,
} from "../../../../lib/kernel/hooks/lsm/lsm_env.ts";
import {
  BINPRM_LAYOUT,
  DENTRY_LAYOUT,
  FILE_LAYOUT,
  INODE_LAYOUT,
} from "../../../../lib/kernel/hooks/lsm/lsm_layout.ts";
import { LSM_HELPER } from "../../../../lib/kernel/hooks/lsm/lsm_helpers.ts";
import { runLsmProgram } from "../../../../lib/kernel/hooks/lsm/lsm_run.ts";
import type { LocalStorageMap } from "../../../../lib/kernel/maps/local_storage.ts";
import { objectHelpers } from "../../../../lib/kernel/object_helpers.ts";
import type { LoadedObject } from "../../../../lib/kernel/object_loader.ts";
import { loadObjectWithRuntime } from "../../../../lib/kernel/object_runtime.ts";
import { TestRunError } from "../../../../lib/kernel/test_run.ts";
import { callHelper } from "../../helper_call.ts";

const ENOENT = -2, EPERM = -1, EINVAL = -22, ENAMETOOLONG = -36;
const EOPNOTSUPP = -95;
const MAY_WRITE = 2, MAY_READ = 4, SOCK_DGRAM = 2;
const ENGINES: readonly Engine[] = ["interp", "jit"];

function load(): LoadedObject {
  const url = new URL("../../../fixtures/runtime/lsm/lsm.o", import.meta.url);
  return loadObjectWithRuntime(
    new Kernel({ cpus: 1 }),
    loadObject(Deno.readFileSync(url), "lsm.o"),
    { verify: true },
  );
}

/** lsm.c's `struct result` in .bss (offsets in its comments). */
function result(loaded: LoadedObject) {
  const map = loaded.maps.find((m) => m.name.endsWith(".bss"))!.map!;
  const b = map.lookupValueCopy(new Uint8Array(4));
  assert.ok(b instanceof Uint8Array);
  const v = new DataView(b.buffer, b.byteOffset);
  const i64 = (off: number) => Number(v.getBigInt64(off, true));
  return {
    probe: [0, 1, 2, 3, 4, 5].map((i) => i64(8 * i)),
    pathLen: i64(48),
    smallLen: i64(56),
    pathBuf: b.slice(64, 128),
    smallBuf: b.slice(128, 136),
    imaFile: i64(136),
    imaInode: i64(144),
    sock: [i64(152), i64(160)],
    bprm: [i64(168), i64(176)],
  };
}

/** lsm.c's `struct init` in .data: the element's initial value, then hash[4]. */
function initData(loaded: LoadedObject): Uint8Array {
  const map = loaded.maps.find((m) => m.name.endsWith(".data"))!.map!;
  const b = map.lookupValueCopy(new Uint8Array(4));
  assert.ok(b instanceof Uint8Array);
  return b;
}

function storageMap(loaded: LoadedObject): LocalStorageMap {
  return loaded.maps.find((m) => m.name === "ino_store")!
    .map as LocalStorageMap;
}

/** The ino_store value of `inode`: [count, mask], or undefined. */
function stored(inode: SimInode): [number, number] | undefined {
  const v = inode.storage().get("ino_store");
  if (v === undefined) return undefined;
  const d = new DataView(v.buffer, v.byteOffset);
  return [Number(d.getBigUint64(0, true)), Number(d.getBigUint64(8, true))];
}

/** `text` as bytes, padded with zeros to `len`. */
function bytes(text: string, len: number): Uint8Array {
  const out = new Uint8Array(len);
  out.set(new TextEncoder().encode(text));
  return out;
}

Deno.test("the simulated objects sit at the 6.18 x86-64 offsets (vmlinux BTF)", () => {
  const kernel = new Kernel({ cpus: 1 });
  const env = lsmEnv(kernel);
  const inode = env.createInode({ ino: 42 });
  const file = env.openFile("/etc/passwd", { inode });
  const bprm = env.createBinprm(file);
  const space = kernel.space;
  const at = (a: bigint, off: number, size: 2 | 4 | 8 = 8) =>
    space.read(a + BigInt(off), size);
  // struct file: f_inode at bit 256, f_path.dentry at bit 576
  assert.equal(FILE_LAYOUT.f_inode, 32);
  assert.equal(at(file.address, 32), inode.address);
  const dentry = at(file.address, 72);
  assert.equal(at(dentry, DENTRY_LAYOUT.d_inode), inode.address);
  assert.equal(space.readCString(at(dentry, 40), 16), "passwd");
  assert.equal(at(dentry, 32) >> 32n, 6n, "d_name.len");
  // struct inode: i_ino at bit 512, i_mode (S_IFREG | 0644) at 0
  assert.equal(INODE_LAYOUT.i_ino, 64);
  assert.equal(at(inode.address, 64), 42n);
  assert.equal(at(inode.address, 0, 2), 0o100644n);
  // struct linux_binprm: file at bit 512, filename at bit 768
  assert.equal(BINPRM_LAYOUT.file, 64);
  assert.equal(at(bprm.address, 64), file.address);
  assert.equal(space.readCString(at(bprm.address, 96), 32), "/etc/passwd");
  // programs may read, not write, them
  assert.throws(() => space.write(file.address, 1, 0n), MemoryFault);
});

Deno.test("inode storage: create with F_CREATE, see it again, per inode", async (t) => {
  for (const engine of ENGINES) {
    await t.step(engine, () => {
      const loaded = load();
      const env = lsmEnv(loaded.kernel);
      const a = env.createInode(), b = env.createInode();
      const run = (inode: SimInode, mask: number) =>
        runLsmProgram(loaded, "inode_count", [inode, mask], { engine }).ret;
      // bpf_inode_storage_get(): no element → bpf_local_storage_update()
      // with BPF_NOEXIST copies init.ino (count 100); the program adds 1
      assert.equal(run(a, MAY_READ), 0);
      assert.deepEqual(stored(a), [101, MAY_READ]);
      // the second get finds the element (inode_storage_lookup())
      assert.equal(run(a, MAY_WRITE), 0);
      assert.deepEqual(stored(a), [102, MAY_READ | MAY_WRITE]);
      assert.equal(run(a, MAY_READ), EPERM, "count 103 > 102: denied");
      assert.deepEqual(stored(a), [103, MAY_READ | MAY_WRITE]);
      assert.equal(stored(b), undefined, "b has none yet");
      assert.equal(run(b, MAY_WRITE), 0);
      assert.deepEqual(stored(b), [101, MAY_WRITE]);
      assert.deepEqual(stored(a), [103, MAY_READ | MAY_WRITE]);
      // r3's value is copied, not shared: init.ino is still count 100
      const init = new DataView(initData(loaded).buffer);
      assert.equal(init.getBigUint64(0, true), 100n);
    });
  }
});

Deno.test("inode storage: flags, delete, and -ENOENT (bpf_inode_storage_delete)", async (t) => {
  for (const engine of ENGINES) {
    await t.step(engine, () => {
      const loaded = load();
      const env = lsmEnv(loaded.kernel);
      const a = env.createInode(), b = env.createInode();
      for (let i = 0; i < 3; i++) {
        runLsmProgram(loaded, "inode_count", [a, MAY_READ], { engine });
      }
      const r = runLsmProgram(loaded, "inode_forget", [a, 0], { engine });
      assert.equal(r.ret, 0);
      assert.deepEqual(result(loaded).probe, [
        1, // found without F_CREATE
        0, // flags & ~F_CREATE: NULL before any lookup
        0, // inode_storage_delete(): bpf_selem_unlink()
        ENOENT, // nothing left to delete
        0, // and nothing to get
        103, // the count before the delete
      ]);
      assert.equal(stored(a), undefined);
      assert.deepEqual(r.args[0], { kind: "inode", storage: new Map() });
      runLsmProgram(loaded, "inode_forget", [b, 0], { engine });
      assert.deepEqual(result(loaded).probe, [0, 0, ENOENT, ENOENT, 0, 0]);
    });
  }
});

Deno.test("inode storage is freed with the inode (bpf_inode_storage_free) and with the map", () => {
  const loaded = load();
  const env = lsmEnv(loaded.kernel);
  const map = storageMap(loaded);
  const a = env.createInode(), b = env.createInode();
  runLsmProgram(loaded, "inode_count", [a, MAY_READ], {});
  runLsmProgram(loaded, "inode_count", [b, MAY_READ], {});
  const valueA = a.owner.elems.get(map)!.address;
  const valueB = b.owner.elems.get(map)!.address;
  assert.deepEqual(map.liveOwners(), [a.owner, b.owner]);
  env.destroyInode(a); // security_inode_free() → bpf_inode_storage_free()
  assert.deepEqual(map.liveOwners(), [b.owner]);
  assert.throws(() => loaded.kernel.space.read(valueA, 8), MemoryFault);
  assert.throws(() => loaded.kernel.space.read(a.address, 8), MemoryFault);
  // a program handed the freed inode stops at the helper
  assert.throws(
    () => runLsmProgram(loaded, "inode_count", [a, MAY_READ], {}),
    ExecError,
  );
  assert.equal(loaded.kernel.space.read(valueB, 8), 101n);
  map.destroy(); // bpf_local_storage_map_free(): every owner's element goes
  assert.equal(stored(b), undefined);
  assert.throws(() => loaded.kernel.space.read(valueB, 8), MemoryFault);
});

Deno.test("bpf_d_path writes d_path() and returns its length with the NUL", async (t) => {
  // each case: path, then (path_len, path_buf) of the 64-byte buffer and
  // (small_len, small_buf) of the 8-byte one, by d_path()'s prepend rules
  const cases: {
    path: string;
    unlinked?: boolean;
    len: number;
    buf: Uint8Array;
    small: number;
    smallBuf: Uint8Array;
  }[] = [
    {
      // d_path() builds "/etc/passwd\0" in bytes 52..63; bpf_d_path()
      // memmove()s its 12 bytes to the start and leaves the rest
      path: "/etc/passwd",
      len: 12,
      buf: (() => {
        const b = bytes("/etc/passwd", 64);
        b.set(bytes("/etc/passwd", 12), 52);
        return b;
      })(),
      // "\0", then "passwd" and its '/' fill the 8 bytes; "etc" finds no
      // room: -ENAMETOOLONG, the buffer left as d_path() wrote it
      small: ENAMETOOLONG,
      smallBuf: bytes("/passwd", 8),
    },
    {
      // the root: nothing walked, so prepend_path() adds the "/"
      path: "/",
      len: 2,
      buf: (() => {
        const b = bytes("/", 64);
        b.set(bytes("/", 2), 62);
        return b;
      })(),
      small: 2,
      smallBuf: (() => {
        const b = bytes("/", 8);
        b.set(bytes("/", 2), 6);
        return b;
      })(),
    },
    {
      // exactly 8 bytes with the NUL: fits, no move needed
      path: "/abcdef",
      len: 8,
      buf: (() => {
        const b = bytes("/abcdef", 64);
        b.set(bytes("/abcdef", 8), 56);
        return b;
      })(),
      small: 8,
      smallBuf: bytes("/abcdef", 8),
    },
    {
      // the name fits, its '/' does not (prepend_char() with no room)
      path: "/abcdefg",
      len: 9,
      buf: (() => {
        const b = bytes("/abcdefg", 64);
        b.set(bytes("/abcdefg", 9), 55);
        return b;
      })(),
      small: ENAMETOOLONG,
      smallBuf: bytes("abcdefg", 8),
    },
    {
      // unlinked: " (deleted)" and its NUL (11 bytes) come first; in 8
      // bytes prepend() keeps the tail of it and overflows
      path: "/tmp/x",
      unlinked: true,
      len: 17,
      buf: (() => {
        const b = bytes("/tmp/x (deleted)", 64);
        b.set(bytes("/tmp/x (deleted)", 17), 47);
        return b;
      })(),
      small: ENAMETOOLONG,
      smallBuf: bytes("eleted)", 8),
    },
  ];
  for (const engine of ENGINES) {
    for (const c of cases) {
      await t.step(`${engine}: ${c.path}`, () => {
        const loaded = load();
        const file = lsmEnv(loaded.kernel).openFile(c.path, {
          unlinked: c.unlinked,
        });
        const r = runLsmProgram(loaded, "file_path", [file], { engine });
        assert.equal(r.ret, 0);
        const res = result(loaded);
        assert.equal(res.pathLen, c.len);
        assert.deepEqual(res.pathBuf, c.buf);
        assert.equal(res.smallLen, c.small);
        assert.deepEqual(res.smallBuf, c.smallBuf);
      });
    }
  }
  await t.step(
    "a socket: sockfs_dname() → dynamic_dname(), all or nothing",
    () => {
      const loaded = load();
      const sock = lsmEnv(loaded.kernel).openSocket({ ino: 1234 });
      runLsmProgram(loaded, "file_path", [sock], {});
      const res = result(loaded);
      assert.equal(res.pathLen, 14); // "socket:[1234]\0"
      const buf = bytes("socket:[1234]", 64);
      buf.set(bytes("socket:[1234]", 14), 50);
      assert.deepEqual(res.pathBuf, buf);
      assert.equal(res.smallLen, ENAMETOOLONG); // 14 > 8: nothing written
      assert.deepEqual(res.smallBuf, new Uint8Array(8));
    },
  );
});

Deno.test("bpf_d_path: size 0 returns 0; a pointer that is no file's f_path stops the program", () => {
  const loaded = load();
  const env = lsmEnv(loaded.kernel);
  const file = env.openFile("/etc/hosts");
  const helpers = objectHelpers(loaded);
  const space = loaded.kernel.space;
  const buf = space.mapRegion("mem", bytes("untouched", 16));
  const call = (path: bigint, size: bigint) =>
    callHelper(helpers, LSM_HELPER.d_path, [path, buf, size], {
      mem: space,
      now: () => 0,
      owner: undefined,
    });
  assert.equal(call(file.pathAddress, 0n), 0n);
  assert.deepEqual(space.readBytes(buf, 16), bytes("untouched", 16));
  assert.equal(call(file.pathAddress, 16n), 11n); // "/etc/hosts\0"
  assert.throws(() => call(file.address, 16n), ExecError);
});

Deno.test("bpf_bprm_opts_set assigns bprm->secureexec", async (t) => {
  for (const engine of ENGINES) {
    await t.step(engine, () => {
      const loaded = load();
      const env = lsmEnv(loaded.kernel);
      const bprm = env.createBinprm(env.openFile("/usr/bin/su"));
      assert.equal(bprm.secureexec, false);
      const r = runLsmProgram(loaded, "secure_exec", [bprm], { engine });
      assert.equal(r.ret, 0);
      // flags 2: beyond BPF_F_BRPM_OPTS_MASK, -EINVAL; then the flag
      assert.deepEqual(result(loaded).bprm, [EINVAL, 0]);
      assert.equal(r.args[0].secureexec, true);
      assert.equal(bprm.secureexec, true);
      // the bit a program reads: bit 2 of the word at 40 (bit 322)
      const word = loaded.kernel.space.read(bprm.address + 40n, 4);
      assert.equal(word, 4n);
      // flags 0 clears it: the flag is assigned, not ORed in
      runLsmProgram(loaded, "plain_exec", [bprm], { engine });
      assert.equal(result(loaded).bprm[0], 0);
      assert.equal(bprm.secureexec, false);
    });
  }
});

Deno.test("IMA is not built in: both hash helpers return -EOPNOTSUPP and leave the buffer", async (t) => {
  for (const engine of ENGINES) {
    await t.step(engine, () => {
      const loaded = load();
      const env = lsmEnv(loaded.kernel);
      const before = initData(loaded).slice(16, 48);
      runLsmProgram(loaded, "file_ima", [env.openFile("/bin/sh")], { engine });
      const dir = env.createInode({ mode: 0o040755 });
      runLsmProgram(loaded, "dir_ima", [dir, 0n, 0o644], { engine });
      const res = result(loaded);
      assert.equal(res.imaFile, EOPNOTSUPP); // ima_file_hash() stub
      assert.equal(res.imaInode, EOPNOTSUPP); // ima_inode_hash() stub
      assert.deepEqual(initData(loaded).slice(16, 48), before);
    });
  }
});

Deno.test("bpf_sock_from_file: a socket file's struct socket, NULL otherwise", async (t) => {
  for (const engine of ENGINES) {
    await t.step(engine, () => {
      const loaded = load();
      const env = lsmEnv(loaded.kernel);
      runLsmProgram(loaded, "file_sock", [env.openFile("/etc/motd")], {
        engine,
      });
      assert.deepEqual(result(loaded).sock, [0, 0]);
      const sock = env.openSocket({ type: SOCK_DGRAM });
      runLsmProgram(loaded, "file_sock", [sock], { engine });
      assert.deepEqual(result(loaded).sock, [1, SOCK_DGRAM]);
      // socket->file points back (sock_alloc_file())
      assert.equal(
        loaded.kernel.space.read(sock.socket + 16n, 8),
        sock.address,
      );
    });
  }
});

Deno.test("runLsmProgram: lsm programs only; a closed file faults", () => {
  const loaded = load();
  const env = lsmEnv(loaded.kernel);
  const file = env.openFile("/etc/passwd");
  env.closeFile(file);
  assert.throws(
    () => runLsmProgram(loaded, "file_path", [file], {}),
    ExecError,
  );
  const url = new URL(
    "../../../fixtures/runtime/storage/sk_storage.o",
    import.meta.url,
  );
  const tc = loadObjectWithRuntime(
    new Kernel({ cpus: 1 }),
    loadObject(Deno.readFileSync(url), "sk.o"),
  );
  const name = tc.object.programs[0].name;
  assert.throws(() => runLsmProgram(tc, name, []), TestRunError);
});
