/**
 * Malformed `.BTF`: every refusal is a `BtfError` naming the byte offset or
 * type id and the kernel's reason; damaged real sections never escape as a
 * different exception.
 */
import assert from "node:assert/strict";
import {
  BTF_KIND,
  BtfError,
  EINVAL,
  ENOTSUPP,
  parseBtf,
} from "../../lib/btf/mod.ts";
import { BtfBuilder } from "./builder.ts";
import { loadFixture } from "./fixtures.ts";

const { info } = BtfBuilder;

/** Asserts `parseBtf(data)` throws a BtfError matching `where`. */
function refuses(
  data: Uint8Array,
  reason: RegExp,
  where: { offset?: number; typeId?: number; errno?: number } = {},
): BtfError {
  try {
    parseBtf(data);
  } catch (e) {
    assert.ok(e instanceof BtfError, `not a BtfError: ${e}`);
    assert.match(e.reason, reason);
    if (where.offset !== undefined) {
      assert.equal(e.offset, where.offset, e.message);
    }
    if (where.typeId !== undefined) {
      assert.equal(e.typeId, where.typeId, e.message);
    }
    assert.equal(e.errno, where.errno ?? EINVAL, e.message);
    return e;
  }
  assert.fail(`accepted; expected ${reason}`);
}

function good(): BtfBuilder {
  return new BtfBuilder().int("int", 4);
}

Deno.test("header checks (btf_parse_hdr)", async (t) => {
  await t.step("a good minimal blob parses", () => {
    const btf = parseBtf(good().build());
    assert.equal(btf.typeCount, 2);
    assert.equal(btf.typeName(1), "int");
  });
  await t.step("too short for hdr_len", () => {
    refuses(new Uint8Array(6), /hdr_len not found/, { offset: 0 });
  });
  await t.step("bad magic", () => {
    const d = good().build();
    d[0] = 0xeb; // big-endian magic: a BTF from the other byte order
    d[1] = 0x9f;
    refuses(d, /Invalid magic 0x9feb/, { offset: 0 });
  });
  await t.step("hdr_len beyond the data", () => {
    const d = good().build();
    new DataView(d.buffer).setUint32(4, 4096, true);
    refuses(d, /btf_header not found/, { offset: 4 });
  });
  await t.step("unsupported version and flags", () => {
    const v = good().build();
    v[2] = 2;
    refuses(v, /Unsupported version 2/, { offset: 2, errno: ENOTSUPP });
    const f = good().build();
    f[3] = 1;
    refuses(f, /Unsupported flags/, { offset: 3, errno: ENOTSUPP });
  });
  await t.step("no data after the header", () => {
    const d = good().build().slice(0, 24);
    refuses(d, /No data/);
  });
  await t.step("sections overlapping, with gaps, or too long", () => {
    const overlap = good().build();
    new DataView(overlap.buffer).setUint32(16, 4, true); // str_off inside the types
    refuses(overlap, /Section overlap found|Total section length too long/);
    const long = good().build();
    const v = new DataView(long.buffer);
    v.setUint32(20, v.getUint32(20, true) + 100, true);
    refuses(long, /Total section length too long|Invalid section offset/);
    const trailing = new Uint8Array(good().build().length + 4);
    trailing.set(good().build());
    refuses(trailing, /Unsupported section found/);
  });
});

Deno.test("string section checks (btf_parse_str_sec)", async (t) => {
  await t.step("must start and end with NUL", () => {
    const d = good().build();
    d[d.length - 1] = 0x41;
    refuses(d, /Invalid string section/);
  });
  await t.step("name offset out of range names the type", () => {
    const b = good().words(9999, info(BTF_KIND.PTR), 1);
    refuses(b.build(), /Invalid name_offset:9999/, { typeId: 2 });
  });
});

