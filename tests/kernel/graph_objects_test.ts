import assert from "node:assert/strict";
import { MemAllocError } from "../../lib/kernel/mem_alloc.ts";
import { refcountOf } from "../../lib/kernel/graph/mod.ts";
import { graphBench, kcall } from "./graph_env.ts";

/** A program: obj_new(typeId) and return the pointer. */
function newProg(typeId: number): string {
  return `r1 = ${typeId}\nr2 = 0\n${kcall("bpf_obj_new_impl")}\nexit`;
}

/** A program: obj_drop(ptr). */
function dropProg(ptr: bigint): string {
  return `r1 = 0x${ptr.toString(16)} ll\nr2 = 0\n${
    kcall("bpf_obj_drop_impl")
  }\nr0 = 0\nexit`;
}

Deno.test("bpf_obj_new / bpf_obj_drop", async (t) => {
  await t.step(
    "zeroed object of the type's size, special fields initialised",
    () => {
      const b = graphBench("refcount");
      const id = b.typeId("shared");
      const size = b.btf.sizeOf(id);
      // struct shared { long key; bpf_rb_node rb; bpf_list_node ln; bpf_refcount ref; }
      assert.equal(size, 8 + 32 + 24 + 8); // 4-byte refcount padded to 8
      const p = b.run(newProg(id)).r0;
      assert.notEqual(p, 0n);
      const rb = p + BigInt(b.offsetOf("shared", "rb"));
      const ln = p + BigInt(b.offsetOf("shared", "ln"));
      const ref = p + BigInt(b.offsetOf("shared", "ref"));
      assert.equal(b.space.read(p, 8), 0n, "key zeroed");
      assert.equal(b.space.read(rb, 8), rb, "RB_CLEAR_NODE: parent = self");
      assert.equal(b.space.read(rb + 8n, 8), 0n);
      assert.equal(b.space.read(rb + 24n, 8), 0n, "owner NULL");
      assert.equal(b.space.read(ln, 8), ln, "INIT_LIST_HEAD: next = self");
      assert.equal(b.space.read(ln + 8n, 8), ln, "prev = self");
      assert.equal(b.space.read(ln + 16n, 8), 0n, "owner NULL");
      assert.equal(b.space.read(ref, 4), 1n, "refcount_set(1)");
      // the whole type is addressable, and it came from the size class that fits
      b.space.read(p + BigInt(size - 8), 8);
      assert.equal(b.ma.objectInfo(p)?.unitSize, 96); // 72 + 8-byte header -> 96
      assert.equal(b.ma.inUse, 1);
      b.run(dropProg(p));
      assert.equal(b.ma.inUse, 0);
    },
  );

  await t.step("NULL once the cache is empty inside an NMI", () => {
    const b = graphBench("list_map");
    const id = b.typeId("elem");
    const got: bigint[] = [];
    b.ma.nmi(0, () => {
      for (let i = 0; i < 10; i++) got.push(b.run(newProg(id)).r0);
    });
    const live = got.filter((p) => p !== 0n);
    // prefill_mem_cache() put 4 units in the 48-byte class; irq_work cannot run in NMI
    assert.equal(live.length, 4);
    assert.deepEqual(got.slice(4), Array(6).fill(0n));
    assert.equal(b.ma.pendingIrqWork(0) > 0, true);
    for (const p of live) b.run(dropProg(p));
    assert.equal(b.ma.inUse, 0);
  });

  await t.step("an unknown type id faults the program", () => {
    const b = graphBench("list_map");
    assert.throws(
      () => b.run(newProg(99999)),
      /not a struct of the program's BTF/,
    );
  });

  await t.step("double drop is a KASAN double-free", () => {
    const b = graphBench("list_map");
    const p = b.run(newProg(b.typeId("elem"))).r0;
    b.run(dropProg(p));
    assert.throws(() => b.run(dropProg(p)), (e: Error) => {
      const cause = e.cause;
      return cause instanceof MemAllocError && cause.kind === "double-free";
    });
  });

  await t.step(
    "drop of an object owning a list drains and frees every node",
    () => {
      const b = graphBench("list_nested");
      const bucket = b.rt.objNew(
        0,
        b.rt.typeOf(BigInt(b.typeId("bucket"))),
        "t",
      );
      const leafType = b.rt.typeOf(BigInt(b.typeId("leaf")));
      const head = bucket + BigInt(b.offsetOf("bucket", "leaves"));
      const push = kcall("bpf_list_push_back_impl");
      for (let i = 0; i < 6; i++) {
        b.refill();
        const leaf = b.rt.objNew(0, leafType, "t");
        const r = b.run(
          `r1 = 0x${head.toString(16)} ll\nr2 = 0x${
            leaf.toString(16)
          } ll\nr3 = 0\nr4 = 0\n${push}\nexit`,
        );
        assert.equal(r.r0, 0n);
      }
      assert.equal(b.ma.inUse, 7);
      b.run(dropProg(bucket));
      assert.equal(b.ma.inUse, 0, "bucket and its 6 leaves freed");
    },
  );

  await t.step("refcount_acquire keeps the object alive after one drop", () => {
    const b = graphBench("refcount");
    const p = b.run(newProg(b.typeId("shared"))).r0;
    const acquire = kcall("bpf_refcount_acquire_impl");
    const r = b.run(`r1 = 0x${p.toString(16)} ll\nr2 = 0\n${acquire}\nexit`);
    assert.equal(r.r0, p);
    assert.equal(refcountOf(b.rt, p), 2);
    b.run(dropProg(p));
    assert.equal(b.ma.inUse, 1, "one reference left");
    assert.equal(refcountOf(b.rt, p), 1);
    b.space.write(p, 8, 7n); // still writable: not freed
    b.run(dropProg(p));
    assert.equal(b.ma.inUse, 0);
  });

  await t.step("refcount_acquire of a zero count returns NULL", () => {
    const b = graphBench("refcount");
    const p = b.run(newProg(b.typeId("shared"))).r0;
    b.space.write(p + BigInt(b.offsetOf("shared", "ref")), 4, 0n);
    const acquire = kcall("bpf_refcount_acquire_impl");
    assert.equal(
      b.run(`r1 = 0x${p.toString(16)} ll\nr2 = 0\n${acquire}\nexit`).r0,
      0n,
    );
    // and dropping it now underflows, as refcount_t warns
    assert.throws(
      () => b.run(dropProg(p)),
      /refcount_t: underflow; use-after-free/,
    );
  });

  await t.step(
    "per-CPU objects: one copy per CPU, freed by percpu_obj_drop",
    () => {
      const b = graphBench("percpu", 3);
      const id = b.typeId("counters");
      const p =
        b.run(`r1 = ${id}\nr2 = 0\n${kcall("bpf_percpu_obj_new_impl")}\nexit`)
          .r0;
      assert.notEqual(p, 0n);
      const copies = [0, 1, 2].map((c) => b.rt.percpuCopy(p, c));
      assert.deepEqual(copies.map((a) => a - p), [0n, 16n, 32n]);
      b.space.write(copies[1], 8, 5n);
      assert.equal(b.space.read(copies[0], 8), 0n);
      assert.equal(b.space.read(copies[2] + 8n, 8), 0n);
      assert.equal(b.ma.inUse, 0, "not from bpf_global_ma");
      b.run(
        `r1 = 0x${p.toString(16)} ll\nr2 = 0\n${
          kcall("bpf_percpu_obj_drop_impl")
        }\nr0 = 0\nexit`,
      );
      assert.equal(b.rt.objectAt(p), undefined);
      assert.throws(() => b.rt.percpuCopy(p, 0), /not a per-CPU object/);
    },
  );
});
