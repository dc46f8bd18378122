/**
 * Broken inputs: each must fail with a `LoadError` that names the file and
 * the section and/or byte offset. The committed broken objects come from
 * build.sh; the others are made here by patching one field of a good object.
 */
import assert from "node:assert/strict";
import { LoadError } from "../../lib/elf/errors.ts";
import { loadObject } from "../../lib/elf/object.ts";
import { loadFixture, readFixture } from "./fixtures.ts";

interface Shdr {
  name: string;
  nameOff: number;
  headerAt: number;
  offset: number;
  size: number;
}

/** A minimal ELF64 section table reader, independent of lib/elf. */
function sections(bytes: Uint8Array): Shdr[] {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shoff = Number(v.getBigUint64(0x28, true));
  const count = v.getUint16(0x3c, true);
  const strIdx = v.getUint16(0x3e, true);
  const strOff = Number(v.getBigUint64(shoff + strIdx * 64 + 0x18, true));
  const out: Shdr[] = [];
  for (let i = 0; i < count; i++) {
    const at = shoff + i * 64;
    const nameOff = v.getUint32(at, true);
    let end = strOff + nameOff;
    while (bytes[end] !== 0) end++;
    out.push({
      name: new TextDecoder().decode(bytes.subarray(strOff + nameOff, end)),
      nameOff,
      headerAt: at,
      offset: Number(v.getBigUint64(at + 0x18, true)),
      size: Number(v.getBigUint64(at + 0x20, true)),
    });
  }
  return out;
}

function patched(
  fixture: string,
  edit: (bytes: Uint8Array, view: DataView) => void,
): Uint8Array {
  const bytes = readFixture(fixture).slice();
  edit(bytes, new DataView(bytes.buffer));
  return bytes;
}

function section(bytes: Uint8Array, name: string): Shdr {
  const s = sections(bytes).find((x) => x.name === name);
  assert.ok(s, `no section ${name}`);
  return s;
}

/** Asserts a LoadError with this exact message, section and offset. */
function fails(
  run: () => unknown,
  message: string,
  section?: string,
  offset?: number,
): void {
  assert.throws(run, (e: unknown) => {
    assert.ok(e instanceof LoadError, `not a LoadError: ${e}`);
    assert.equal(e.message, message);
    assert.equal(e.section, section);
    assert.equal(e.offset, offset);
    return true;
  });
}

Deno.test("errors: the broken fixtures", async (t) => {
  await t.step("truncated ELF", () => {
    const shoff = Number(
      new DataView(readFixture("maps_btf.o").buffer).getBigUint64(0x28, true),
    );
    fails(
      () => loadFixture("broken/truncated.o"),
      `broken/truncated.o: offset 0x${
        shoff.toString(16)
      }: truncated ELF: section header table ` +
        `(28 entries) ends at 0x${
          (shoff + 28 * 64).toString(16)
        }, past the end of the file (0x200 bytes)`,
      undefined,
      shoff,
    );
  });
  await t.step("corrupted BTF magic in an object that needs BTF", () => {
    fails(
      () => loadFixture("broken/bad_btf_magic.o"),
      "broken/bad_btf_magic.o: section '.BTF' (offset 0x0): BTF is required, but is corrupted: " +
        "BTF @0x0: Invalid magic 0xbeef",
      ".BTF",
      0,
    );
  });
  await t.step("relocation offset outside its section", () => {
    fails(
      () => loadFixture("broken/reloc_out_of_section.o"),
      "broken/reloc_out_of_section.o: section '.relxdp' (offset 0x0): " +
        "invalid offset 0x10000 for relo #0: section 'xdp' is 0x70 bytes",
      ".relxdp",
      0,
    );
  });
  await t.step("relocation against a symbol that does not exist", () => {
    fails(
      () => loadFixture("broken/reloc_bad_symbol.o"),
      "broken/reloc_bad_symbol.o: section '.reltc' (offset 0x0): " +
        "symbol #65520 not found for relo #0 (symbol table has 27)",
      ".reltc",
      0,
    );
  });
  await t.step("program in an unknown section", () => {
    fails(
      () => loadFixture("broken/unknown_section.o"),
      "broken/unknown_section.o: section 'no_such_type' (offset 0x0): " +
        "prog 'sock_prog': missing BPF prog type, check ELF section name 'no_such_type'",
      "no_such_type",
      0,
    );
    // libbpf opens it and only refuses to load that program
    const obj = loadFixture("broken/unknown_section.o", {
      allowUnknownSections: true,
    });
    const p = obj.programs.find((x) => x.name === "sock_prog")!;
    assert.equal(p.type, "unspec");
    assert.equal(p.typeId, 0);
  });
});

