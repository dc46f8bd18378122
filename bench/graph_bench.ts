/**
 * Speed of the graph runtime: a push + pop pair on a BPF list, called
 * directly and from a BPF loop (1000 pairs per run, kfunc calls through the
 * interpreter), and an rb-tree add + remove-first pair with a BPF `less`.
 */
import { u32Key } from "../lib/kernel/maps/map.ts";
import { listAdd, listDel } from "../lib/kernel/graph/list.ts";
import { graphBench, imm, kcall } from "../tests/kernel/graph_env.ts";

const b = graphBench("list_map");
const map = b.map("lists");
const head = map.lookup(u32Key(0), 0)! +
  BigInt(b.offsetOf("map_value", "head"));
const elem = b.rt.typeOf(BigInt(b.typeId("elem")));
const obj = b.rt.objNew(0, elem, "bench");
const node = obj + BigInt(b.offsetOf("elem", "node"));

Deno.bench("list push_back + pop_front (direct calls)", () => {
  listAdd(b.rt, 0, head, node, true, 0n, "bench");
  listDel(b.rt, head, false);
});

const LOOP = 1000;
const loopProg = `
  r6 = ${LOOP}
loop:
  r1 = ${imm(head)}
  r2 = ${imm(node)}
  r3 = 0
  r4 = 0
  ${kcall("bpf_list_push_back_impl")}
  r1 = ${imm(head)}
  ${kcall("bpf_list_pop_front")}
  r6 += -1
  if r6 != 0 goto loop
  r0 = 0
  exit`;

const runLoop = b.compile(loopProg);
Deno.bench(`list push_back + pop_front x${LOOP} (BPF loop)`, () => {
  runLoop();
});

const t = graphBench("rbtree");
const root = t.map("trees").lookup(u32Key(0), 0)! +
  BigInt(t.offsetOf("tree_value", "root"));
const tnode = t.rt.typeOf(BigInt(t.typeId("tnode")));
for (let k = 0; k < 63; k++) {
  t.refill();
  const o = t.rt.objNew(0, tnode, "bench");
  t.space.write(o, 8, BigInt(k * 2 + 1));
  t.run(
    `r1 = ${imm(root)}\nr2 = ${
      imm(o + 8n)
    }\nr3 = func(less) ll\nr4 = 0\nr5 = 0\n${
      kcall("bpf_rbtree_add_impl")
    }\nexit\nless:\nr3 = *(u64 *)(r1 - 8)\nr4 = *(u64 *)(r2 - 8)\nr0 = 1\nif r3 s< r4 goto +1\nr0 = 0\nexit`,
  );
}
const extra = t.rt.objNew(0, tnode, "bench");
const rbProg = `
  r1 = ${imm(root)}
  r2 = ${imm(extra + 8n)}
  r3 = func(less) ll
  r4 = 0
  r5 = 0
  ${kcall("bpf_rbtree_add_impl")}
  r1 = ${imm(root)}
  ${kcall("bpf_rbtree_first")}
  r2 = r0
  r1 = ${imm(root)}
  ${kcall("bpf_rbtree_remove")}
  r0 = 0
  exit
less:
  r3 = *(u64 *)(r1 - 8)
  r4 = *(u64 *)(r2 - 8)
  r0 = 1
  if r3 s< r4 goto +1
  r0 = 0
  exit`;

const runRb = t.compile(rbProg);
Deno.bench("rbtree add + remove first, 64 nodes (BPF, less callback)", () => {
  runRb();
});
