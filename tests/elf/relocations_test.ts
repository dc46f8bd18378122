/**
 * Relocations as libbpf applies them: lddw of maps and global data, calls of
 * subprograms appended after the caller, kfunc calls and extern loads, CO-RE
 * results. Expectations come from the C sources and libbpf's debug log.
 */
import assert from "node:assert/strict";
import type { Insn, LdImm64Insn } from "../../lib/isa/insn.ts";
import {
  BPF_PSEUDO_BTF_ID,
  BPF_PSEUDO_KFUNC_CALL,
  BPF_PSEUDO_MAP_IDX,
  BPF_PSEUDO_MAP_IDX_VALUE,
} from "../../lib/isa/opcodes.ts";
import type { BpfProgram, ObjectFile } from "../../lib/elf/types.ts";
import { loadFixture } from "./fixtures.ts";

function program(obj: ObjectFile, name: string): BpfProgram {
  const p = obj.programs.find((x) => x.name === name);
  assert.ok(p, `no program ${name}`);
  return p;
}

function lddws(p: BpfProgram): LdImm64Insn[] {
  return p.insns.filter((i): i is LdImm64Insn => i.kind === "ld_imm64");
}

function mapRefs(obj: ObjectFile, p: BpfProgram): string[] {
  return lddws(p).filter((i) => i.src === BPF_PSEUDO_MAP_IDX).map((i) =>
    obj.maps[i.imm].name
  );
}

function valueRefs(obj: ObjectFile, p: BpfProgram): string[] {
  return lddws(p).filter((i) => i.src === BPF_PSEUDO_MAP_IDX_VALUE).map((i) =>
    `${obj.maps[i.imm].realName}+${i.imm2}`
  );
}

Deno.test("relocations: lddw of a map names the map's index (maps_btf.c)", () => {
  const obj = loadFixture("maps_btf.o");
  assert.deepEqual(mapRefs(obj, program(obj, "use_arrays")), [
    "array_map",
    "percpu_array_map",
  ]);
  assert.deepEqual(mapRefs(obj, program(obj, "use_hashes")), [
    "hash_map",
    "percpu_hash_map",
    "lru_hash_map",
  ]);
  assert.deepEqual(mapRefs(obj, program(obj, "use_ringbuf")), ["ringbuf_map"]);
  assert.deepEqual(mapRefs(obj, program(obj, "use_map_in_map")), [
    "outer_map",
    "prog_array_map",
  ]);
  assert.deepEqual(mapRefs(obj, program(obj, "tail_target")), []);
  // the relocation list says the same, with llvm-objdump's vocabulary
  const relos = program(obj, "use_arrays").relocations;
  assert.deepEqual(relos.map((r) => [r.kind, r.elfType, r.symbol]), [
    ["map", "R_BPF_64_64", "array_map"],
    ["map", "R_BPF_64_64", "percpu_array_map"],
  ]);
  for (const r of relos) {
    assert.equal(
      program(obj, "use_arrays").insns[r.insnIndex].kind,
      "ld_imm64",
    );
  }
});

Deno.test("relocations: global variables are map values at their offsets (global_data.c)", () => {
  const obj = loadFixture("global_data.o");
  // counter @.data+0, hidden_static @.data+4, limit @.rodata+0, zeroed @.bss+0
  assert.deepEqual(valueRefs(obj, program(obj, "read_all")).sort(), [
    ".bss+0",
    ".data+0",
    ".data+4",
    ".rodata+0",
  ]);
  assert.deepEqual(valueRefs(obj, program(obj, "read_private")).sort(), [
    ".bss.A+0",
    ".data.A+0",
    ".rodata.A+0",
  ]);
  const rel = program(obj, "read_private").relocations.map((
    r,
  ) => [r.kind, r.symbol, r.offset]);
  assert.deepEqual(rel.sort(), [["map_value", "a_bss", 0], [
    "map_value",
    "a_data",
    0,
  ], ["map_value", "a_ro", 0]]);
});

function functionAt(p: BpfProgram, slot: number): string | undefined {
  return p.functions.find((f) => f.start === slot)?.name;
}

