/**
 * Special-field discovery. fields_ok.c: offsets worked out by hand from the
 * C layout (the kernel accepted the object). bad_*.c: each carries the
 * stage and errno the real kernel returned (`expect:`), recorded with the
 * oracle in NAME.oracle.txt; both must agree with lib/btf.
 */
import assert from "node:assert/strict";
import {
  BPF_KPTR_PERCPU,
  BPF_KPTR_REF,
  BPF_KPTR_UNREF,
  BPF_LIST_HEAD,
  BPF_LIST_NODE,
  BPF_RB_NODE,
  BPF_RB_ROOT,
  BPF_REFCOUNT,
  BPF_RES_SPIN_LOCK,
  BPF_SPIN_LOCK,
  BPF_TIMER,
  BPF_WORKQUEUE,
  type Btf,
  BtfError,
  type BtfRecord,
  E2BIG,
  EACCES,
  EEXIST,
  EFAULT,
  EOPNOTSUPP,
  MAP_VALUE_FIELD_MASK,
  mapCheckBtfFields,
  NO_FIELD_OFF,
  parseBtf,
  parseFields,
  parseStructMetas,
} from "../../lib/btf/mod.ts";
import { expectation, FIXTURES, loadFixture, mapDefs } from "./fixtures.ts";
import { MAP_TYPE } from "../../lib/uapi/bpf.ts";

const ok = loadFixture("fields_ok");
const metas = parseStructMetas(ok.btf);
const maps = new Map(mapDefs(ok.btf).map((m) => [m.name, m]));

/** [type, offset] of each field, for compact comparison. */
function layout(rec: BtfRecord | null): [number, number][] {
  assert.ok(rec, "no record");
  return rec.fields.map((f) => [f.type, f.offset]);
}

function mapRecord(name: string): BtfRecord {
  const m = maps.get(name)!;
  const res = mapCheckBtfFields(
    ok.btf,
    m.valueTypeId,
    m.valueSize,
    m.mapType,
    metas,
  );
  assert.equal(res.recordError, null);
  assert.ok(res.record);
  return res.record;
}

const id = (btf: Btf, name: string) => btf.findByName(name, "STRUCT")!;

Deno.test("fields_ok.o: map values", async (t) => {
  await t.step("list_val: lock, list head, rb root with their elements", () => {
    const rec = mapRecord("m_list");
    assert.deepEqual(layout(rec), [[BPF_SPIN_LOCK, 4], [BPF_LIST_HEAD, 8], [
      BPF_RB_ROOT,
      24,
    ]]);
    assert.equal(rec.spinLockOff, 4);
    assert.equal(rec.cnt, 3);
    assert.equal(rec.fieldMask, BPF_SPIN_LOCK | BPF_LIST_HEAD | BPF_RB_ROOT);
    const [, head, root] = rec.fields;
    assert.deepEqual(
      [
        head.graphRoot!.valueBtfId,
        head.graphRoot!.nodeOffset,
        head.graphRoot!.nodeName,
      ],
      [id(ok.btf, "lnode"), 8, "node"],
    );
    assert.deepEqual(
      [root.graphRoot!.valueBtfId, root.graphRoot!.nodeOffset],
      [id(ok.btf, "rnode"), 8],
    );
    assert.equal(head.graphRoot!.valueRecord, metas.get(id(ok.btf, "lnode")));
    assert.deepEqual(head.size, 16);
  });
  await t.step(
    "kptr_val: every kptr flavour, arrays and nested arrays flattened",
    () => {
      const rec = mapRecord("m_kptr");
      assert.deepEqual(layout(rec), [
        [BPF_KPTR_REF, 8],
        [BPF_KPTR_UNREF, 16],
        [BPF_KPTR_PERCPU, 24],
        [BPF_KPTR_REF, 32],
        [BPF_KPTR_REF, 40],
        [BPF_KPTR_REF, 56],
        [BPF_KPTR_REF, 72],
      ]);
      const obj = id(ok.btf, "obj");
      assert.ok(
        rec.fields.every((f) =>
          f.kptr?.btfId === obj && !f.kptr.kernel && f.size === 8
        ),
      );
    },
  );
  await t.step("timer_val: timer, workqueue, lock", () => {
    const rec = mapRecord("m_timer");
    assert.deepEqual(layout(rec), [[BPF_TIMER, 0], [BPF_WORKQUEUE, 16], [
      BPF_SPIN_LOCK,
      32,
    ]]);
    assert.deepEqual([
      rec.timerOff,
      rec.wqOff,
      rec.spinLockOff,
      rec.refcountOff,
    ], [
      0,
      16,
      32,
      NO_FIELD_OFF,
    ]);
  });
  await t.step("res_val in a hash map: resilient lock", () => {
    const rec = mapRecord("m_res");
    assert.deepEqual(layout(rec), [[BPF_RES_SPIN_LOCK, 4]]);
    assert.equal(rec.resSpinLockOff, 4);
    assert.equal(maps.get("m_res")!.mapType, MAP_TYPE.hash);
  });
  await t.step("map types that do not allow the fields", () => {
    const cases: [string, number, number][] = [
      ["m_list", MAP_TYPE.percpu_array, EOPNOTSUPP],
      ["m_timer", MAP_TYPE.percpu_hash, EOPNOTSUPP],
      ["m_kptr", 27, /* RINGBUF */ EOPNOTSUPP],
    ];
    for (const [name, type, errno] of cases) {
      const m = maps.get(name)!;
      assert.throws(
        () =>
          mapCheckBtfFields(ok.btf, m.valueTypeId, m.valueSize, type, metas),
        (e: unknown) => e instanceof BtfError && e.errno === errno,
      );
    }
    const m = maps.get("m_kptr")!;
    assert.throws(
      () =>
        mapCheckBtfFields(
          ok.btf,
          m.valueTypeId,
          m.valueSize,
          m.mapType,
          metas,
          {
            mapFlags: 1 << 7,
          },
        ),
      (e: unknown) => e instanceof BtfError && e.errno === EACCES,
    );
  });
});

