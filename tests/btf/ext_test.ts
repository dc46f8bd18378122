/**
 * `.BTF.ext`: func_info checked against the ELF symbol table, line_info
 * against the C source it came from, core_relo against libbpf's own log
 * of the same object; then malformed sections.
 */
import assert from "node:assert/strict";
import {
  BPF_CORE_ENUMVAL_VALUE,
  BPF_CORE_FIELD_BYTE_OFFSET,
  BPF_CORE_TYPE_ID_LOCAL,
  BtfError,
  EOPNOTSUPP,
  extRecordsFor,
  parseBtfExt,
} from "../../lib/btf/mod.ts";
import { loadFixture } from "./fixtures.ts";

const kinds = loadFixture("kinds");
const core = loadFixture("core");

Deno.test("func_info: one FUNC per function, at its symbol's offset", () => {
  const ext = kinds.ext!;
  assert.equal(ext.funcInfoRecSize, 8);
  const seen = new Set<string>();
  for (const sec of ext.funcInfo) {
    for (const fi of sec.records) {
      const f = kinds.btf.typeById(fi.typeId);
      assert.equal(f.kind, "FUNC");
      const sym = kinds.elf.symbols.find((s) =>
        s.name === f.name && s.section === sec.secName
      );
      assert.ok(sym, `no symbol ${f.name} in ${sec.secName}`);
      assert.equal(fi.insnOff, sym.value, f.name);
      seen.add(f.name);
    }
  }
  assert.deepEqual([...seen].sort(), ["global_fn", "helper", "prog"]);
  assert.equal(extRecordsFor(ext.funcInfo, "tc").length, 1);
  assert.equal(extRecordsFor(ext.funcInfo, "nope").length, 0);
});

Deno.test("line_info: every record quotes its source line", () => {
  const ext = kinds.ext!;
  const lines = kinds.source.split("\n");
  let n = 0;
  for (const sec of ext.lineInfo) {
    let last = -1;
    for (const li of sec.records) {
      assert.ok(li.fileName.endsWith("kinds.c"), li.fileName);
      assert.equal(li.line, lines[li.lineNum - 1], `line ${li.lineNum}`);
      assert.ok(
        li.column >= 1 && li.column <= li.line.length + 1,
        `column ${li.column}`,
      );
      assert.equal(li.lineCol, li.lineNum * 1024 + li.column);
      assert.ok(
        li.insnOff % 8 === 0 && li.insnOff >= last,
        "insn offsets ascend",
      );
      last = li.insnOff;
      n++;
    }
  }
  assert.ok(n >= 5);
});

Deno.test("core_relo: the records libbpf found, in its order", () => {
  const relos = extRecordsFor(core.ext!.coreRelo, "tc");
  const logged = Deno.readTextFileSync(
    new URL("../fixtures/btf/core.relo.txt", import.meta.url),
  )
    .trim().split("\n").filter((l) => / <\w+> /.test(l));
  assert.equal(relos.length, logged.length);
  relos.forEach((r, i) => {
    // "prog 'prog': relo #0: <byte_off> [19] struct sample.in.arr[2] (0:4:1:2 @ offset 28)"
    const m = logged[i].match(/relo #(\d+): <\w+> \[(\d+)\]/);
    assert.ok(m, logged[i]);
    assert.equal(Number(m[1]), i);
    assert.equal(r.typeId, Number(m[2]), logged[i]);
    const raw = logged[i].match(/\(([\d:]+) @/);
    if (raw) assert.equal(r.accessStr, raw[1]);
  });
  assert.equal(relos[0].kind, BPF_CORE_FIELD_BYTE_OFFSET);
  assert.equal(relos[11].kind, BPF_CORE_TYPE_ID_LOCAL);
  assert.equal(relos[16].kind, BPF_CORE_ENUMVAL_VALUE);
});

/** A copy of kinds.o's .BTF.ext with `edit` applied. */
function edited(edit: (v: DataView, d: Uint8Array) => void): Uint8Array {
  const d = kinds.elf.sections.get(".BTF.ext")!.slice();
  edit(new DataView(d.buffer), d);
  return d;
}

function refuses(data: Uint8Array, reason: RegExp, errno = 22): BtfError {
  try {
    parseBtfExt(data, kinds.btf);
  } catch (e) {
    assert.ok(e instanceof BtfError, String(e));
    assert.match(e.reason, reason);
    assert.equal(e.errno, errno);
    return e;
  }
  assert.fail(`accepted; expected ${reason}`);
}

Deno.test("malformed .BTF.ext", async (t) => {
  const hdr = (v: DataView) => v.getUint32(4, true);
  await t.step("header", () => {
    refuses(new Uint8Array(4), /BTF.ext header not found/);
    refuses(edited((_, d) => (d[0] = 0)), /Invalid BTF.ext magic/);
    refuses(
      edited((_, d) => (d[2] = 3)),
      /Unsupported BTF.ext version:3/,
      EOPNOTSUPP,
    );
    refuses(
      edited((_, d) => (d[3] = 1)),
      /Unsupported BTF.ext flags/,
      EOPNOTSUPP,
    );
    const e = refuses(
      edited((v) => v.setUint32(4, 1 << 20, true)),
      /header not found/,
    );
    assert.equal(e.offset, 0);
  });
  await t.step("func_info bounds", () => {
    refuses(
      edited((v) => v.setUint32(8, 2, true)),
      /func_info section is not aligned/,
    );
    refuses(
      edited((v) => v.setUint32(12, 1 << 16, true)),
      /beyond the end of the ELF section/,
    );
    refuses(
      edited((v) => v.setUint32(hdr(v) + v.getUint32(8, true), 4, true)),
      /func_info section in .BTF.ext has invalid record size 4/,
    );
  });
  await t.step("num_records and string offsets", () => {
    const first = (v: DataView) => hdr(v) + v.getUint32(8, true) + 4;
    const e = refuses(
      edited((v) => v.setUint32(first(v) + 4, 0, true)),
      /func_info section has incorrect num_records/,
    );
    assert.ok(e.offset > 0);
    refuses(
      edited((v) => v.setUint32(first(v) + 4, 1000, true)),
      /incorrect num_records/,
    );
    refuses(
      edited((v) => v.setUint32(first(v), 1 << 24, true)),
      /section name string offset/,
    );
  });
  await t.step("type ids and line strings", () => {
    const fi = (v: DataView) => hdr(v) + v.getUint32(8, true) + 4 + 8;
    refuses(
      edited((v) => v.setUint32(fi(v) + 4, 5000, true)),
      /type id 5000 out of range/,
    );
    const li = (v: DataView) => hdr(v) + v.getUint32(16, true) + 4 + 8;
    refuses(
      edited((v) => v.setUint32(li(v) + 8, 1 << 24, true)),
      /line string offset/,
    );
  });
});
