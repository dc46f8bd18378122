import assert from "node:assert/strict";
import { u32Key } from "../../lib/kernel/maps/map.ts";
import { Prng } from "../../lib/kernel/prng.ts";
import { RbTree } from "../../lib/kernel/graph/mod.ts";
import { EINVAL } from "../../lib/uapi/errno.ts";
import { type GraphBench, graphBench, imm, kcall } from "./graph_env.ts";

/** `struct tnode { long key; struct bpf_rb_node rb; }` of rbtree.c: rb at 8. */
const RB_OFF = 8n;

/** The `less` callback: key(a) < key(b), keys signed, at node - 8. */
const LESS = `
  less:
    r3 = *(u64 *)(r1 - 8)
    r4 = *(u64 *)(r2 - 8)
    r0 = 1
    if r3 s< r4 goto +1
    r0 = 0
    exit`;

/** obj_new(tnode) with `key`, rbtree_add to `root`; returns r0 of the add. */
function addKey(b: GraphBench, root: bigint, key: number): bigint {
  b.refill();
  return b.run(`
    r1 = ${b.typeId("tnode")}
    r2 = 0
    ${kcall("bpf_obj_new_impl")}
    if r0 == 0 goto null
    r1 = ${key}
    *(u64 *)(r0 + 0) = r1
    r2 = r0
    r2 += 8
    r1 = ${imm(root)}
    r3 = func(less) ll
    r4 = 0
    r5 = 0
    ${kcall("bpf_rbtree_add_impl")}
    exit
  null:
    r0 = 1
    exit
  ${LESS}`).r0;
}

/** rbtree_first + rbtree_remove + drop; the key, or -1 when empty. */
function removeFirst(b: GraphBench, root: bigint): number {
  const r = b.run(`
    r1 = ${imm(root)}
    ${kcall("bpf_rbtree_first")}
    if r0 == 0 goto empty
    r2 = r0
    r1 = ${imm(root)}
    ${kcall("bpf_rbtree_remove")}
    if r0 == 0 goto gone
    r1 = r0
    r1 += -8
    r6 = *(u64 *)(r1 + 0)
    r2 = 0
    ${kcall("bpf_obj_drop_impl")}
    r0 = r6
    exit
  gone:
    r0 = -2
    exit
  empty:
    r0 = -1
    exit`).r0;
  return Number(BigInt.asIntN(64, r));
}

function treeBench(): { b: GraphBench; root: bigint } {
  const b = graphBench("rbtree");
  const value = b.map("trees").lookup(u32Key(0), 0)!;
  return { b, root: value + BigInt(b.offsetOf("tree_value", "root")) };
}

