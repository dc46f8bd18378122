/**
 * The BTF libbpf would load into the kernel: DATASEC sizes and offsets filled
 * in from the ELF file, hidden globals made static, `.ksyms` / `.kconfig`
 * rewritten, and func/line info moved along with linked subprograms.
 */
import assert from "node:assert/strict";
import type { Btf } from "../../lib/btf/btf.ts";
import { parseBtf } from "../../lib/btf/parse.ts";
import type { BtfDatasec } from "../../lib/btf/types.ts";
import {
  BTF_LINKAGE_EXTERN,
  BTF_LINKAGE_GLOBAL,
  BTF_LINKAGE_STATIC,
} from "../../lib/btf/types.ts";
import { loadFixture } from "./fixtures.ts";

function datasec(btf: Btf, name: string): BtfDatasec {
  const t = btf.typeById(btf.findByName(name, "DATASEC")!);
  assert.equal(t.kind, "DATASEC");
  return t as BtfDatasec;
}

function vars(btf: Btf, name: string): [string, number, number, number][] {
  return datasec(btf, name).vars.map((v) => {
    const t = btf.typeById(v.type) as { name: string; linkage: number };
    return [t.name, v.offset, v.size, t.linkage];
  });
}

Deno.test("btf: DATASEC sizes come from the ELF sections; hidden globals become static", () => {
  const btf = loadFixture("global_data.o").btf!;
  assert.equal(datasec(btf, ".data").size, 8);
  assert.deepEqual(vars(btf, ".data"), [["counter", 0, 4, BTF_LINKAGE_GLOBAL], [
    "hidden_static",
    4,
    4,
    BTF_LINKAGE_STATIC,
  ]]);
  assert.equal(datasec(btf, ".rodata").size, 4);
  assert.equal(datasec(btf, ".bss").size, 8);
  assert.deepEqual(vars(btf, ".data.A"), [[
    "a_data",
    0,
    8,
    BTF_LINKAGE_STATIC,
  ]]);
  assert.deepEqual(vars(btf, ".bss.A"), [["a_bss", 0, 8, BTF_LINKAGE_STATIC]]);
  assert.deepEqual(vars(btf, ".rodata.A"), [[
    "a_ro",
    0,
    4,
    BTF_LINKAGE_STATIC,
  ]]);
  assert.equal(datasec(btf, "license").size, 4); // "GPL\0"
});

Deno.test("btf: the parsed section itself is left as clang wrote it", () => {
  const obj = loadFixture("global_data.o");
  const bytes = Deno.readFileSync(
    new URL("../fixtures/global_data.o", import.meta.url),
  );
  // clang leaves sizes at 0: find .BTF by its magic after the ELF header and parse it independently
  const at = bytes.findIndex((b, i) =>
    b === 0x9f && bytes[i + 1] === 0xeb && bytes[i + 2] === 1 && i > 64
  );
  const v = new DataView(bytes.buffer, at);
  const end = v.getUint32(4, true) +
    Math.max(
      v.getUint32(8, true) + v.getUint32(12, true),
      v.getUint32(16, true) + v.getUint32(20, true),
    );
  const raw = parseBtf(bytes.subarray(at, at + end));
  assert.equal(datasec(raw, ".data").size, 0);
  assert.notEqual(obj.btf, undefined);
  assert.equal(obj.btf!.typeCount, raw.typeCount);
});

