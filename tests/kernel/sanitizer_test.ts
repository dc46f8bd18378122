// The sanitizer's reports, each provoked by a program the verifier would
// refuse (run with verification off): use-after-free, out-of-bounds,
// double free, list corruption and leaks, each saying what, where
// (program and insn), on which CPU, and the object's allocation and free
// sites.
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { kcall, sanitizerBench } from "./sanitizer_env.ts";

/** Allocates a struct item and leaves its address in the slot (r1). */
function allocText(itemType: number): string {
  return `
    r6 = r1
    r1 = ${itemType}
    r2 = 0
    ${kcall("bpf_obj_new_impl")}
    *(u64 *)(r6 + 0) = r0
    r0 = 0
    exit`;
}

/** Drops the object whose address is in the slot (r1), leaving the slot as is. */
const DROP = `
    r1 = *(u64 *)(r1 + 0)
    r2 = 0
    ${kcall("bpf_obj_drop_impl")}
    r0 = 0
    exit`;

/** Reads the object in the slot at offset `off`. */
function readText(off: number): string {
  return `
    r1 = *(u64 *)(r1 + 0)
    r0 = *(u64 *)(r1 + ${off})
    exit`;
}

// insn of the kfunc call in allocText (r6 = r1, r1 = id, r2 = 0, call) and DROP
const ALLOC_CALL = 3;
const DROP_CALL = 2;

Deno.test("use-after-free: the read faults with CPU, program, insn, allocation and free sites", () => {
  const b = sanitizerBench();
  b.runOn(0, b.program("alloc", allocText(b.itemType)));
  b.runOn(1, b.program("drop", DROP));
  b.kernel.rcu.barrier(); // the grace period ends: the memory is poisoned
  b.runOn(1, b.program("reader", readText(0)));
  equal(b.kernel.reports.length, 1, b.kernel.reports.join("\n"));
  const r = b.kernel.reports[0];
  match(r, /^reader on CPU 1: insn 1: use-after-free: read of size 8/);
  match(
    r,
    new RegExp(
      `allocated at alloc insn ${ALLOC_CALL} \\(bpf_obj_new_impl\\); ` +
        `freed at drop insn ${DROP_CALL} \\(bpf_obj_drop_impl\\)$`,
    ),
  );
});

Deno.test("out-of-bounds: a read past the object names its allocation site", () => {
  const b = sanitizerBench();
  b.runOn(1, b.program("alloc", allocText(b.itemType)));
  b.runOn(0, b.program("reader", readText(200)));
  equal(b.kernel.reports.length, 1);
  const r = b.kernel.reports[0];
  match(r, /^reader on CPU 0: insn 1: out-of-bounds: read of size 8/);
  match(r, /allocated at alloc insn 3 \(bpf_obj_new_impl\)$/);
  ok(!/freed at/.test(r), "a live object has no free site");
});

Deno.test("double free: the second drop is reported with both sites and the CPU", () => {
  const b = sanitizerBench();
  b.runOn(0, b.program("alloc", allocText(b.itemType)));
  b.runOn(0, b.program("first_drop", DROP));
  b.runOn(1, b.program("second_drop", DROP));
  equal(b.kernel.reports.length, 1);
  const r = b.kernel.reports[0];
  match(r, /^second_drop on CPU 1: insn 2: .*BUG: KASAN: double-free/);
  match(
    r,
    /in second_drop insn 2 \(bpf_obj_drop_impl\): 0x[0-9a-f]{16} on CPU 1/,
  );
  match(
    r,
    /allocated at alloc insn 3 \(bpf_obj_new_impl\); freed at first_drop insn 2 \(bpf_obj_drop_impl\)$/,
  );
});

Deno.test("list corruption: a scribbled link is caught by the next pop (list_debug)", () => {
  const b = sanitizerBench();
  const push = b.fixture("push");
  b.runOn(0, push);
  b.runOn(1, push);
  // the first item's node (struct item { u64 value; bpf_list_node node; })
  const first = b.kernel.trace.events.find((e) => e.ev === "push");
  ok(first?.addr, "the push was traced with the object's address");
  const node = BigInt(first.addr) + 8n;
  b.kernel.space.write(node, 8, 0n); // node->next = NULL
  b.runOn(1, b.fixture("pop"));
  equal(b.kernel.reports.length, 1);
  match(
    b.kernel.reports[0],
    new RegExp(
      `^pop on CPU 1: insn \\d+: list_del corruption, ${
        node.toString(16).padStart(16, "0")
      }->next is NULL$`,
    ),
  );
  // the pop faulted holding the list's lock: the kernel knows it is stuck
  equal(b.kernel.locks.heldCount, 1);
});

Deno.test("leaks: the end-of-run check lists what is still allocated, with its site", () => {
  const b = sanitizerBench();
  b.runOn(1, b.program("alloc", allocText(b.itemType)));
  const leaks = b.kernel.checkLeaks();
  equal(leaks.length, 1);
  match(
    leaks[0],
    /^BUG: KASAN: leak: 0x[0-9a-f]{16}: .* leaked; allocated at alloc insn 3 \(bpf_obj_new_impl\)$/,
  );
  deepEqual(b.kernel.reports, leaks);
  b.runOn(0, b.program("drop", DROP));
  deepEqual(b.kernel.checkLeaks(), [], "nothing leaks once it is dropped");
});

Deno.test("a pop without the lock races: with an explicit schedule, both CPUs pop the same item", () => {
  // CPU 0 pushes one item; then CPU 3 runs pop_unlocked up to its pop,
  // which reads the item and yields; CPU 2 pops (locked) and drops it;
  // CPU 3 completes the stale pop and drops the item again
  const b = sanitizerBench(4, {
    schedule: [
      ...Array(40).fill(0),
      ...Array(2).fill(3), // r1 = &list (lddw), then the pop: it yields
      ...Array(40).fill(2),
      ...Array(30).fill(3),
    ],
  });
  b.kernel.submit(0, b.fixture("push"), { r1: b.slot });
  b.kernel.submit(3, b.fixture("pop_unlocked"), { r1: b.slot });
  b.kernel.submit(2, b.fixture("pop"), { r1: b.slot });
  b.kernel.run();
  const pops = b.kernel.trace.events.filter((e) => e.ev === "pop");
  deepEqual(pops.map((e) => [e.cpu, e.prog]), [[2, "pop"], [
    3,
    "pop_unlocked",
  ]]);
  equal(pops[0].addr, pops[1].addr, "the same item, twice");
  equal(b.kernel.reports.length, 1, b.kernel.reports.join("\n"));
  match(
    b.kernel.reports[0],
    /^pop_unlocked on CPU 3: .*double-free in pop_unlocked insn \d+ .* on CPU 3: .*allocated at push insn \d+ \(bpf_obj_new_impl\); freed at pop insn \d+ \(bpf_obj_drop_impl\)$/,
  );
});