function callees(p: BpfProgram): string[] {
  return p.insns.flatMap((
    i: Insn,
  ) => (i.kind === "call" && i.callee === "local"
    ? [functionAt(p, i.target) ?? "?"]
    : [])
  );
}

Deno.test("relocations: subprograms are appended in first-call order (multi_prog.c)", () => {
  const obj = loadFixture("multi_prog.o");
  const layout = (name: string) =>
    program(obj, name).functions.map((f) => f.name);
  assert.deepEqual(layout("xdp_first"), ["xdp_first", "add_one"]);
  // add_two is called first, and appends add_one while it is relocated
  assert.deepEqual(layout("xdp_second"), ["xdp_second", "add_two", "add_one"]);
  assert.deepEqual(layout("tc_second"), [
    "tc_second",
    "add_two",
    "add_one",
    "scale",
  ]);
  assert.deepEqual(layout("tc_plain"), ["tc_plain"]);
  assert.deepEqual(layout("tc_hidden"), ["tc_hidden", "hidden_scale"]);
  for (const p of obj.programs) {
    // functions tile the program
    let at = 0;
    for (const f of p.functions) {
      assert.equal(f.start, at, `${p.name}: ${f.name}`);
      at += f.length;
    }
    assert.equal(at, p.raw.length);
  }
});

Deno.test("relocations: every bpf-to-bpf call lands on its callee's first instruction", () => {
  const obj = loadFixture("multi_prog.o");
  assert.deepEqual(callees(program(obj, "xdp_first")), ["add_one"]);
  // add_two calls add_one twice: calls inside .text carry no ELF relocation
  assert.deepEqual(callees(program(obj, "xdp_second")), [
    "add_two",
    "add_one",
    "add_one",
  ]);
  assert.deepEqual(callees(program(obj, "tc_second")), [
    "add_two",
    "scale",
    "add_one",
    "add_one",
  ]);
  const relos = program(obj, "tc_second").relocations;
  assert.deepEqual(
    relos.map((
      r,
    ) => [r.kind, r.symbol, functionAt(program(obj, "tc_second"), r.target!)]),
    [
      ["subprog_call", ".text", "add_two"],
      ["subprog_call", "scale", "scale"],
    ],
  );
});

Deno.test("relocations: kfunc calls and ksym loads wait for the kernel's BTF ids (externs.c)", () => {
  const obj = loadFixture("externs.o");
  // libbpf's order: kconfig by alignment/size/name, then ksyms by name
  assert.deepEqual(obj.externs.map((e) => [e.name, e.kind]), [
    ["CONFIG_HZ", "kconfig"],
    ["LINUX_KERNEL_VERSION", "kconfig"],
    ["CONFIG_BPF_SYSCALL", "kconfig"],
    ["bpf_prog_active", "ksym"],
    ["bpf_rcu_read_lock", "ksym"],
    ["bpf_rcu_read_unlock", "ksym"],
    ["no_such_symbol", "ksym"],
  ]);
  assert.deepEqual(obj.externs.map((e) => e.kconfig?.offset), [
    0,
    4,
    8,
    undefined,
    undefined,
    undefined,
    undefined,
  ]);
  const kfunc = program(obj, "use_kfunc");
  const calls = kfunc.insns.filter((i) =>
    i.kind === "call" && i.callee === "kfunc"
  );
  assert.equal(calls.length, 2);
  for (const c of calls) assert.equal(c.src, BPF_PSEUDO_KFUNC_CALL);
  assert.deepEqual(
    kfunc.relocations.map((r) => [r.kind, obj.externs[r.externIndex!].name]),
    [["kfunc_call", "bpf_rcu_read_lock"], [
      "kfunc_call",
      "bpf_rcu_read_unlock",
    ]],
  );
  // a typed ksym becomes a BTF-id load; a typeless one a plain 64-bit constant
  const ksym = program(obj, "use_ksym");
  const byName = new Map(
    ksym.relocations.map((
      r,
    ) => [obj.externs[r.externIndex!].name, ksym.insns[r.insnIndex]]),
  );
  assert.equal(byName.get("bpf_prog_active")!.src, BPF_PSEUDO_BTF_ID);
  assert.equal(byName.get("no_such_symbol")!.src, 0);
  assert.equal(
    obj.externs.find((e) => e.name === "no_such_symbol")!.isWeak,
    true,
  );
  // kconfig values are read from the .kconfig map
  assert.deepEqual(valueRefs(obj, program(obj, "use_kconfig")).sort(), [
    ".kconfig+0",
    ".kconfig+4",
    ".kconfig+8",
  ]);
});