Deno.test("bpf_rbtree_*", async (t) => {
  await t.step(
    "add with a BPF less callback gives sorted first/remove order",
    () => {
      const { b, root } = treeBench();
      const prng = new Prng(7);
      const keys: number[] = [];
      for (let i = 0; i < 150; i++) {
        const k = prng.below(1000) - 500;
        keys.push(k);
        assert.equal(addKey(b, root, k), 0n);
        const inorder = new RbTree(b.space, root).check(); // red-black invariants
        assert.equal(inorder.length, i + 1);
      }
      const sorted = [...keys].sort((x, y) => x - y);
      const inorder = new RbTree(b.space, root).check().map((n) =>
        Number(BigInt.asIntN(64, b.space.read(n - RB_OFF, 8)))
      );
      assert.deepEqual(inorder, sorted);
      const out: number[] = [];
      for (let i = 0; i < 150; i++) {
        out.push(removeFirst(b, root));
        new RbTree(b.space, root).check();
      }
      assert.deepEqual(out, sorted);
      assert.equal(removeFirst(b, root), -1);
      assert.equal(b.ma.inUse, 0);
    },
  );

  await t.step("random removes of inner nodes keep the invariants", () => {
    const { b, root } = treeBench();
    const prng = new Prng(99);
    for (let i = 0; i < 60; i++) addKey(b, root, prng.below(100));
    const tree = new RbTree(b.space, root);
    while (tree.top() !== 0n) {
      const nodes = tree.check();
      const victim = nodes[prng.below(nodes.length)];
      const r = b.run(
        `r1 = ${imm(root)}\nr2 = ${imm(victim)}\n${
          kcall("bpf_rbtree_remove")
        }\nexit`,
      );
      assert.equal(r.r0, victim);
      assert.equal(
        b.space.read(victim, 8),
        victim,
        "RB_CLEAR_NODE after erase",
      );
      assert.equal(b.space.read(victim + 24n, 8), 0n, "owner cleared");
      b.rt.objDrop(0, victim - RB_OFF, "test");
    }
    assert.equal(b.ma.inUse, 0);
  });

  await t.step("rbtree_root / left / right walk a binary search tree", () => {
    const { b, root } = treeBench();
    for (const k of [50, 20, 80, 10, 30, 70, 90]) addKey(b, root, k);
    const call = (name: string, node?: bigint): bigint =>
      b.run(
        `r1 = ${imm(root)}\n${node === undefined ? "" : `r2 = ${imm(node)}\n`}${
          kcall(name)
        }\nexit`,
      ).r0;
    const key = (n: bigint): number => Number(b.space.read(n - RB_OFF, 8));
    const top = call("bpf_rbtree_root");
    const l = call("bpf_rbtree_left", top), r = call("bpf_rbtree_right", top);
    assert.equal(key(l) < key(top) && key(top) < key(r), true);
    // a node the root does not own: NULL
    const stray = b.rt.objNew(0, b.rt.typeOf(BigInt(b.typeId("tnode"))), "t");
    assert.equal(call("bpf_rbtree_left", stray + RB_OFF), 0n);
    b.rt.objDrop(0, stray, "t");
  });

  await t.step(
    "add of a node already in a tree fails with -EINVAL and drops it",
    () => {
      const { b, root } = treeBench();
      addKey(b, root, 1);
      const node = new RbTree(b.space, root).top();
      const r = b.run(
        `r1 = ${imm(root)}\nr2 = ${
          imm(node)
        }\nr3 = func(less) ll\nr4 = 0\nr5 = 0\n${
          kcall("bpf_rbtree_add_impl")
        }\nexit\n${LESS}`,
      ).r0;
      assert.equal(BigInt.asIntN(64, r), BigInt(-EINVAL));
      assert.equal(b.ma.inUse, 0);
    },
  );

  await t.step("a fault inside less faults the caller", () => {
    const { b, root } = treeBench();
    addKey(b, root, 1);
    b.refill();
    const bad = `
      r1 = ${b.typeId("tnode")}
      r2 = 0
      ${kcall("bpf_obj_new_impl")}
      r2 = r0
      r2 += 8
      r1 = ${imm(root)}
      r3 = func(bad) ll
      r4 = 0
      r5 = 0
      ${kcall("bpf_rbtree_add_impl")}
      exit
    bad:
      r0 = *(u64 *)(r1 + 4096)
      exit`;
    assert.throws(() => b.run(bad), /callback faulted/);
  });

  await t.step("callback states are reused across runs", () => {
    const { b, root } = treeBench();
    const add = b.compile(`
      r6 = *(u64 *)(r1 + 0)
      r1 = ${b.typeId("tnode")}
      r2 = 0
      ${kcall("bpf_obj_new_impl")}
      if r0 == 0 goto null
      *(u64 *)(r0 + 0) = r6
      r2 = r0
      r2 += 8
      r1 = ${imm(root)}
      r3 = func(less) ll
      r4 = 0
      r5 = 0
      ${kcall("bpf_rbtree_add_impl")}
      exit
    null:
      r0 = 1
      exit
    ${LESS}`);
    for (let k = 0; k < 30; k++) {
      b.refill();
      const mem = new Uint8Array(8);
      new DataView(mem.buffer).setBigInt64(0, BigInt(k * 7 % 30), true);
      assert.equal(add(mem).r0, 0n);
    }
    const stacks = b.space.regions.filter((r) =>
      r.name.startsWith("callback-stack")
    );
    assert.equal(stacks.length, 1, "one callback state for all 30 runs");
    assert.equal(new RbTree(b.space, root).check().length, 30);
  });

  await t.step("map destroy drains the tree (bpf_rb_root_free)", () => {
    const b = graphBench("rbtree");
    const map = b.map("trees");
    const root = map.lookup(u32Key(0), 0)! +
      BigInt(b.offsetOf("tree_value", "root"));
    for (let k = 0; k < 40; k++) addKey(b, root, (k * 37) % 41);
    assert.equal(b.ma.inUse, 40);
    map.destroy();
    assert.equal(b.ma.inUse, 0);
  });
});
