/**
 * Map definitions against what libbpf creates, written down by hand from
 * the C sources (sizes, types, max_entries) and from libbpf's own debug log
 * (`oracle verify --verbose`: map order, offsets, names and flags).
 */
import assert from "node:assert/strict";
import {
  adjustRingbufSize,
  internalMapName,
  objectName,
} from "../../lib/elf/maps.ts";
import type { BpfMapDef } from "../../lib/elf/maps.ts";
import {
  BPF_F_MMAPABLE,
  BPF_F_RDONLY_PROG,
  MAP_TYPE,
} from "../../lib/uapi/bpf.ts";
import { loadFixture } from "./fixtures.ts";

const BPF_F_NO_PREALLOC = 1;

type Expect = Partial<BpfMapDef> & Pick<BpfMapDef, "name">;

function check(
  actual: readonly BpfMapDef[],
  expected: readonly Expect[],
): void {
  assert.deepEqual(
    actual.map((m) => m.name),
    expected.map((m) => m.name),
    "map order",
  );
  for (const [i, want] of expected.entries()) {
    const got = actual[i];
    for (const [key, value] of Object.entries(want)) {
      assert.deepEqual(
        got[key as keyof BpfMapDef],
        value,
        `${want.name}.${key}`,
      );
    }
  }
}

Deno.test("maps: BTF-defined maps of every kind (maps_btf.c)", () => {
  const obj = loadFixture("maps_btf.o");
  // order and offsets as libbpf logs them: "map 'inner_a': at sec_idx 5, offset 0" …
  check(obj.maps, [
    {
      name: "inner_a",
      type: "array",
      keySize: 4,
      valueSize: 8,
      maxEntries: 1,
      flags: 0,
      sectionOffset: 0,
    },
    {
      name: "inner_b",
      type: "array",
      keySize: 4,
      valueSize: 8,
      maxEntries: 1,
      sectionOffset: 32,
    },
    {
      name: "outer_map",
      type: "array_of_maps",
      keySize: 4,
      valueSize: 4,
      maxEntries: 2,
      sectionOffset: 64,
    },
    {
      name: "array_map",
      type: "array",
      keySize: 4,
      valueSize: 16,
      maxEntries: 4,
      sectionOffset: 104,
    },
    {
      name: "percpu_array_map",
      type: "percpu_array",
      keySize: 4,
      valueSize: 4,
      maxEntries: 2,
      sectionOffset: 136,
    },
    {
      name: "hash_map",
      type: "hash",
      typeId: MAP_TYPE.hash,
      keySize: 8,
      valueSize: 16,
      maxEntries: 128,
      flags: BPF_F_NO_PREALLOC,
      sectionOffset: 168,
    },
    {
      name: "percpu_hash_map",
      type: "percpu_hash",
      keySize: 4,
      valueSize: 8,
      maxEntries: 16,
      pinning: "none",
    },
    // key_size/value_size given as numbers: no BTF types
    {
      name: "lru_hash_map",
      type: "lru_hash",
      keySize: 8,
      valueSize: 12,
      btfKeyTypeId: 0,
      btfValueTypeId: 0,
      sectionOffset: 248,
    },
    // 10000 bytes rounded up to 4 pages
    {
      name: "ringbuf_map",
      type: "ringbuf",
      keySize: 0,
      valueSize: 0,
      maxEntries: 16384,
    },
    {
      name: "prog_array_map",
      type: "prog_array",
      keySize: 4,
      valueSize: 4,
      maxEntries: 2,
      initSlots: undefined,
    },
  ]);
  for (const m of obj.maps) {
    assert.equal(m.internal, null);
    assert.equal(m.mmapable, false);
    assert.equal(m.section, ".maps");
  }
});

Deno.test("maps: key and value BTF types are the ones named in the definition", () => {
  const obj = loadFixture("maps_btf.o");
  const btf = obj.btf!;
  const byName = (n: string) => obj.maps.find((m) => m.name === n)!;
  assert.equal(btf.typeName(byName("array_map").btfKeyTypeId), "__u32");
  assert.equal(
    btf.typeName(byName("array_map").btfValueTypeId),
    "struct value",
  );
  assert.equal(btf.typeName(byName("hash_map").btfKeyTypeId), "__u64");
  assert.equal(btf.typeName(byName("percpu_hash_map").btfValueTypeId), "__u64");
});

Deno.test("maps: map-in-map inner template and initial slots (.rel.maps)", () => {
  const outer = loadFixture("maps_btf.o").maps.find((m) =>
    m.name === "outer_map"
  )!;
  assert.deepEqual(outer.initSlots, ["inner_a", "inner_b"]);
  const inner = outer.innerMap!;
  assert.equal(inner.name, "outer_map.inner");
  assert.equal(inner.type, "array");
  assert.equal(inner.keySize, 4);
  assert.equal(inner.valueSize, 8);
  assert.equal(inner.maxEntries, 1);
});