Deno.test("fields_ok.o: private .bss.A globals", () => {
  const sec = ok.btf.findByName(".bss.A", "DATASEC")!;
  const t = ok.btf.typeById(sec);
  assert.ok(t.kind === "DATASEC" && t.size === 40); // ELF .bss.A size, 8-aligned tail
  const rec = parseFields(ok.btf, sec, MAP_VALUE_FIELD_MASK, t.size);
  assert.deepEqual(layout(rec), [[BPF_SPIN_LOCK, 0], [BPF_LIST_HEAD, 8], [
    BPF_RB_ROOT,
    24,
  ]]);
  assert.equal(rec!.fields[1].graphRoot!.valueBtfId, id(ok.btf, "lnode"));
  assert.equal(rec!.fields[2].graphRoot!.nodeName, "rb");
});

Deno.test("fields_ok.o: struct metas (BPF_BTF_LOAD)", async (t) => {
  await t.step("which structs get a record", () => {
    const names = [...metas.keys()].map((i) => ok.btf.nameOf(i)).sort();
    assert.deepEqual(names, [
      "kptr_val",
      "list_val",
      "lnode",
      "nest",
      "rnode",
      "timer_val",
    ]);
  });
  await t.step("element records", () => {
    assert.deepEqual(layout(metas.get(id(ok.btf, "lnode"))!), [[
      BPF_LIST_NODE,
      8,
    ]]);
    const r = metas.get(id(ok.btf, "rnode"))!;
    assert.deepEqual(layout(r), [
      [BPF_RB_NODE, 8],
      [BPF_REFCOUNT, 40],
      [BPF_LIST_NODE, 48],
      [BPF_KPTR_REF, 72],
    ]);
    assert.equal(r.refcountOff, 40);
  });
  await t.step("the struct-meta mask leaves out timers", () => {
    assert.deepEqual(layout(metas.get(id(ok.btf, "timer_val"))!), [[
      BPF_SPIN_LOCK,
      32,
    ]]);
  });
});

Deno.test("fields_nested_locks.o: a nested second lock wins, as in the kernel", () => {
  const f = loadFixture("fields_nested_locks");
  const m = mapDefs(f.btf)[0];
  const res = mapCheckBtfFields(
    f.btf,
    m.valueTypeId,
    m.valueSize,
    m.mapType,
    parseStructMetas(f.btf),
  );
  assert.deepEqual(layout(res.record), [[BPF_SPIN_LOCK, 0], [
    BPF_SPIN_LOCK,
    4,
  ]]);
  // The oracle: "off 0 doesn't point to 'struct bpf_spin_lock' that is at 4".
  const oracle = Deno.readTextFileSync(
    `${FIXTURES}fields_nested_locks.oracle.txt`,
  );
  const at = oracle.match(/that is at (\d+)/);
  assert.ok(at);
  assert.equal(res.record!.spinLockOff, Number(at[1]));
});

