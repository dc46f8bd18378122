/**
 * `.BTF` parsing and the `Btf` queries, on tests/fixtures/btf/kinds.c
 * (every kind clang emits). Expected layouts are worked out from the C
 * declarations (x86-64/BPF ABI), not copied from a dump.
 */
import assert from "node:assert/strict";
import {
  BTF_INT_BOOL,
  BTF_INT_SIGNED,
  BTF_LINKAGE_EXTERN,
  BTF_LINKAGE_GLOBAL,
  BTF_LINKAGE_STATIC,
  type BtfType,
  DECL_TAG_WHOLE_TYPE,
} from "../../lib/btf/mod.ts";
import { loadFixture } from "./fixtures.ts";

const { btf } = loadFixture("kinds");

/** The one type called `name` (of `kind`), or a failed assertion. */
function named(name: string, kind?: BtfType["kind"]): BtfType {
  const id = btf.findByName(name, kind);
  assert.ok(id !== undefined, `no type ${name}`);
  return btf.typeById(id);
}

function member(structName: string, memberName: string) {
  const s = named(structName);
  assert.ok(s.kind === "STRUCT" || s.kind === "UNION");
  const m = s.members.find((x) => x.name === memberName);
  assert.ok(m, `${structName}.${memberName}`);
  return m;
}

Deno.test("kinds.o: scalar kinds", async (t) => {
  await t.step("void is id 0", () => {
    assert.equal(btf.typeById(0).kind, "VOID");
    assert.equal(btf.typeName(0), "void");
  });
  await t.step("INT encodings", () => {
    const i = named("int", "INT");
    assert.ok(
      i.kind === "INT" && i.size === 4 && i.nrBits === 32 &&
        i.encoding === BTF_INT_SIGNED,
    );
    const u = named("unsigned int", "INT");
    assert.ok(u.kind === "INT" && u.encoding === 0);
    const b = named("_Bool", "INT");
    assert.ok(b.kind === "INT" && b.size === 1 && b.encoding === BTF_INT_BOOL);
  });
  await t.step("FLOAT sizes", () => {
    assert.deepEqual(
      ["float", "double"].map((n) => btf.sizeOf(btf.findByName(n, "FLOAT")!)),
      [4, 8],
    );
  });
  await t.step(
    "ENUM: signed values sign-extend, unsigned stay positive",
    () => {
      const c = named("color", "ENUM");
      assert.ok(c.kind === "ENUM" && c.signed);
      assert.deepEqual(c.values.map((v) => [v.name, v.value]), [["RED", 0n], [
        "GREEN",
        5n,
      ], [
        "BLUE",
        -3n,
      ]]);
      const u = named("uenum", "ENUM");
      assert.ok(u.kind === "ENUM" && !u.signed);
      assert.equal(u.values[1].value, 0x80000000n);
    },
  );
  await t.step("ENUM64 keeps all 64 bits", () => {
    const b = named("big", "ENUM64");
    assert.ok(b.kind === "ENUM64" && b.size === 8);
    assert.equal(b.values[1].value, 0xffffffff12345678n);
    const u = named("ubig", "ENUM64");
    assert.ok(u.kind === "ENUM64");
    assert.equal(u.values[0].value, 1n << 63n);
  });
});

Deno.test("kinds.o: composite kinds", async (t) => {
  await t.step("struct all: C layout", () => {
    const expected: [string, number][] = [
      ["cv", 0],
      ["rp", 8],
      ["arr", 56],
      ["b", 88],
      ["un", 96],
      ["fn", 104],
      ["flag", 120],
      ["tagged_member", 124],
      ["ue", 128],
      ["flex", 152],
    ];
    for (const [name, byteOff] of expected) {
      assert.equal(member("all", name).bitOffset, byteOff * 8, name);
    }
    assert.equal(btf.sizeOf(btf.findByName("all", "STRUCT")!), 152);
  });
  await t.step("bitfields: bit offsets and widths (kflag)", () => {
    const s = named("bits", "STRUCT");
    assert.ok(s.kind === "STRUCT" && s.kflag && s.size === 8);
    assert.deepEqual(
      s.members.map((m) => [m.name, m.bitOffset, m.bitfieldSize]),
      [
        ["a", 0, 3],
        ["b", 3, 5],
        ["c", 8, 7],
        ["d", 15, 40],
        ["e", 56, 0],
      ],
    );
  });
  await t.step("union members all at 0", () => {
    const u = named("u", "UNION");
    assert.ok(u.kind === "UNION" && u.size === 8);
    assert.ok(u.members.every((m) => m.bitOffset === 0));
  });
  await t.step("arrays: sizes multiply through typedefs", () => {
    const arr = member("all", "arr");
    assert.equal(btf.sizeOf(arr.type), 4 * 2 * 4);
    assert.equal(btf.typeName(arr.type), "u32_t[4][2]");
    const flex = member("all", "flex");
    assert.equal(btf.sizeOf(flex.type), 0);
  });
  await t.step("FWD struct and union", () => {
    const f = named("fwd_only");
    const u = named("fwd_u");
    assert.ok(f.kind === "FWD" && f.fwdKind === "struct");
    assert.ok(u.kind === "FWD" && u.fwdKind === "union");
    assert.throws(() => btf.sizeOf(f.id), /has no size/);
  });
});

