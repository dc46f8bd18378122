import assert from "node:assert/strict";
import { u32Key } from "../../lib/kernel/maps/map.ts";
import { Prng } from "../../lib/kernel/prng.ts";
import { listEntries } from "../../lib/kernel/graph/mod.ts";
import { EINVAL } from "../../lib/uapi/errno.ts";
import { type GraphBench, graphBench, imm, kcall } from "./graph_env.ts";

/** `struct elem { long key; struct bpf_list_node node; }` of list_map.c. */
const NODE_OFF = 8n;

/** obj_new(elem), key = `key`, push to `head`; returns the push result (or 1 if NULL). */
function pushKey(
  b: GraphBench,
  head: bigint,
  key: number,
  tail: boolean,
): bigint {
  const push = kcall(
    tail ? "bpf_list_push_back_impl" : "bpf_list_push_front_impl",
  );
  b.refill();
  return b.run(`
    r1 = ${b.typeId("elem")}
    r2 = 0
    ${kcall("bpf_obj_new_impl")}
    if r0 == 0 goto null
    r1 = ${key}
    *(u64 *)(r0 + 0) = r1
    r2 = r0
    r2 += 8
    r1 = ${imm(head)}
    r3 = 0
    r4 = 0
    ${push}
    exit
  null:
    r0 = 1
    exit`).r0;
}

/** pop front/back, return the key and drop the element (-1 when empty). */
function popKey(b: GraphBench, head: bigint, back: boolean): number {
  const pop = kcall(back ? "bpf_list_pop_back" : "bpf_list_pop_front");
  const r = b.run(`
    r1 = ${imm(head)}
    ${pop}
    if r0 == 0 goto empty
    r1 = r0
    r1 += -8
    r6 = *(u64 *)(r1 + 0)
    r2 = 0
    ${kcall("bpf_obj_drop_impl")}
    r0 = r6
    exit
  empty:
    r0 = -1
    exit`).r0;
  return Number(BigInt.asIntN(64, r));
}

/** Keys of the list at `head`, front to back, read from memory. */
function keys(b: GraphBench, head: bigint): number[] {
  return listEntries(b.space, head).map((n) =>
    Number(b.space.read(n - NODE_OFF, 8))
  );
}

/** The bench, a `lists` array map and the head of element 0. */
function listBench(): { b: GraphBench; head: bigint } {
  const b = graphBench("list_map");
  const map = b.map("lists");
  const value = map.lookup(u32Key(0), 0)!;
  return { b, head: value + BigInt(b.offsetOf("map_value", "head")) };
}