Deno.test("errors outside the fixtures' reach", async (t) => {
  await t.step("unlaid DATASEC: all variables at 0 overlap (EEXIST)", () => {
    // The .BTF as compiled, before the loader fills in DATASEC offsets.
    const btf = parseBtf(ok.elf.sections.get(".BTF")!);
    const sec = btf.findByName(".bss.A", "DATASEC")!;
    assert.throws(
      () => parseFields(btf, sec, MAP_VALUE_FIELD_MASK, 40),
      (e: unknown) => e instanceof BtfError && e.errno === EEXIST,
    );
  });
  await t.step("value smaller than the fields (EFAULT)", () => {
    const m = maps.get("m_list")!;
    assert.throws(
      () => parseFields(ok.btf, m.valueTypeId, MAP_VALUE_FIELD_MASK, 20),
      (e: unknown) => e instanceof BtfError && e.errno === EFAULT,
    );
  });
  await t.step("kernel pointee without a destructor (ENOENT)", () => {
    const m = maps.get("m_kptr")!;
    const kernelType = () => ({ btfId: 100, hasDtor: false });
    assert.throws(
      () =>
        parseFields(ok.btf, m.valueTypeId, MAP_VALUE_FIELD_MASK, m.valueSize, {
          kernelType,
        }),
      (e: unknown) => e instanceof BtfError && e.errno === 2,
    );
    const withDtor = () => ({ btfId: 100, hasDtor: true });
    const rec = parseFields(
      ok.btf,
      m.valueTypeId,
      MAP_VALUE_FIELD_MASK,
      m.valueSize,
      {
        kernelType: withDtor,
      },
    );
    assert.ok(
      rec!.fields.every((f) => f.kptr!.kernel && f.kptr!.btfId === 100),
    );
  });
  await t.step("not a struct or datasec (EINVAL)", () => {
    assert.throws(
      () =>
        parseFields(ok.btf, ok.btf.findByName("int")!, MAP_VALUE_FIELD_MASK, 4),
      (e: unknown) => e instanceof BtfError && e.errno === 22,
    );
  });
  await t.step("more than BTF_FIELDS_MAX fields (E2BIG)", () => {
    const f = loadFixture("bad_too_many");
    const m = mapDefs(f.btf)[0];
    assert.throws(
      () =>
        parseFields(f.btf, m.valueTypeId, MAP_VALUE_FIELD_MASK, m.valueSize),
      (e: unknown) =>
        e instanceof BtfError && e.errno === E2BIG &&
        /more than 11/.test(e.reason),
    );
  });
});

/** What the recorded oracle run says about the BTF load / map creation. */
function oracleStage(
  name: string,
): { btfLoad?: number; mapCreate?: number } | undefined {
  let text: string;
  try {
    text = Deno.readTextFileSync(`${FIXTURES}${name}.oracle.txt`);
  } catch {
    return undefined;
  }
  const load = text.match(/BTF loading error: (-\d+)/);
  const create = text.match(
    /Error in bpf_create_map_xattr\(\w+\):.*\((-\d+)\)/,
  );
  return {
    btfLoad: load ? Number(load[1]) : undefined,
    mapCreate: create ? Number(create[1]) : undefined,
  };
}

/** Runs the kernel's stages on a fixture; returns [stage, errno] of the first failure. */
function simulate(name: string): [string, number] {
  const f = loadFixture(name);
  let metasOf;
  try {
    metasOf = parseStructMetas(f.btf);
  } catch (e) {
    if (e instanceof BtfError) return ["btf_load", -e.errno];
    throw e;
  }
  for (const m of mapDefs(f.btf)) {
    try {
      const res = mapCheckBtfFields(
        f.btf,
        m.valueTypeId,
        m.valueSize,
        m.mapType,
        metasOf,
      );
      if (res.recordError) return ["map_record", -res.recordError.errno];
    } catch (e) {
      if (e instanceof BtfError) return ["map_create", -e.errno];
      throw e;
    }
  }
  return ["accept", 0];
}

Deno.test("every fixture's kernel verdict is reproduced", async (t) => {
  const names = [...Deno.readDirSync(FIXTURES)]
    .filter((e) => /^(bad_|fields_).*\.c$/.test(e.name))
    .map((e) => e.name.slice(0, -2))
    .sort();
  assert.ok(names.length >= 18);
  for (const name of names) {
    await t.step(name, () => {
      const want = expectation(Deno.readTextFileSync(`${FIXTURES}${name}.c`));
      assert.ok(want, `${name}.c has no expect: line`);
      const [stage, errno] = simulate(name);
      assert.deepEqual(
        [stage, errno],
        want[0] === "accept" ? ["accept", 0] : [want[0], Number(want[1])],
      );
      const kernel = oracleStage(name);
      if (kernel === undefined) return; // not recorded on this machine
      assert.equal(
        kernel.btfLoad,
        stage === "btf_load" ? errno : undefined,
        "BTF load errno",
      );
      assert.equal(
        kernel.mapCreate,
        stage === "map_create" ? errno : undefined,
        "map create errno",
      );
    });
  }
});
