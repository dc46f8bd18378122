/**
 * Linked scalars with a constant delta (`BPF_ADD_CONST`, sync_linked_regs())
 * against the real kernel: for every program of verifier/linked_regs.o the
 * verdict, message and processed count the 6.18 kernel recorded, and for
 * the rejected ones its whole level-1 log line for line — the register
 * states print the link (`id=1-1`, `id=1+5`) and what the comparison taught
 * the linked register (`smin32=-5,smax32=26` of r3 after `w1 = w3 + 5` is
 * at most 31). Lines the host decides are left out: map addresses (`lddw`)
 * and the verification time.
 */
import assert from "node:assert/strict";
import { loadFixture, readOracle } from "../elf/fixtures.ts";
import { verifyProgram } from "../../lib/verifier/verify.ts";

const FIXTURE = "verifier/linked_regs.o";
const LOGS = new URL("../fixtures/verifier/logs/", import.meta.url);

/** The log without what differs between hosts and runs. */
function comparable(log: string): string[] {
  return log.split("\n").filter((l) =>
    l !== "" && !l.startsWith(";") && !l.startsWith("verification time") &&
    !l.includes("(18) r1 = 0x")
  );
}

Deno.test("linked scalars: bpfsim verifies linked_regs.o as the 6.18 kernel does", async (t) => {
  const object = loadFixture(FIXTURE);
  const recorded = readOracle(FIXTURE);
  assert.equal(recorded.length, object.programs.length);
  for (const k of recorded) {
    await t.step(k.program!, () => {
      const prog = object.programs.find((p) => p.name === k.program)!;
      const r = verifyProgram(object, prog, { logLevel: 1 });
      assert.equal(r.verdict, k.verdict);
      assert.equal(r.message, k.message);
      assert.equal(r.processed, k.processed);
      if (k.verdict === "accept") return;
      const kernelLog = Deno.readTextFileSync(
        new URL(`linked_regs.${k.program}.log`, LOGS),
      );
      assert.deepEqual(comparable(r.log), comparable(kernelLog));
    });
  }
});