Deno.test("kinds.o: functions, variables, sections", async (t) => {
  await t.step("FUNC linkage", () => {
    const link = (n: string) => {
      const f = named(n, "FUNC");
      assert.ok(f.kind === "FUNC");
      return f.linkage;
    };
    assert.equal(link("helper"), BTF_LINKAGE_STATIC);
    assert.equal(link("global_fn"), BTF_LINKAGE_GLOBAL);
    assert.equal(link("bpf_ext_kfunc"), BTF_LINKAGE_EXTERN);
  });
  await t.step("FUNC_PROTO parameters", () => {
    const f = named("helper", "FUNC");
    assert.ok(f.kind === "FUNC");
    const p = btf.typeById(f.type);
    assert.ok(p.kind === "FUNC_PROTO");
    assert.deepEqual(p.params.map((x) => [x.name, btf.typeName(x.type)]), [
      ["x", "int"],
      ["a", "struct all *"],
    ]);
    assert.equal(btf.typeName(f.id), "int helper(int, struct all *)");
  });
  await t.step("VAR linkage", () => {
    const link = (n: string) => {
      const v = named(n, "VAR");
      assert.ok(v.kind === "VAR");
      return v.linkage;
    };
    assert.equal(link("s_var"), BTF_LINKAGE_STATIC);
    assert.equal(link("glob_var"), BTF_LINKAGE_GLOBAL);
    assert.equal(link("LINUX_KERNEL_VERSION"), BTF_LINKAGE_EXTERN);
  });
  await t.step("DATASEC .data: laid out from the ELF symbols", () => {
    const d = named(".data", "DATASEC");
    assert.ok(d.kind === "DATASEC");
    assert.equal(d.size, 8);
    assert.deepEqual(
      d.vars.map((v) => [btf.nameOf(v.type), v.offset, v.size]),
      [
        ["glob_var", 0, 4],
        ["s_var", 4, 4],
      ],
    );
  });
  await t.step("setDatasecLayout refuses non-DATASECs and wrong counts", () => {
    const d = named(".data", "DATASEC");
    assert.throws(() => btf.setDatasecLayout(1, 4, []), /not DATASEC/);
    assert.throws(() => btf.setDatasecLayout(d.id, 4, []), /has 2 vars/);
  });
});

Deno.test("kinds.o: tags", async (t) => {
  await t.step("decl tags on struct, member, function, parameter", () => {
    assert.deepEqual(btf.declTagsOf(btf.findByName("bits")!), ["stag"]);
    const all = btf.findByName("all", "STRUCT")!;
    const s = btf.typeById(all);
    assert.ok(s.kind === "STRUCT");
    const idx = s.members.findIndex((m) => m.name === "tagged_member");
    assert.deepEqual(btf.declTagsOf(all, idx), ["mtag"]);
    assert.deepEqual(btf.declTagsOf(all, DECL_TAG_WHOLE_TYPE), []);
    const helper = btf.findByName("helper", "FUNC")!;
    assert.deepEqual(btf.declTagsOf(helper), ["ftag"]);
    assert.deepEqual(btf.declTagsOf(helper, 0), ["ptag"]);
    assert.deepEqual(btf.declTagsOf(helper, 1), []);
  });
  await t.step("type tag under a pointer", () => {
    const p = member("all", "tagged").type;
    assert.deepEqual(btf.pointerTags(p), ["user"]);
    assert.deepEqual(btf.pointerTags(member("all", "rp").type), []);
    const ptr = btf.typeById(p);
    assert.ok(ptr.kind === "PTR");
    const r = btf.resolve(ptr.type);
    assert.deepEqual(r.typeTags, ["user"]);
    assert.equal(r.type.name, "int");
  });
});

Deno.test("kinds.o: resolve, names, lookups", async (t) => {
  await t.step("resolve skips const volatile and keeps what it skipped", () => {
    const r = btf.resolve(member("all", "cv").type);
    assert.equal(r.type.name, "int");
    assert.deepEqual(r.skipped.map((id) => btf.typeById(id).kind), [
      "CONST",
      "VOLATILE",
    ]);
  });
  await t.step("resolve skips typedefs too", () => {
    const r = btf.resolve(btf.findByName("u32_t", "TYPEDEF")!);
    assert.equal(r.type.name, "unsigned int");
    assert.equal(r.skipped.length, 1);
  });
  await t.step("C names", () => {
    const names: [string, string][] = [
      ["cv", "const volatile int"],
      ["rp", "int *restrict"],
      ["fp", "struct fwd_only *"],
      ["up", "union fwd_u *"],
      ["col", "enum color"],
      ["fn", "int (*)(int, char)"],
      ["arrp", "int (*)[3]"],
      ["cstr", "const char *const"],
      ["tagged", 'int __attribute__((btf_type_tag("user"))) *'],
    ];
    for (const [m, name] of names) {
      assert.equal(btf.typeName(member("all", m).type), name, m);
    }
    assert.equal(
      btf.typeName(btf.findByName("glob_var", "VAR")!),
      "int glob_var",
    );
  });
  await t.step("findByName with and without kind", () => {
    assert.equal(btf.findByName("nonexistent"), undefined);
    assert.equal(btf.findByName("all", "UNION"), undefined);
    assert.equal(btf.nameOf(btf.findByName("all")!), "all");
    assert.deepEqual(btf.findAllByName("int").length, 1);
  });
  await t.step("typeById out of range", () => {
    assert.throws(() => btf.typeById(btf.typeCount), /out of range/);
    assert.throws(() => btf.typeById(-1), /out of range/);
  });
  await t.step("sizeOf: pointers are 8, sizeless kinds throw", () => {
    assert.equal(btf.sizeOf(member("all", "fn").type), 8);
    assert.throws(
      () => btf.sizeOf(btf.findByName("helper")!),
      /FUNC .* has no size/,
    );
    assert.throws(() => btf.sizeOf(0), /VOID .* has no size/);
  });
});