Deno.test("errors: header checks", async (t) => {
  await t.step("bad magic", () => {
    const bytes = patched("sec_net.o", (b) => (b[3] = 0x47));
    fails(
      () => loadObject(bytes, "x.o"),
      "x.o: offset 0x0: not a proper ELF object: bad magic '7f 45 4c 47'",
      undefined,
      0,
    );
  });
  await t.step("not even a header", () => {
    fails(
      () => loadObject(new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 2]), "x.o"),
      "x.o: offset 0x0: truncated ELF: 5 bytes, the header alone needs 64",
      undefined,
      0,
    );
  });
  await t.step("32-bit ELF", () => {
    const bytes = patched("sec_net.o", (b) => (b[4] = 1));
    fails(
      () => loadObject(bytes, "x.o"),
      "x.o: offset 0x4: not a 64-bit ELF object",
      undefined,
      4,
    );
  });
  await t.step("big-endian ELF", () => {
    const bytes = patched("sec_net.o", (b) => (b[5] = 2));
    fails(
      () => loadObject(bytes, "x.o"),
      "x.o: offset 0x5: endianness mismatch: object is not little-endian",
      undefined,
      5,
    );
  });
  await t.step("not a BPF object", () => {
    const bytes = patched("sec_net.o", (_b, v) => v.setUint16(0x12, 62, true));
    fails(
      () => loadObject(bytes, "x.o"),
      "x.o: offset 0x10: not a valid eBPF object file (e_type 1, e_machine 62; expected ET_REL and EM_BPF)",
      undefined,
      0x10,
    );
  });
  await t.step("section data past the end of the file", () => {
    const bytes = patched(
      "sec_net.o",
      (b, v) =>
        v.setBigUint64(section(b, "xdp").headerAt + 0x20, 0x100000n, true),
    );
    const xdp = section(bytes, "xdp");
    fails(
      () => loadObject(bytes, "x.o"),
      `x.o: section 'xdp' (offset 0x${
        xdp.offset.toString(16)
      }): truncated ELF: 1048576 bytes of section data ` +
        `run past the end of the file (0x${bytes.length.toString(16)} bytes)`,
      "xdp",
      xdp.offset,
    );
  });
});

Deno.test("errors: object layout", async (t) => {
  await t.step("legacy 'maps' section", () => {
    // ".maps" named one byte later reads "maps"
    const bytes = patched("maps_btf.o", (b, v) => {
      const maps = section(b, ".maps");
      v.setUint32(maps.headerAt, maps.nameOff + 1, true);
    });
    fails(
      () => loadObject(bytes, "x.o"),
      "x.o: section 'maps': legacy map definitions in 'maps' section are not supported by libbpf v1.0+",
      "maps",
    );
  });
  await t.step("static function as a program outside .text", () => {
    const bytes = patched("sec_net.o", (b, v) => {
      const symtab = section(b, ".symtab");
      const strtab = section(b, ".strtab");
      for (let at = symtab.offset; at < symtab.offset + symtab.size; at += 24) {
        const nameAt = strtab.offset + v.getUint32(at, true);
        const name = new TextDecoder().decode(
          b.subarray(nameAt, b.indexOf(0, nameAt)),
        );
        if (name === "sock_prog") b[at + 4] = (0 << 4) | (b[at + 4] & 0xf); // STB_LOCAL
      }
    });
    fails(
      () => loadObject(bytes, "x.o"),
      "x.o: section 'socket' (offset 0x0): program 'sock_prog' is static and not supported",
      "socket",
      0,
    );
  });
  await t.step(
    "relocation of an instruction that is neither lddw nor call",
    () => {
      const bytes = patched(
        "multi_prog.o",
        (b, v) => v.setBigUint64(section(b, ".relxdp").offset, 0n, true),
      );
      fails(
        () => loadObject(bytes, "x.o"),
        "x.o: section '.relxdp' (offset 0x0): prog 'xdp_first': invalid relo against '.text' for insns[0].code 0x61",
        ".relxdp",
        0,
      );
    },
  );
  await t.step("no symbol table", () => {
    const bytes = patched(
      "sec_net.o",
      (b, v) => v.setUint32(section(b, ".symtab").headerAt + 4, 1, true),
    ); // SHT_PROGBITS
    fails(
      () => loadObject(bytes, "x.o"),
      "x.o: couldn't find symbol table, stripped object file?",
    );
  });
});

Deno.test("errors: damaged BTF that libbpf can do without", () => {
  // sec_net has no maps: libbpf drops bad BTF and goes on
  const bytes = patched(
    "sec_net.o",
    (b, v) => v.setUint16(section(b, ".BTF").offset, 0xbeef, true),
  );
  const obj = loadObject(bytes, "x.o");
  assert.equal(obj.btf, undefined);
  assert.equal(obj.programs.length, 8);
  assert.deepEqual(obj.warnings.filter((w) => w.includes(".BTF")), [
    "Error loading ELF section .BTF: BTF @0x0: Invalid magic 0xbeef",
  ]);
  // a bad .BTF.ext is ignored too: no func/line info then
  const extBroken = patched(
    "multi_prog.o",
    (b, v) => v.setUint16(section(b, ".BTF.ext").offset, 0xbeef, true),
  );
  const obj2 = loadObject(extBroken, "y.o");
  assert.ok(
    obj2.warnings.some((w) =>
      w.startsWith("Error loading ELF section .BTF.ext:") &&
      w.endsWith("Ignored and continue.")
    ),
  );
  assert.equal(obj2.programs[0].funcInfo, undefined);
  assert.equal(obj2.programs[0].raw.length, 10);
});