Deno.test("bpf_list_*", async (t) => {
  await t.step(
    "push front/back, pop front/back order; the zeroed head is initialised lazily",
    () => {
      const { b, head } = listBench();
      assert.equal(b.space.read(head, 8), 0n, "the map left the head zeroed");
      assert.equal(
        popKey(b, head, false),
        -1,
        "pop of a never-used head is NULL",
      );
      assert.equal(b.space.read(head, 8), head, "INIT_LIST_HEAD on first use");
      for (
        const [k, tail] of [[1, true], [2, true], [3, false], [4, true], [
          5,
          false,
        ]] as const
      ) {
        assert.equal(pushKey(b, head, k, tail), 0n);
      }
      assert.deepEqual(keys(b, head), [5, 3, 1, 2, 4]);
      assert.equal(popKey(b, head, false), 5);
      assert.equal(popKey(b, head, true), 4);
      assert.equal(popKey(b, head, true), 2);
      assert.equal(popKey(b, head, false), 3);
      assert.equal(popKey(b, head, false), 1);
      assert.equal(popKey(b, head, false), -1);
      assert.equal(b.ma.inUse, 0);
    },
  );

  await t.step("list_front / list_back peek without unlinking", () => {
    const { b, head } = listBench();
    const peek = (name: string): bigint =>
      b.run(`r1 = ${imm(head)}\n${kcall(name)}\nexit`).r0;
    assert.equal(peek("bpf_list_front"), 0n, "zeroed head: NULL");
    for (const k of [10, 20, 30]) pushKey(b, head, k, true);
    const [first, , last] = listEntries(b.space, head);
    assert.equal(peek("bpf_list_front"), first);
    assert.equal(peek("bpf_list_back"), last);
    assert.deepEqual(keys(b, head), [10, 20, 30]);
  });

  await t.step(
    "push of a node already in a list fails with -EINVAL and drops it",
    () => {
      const { b, head } = listBench();
      pushKey(b, head, 7, true);
      const [node] = listEntries(b.space, head);
      assert.equal(b.ma.inUse, 1);
      // a second owning reference to the same object pushed again (verification off)
      const r = b.run(
        `r1 = ${imm(head)}\nr2 = ${imm(node)}\nr3 = 0\nr4 = 0\n${
          kcall("bpf_list_push_front_impl")
        }\nexit`,
      ).r0;
      assert.equal(BigInt.asIntN(64, r), BigInt(-EINVAL));
      assert.equal(
        b.ma.inUse,
        0,
        "__bpf_list_add() dropped the object: no leak",
      );
    },
  );

  await t.step(
    "a program that overwrites next is caught with list_debug's words",
    () => {
      const { b, head } = listBench();
      pushKey(b, head, 1, true);
      pushKey(b, head, 2, true);
      const [n1] = listEntries(b.space, head);
      const bogus = head + 0x1000n;
      b.run(
        `r1 = ${imm(head)}\nr2 = ${
          imm(bogus)
        }\n*(u64 *)(r1 + 0) = r2\nr0 = 0\nexit`,
      );
      // push_front reads head->next (= bogus) and checks bogus->prev: unmapped memory
      assert.throws(() => pushKey(b, head, 3, false), /out-of-bounds|unmapped/);
      // point next back at n1, but make n1->prev wrong: next->prev != prev
      b.run(
        `r1 = ${imm(head)}\nr2 = ${
          imm(n1)
        }\n*(u64 *)(r1 + 0) = r2\nr0 = 0\nexit`,
      );
      b.space.write(n1 + 8n, 8, n1); // n1->prev = n1
      const h = head.toString(16).padStart(16, "0");
      const n = n1.toString(16).padStart(16, "0");
      assert.throws(
        () => pushKey(b, head, 3, false),
        (e: Error) =>
          e.message.includes(
            `list_add corruption. next->prev should be prev (${h}), but was ${n}. (next=${n}).`,
          ),
      );
    },
  );

  await t.step(
    "pop of a corrupted back link reports list_del corruption",
    () => {
      const { b, head } = listBench();
      for (const k of [1, 2, 3]) pushKey(b, head, k, true);
      const [n1, n2] = listEntries(b.space, head);
      b.space.write(n2 + 8n, 8, head); // n2->prev should be n1
      assert.throws(
        () => popKey(b, head, false),
        (e: Error) =>
          e.message.includes(
            `list_del corruption. next->prev should be ${
              n1.toString(16).padStart(16, "0")
            }, but was ${head.toString(16).padStart(16, "0")}. (next=${
              n2.toString(16).padStart(16, "0")
            })`,
          ),
      );
    },
  );

  await t.step("pop of a node owned by another head: WARN and NULL", () => {
    const { b, head } = listBench();
    pushKey(b, head, 1, true);
    const [n1] = listEntries(b.space, head);
    b.space.write(n1 + 16n, 8, head + 0x100n); // owner points elsewhere
    assert.equal(popKey(b, head, false), -1);
    assert.equal(b.rt.warnings.length, 1);
    assert.match(b.rt.warnings[0], /is not owned by head/);
    assert.deepEqual(keys(b, head), [1], "left linked");
  });

  await t.step(
    "draining a corrupted list reports instead of freeing garbage",
    () => {
      const b = graphBench("list_map");
      const map = b.map("lists");
      const head = map.lookup(u32Key(0), 0)! +
        BigInt(b.offsetOf("map_value", "head"));
      for (const k of [1, 2]) pushKey(b, head, k, true);
      const [n1, n2] = listEntries(b.space, head);
      b.space.write(n2 + 8n, 8, n2); // n2->prev should be n1
      assert.throws(
        () => map.destroy(),
        new RegExp(`next->prev should be ${n1.toString(16).padStart(16, "0")}`),
      );
    },
  );

  await t.step("destroying an array map drains its lists", () => {
    const b = graphBench("list_map");
    const map = b.map("lists");
    const heads = [0, 1].map((i) =>
      map.lookup(u32Key(i), 0)! + BigInt(b.offsetOf("map_value", "head"))
    );
    for (let i = 0; i < 5; i++) pushKey(b, heads[i % 2], i, true);
    assert.equal(b.ma.inUse, 5);
    map.destroy();
    assert.equal(b.ma.inUse, 0);
  });

  await t.step("deleting a hash map element drains its list", () => {
    const b = graphBench("list_hash");
    const map = b.map("buckets");
    assert.equal(
      map.update(u32Key(3), new Uint8Array(map.attr.valueSize), 0, 0),
      0,
    );
    const value = map.lookup(u32Key(3), 0)!;
    const head = value + BigInt(b.offsetOf("hash_value", "head"));
    for (let i = 0; i < 4; i++) pushKey(b, head, i, i % 2 === 0);
    assert.equal(b.ma.inUse, 4);
    assert.equal(map.delete(u32Key(3), 0), 0);
    assert.equal(b.ma.inUse, 0);
  });

  await t.step(
    "seeded random push/pop/drop: lists match a model, nothing leaks",
    () => {
      const b = graphBench("list_map");
      const map = b.map("lists"); // max_entries 2
      const heads = [0, 1].map((i) =>
        map.lookup(u32Key(i), 0)! + BigInt(b.offsetOf("map_value", "head"))
      );
      const model: number[][] = [[], []];
      const prng = new Prng(20261130);
      let next = 0;
      for (let step = 0; step < 400; step++) {
        const l = prng.below(2);
        const op = prng.below(4);
        if (op <= 1) {
          const k = next++;
          assert.equal(pushKey(b, heads[l], k, op === 1), 0n);
          if (op === 1) model[l].push(k);
          else model[l].unshift(k);
        } else {
          const back = op === 3;
          const want = model[l].length === 0
            ? -1
            : back
            ? model[l].pop()!
            : model[l].shift()!;
          assert.equal(popKey(b, heads[l], back), want);
        }
        assert.deepEqual(keys(b, heads[l]), model[l]);
        assert.equal(b.ma.inUse, model.reduce((n, m) => n + m.length, 0));
      }
      map.destroy();
      assert.equal(b.ma.inUse, 0, "destroy drained every list");
    },
  );
});
