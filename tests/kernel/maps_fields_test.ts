/**
 * Special fields in map values: copies skip them, user-space copies see them
 * zeroed, and overwrite / delete / eviction / destruction release what they
 * own through the FieldFreer (recorded here), as bpf_obj_free_fields() does.
 * The array case uses the real BTF record of tests/fixtures/graph.o.
 */
import assert from "node:assert/strict";
import { AddressSpace } from "../../lib/exec/memory.ts";
import { loadObject } from "../../lib/elf/object.ts";
import {
  BPF_KPTR_REF,
  BPF_KPTR_UNREF,
  BPF_LIST_HEAD,
  BPF_SPIN_LOCK,
  BPF_TIMER,
  type BtfField,
  type BtfRecord,
  NO_FIELD_OFF,
} from "../../lib/btf/field_types.ts";
import {
  BPF_ANY,
  BPF_EXIST,
  BPF_F_LOCK,
  BPF_NOEXIST,
  type BpfMap,
  createMap,
  createMapFromDef,
  ENOTSUPP,
  type MapAttr,
  MapError,
  toHex,
} from "../../lib/kernel/maps/mod.ts";
import { k32, RecordingFreer, u64At } from "./maps_fakes.ts";

const HASH = 1, LRU_HASH = 9;

/** graph.o's `values`: lock @0, list head @8, kptr @24 (32 bytes). */
function graphValues(): {
  m: BpfMap;
  space: AddressSpace;
  freer: RecordingFreer;
} {
  const obj = loadObject(
    Deno.readFileSync(new URL("../fixtures/graph.o", import.meta.url)),
    "graph.o",
  );
  const def = obj.maps.find((d) => d.name === "values")!;
  const space = new AddressSpace();
  const freer = new RecordingFreer();
  const m = createMapFromDef(space, def, obj.btf, { fieldFreer: freer });
  return { m, space, freer };
}

/** Puts a kptr and a non-empty list head into the value at `addr`, as programs would. */
function populate(space: AddressSpace, addr: bigint, kptr: bigint): void {
  space.write(addr + 8n, 8, 0xffff888100aa0000n); // list_head.next: some node
  space.write(addr + 16n, 8, 0xffff888100aa0000n);
  space.write(addr + 24n, 8, kptr);
}

Deno.test("the array of graph.o: BTF record and field handling", async (t) => {
  const { m, space, freer } = graphValues();
  await t.step("map_check_btf found lock, list head and kptr", () => {
    assert.deepEqual(
      m.record!.fields.map((f) => [f.type, f.offset]),
      [[BPF_SPIN_LOCK, 0], [BPF_LIST_HEAD, 8], [BPF_KPTR_REF, 24]],
    );
  });
  const a = m.lookup(k32(0), 0)!;
  populate(space, a, 0xffff888100bb0000n);
  space.write(a, 4, 1n); // the lock word, as if held
  await t.step("user space reads special fields as zero", () => {
    assert.equal(
      toHex(m.lookupValueCopy(k32(0)) as Uint8Array),
      "00".repeat(32),
    );
    assert.equal(
      toHex(m.lookupValueCopy(k32(0), BPF_F_LOCK) as Uint8Array),
      "00".repeat(32),
    );
  });
  await t.step("a refused update changes nothing and frees nothing", () => {
    assert.equal(
      m.updateFromSyscall(k32(0), new Uint8Array(32).fill(9), BPF_NOEXIST),
      -17,
    );
    assert.equal(m.updateFromSyscall(k32(1), new Uint8Array(32), BPF_ANY), -7);
    assert.deepEqual(freer.calls, []);
    assert.equal(space.read(a + 24n, 8), 0xffff888100bb0000n);
  });
  await t.step(
    "an update keeps the lock, then frees the stored kptr and list",
    () => {
      assert.equal(
        m.updateFromSyscall(k32(0), new Uint8Array(32).fill(9), BPF_ANY),
        0,
      );
      assert.deepEqual(freer.calls, [
        "drainList @8 lock=yes",
        "dropKptr 0xffff888100bb0000 @24",
      ]);
      assert.equal(freer.lastHead, a + 8n);
      assert.equal(space.read(a, 4), 1n, "copy_map_value skips the lock");
      assert.equal(
        space.read(a + 24n, 8),
        0n,
        "the kptr was exchanged for NULL",
      );
    },
  );
  await t.step("maps with special fields cannot be frozen", () => {
    assert.equal(m.freeze(), -ENOTSUPP);
  });
  await t.step("destroy frees what the values own", () => {
    freer.calls.length = 0;
    space.write(a + 24n, 8, 0xffff888100cc0000n);
    m.destroy();
    assert.deepEqual(freer.calls, [
      "drainList @8 lock=yes",
      "dropKptr 0xffff888100cc0000 @24",
    ]);
  });
});

