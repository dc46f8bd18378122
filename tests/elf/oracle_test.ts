/**
 * Every fixture object against the real kernel's libbpf, as recorded by
 * tests/fixtures/build.sh: the same programs, in the same order, in the same
 * sections, with the same instruction counts after subprogram linking.
 */
import assert from "node:assert/strict";
import { LoadError } from "../../lib/elf/errors.ts";
import { findSectionDef } from "../../lib/elf/sections.ts";
import { loadFixture, objectsWithOracle, readOracle } from "./fixtures.ts";

const objects = objectsWithOracle();

Deno.test("fixtures: there are recorded objects to compare", () => {
  // one per concern, plus the broken ones
  for (
    const name of [
      "sec_net.o",
      "sec_trace.o",
      "sec_btf.o",
      "multi_prog.o",
      "global_data.o",
      "maps_btf.o",
      "graph.o",
      "core.o",
      "externs.o",
    ]
  ) {
    assert.ok(objects.includes(name), `${name} has no .oracle.json`);
  }
  assert.ok(objects.filter((o) => o.startsWith("broken/")).length >= 5);
});

Deno.test("fixtures: programs, sections and insn counts equal libbpf's", async (t) => {
  for (const path of objects) {
    const oracle = readOracle(path);
    await t.step(path, () => {
      if (oracle.length === 1 && oracle[0].program === null) {
        // libbpf could not open it: neither can we, and we say where
        assert.throws(() => loadFixture(path), (e: unknown) => {
          assert.ok(e instanceof LoadError, String(e));
          assert.ok(e.message.startsWith(`${path}: `), e.message);
          assert.ok(
            e.section !== undefined || e.offset !== undefined,
            e.message,
          );
          return true;
        });
        return;
      }
      const obj = loadFixture(path, { allowUnknownSections: true });
      assert.deepEqual(
        obj.programs.map((p) => p.name),
        oracle.map((o) => o.program),
      );
      for (const [i, p] of obj.programs.entries()) {
        const o = oracle[i];
        assert.equal(p.section, o.section, `${p.name}: section`);
        if (
          o.message.startsWith("load failed before verification") &&
          p.functions[0].length === o.insns
        ) {
          // libbpf failed before bpf_object__relocate() (an extern, a map, BTF):
          // it reports the entry function's own length, not the linked one
        } else {
          assert.equal(p.raw.length, o.insns, `${p.name}: insns after linking`);
        }
        // what the kernel accepted must at least decode
        if (o.verdict === "accept") {
          assert.equal(
            p.decodeError,
            undefined,
            `${p.name}: ${p.decodeError?.reason}`,
          );
        }
        if (p.decodeError === undefined) {
          assert.equal(p.insns.length, p.raw.length);
        }
      }
    });
  }
});

Deno.test("fixtures: a program in a section libbpf does not know is a LoadError by default", async (t) => {
  for (const path of objects) {
    const oracle = readOracle(path);
    const unknown = oracle.find((o) =>
      o.section !== null && findSectionDef(o.section) === undefined
    );
    if (unknown === undefined) continue;
    await t.step(path, () => {
      assert.equal(unknown.verdict, "reject", "libbpf cannot load it either");
      assert.throws(() => loadFixture(path), (e: unknown) => {
        assert.ok(e instanceof LoadError);
        assert.equal(e.section, unknown.section);
        assert.match(
          e.message,
          new RegExp(
            `prog '${unknown.program}': missing BPF prog type, check ELF section name`,
          ),
        );
        return true;
      });
    });
  }
});
