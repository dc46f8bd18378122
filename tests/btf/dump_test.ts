/**
 * `dumpBtf()` against bpftool: every fixture's `bpftool btf dump file`
 * output was recorded by tests/fixtures/btf/build.sh (bpftool v7.1.0); when
 * bpftool is installed the recording is also re-checked live.
 */
import assert from "node:assert/strict";
import { dumpBtf, dumpBtfType } from "../../lib/btf/mod.ts";
import { FIXTURES, loadFixture } from "./fixtures.ts";
import { readElf } from "./elf_sections.ts";
import { parseBtf } from "../../lib/btf/mod.ts";

const recorded = [...Deno.readDirSync(FIXTURES)]
  .filter((e) => e.name.endsWith(".bpftool.txt"))
  .map((e) => e.name.replace(/\.bpftool\.txt$/, ""))
  .sort();

function bpftoolPath(): string | undefined {
  for (
    const p of [
      "/usr/sbin/bpftool",
      "/usr/bin/bpftool",
      "/usr/local/sbin/bpftool",
    ]
  ) {
    try {
      if (Deno.statSync(p).isFile) return p;
    } catch {
      // not here
    }
  }
  return undefined;
}

Deno.test("dumpBtf matches recorded bpftool output", async (t) => {
  assert.ok(recorded.length >= 20, `only ${recorded.length} recordings`);
  for (const name of recorded) {
    await t.step(name, () => {
      // The raw .BTF, as bpftool reads it: DATASECs not laid out.
      const elf = readElf(Deno.readFileSync(`${FIXTURES}${name}.o`));
      const btf = parseBtf(elf.sections.get(".BTF")!);
      const want = Deno.readTextFileSync(`${FIXTURES}${name}.bpftool.txt`);
      assert.equal(dumpBtf(btf), want);
    });
  }
});

Deno.test({
  name: "dumpBtf matches live bpftool",
  ignore: bpftoolPath() === undefined,
  fn: async () => {
    for (const name of ["kinds", "fields_ok", "core"]) {
      const out = await new Deno.Command(bpftoolPath()!, {
        args: ["btf", "dump", "file", `${FIXTURES}${name}.o`],
      }).output();
      assert.equal(out.code, 0);
      const elf = readElf(Deno.readFileSync(`${FIXTURES}${name}.o`));
      assert.equal(
        dumpBtf(parseBtf(elf.sections.get(".BTF")!)),
        new TextDecoder().decode(out.stdout),
      );
    }
  },
});

Deno.test("dumpBtfType prints one type and laid-out DATASECs", () => {
  const { btf } = loadFixture("kinds");
  const data = btf.findByName(".data", "DATASEC")!;
  assert.equal(
    dumpBtfType(btf, data),
    `[${data}] DATASEC '.data' size=8 vlen=2\n` +
      `\ttype_id=${
        btf.findByName("glob_var")
      } offset=0 size=4 (VAR 'glob_var')\n` +
      `\ttype_id=${btf.findByName("s_var")} offset=4 size=4 (VAR 's_var')\n`,
  );
  assert.equal(
    dumpBtfType(btf, 1),
    "[1] INT 'int' size=4 bits_offset=0 nr_bits=32 encoding=SIGNED\n",
  );
});

Deno.test({
  name: "dumpBtf of this kernel's vmlinux BTF matches live bpftool",
  ignore: bpftoolPath() === undefined,
  fn: async () => {
    // sysfs needs --allow-all in Deno; `cat` only needs --allow-run.
    const cat = await new Deno.Command("cat", {
      args: ["/sys/kernel/btf/vmlinux"],
    }).output();
    if (cat.code !== 0) return; // no kernel BTF here: nothing to compare
    const tool = await new Deno.Command(bpftoolPath()!, {
      args: ["btf", "dump", "file", "/sys/kernel/btf/vmlinux"],
    }).output();
    assert.equal(tool.code, 0);
    const want = new TextDecoder().decode(tool.stdout);
    const got = dumpBtf(parseBtf(cat.stdout));
    // Compare line by line so a mismatch names its type, not a 12 MB diff.
    const a = got.split("\n");
    const b = want.split("\n");
    assert.equal(a.length, b.length);
    for (let i = 0; i < a.length; i++) {
      if (a[i] !== b[i]) assert.equal(a[i], b[i], `line ${i + 1}`);
    }
  },
});
