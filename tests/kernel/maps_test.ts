/**
 * Map creation (errnos against the real kernel's answers in
 * maps.kernel.json), array and per-CPU array maps.
 */
import assert from "node:assert/strict";
import { AddressSpace } from "../../lib/exec/memory.ts";
import { MemoryFault } from "../../lib/exec/fault.ts";
import {
  BPF_ANY,
  BPF_EXIST,
  BPF_F_LOCK,
  BPF_F_RDONLY_PROG,
  BPF_NOEXIST,
  createMap,
  E2BIG,
  EINVAL,
  ENOENT,
  EPERM,
  mapAllocCheck,
  type MapAttr,
  MapError,
  toHex,
} from "../../lib/kernel/maps/mod.ts";
import { k32, kernelAnswers, kernelOp, v64 } from "./maps_fakes.ts";

const ARRAY = 2, PERCPU_ARRAY = 6;

function arrayAttr(over: Partial<MapAttr> = {}): MapAttr {
  return {
    name: "arr",
    type: ARRAY,
    keySize: 4,
    valueSize: 8,
    maxEntries: 4,
    flags: 0,
    ...over,
  };
}

Deno.test("BPF_MAP_CREATE checks agree with the kernel", async (t) => {
  const answers = kernelAnswers();
  const creates = answers.ops.filter((c) => c.case !== undefined);
  assert.ok(creates.length >= 30);
  for (const c of creates) {
    await t.step(`${c.case} -> ${c.result}`, () => {
      const attr: MapAttr = {
        name: c.mapName!,
        type: c.type!,
        keySize: c.keySize!,
        valueSize: c.valueSize!,
        maxEntries: c.maxEntries!,
        flags: c.flags!,
      };
      assert.equal(mapAllocCheck(attr), c.result);
    });
  }
  await t.step("createMap throws MapError with the errno", () => {
    try {
      createMap(new AddressSpace(), arrayAttr({ maxEntries: 0 }));
      assert.fail("created");
    } catch (e) {
      assert.ok(e instanceof MapError);
      assert.equal(e.errno, EINVAL);
    }
  });
  await t.step("unmodelled map types are refused, not faked", () => {
    assert.throws(() => mapAllocCheck(arrayAttr({ type: 11 })), MapError);
  });
});

Deno.test("array map", async (t) => {
  const space = new AddressSpace();
  const m = createMap(space, arrayAttr({ valueSize: 12 }));

  await t.step(
    "elements are round_up(value_size, 8) apart in one region",
    () => {
      const a0 = m.lookup(k32(0), 0)!;
      const a1 = m.lookup(k32(1), 0)!;
      assert.equal(a1 - a0, 16n);
      assert.equal(space.regionAt(a0)!.kind, "map_value");
      assert.equal(space.regionAt(a0)!.size, 4 * 16);
      assert.equal(m.lookup(k32(4), 0), null);
    },
  );

  await t.step("a program's store is what user space reads", () => {
    space.write(m.lookup(k32(2), 0)!, 8, 0x1122334455667788n);
    const v = m.lookupValueCopy(k32(2));
    assert.ok(v instanceof Uint8Array);
    assert.equal(v.length, 12);
    assert.equal(toHex(v), "887766554433221100000000");
  });

  await t.step("update errnos match the kernel", () => {
    const v = new Uint8Array(12).fill(7);
    assert.equal(
      m.update(k32(1), v, BPF_NOEXIST, 0),
      kernelOp("array update NOEXIST existing"),
    );
    assert.equal(
      m.update(k32(9), v, BPF_ANY, 0),
      kernelOp("array update index 9"),
    );
    assert.equal(m.update(k32(1), v, 3, 0), kernelOp("array update flags 3"));
    assert.equal(
      m.update(k32(1), v, BPF_F_LOCK, 0),
      kernelOp("array update F_LOCK no lock"),
    );
    assert.equal(m.delete(k32(1), 0), kernelOp("array delete"));
    assert.equal(kernelOp("array update index 9"), -E2BIG);
  });

  await t.step("refused updates changed nothing", () => {
    assert.equal(
      toHex(m.lookupValueCopy(k32(1)) as Uint8Array),
      "00".repeat(12),
    );
    assert.equal(
      toHex(m.lookupValueCopy(k32(2)) as Uint8Array),
      "887766554433221100000000",
    );
  });

  await t.step("BPF_EXIST overwrites in place", () => {
    const before = m.lookup(k32(1), 0);
    const v = new Uint8Array(12).fill(0xab);
    assert.equal(
      m.update(k32(1), v, BPF_EXIST, 0),
      kernelOp("array update EXIST"),
    );
    assert.equal(m.lookup(k32(1), 0), before);
    assert.equal(space.read(before!, 4), 0xababababn);
  });

  await t.step("get_next_key as arraymap.c walks it", () => {
    assert.equal(toHex(m.getNextKey(null) as Uint8Array), "00000000");
    assert.equal(toHex(m.getNextKey(k32(9)) as Uint8Array), "00000000");
    assert.equal(toHex(m.getNextKey(k32(1)) as Uint8Array), "02000000");
    assert.equal(m.getNextKey(k32(3)), kernelOp("array next_key of last"));
    assert.equal(m.getNextKey(k32(3)), -ENOENT);
    assert.deepEqual(
      m.dump().map((e) => toHex(e.key)),
      ["00000000", "01000000", "02000000", "03000000"],
    );
  });

  await t.step(
    "freeze: user space can no longer write, programs still can",
    () => {
      assert.equal(m.freeze(), kernelOp("array freeze"));
      const v = new Uint8Array(12);
      assert.equal(
        m.updateFromSyscall(k32(1), v, BPF_ANY),
        kernelOp("array update after freeze"),
      );
      assert.equal(m.freeze(), kernelOp("array freeze twice"));
      assert.equal(
        m.deleteFromSyscall(k32(1)),
        kernelOp("array delete after freeze"),
      );
      assert.equal(m.update(k32(1), v, BPF_ANY, 0), 0);
      assert.equal(kernelOp("array freeze twice"), -EPERM);
    },
  );

  await t.step("destroy unmaps the values: a stale pointer faults", () => {
    const a = m.lookup(k32(0), 0)!;
    m.destroy();
    assert.throws(
      () => space.read(a, 8),
      (e: unknown) => e instanceof MemoryFault && e.reason === "use-after-free",
    );
  });

  await t.step("a key of the wrong size is API misuse", () => {
    const m2 = createMap(space, arrayAttr());
    assert.throws(() => m2.lookup(new Uint8Array(8), 0), MapError);
  });
});

