/**
 * Stack-slot liveness in state pruning (stack_liveness.ts, clean_states.ts):
 * the `processed` counts the real kernel (Linux 6.18) recorded for programs
 * whose pruning depends on which stack slots are still read after a join —
 * dead slots at the join (pruned), slots read later by a load, a helper, a
 * subprogram or a callback (not pruned) — must be bpfsim's too.
 */
import assert from "node:assert/strict";
import { verifyProgram } from "../../lib/verifier/verify.ts";
import { loadFixture, readOracle } from "../elf/fixtures.ts";

// one fixture's programs, each checked against the kernel's verdict and count
async function sameAsKernel(t: Deno.TestContext, path: string, only?: string) {
  const obj = loadFixture(path);
  for (const k of readOracle(path)) {
    if (k.program === null || (only && k.program !== only)) continue;
    const kernel = (k as { processed?: number }).processed;
    await t.step(`${k.program}: ${k.verdict}, processed ${kernel}`, () => {
      const p = obj.programs.find((x) => x.name === k.program)!;
      const r = verifyProgram(obj, p, { logLevel: 2 });
      assert.equal(r.verdict, k.verdict, r.log);
      assert.equal(r.processed, kernel, r.log);
    });
  }
}

Deno.test("stack liveness: processed counts equal the kernel's", async (t) => {
  await sameAsKernel(t, "verifier/stack_live.o");
  // uninitialised stack read by root: pruned only once the slot is dead
  await sameAsKernel(t, "verifier/pruning.o", "ok_prune_uninit_stack_as_root");
});

Deno.test("stack liveness: dead slots prune, live ones do not", async (t) => {
  const obj = loadFixture("verifier/stack_live.o");
  const run = (name: string) =>
    verifyProgram(obj, obj.programs.find((p) => p.name === name)!, {
      logLevel: 2,
    });
  await t.step("the later path stops at the join when fp-8 is dead", () => {
    for (const name of ["dead_ptr_at_join", "subprog_writes_caller_slot"]) {
      const log = run(name).log;
      assert.match(log, /\d: safe\n/, `${name}\n${log}`);
    }
  });
  await t.step("a later read keeps the join's states apart", () => {
    for (const name of ["live_read_by_helper", "subprog_reads_caller_slot"]) {
      const log = run(name).log;
      assert.doesNotMatch(log, /: safe\n/, `${name}\n${log}`);
    }
  });
  await t.step("the twins differ only in what follows the join", () => {
    // same shape, so the dead variant processes strictly fewer insns
    assert.ok(
      run("dead_ptr_at_join").processed < run("live_read_by_helper").processed,
    );
    assert.ok(
      run("subprog_writes_caller_slot").processed <
        run("subprog_reads_caller_slot").processed,
    );
  });
});
