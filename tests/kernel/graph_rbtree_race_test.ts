// rb-tree operations without their lock, run with verification off
// (graph/rbtree.o rb_add_unlocked, which the kernel rejects: "bpf_spin_lock
// at off=0 must be held for bpf_rb_root"): on one CPU nothing can come in
// between and every node lands in the tree; on 4 CPUs the adds race — a
// CPU links its node where it found room before another CPU took it — and
// nodes go missing from the tree or the tree is found corrupt, on most
// seeds.
import { equal, ok } from "node:assert/strict";
import { loadObject } from "../../lib/elf/object.ts";
import { Kernel } from "../../lib/kernel/kernel.ts";
import {
  kernelProgram,
  loadObjectWithRuntime,
} from "../../lib/kernel/object_runtime.ts";
import { RbTree } from "../../lib/kernel/graph/rb_core.ts";
import { ENGINES } from "../../lib/exec/jit/step_jit.ts";
import type { Engine } from "../../lib/exec/jit/step_jit.ts";

const RBTREE_O = new URL("../fixtures/graph/rbtree.o", import.meta.url);
const ADDS = 6;

/** `ADDS` unlocked adds per CPU; what the tree and the leak check show. */
function run(cpus: number, seed: number, engine: Engine) {
  const k = new Kernel({ cpus, seed, engine, maxQuantum: 4 });
  const object = loadObject(Deno.readFileSync(RBTREE_O), "rbtree.o");
  const loaded = loadObjectWithRuntime(k, object, { verify: false });
  const prog = kernelProgram(loaded, "rb_add_unlocked");
  for (let c = 0; c < cpus; c++) {
    for (let i = 0; i < ADDS; i++) k.submit(c, prog);
  }
  k.run();
  const trees = loaded.maps.find((m) => m.name === "trees")!;
  // struct tree_value { bpf_spin_lock lock; bpf_rb_root root } at key 0
  const root = trees.map!.lookup(new Uint8Array(4), 0)! + 8n;
  let inTree = -1; // -1: the tree is not a valid rb-tree any more
  try {
    inTree = new RbTree(k.space, root).check().length;
  } catch { /* corrupt */ }
  const faulted = k.reports.some((r) => r.includes("corrupt"));
  return { inTree, faulted, adds: cpus * ADDS };
}

for (const engine of ENGINES) {
  Deno.test(`${engine}: unlocked rb-tree adds keep every node on one CPU, lose nodes when CPUs race`, () => {
    const alone = run(1, 1, engine);
    equal(alone.inTree, alone.adds, "one CPU: every node in the tree");
    let damaged = 0;
    for (let seed = 1; seed <= 10; seed++) {
      const r = run(4, seed, engine);
      if (r.inTree !== r.adds || r.faulted) damaged++;
    }
    ok(damaged >= 8, `the race showed on ${damaged} of 10 seeds`);
  });
}