Deno.test("BPF_F_RDONLY_PROG values are not writable by programs", () => {
  const space = new AddressSpace();
  const m = createMap(space, arrayAttr({ flags: BPF_F_RDONLY_PROG }));
  const a = m.lookup(k32(0), 0)!;
  assert.throws(
    () => space.write(a, 8, 1n),
    (e: unknown) => e instanceof MemoryFault && e.reason === "not-writable",
  );
  assert.equal(m.updateFromSyscall(k32(0), v64(5n), BPF_ANY), 0);
  assert.equal(space.read(a, 8), 5n);
});

Deno.test("per-CPU array", async (t) => {
  const space = new AddressSpace();
  const m = createMap(
    space,
    arrayAttr({ type: PERCPU_ARRAY, valueSize: 4, maxEntries: 2 }),
    { nrCpus: 3 },
  );
  await t.step("each CPU has its own copy", () => {
    const a0 = m.lookup(k32(1), 0)!;
    const a2 = m.lookup(k32(1), 2)!;
    assert.notEqual(space.regionAt(a0)!.id, space.regionAt(a2)!.id);
    assert.equal(m.update(k32(1), new Uint8Array([1, 2, 3, 4]), BPF_ANY, 2), 0);
    assert.equal(space.read(a2, 4), 0x04030201n);
    assert.equal(space.read(a0, 4), 0n);
  });
  await t.step("user space sees nr_cpus values of round_up(4, 8) bytes", () => {
    assert.equal(m.syscallValueSize, 24);
    const v = m.lookupValueCopy(k32(1)) as Uint8Array;
    assert.equal(
      toHex(v),
      "0000000000000000" + "0000000000000000" + "0102030400000000",
    );
  });
  await t.step("a user-space update writes every CPU", () => {
    const v = new Uint8Array(24);
    v[0] = 10;
    v[8] = 11;
    v[16] = 12;
    assert.equal(m.updateFromSyscall(k32(0), v, BPF_ANY), 0);
    for (let c = 0; c < 3; c++) {
      assert.equal(space.read(m.lookup(k32(0), c)!, 4), BigInt(10 + c));
    }
    assert.equal(m.updateFromSyscall(k32(0), v, BPF_NOEXIST), -17);
    assert.equal(m.updateFromSyscall(k32(5), v, BPF_ANY), -E2BIG);
  });
  await t.step("a CPU that does not exist is API misuse", () => {
    assert.throws(() => m.lookup(k32(0), 3), MapError);
  });
});

Deno.test("BPF_F_WRONLY_PROG values are not readable by programs", () => {
  const space = new AddressSpace();
  const m = createMap(
    space,
    arrayAttr({ type: 1, maxEntries: 2, flags: 1 << 8 }),
  );
  assert.equal(m.update(k32(1), v64(7n), BPF_ANY, 0), 0);
  const a = m.lookup(k32(1), 0)!;
  space.write(a, 8, 9n);
  assert.throws(
    () => space.read(a, 8),
    (e: unknown) => e instanceof MemoryFault && e.reason === "not-readable",
  );
  assert.equal(
    toHex(m.lookupValueCopy(k32(1)) as Uint8Array),
    "0900000000000000",
  );
});
