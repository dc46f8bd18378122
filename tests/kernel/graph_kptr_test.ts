import assert from "node:assert/strict";
import { u32Key } from "../../lib/kernel/maps/map.ts";
import { BPF_FUNC_kptr_xchg } from "../../lib/kernel/graph/mod.ts";
import { graphBench, imm, kcall } from "./graph_env.ts";

Deno.test("bpf_kptr_xchg and kptr fields", async (t) => {
  await t.step(
    "xchg moves ownership between the program and the map value",
    () => {
      const b = graphBench("kptr");
      const map = b.map("stashes");
      const slot = map.lookup(u32Key(0), 0)! +
        BigInt(b.offsetOf("stash_value", "stash"));
      /** obj_new(elem) with `key`, xchg it into the slot, drop what came out; r0 = old key or -1. */
      const stash = (key: number): number => {
        b.refill();
        const r = b.run(`
        r1 = ${b.typeId("elem")}
        r2 = 0
        ${kcall("bpf_obj_new_impl")}
        if r0 == 0 goto null
        r1 = ${key}
        *(u64 *)(r0 + 0) = r1
        r2 = r0
        r1 = ${imm(slot)}
        call ${BPF_FUNC_kptr_xchg}
        if r0 == 0 goto empty
        r6 = *(u64 *)(r0 + 0)
        r1 = r0
        r2 = 0
        ${kcall("bpf_obj_drop_impl")}
        r0 = r6
        exit
      empty:
        r0 = -1
        exit
      null:
        r0 = -2
        exit`).r0;
        return Number(BigInt.asIntN(64, r));
      };
      assert.equal(stash(11), -1, "the slot was empty");
      assert.equal(b.ma.inUse, 1, "the map owns the object");
      const held = b.space.read(slot, 8);
      assert.equal(b.space.read(held, 8), 11n);
      assert.equal(stash(22), 11, "the old object came back to the program");
      assert.equal(b.ma.inUse, 1);
      // the map owns #22: destroying the map drops it (bpf_obj_free_fields)
      map.destroy();
      assert.equal(b.ma.inUse, 0);
    },
  );

  await t.step(
    "a map value's list and kptr are both released on destroy",
    () => {
      const b = graphBench("kptr");
      const map = b.map("stashes");
      const value = map.lookup(u32Key(0), 0)!;
      const head = value + BigInt(b.offsetOf("stash_value", "head"));
      const elem = b.rt.typeOf(BigInt(b.typeId("elem")));
      const nodeOff = BigInt(b.offsetOf("elem", "node"));
      const push = kcall("bpf_list_push_back_impl");
      for (let i = 0; i < 3; i++) {
        const e = b.rt.objNew(0, elem, "t");
        b.run(
          `r1 = ${imm(head)}\nr2 = ${
            imm(e + nodeOff)
          }\nr3 = 0\nr4 = 0\n${push}\nexit`,
        );
      }
      b.space.write(
        value + BigInt(b.offsetOf("stash_value", "stash")),
        8,
        b.rt.objNew(0, elem, "t"),
      );
      assert.equal(b.ma.inUse, 4);
      map.destroy();
      assert.equal(b.ma.inUse, 0);
    },
  );

  await t.step("a per-CPU kptr is dropped with bpf_percpu_obj_drop", () => {
    const b = graphBench("percpu");
    const map = b.map("pcpu");
    const value = map.lookup(u32Key(0), 0)!;
    const p = b.rt.percpuObjNew(
      0,
      b.rt.typeOf(BigInt(b.typeId("counters"))),
      "t",
    );
    const plain = b.rt.objNew(
      0,
      b.rt.typeOf(BigInt(b.typeId("counters"))),
      "t",
    );
    b.space.write(value + BigInt(b.offsetOf("pcpu_value", "pc")), 8, p);
    b.space.write(value + BigInt(b.offsetOf("pcpu_value", "plain")), 8, plain);
    assert.notEqual(b.rt.objectAt(p), undefined);
    map.destroy();
    assert.equal(b.rt.objectAt(p), undefined, "per-CPU object freed");
    assert.equal(b.ma.inUse, 0, "plain kptr dropped");
  });
});
