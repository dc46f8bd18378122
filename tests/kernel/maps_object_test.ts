/**
 * Maps created from object files as libbpf creates them, compared with the
 * real kernel's `--dump-maps` (oracle output recorded next to this file):
 * global data (tests/fixtures/global_data.o) and BTF-defined maps
 * (tests/fixtures/maps_btf.o). A program's effect is reproduced by hand
 * through the value pointers `bpf_map_lookup_elem` returns.
 */
import assert from "node:assert/strict";
import { AddressSpace } from "../../lib/exec/memory.ts";
import { MemoryFault } from "../../lib/exec/fault.ts";
import { loadObject } from "../../lib/elf/object.ts";
import type { ObjectFile } from "../../lib/elf/types.ts";
import {
  BPF_ANY,
  type BpfMap,
  createMapFromDef,
  EPERM,
  MapError,
  type RingBuf,
  toHex,
} from "../../lib/kernel/maps/mod.ts";
import { k32, u64At, v64 } from "./maps_fakes.ts";

type OracleRun = {
  program: string;
  maps: Record<string, [string, string][]>;
};

function fixture(name: string): ObjectFile {
  return loadObject(
    Deno.readFileSync(new URL(`../fixtures/${name}`, import.meta.url)),
    name,
  );
}

function oracle(file: string, program: string): OracleRun {
  const runs: OracleRun[] = JSON.parse(
    Deno.readTextFileSync(new URL(`./${file}`, import.meta.url)),
  );
  return runs.find((r) => r.program === program)!;
}

/** The oracle's `maps` object for the maps it dumps (array and hash types). */
function dumpLike(maps: Map<string, BpfMap>, names: string[]) {
  return Object.fromEntries(
    names.map((n) => [
      n,
      maps.get(n)!.dump().map((e) => [toHex(e.key), toHex(e.value)]),
    ]),
  );
}

Deno.test("global data maps match the kernel's dump of global_data.o", async (t) => {
  const obj = fixture("global_data.o");
  const space = new AddressSpace();
  const maps = new Map(
    obj.maps.map((d) => [d.name, createMapFromDef(space, d, obj.btf)]),
  );
  const all = [...maps.keys()];

  await t.step("initial contents (read_all changes nothing)", () => {
    const readAll = oracle("global_data.maps.oracle.json", "read_all");
    assert.deepEqual(dumpLike(maps, all), readAll.maps);
  });

  await t.step(".rodata is frozen and read-only for programs", () => {
    const ro = maps.get("global_d.rodata")!;
    assert.equal(ro.frozen, true);
    assert.equal(ro.updateFromSyscall(k32(0), v64(1n, 4), BPF_ANY), -EPERM);
    assert.throws(() => space.write(ro.lookup(k32(0), 0)!, 4, 1n), MemoryFault);
    assert.equal(maps.get("global_d.data")!.frozen, false);
  });

  await t.step(
    "write_data's stores through value pointers give the kernel's dump",
    () => {
      // counter += 1; hidden_static += 1; zeroed = counter (global_data.c)
      const data = maps.get("global_d.data")!.lookup(k32(0), 0)!;
      const bss = maps.get("global_d.bss")!.lookup(k32(0), 0)!;
      space.write(data, 4, space.read(data, 4) + 1n);
      space.write(data + 4n, 4, space.read(data + 4n, 4) + 1n);
      space.write(bss, 8, space.read(data, 4));
      const writeData = oracle("global_data.maps.oracle.json", "write_data");
      assert.deepEqual(dumpLike(maps, all), writeData.maps);
      assert.equal(
        u64At(maps.get("global_d.bss")!.lookupValueCopy(k32(0))),
        6n,
      );
    },
  );
});

Deno.test("BTF-defined maps of maps_btf.o", async (t) => {
  const obj = fixture("maps_btf.o");
  const space = new AddressSpace();
  const maps = new Map<string, BpfMap>();
  const unmodelled: string[] = [];
  for (const d of obj.maps) {
    try {
      maps.set(d.name, createMapFromDef(space, d, obj.btf, { nrCpus: 2 }));
    } catch (e) {
      assert.ok(e instanceof MapError && e.errno === 0, String(e));
      unmodelled.push(d.name);
    }
  }
  // The oracle dumps these (array and hash maps, inner maps included).
  const dumped = ["inner_a", "inner_b", "array_map", "hash_map"];

  await t.step("map-in-map and prog arrays are refused as not modelled", () => {
    assert.deepEqual(unmodelled, ["outer_map", "prog_array_map"]);
    assert.equal((maps.get("ringbuf_map") as RingBuf).query(1), 16384n);
    // libbpf_strlcpy() into the 16-byte map_name: 15 characters reach the kernel.
    assert.equal(maps.get("percpu_array_map")!.attr.name, "percpu_array_ma");
  });

  await t.step("use_arrays: v->packets++ through the looked-up pointer", () => {
    const v = maps.get("array_map")!.lookup(k32(0), 0)!;
    space.write(v, 8, space.read(v, 8) + 1n);
    const c = maps.get("percpu_array_map")!.lookup(k32(0), 0)!;
    space.write(c, 4, space.read(c, 4) + 1n);
    assert.deepEqual(
      dumpLike(maps, dumped),
      oracle("maps_btf.maps.oracle.json", "use_arrays").maps,
    );
    assert.equal(
      toHex(
        maps.get("percpu_array_map")!.lookupValueCopy(k32(0)) as Uint8Array,
      ),
      "0100000000000000" + "0000000000000000",
    );
  });

  await t.step("use_hashes: update(hash_map, skb->len = 64, zero)", () => {
    space.write(maps.get("array_map")!.lookup(k32(0), 0)!, 8, 0n); // fresh run
    const key = v64(64n);
    assert.equal(
      maps.get("hash_map")!.update(key, new Uint8Array(16), BPF_ANY, 0),
      0,
    );
    assert.equal(
      maps.get("lru_hash_map")!.update(key, new Uint8Array(12), BPF_ANY, 0),
      0,
    );
    assert.deepEqual(
      dumpLike(maps, dumped),
      oracle("maps_btf.maps.oracle.json", "use_hashes").maps,
    );
  });
});