Deno.test("btf: .ksyms entries become 4-byte VARs, kfuncs point at dummy_ksym", () => {
  const btf = loadFixture("externs.o").btf!;
  const dummy = btf.findByName("dummy_ksym", "VAR")!;
  assert.ok(dummy > 0, "dummy_ksym added");
  const d = btf.typeById(dummy) as { linkage: number; type: number };
  assert.equal(d.linkage, BTF_LINKAGE_GLOBAL);
  assert.equal(btf.typeName(d.type), "int");
  const ksyms = datasec(btf, ".ksyms");
  assert.equal(ksyms.size, 16);
  assert.deepEqual(ksyms.vars.map((v) => [v.offset, v.size]), [[0, 4], [4, 4], [
    8,
    4,
  ], [12, 4]]);
  // the two kfuncs are represented by the dummy VAR, the variables by themselves
  assert.deepEqual(ksyms.vars.map((v) => btf.nameOf(v.type)), [
    "dummy_ksym",
    "dummy_ksym",
    "bpf_prog_active",
    "no_such_symbol",
  ]);
  for (const name of ["bpf_rcu_read_lock", "bpf_rcu_read_unlock"]) {
    const f = btf.typeById(btf.findByName(name, "FUNC")!) as {
      linkage: number;
    };
    assert.equal(
      f.linkage,
      BTF_LINKAGE_GLOBAL,
      `${name} was ${BTF_LINKAGE_EXTERN}`,
    );
  }
  const active = btf.typeById(btf.findByName("bpf_prog_active", "VAR")!) as {
    linkage: number;
    type: number;
  };
  assert.equal(active.linkage, BTF_LINKAGE_GLOBAL);
  assert.equal(btf.typeName(active.type), "int");
});

Deno.test("btf: .kconfig VARs are laid out where the .kconfig map holds them", () => {
  const btf = loadFixture("externs.o").btf!;
  assert.equal(datasec(btf, ".kconfig").size, 9);
  assert.deepEqual(vars(btf, ".kconfig"), [
    ["CONFIG_HZ", 0, 4, BTF_LINKAGE_GLOBAL],
    ["LINUX_KERNEL_VERSION", 4, 4, BTF_LINKAGE_GLOBAL],
    ["CONFIG_BPF_SYSCALL", 8, 1, BTF_LINKAGE_GLOBAL],
  ]);
});

Deno.test("btf: hidden global subprograms are verified as static", () => {
  const btf = loadFixture("multi_prog.o").btf!;
  const linkage = (n: string) =>
    (btf.typeById(btf.findByName(n, "FUNC")!) as { linkage: number }).linkage;
  assert.equal(linkage("hidden_scale"), BTF_LINKAGE_STATIC);
  assert.equal(linkage("scale"), BTF_LINKAGE_GLOBAL);
  assert.equal(linkage("add_one"), BTF_LINKAGE_STATIC);
});

Deno.test("btf: func_info follows each function into the linked program", () => {
  const obj = loadFixture("multi_prog.o");
  const btf = obj.btf!;
  for (const p of obj.programs) {
    const info = p.funcInfo!;
    assert.deepEqual(
      info.map((f) => f.insnOff),
      p.functions.map((f) => f.start),
      p.name,
    );
    assert.deepEqual(
      info.map((f) => btf.nameOf(f.typeId)),
      p.functions.map((f) => f.name),
      p.name,
    );
    const lines = p.lineInfo!;
    assert.equal(lines[0].insnOff, 0);
    for (let i = 1; i < lines.length; i++) {
      assert.ok(lines[i].insnOff >= lines[i - 1].insnOff);
    }
    assert.ok(
      lines.every((l) =>
        l.insnOff < p.raw.length && l.fileName.endsWith("multi_prog.c")
      ),
    );
    // every appended function brings its own line info
    for (const f of p.functions) {
      assert.ok(
        lines.some((l) => l.insnOff === f.start),
        `${p.name}/${f.name}`,
      );
    }
  }
  const second = obj.programs.find((p) => p.name === "xdp_second")!;
  const addOne = second.functions[2];
  assert.equal(addOne.name, "add_one");
  const inAddOne = second.lineInfo!.filter((l) =>
    l.insnOff >= addOne.start && l.insnOff < addOne.start + addOne.length
  );
  assert.ok(
    inAddOne.some((l) => /return x \+ 1;/.test(l.line)),
    JSON.stringify(inAddOne),
  );
});