Deno.test("maps: global data becomes one array map per section (global_data.c)", () => {
  const obj = loadFixture("global_data.o");
  const le32 = (n: number) => new Uint8Array(new Uint32Array([n]).buffer);
  // libbpf: "map 'global_d.data' (global data): ... flags 400" and so on, in section order
  check(obj.maps, [
    // counter = 5, then the static hidden_static = 3
    {
      name: "global_d.data",
      realName: ".data",
      internal: "data",
      type: "array",
      keySize: 4,
      valueSize: 8,
      maxEntries: 1,
      flags: BPF_F_MMAPABLE,
      mmapable: true,
      initialData: new Uint8Array([5, 0, 0, 0, 3, 0, 0, 0]),
    },
    {
      name: "global_d.rodata",
      internal: "rodata",
      valueSize: 4,
      flags: BPF_F_RDONLY_PROG | BPF_F_MMAPABLE,
      initialData: le32(10),
    },
    // private (hidden) globals: separate maps named after the section, not mmapable
    {
      name: ".data.A",
      internal: "data",
      valueSize: 8,
      flags: 0,
      mmapable: false,
      initialData: new Uint8Array([
        0x88,
        0x77,
        0x66,
        0x55,
        0x44,
        0x33,
        0x22,
        0x11,
      ]),
    },
    {
      name: ".rodata.A",
      internal: "rodata",
      valueSize: 4,
      flags: BPF_F_RDONLY_PROG,
      initialData: le32(42),
    },
    {
      name: "global_d.bss",
      internal: "bss",
      valueSize: 8,
      flags: BPF_F_MMAPABLE,
      initialData: new Uint8Array(8),
    },
    {
      name: ".bss.A",
      realName: ".bss.A",
      internal: "bss",
      valueSize: 8,
      flags: 0,
      initialData: new Uint8Array(8),
    },
  ]);
  for (const m of obj.maps) {
    assert.equal(obj.btf!.typeById(m.btfValueTypeId).kind, "DATASEC");
    assert.equal(obj.btf!.nameOf(m.btfValueTypeId), m.realName);
  }
});

Deno.test("maps: the .kconfig map holds the kconfig externs (externs.c)", () => {
  const obj = loadFixture("externs.o");
  // libbpf: CONFIG_HZ off 0, LINUX_KERNEL_VERSION off 4, CONFIG_BPF_SYSCALL off 8
  check(obj.maps, [{
    name: "externs.kconfig",
    realName: ".kconfig",
    internal: "kconfig",
    keySize: 4,
    valueSize: 9,
    maxEntries: 1,
    flags: BPF_F_RDONLY_PROG | BPF_F_MMAPABLE,
    initialData: new Uint8Array(9),
  }]);
});

Deno.test("maps: value with a lock, a list head and a kptr (graph.c)", () => {
  const obj = loadFixture("graph.o");
  // struct map_value { bpf_spin_lock (4, pad to 8); bpf_list_head (16); kptr (8) }
  check(obj.maps, [{
    name: "values",
    type: "array",
    keySize: 4,
    valueSize: 32,
    maxEntries: 1,
  }]);
  assert.equal(
    obj.btf!.typeName(obj.maps[0].btfValueTypeId),
    "struct map_value",
  );
});

Deno.test("maps: internal map names follow internal_map_name()", () => {
  assert.equal(objectName("tests/fixtures/global_data.o"), "global_data");
  assert.equal(objectName("fixture.bpf.o"), "fixture");
  assert.equal(objectName("a_very_long_object_name.o"), "a_very_long_obj");
  // 8 characters of object name, then the 7 reserved for the suffix
  assert.equal(internalMapName("my_object_name", ".rodata"), "my_objec.rodata");
  assert.equal(internalMapName("my_object_name", ".bss"), "my_objec.bss");
  // .kconfig is 8 characters: 7 left for the object name
  assert.equal(
    internalMapName("my_object_name", ".kconfig"),
    "my_obje.kconfig",
  );
  assert.equal(internalMapName("fixture", ".bss"), "fixture.bss");
  // a second dot: the section name alone, cut to 15 characters
  assert.equal(
    internalMapName("fixture", ".rodata.abracadabra"),
    ".rodata.abracad",
  );
  assert.equal(internalMapName("fixture", ".data.A"), ".data.A");
  // characters the kernel refuses become '_'
  assert.equal(internalMapName("my-obj", ".data"), "my_obj.data");
});

Deno.test("maps: ring buffer sizes round up to a power-of-2 number of pages", () => {
  assert.equal(adjustRingbufSize(0), 0);
  assert.equal(adjustRingbufSize(4096), 4096);
  assert.equal(adjustRingbufSize(4097), 8192);
  assert.equal(adjustRingbufSize(3 * 4096), 4 * 4096);
  assert.equal(adjustRingbufSize(256 * 1024), 256 * 1024);
});