Deno.test("type section checks (btf_check_all_metas)", async (t) => {
  await t.step("unknown kind, with the offset of its info word", () => {
    const b = good().words(0, info(20), 0);
    // int is 16 bytes at 24; the bad type starts at 40, info at 44
    refuses(b.build(), /Invalid kind:20/, { typeId: 2, offset: 44 });
  });
  await t.step("unused info bits", () => {
    const b = good().words(0, info(BTF_KIND.PTR) | 0x00ff0000, 1);
    refuses(b.build(), /Invalid btf_info/, { typeId: 2 });
  });
  await t.step("truncated type header and truncated members", () => {
    refuses(
      good().words(0, info(BTF_KIND.PTR)).build(),
      /meta_left:8 meta_needed:12/,
      {
        typeId: 2,
        offset: 40,
      },
    );
    const b = new BtfBuilder().int("int", 4);
    const s = b.str("s");
    b.words(s, info(BTF_KIND.STRUCT, 2), 8, b.str("a"), 1, 0);
    refuses(b.build(), /meta_left:12 meta_needed:24/, {
      typeId: 2,
      offset: 40,
    });
  });
  await t.step("referenced type id out of range", () => {
    refuses(
      good().words(0, info(BTF_KIND.PTR), 7).build(),
      /Invalid type_id \(type id 7/,
      {
        typeId: 2,
      },
    );
    const b = good();
    b.words(0, info(BTF_KIND.ARRAY), 0, 1, 42, 3);
    refuses(b.build(), /Invalid index/, { typeId: 2 });
  });
  await t.step("struct member of type void or missing", () => {
    const b = good();
    b.words(b.str("s"), info(BTF_KIND.STRUCT, 1), 4, b.str("m"), 0, 0);
    refuses(b.build(), /Invalid member 'm'/, { typeId: 2 });
  });
  await t.step("member bit offset beyond the struct", () => {
    const b = good();
    b.words(b.str("s"), info(BTF_KIND.STRUCT, 1), 4, b.str("m"), 1, 800);
    refuses(b.build(), /bits_offset exceeds its struct size/, { typeId: 2 });
  });
  await t.step("decl tag component index out of range", () => {
    const b = good();
    b.words(b.str("s"), info(BTF_KIND.STRUCT, 1), 4, b.str("m"), 1, 0);
    b.words(b.str("tag"), info(BTF_KIND.DECL_TAG), 2, 1);
    refuses(b.build(), /Invalid component_idx 1/, { typeId: 3 });
  });
  await t.step("decl tag on an int", () => {
    const b = good();
    b.words(b.str("tag"), info(BTF_KIND.DECL_TAG), 1, 0xffffffff);
    refuses(b.build(), /decl tag target/, { typeId: 2 });
  });
  await t.step("FUNC must point at a FUNC_PROTO", () => {
    const b = good();
    b.words(b.str("f"), info(BTF_KIND.FUNC), 1);
    refuses(b.build(), /not a FUNC_PROTO/, { typeId: 2 });
  });
  await t.step("modifier loops are caught when resolving", () => {
    const b = good();
    b.words(b.str("t1"), info(BTF_KIND.TYPEDEF), 3);
    b.words(b.str("t2"), info(BTF_KIND.TYPEDEF), 2);
    const btf = parseBtf(b.build());
    assert.throws(() => btf.resolve(2), /Loop detected/);
    assert.throws(() => btf.sizeOf(2), /too deep/);
  });
});

/** Deterministic LCG (no Math.random in this project). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => (s = (Math.imul(s, 1664525) + 1013904223) >>> 0);
}

Deno.test("damaged kinds.o .BTF only ever fails with BtfError", async (t) => {
  const bytes = loadFixture("kinds").elf.sections.get(".BTF")!;
  const check = (d: Uint8Array) => {
    try {
      parseBtf(d);
    } catch (e) {
      if (!(e instanceof BtfError)) throw e;
    }
  };
  await t.step("every truncation", () => {
    for (let n = 0; n < bytes.length; n++) check(bytes.slice(0, n));
  });
  await t.step("2000 seeded single-byte corruptions", () => {
    const next = lcg(42);
    for (let i = 0; i < 2000; i++) {
      const d = bytes.slice();
      d[next() % d.length] ^= 1 << (next() % 8);
      check(d);
    }
  });
});
