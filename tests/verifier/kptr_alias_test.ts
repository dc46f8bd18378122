/**
 * bpf_kptr_new / bpf_kptr_drop (bpfsim's aliases of bpf_obj_new_impl /
 * bpf_obj_drop_impl, tests/fixtures/bpfsim_only/kptr_alias.c): each program
 * written with the aliases verifies exactly as its twin written with the
 * kernel's names — verdict, message, processed count, rewritten program.
 */
import assert from "node:assert/strict";
import { loadFixture } from "../elf/fixtures.ts";
import { verifyProgram } from "../../lib/verifier/verify.ts";
import type { RawInsn } from "../../lib/isa/insn.ts";

const kfuncImmless = (p: readonly RawInsn[] | undefined) =>
  (p ?? []).map((i) => i.code === 0x85 && i.src === 2 ? { ...i, imm: 0 } : i);

Deno.test("kptr aliases verify as the kernel's kfuncs", async (t) => {
  const obj = loadFixture("bpfsim_only/kptr_alias.o");
  const twins = obj.programs.filter((p) => p.name.startsWith("alias_"));
  assert.equal(twins.length, 3);
  const verdicts = new Set<string>();
  for (const a of twins) {
    await t.step(a.name, () => {
      const b = obj.programs.find((p) =>
        p.name === a.name.replace("alias_", "impl_")
      )!;
      const ra = verifyProgram(obj, a), rb = verifyProgram(obj, b);
      assert.equal(ra.verdict, rb.verdict);
      assert.equal(ra.message, rb.message);
      assert.equal(ra.processed, rb.processed);
      assert.deepEqual(kfuncImmless(ra.xlated), kfuncImmless(rb.xlated));
      verdicts.add(`${ra.verdict}: ${ra.message}`);
    });
  }
  // the three programs exercise an accept, a leak and a double release
  assert.deepEqual([...verdicts].sort(), [
    "accept: ",
    "reject: BPF_EXIT instruction in main prog would lead to reference leak",
    "reject: R1 must be referenced or trusted",
  ]);
});
