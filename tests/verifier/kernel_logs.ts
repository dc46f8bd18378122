/**
 * Comparing bpfsim's verifier with the kernel's recorded verdicts and
 * level-1 logs, program by program: the shared body of the tests that hold
 * a fixture to the kernel's log line for line.
 */
import assert from "node:assert/strict";
import { loadFixture, readOracle } from "../elf/fixtures.ts";
import { verifyProgram } from "../../lib/verifier/verify.ts";

/** A log's lines without what the host decides: map addresses, the time. */
export function comparableLog(log: string): string[] {
  return log.split("\n").filter((l) =>
    l !== "" && !l.startsWith(";") && !l.startsWith("verification time") &&
    !/\(18\) r\d+ = 0x/.test(l)
  );
}

/**
 * One step per program of `fixture` (a path under tests/fixtures): the
 * kernel's verdict, errno, message and processed count, and for a rejected
 * program the whole log recorded as `<logs>/<prefix>.<program>.log`.
 */
export async function expectKernelVerdictsAndLogs(
  t: Deno.TestContext,
  fixture: string,
  logs: URL,
  prefix: string,
): Promise<void> {
  const object = loadFixture(fixture);
  const recorded = readOracle(fixture);
  assert.equal(recorded.length, object.programs.length);
  for (const k of recorded) {
    await t.step(k.program!, () => {
      const prog = object.programs.find((p) => p.name === k.program)!;
      const r = verifyProgram(object, prog, { logLevel: 1 });
      assert.equal(r.verdict, k.verdict);
      assert.equal(r.errno, k.errno);
      assert.equal(r.message, k.message);
      assert.equal(r.processed, k.processed);
      if (k.verdict === "accept") return;
      const kernelLog = Deno.readTextFileSync(
        new URL(`${prefix}.${k.program}.log`, logs),
      );
      assert.deepEqual(comparableLog(r.log), comparableLog(kernelLog));
    });
  }
}