Deno.test("relocations: kfunc externs keep their BTF prototype (graph.c)", () => {
  const obj = loadFixture("graph.o");
  const btf = obj.btf!;
  const newImpl = obj.externs.find((e) => e.name === "bpf_obj_new_impl")!;
  assert.equal(newImpl.isFunc, true);
  assert.equal(btf.typeById(newImpl.btfId).kind, "FUNC");
  assert.equal(btf.typeName(newImpl.ksymTypeId), "void *(__u64, void *)");
  const push = program(obj, "list_push");
  assert.deepEqual(
    push.relocations.filter((r) => r.kind === "kfunc_call").map((r) =>
      r.symbol
    ),
    ["bpf_obj_new_impl", "bpf_list_push_front_impl"],
  );
});

Deno.test("relocations: CO-RE results are written into the instructions (core.c)", () => {
  const obj = loadFixture("core.o");
  const imms = (name: string) =>
    program(obj, name).relocations.filter((r) => r.kind === "core").map((r) => [
      r.core!.kind,
      r.core!.accessString,
      r.core!.value,
      program(obj, name).insns[r.insnIndex].imm,
    ]);
  // offsetof(pid) = 0, offsetof(tgid) = 4
  assert.deepEqual(imms("field_offsets"), [["byte_off", "0:0", 0n, 0], [
    "byte_off",
    "0:1",
    4n,
    4,
  ]]);
  // sizeof(pid) = 4; tgid exists; the ___missing flavour's field does not
  assert.deepEqual(imms("field_info"), [["byte_sz", "0:0", 4n, 4], [
    "field_exists",
    "0:1",
    1n,
    1,
  ], [
    "field_exists",
    "0:0",
    0n,
    0,
  ]]);
  const local = program(obj, "local_type_id").relocations.find((r) =>
    r.core?.kind === "local_type_id"
  )!;
  assert.equal(obj.btf!.nameOf(local.core!.typeId), "local_only");
  assert.equal(local.core!.value, BigInt(local.core!.typeId));
});

Deno.test("relocations: without a CO-RE target the compiled values stay", () => {
  const obj = loadFixture("core.o", { coreTarget: null });
  const p = program(obj, "field_info");
  // clang computed field_exists on the local flavour type: 1
  assert.deepEqual(
    p.relocations.map((r) => [r.core!.value, p.insns[r.insnIndex].imm]),
    [[null, 4], [null, 1], [null, 1]],
  );
});

Deno.test("relocations: the local type id of bpf_obj_new names the allocated struct (graph.c)", () => {
  const obj = loadFixture("graph.o");
  const p = program(obj, "list_push");
  const core = p.relocations.find((r) => r.kind === "core")!;
  assert.equal(core.core!.kind, "local_type_id");
  assert.equal(obj.btf!.typeName(core.core!.typeId), "struct node_data");
  const insn = p.insns[core.insnIndex] as LdImm64Insn;
  assert.equal(insn.kind, "ld_imm64");
  assert.equal(insn.imm, core.core!.typeId);
});

Deno.test("relocations: CO-RE against another layout (core_kernel.c as the kernel)", () => {
  const kernel = loadFixture("core_kernel.o").btf!;
  const obj = loadFixture("core.o", { coreTarget: kernel });
  const values = (name: string) =>
    program(obj, name).relocations.map((r) => r.core!.value);
  // pid @0, tgid @32 in the "kernel"
  assert.deepEqual(values("field_offsets"), [0n, 32n]);
  assert.deepEqual(values("field_info"), [4n, 1n, 0n]);
  const offsets = program(obj, "field_offsets");
  assert.deepEqual(
    offsets.relocations.map((r) => offsets.insns[r.insnIndex].imm),
    [0, 32],
  );
});