const kptr: BtfField = {
  type: BPF_KPTR_REF,
  offset: 8,
  size: 8,
  kptr: { btfId: 5, kernel: false },
};
const lock: BtfField = { type: BPF_SPIN_LOCK, offset: 0, size: 4 };
const timer: BtfField = { type: BPF_TIMER, offset: 16, size: 16 };
const untrusted: BtfField = {
  type: BPF_KPTR_UNREF,
  offset: 32,
  size: 8,
  kptr: { btfId: 6, kernel: true },
};
/** value { bpf_spin_lock; kptr @8; bpf_timer @16; kptr_untrusted @32 } (40 bytes). */
const record: BtfRecord = {
  cnt: 4,
  fieldMask: BPF_SPIN_LOCK | BPF_KPTR_REF | BPF_TIMER | BPF_KPTR_UNREF,
  spinLockOff: 0,
  resSpinLockOff: NO_FIELD_OFF,
  timerOff: 16,
  wqOff: NO_FIELD_OFF,
  refcountOff: NO_FIELD_OFF,
  taskWorkOff: NO_FIELD_OFF,
  fields: [lock, kptr, timer, untrusted],
};

function hashWithFields(over: Partial<MapAttr> = {}) {
  const space = new AddressSpace();
  const freer = new RecordingFreer();
  const m = createMap(space, {
    name: "hf",
    type: HASH,
    keySize: 4,
    valueSize: 40,
    maxEntries: 4,
    flags: 0,
    ...over,
  }, { record, fieldFreer: freer });
  return { m, space, freer };
}

function own(space: AddressSpace, m: BpfMap, key: number, p: bigint): bigint {
  const a = m.lookup(k32(key), 0)!;
  space.write(a + 8n, 8, p);
  space.write(a + 16n, 8, p + 1n); // bpf_timer's internal pointer
  space.write(a + 32n, 8, 0x1234n);
  return a;
}

Deno.test("hash map: fields are freed on replace, delete and destroy only", () => {
  const { m, space, freer } = hashWithFields();
  const value = new Uint8Array(40).fill(0x55);
  m.update(k32(1), value, BPF_ANY, 0);
  const a = own(space, m, 1, 0xa0n);
  assert.equal(
    u64At(m.lookupValueCopy(k32(1)), 8),
    0n,
    "special fields read as zero",
  );
  assert.equal(u64At(m.lookupValueCopy(k32(1)), 0) >> 32n, 0x55555555n);

  assert.equal(m.update(k32(1), value, BPF_NOEXIST, 0), -17);
  assert.deepEqual(freer.calls, []);

  // BPF_F_LOCK: in place, the owned objects stay.
  assert.equal(
    m.update(k32(1), new Uint8Array(40).fill(0x66), BPF_F_LOCK | BPF_EXIST, 0),
    0,
  );
  assert.equal(m.lookup(k32(1), 0), a);
  assert.deepEqual(freer.calls, []);
  assert.equal(space.read(a + 8n, 8), 0xa0n);
  assert.equal(space.read(a + 4n, 1), 0x66n, "plain bytes are copied");

  // A plain update replaces the element: the old one's fields are released.
  m.update(k32(1), value, BPF_ANY, 0);
  assert.deepEqual(freer.calls, ["dropKptr 0xa0 @8", "cancelAndFree 0xa1 @16"]);
  assert.equal(space.read(a + 32n, 8), 0n, "kptr_untrusted is simply cleared");

  freer.calls.length = 0;
  own(space, m, 1, 0xb0n);
  assert.equal(m.delete(k32(1), 0), 0);
  assert.deepEqual(freer.calls, ["dropKptr 0xb0 @8", "cancelAndFree 0xb1 @16"]);

  freer.calls.length = 0;
  m.update(k32(2), value, BPF_ANY, 0);
  own(space, m, 2, 0xc0n);
  m.destroy();
  assert.deepEqual(freer.calls, ["dropKptr 0xc0 @8", "cancelAndFree 0xc1 @16"]);
});

Deno.test("LRU eviction releases the evicted element's fields", () => {
  const { m, space, freer } = hashWithFields({ type: LRU_HASH, maxEntries: 2 });
  const v = new Uint8Array(40);
  m.update(k32(1), v, BPF_ANY, 0);
  own(space, m, 1, 0xd0n);
  m.update(k32(2), v, BPF_ANY, 0);
  assert.deepEqual(freer.calls, []);
  m.update(k32(3), v, BPF_ANY, 0); // target_free 1: evicts the oldest, key 1
  assert.equal(m.lookupValueCopy(k32(1)), -2);
  assert.deepEqual(freer.calls, ["dropKptr 0xd0 @8", "cancelAndFree 0xd1 @16"]);
});

Deno.test("without a FieldFreer, owning something is a wiring error", () => {
  const space = new AddressSpace();
  const m = createMap(space, {
    name: "nofreer",
    type: 2,
    keySize: 4,
    valueSize: 40,
    maxEntries: 1,
    flags: 0,
  }, { record });
  m.update(k32(0), new Uint8Array(40), BPF_ANY, 0); // nothing owned yet: fine
  space.write(m.lookup(k32(0), 0)! + 8n, 8, 0xe0n);
  assert.throws(() => m.destroy(), MapError);
});
