/**
 * The `inspect` summary and its text rendering, and the per-instruction
 * relocation notes a disassembler prints (`llvm-objdump -dr` style).
 */
import assert from "node:assert/strict";
import {
  formatInspect,
  inspectObject,
  relocationNotes,
} from "../../lib/elf/inspect.ts";
import { loadFixture } from "./fixtures.ts";

Deno.test("inspect: special fields of a map value (graph.c)", () => {
  const s = inspectObject(loadFixture("graph.o"));
  assert.equal(s.maps.length, 1);
  // struct map_value: lock @0, list head @8, kptr @24
  assert.deepEqual(s.maps[0].specialFields, [
    { type: "bpf_spin_lock", offset: 0 },
    { type: "bpf_list_head", offset: 8 },
    { type: "kptr", offset: 24 },
  ]);
  assert.equal(s.maps[0].valueType, "struct map_value");
  assert.deepEqual(s.externs.map((e) => [e.name, e.isFunc]), [
    ["bpf_list_pop_front", true],
    ["bpf_list_push_front_impl", true],
    ["bpf_obj_drop_impl", true],
    ["bpf_obj_new_impl", true],
  ]);
  const push = s.programs.find((p) => p.name === "list_push")!;
  assert.deepEqual(push.maps, ["values"]);
  assert.deepEqual(push.externs, [
    "bpf_obj_new_impl",
    "bpf_list_push_front_impl",
  ]);
  assert.equal(push.coreRelocations, 1);
  assert.equal(push.insns, 31);
});

Deno.test("inspect: plain values have no special fields; the summary is JSON", () => {
  const s = inspectObject(loadFixture("maps_btf.o"));
  const inner = s.maps.find((m) => m.name === "inner_a")!;
  assert.deepEqual(inner.specialFields, []);
  assert.equal(inner.fieldError, undefined);
  const outer = s.maps.find((m) => m.name === "outer_map")!;
  assert.deepEqual(outer.initSlots, ["inner_a", "inner_b"]);
  assert.equal(outer.innerMap!.name, "outer_map.inner");
  const hash = s.maps.find((m) => m.name === "hash_map")!;
  assert.deepEqual(hash.flagNames, ["BPF_F_NO_PREALLOC"]);
  assert.deepEqual(JSON.parse(JSON.stringify(s)), s);
});

Deno.test("inspect: text rendering", () => {
  const text = formatInspect(inspectObject(loadFixture("multi_prog.o")));
  const lines = text.split("\n");
  assert.equal(
    lines[0],
    'object multi_prog (multi_prog.o): license "Dual BSD/GPL", version 0x60100',
  );
  assert.equal(lines[1], "programs (6):");
  assert.ok(
    lines.includes(
      "  xdp_second: section xdp, xdp attach xdp, 15 insns; subprograms add_two, add_one",
    ),
    text,
  );
  assert.ok(lines.includes("  tc_plain: section tc, sched_cls, 2 insns"), text);
  const data = formatInspect(inspectObject(loadFixture("global_data.o")));
  assert.match(
    data,
    /#1 global_d\.rodata: array key 4 value 4 max_entries 1 flags BPF_F_RDONLY_PROG\|BPF_F_MMAPABLE \(mmapable\)/,
  );
  assert.match(
    data,
    /#2 \.data\.A: array key 4 value 8 max_entries 1 flags 0x0\n/,
  );
  const graph = formatInspect(inspectObject(loadFixture("graph.o")));
  assert.match(
    graph,
    /special fields: bpf_spin_lock@0 bpf_list_head@8 kptr@24/,
  );
  assert.match(graph, /#3 bpf_obj_new_impl: kfunc void \*\(__u64, void \*\)/);
});

Deno.test("inspect: relocation notes under instructions, as llvm-objdump -dr prints them", () => {
  const obj = loadFixture("graph.o");
  const p = obj.programs.find((x) => x.name === "list_push")!;
  const notes = p.insns.map((_, slot) => relocationNotes(p, slot)).flatMap((
    n,
    slot,
  ) => n.map((t) => `${slot}: ${t}`));
  const nodeData = obj.btf!.findByName("node_data", "STRUCT")!;
  assert.deepEqual(notes, [
    "5: R_BPF_64_64 values",
    `10: CO-RE local_type_id [${nodeData}] 0`,
    "13: R_BPF_64_32 bpf_obj_new_impl",
    "26: R_BPF_64_32 bpf_list_push_front_impl",
  ]);
  const data = loadFixture("global_data.o").programs[0];
  assert.ok(
    data.relocations.every((r) =>
      relocationNotes(data, r.insnIndex).some((n) =>
        n.startsWith("R_BPF_64_64 ")
      )
    ),
  );
});
