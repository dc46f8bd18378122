// Verification on load: a program runs only once the verifier accepted it
// (verdicts compared with the real kernel's, recorded beside the fixture),
// unless verification is switched off.
import { equal, ok, throws } from "node:assert/strict";
import { VerifierError } from "../../lib/verifier/verify.ts";
import { Kernel } from "../../lib/kernel/kernel.ts";
import {
  isUnmodelled,
  ProgramRejectedError,
  verifyBeforeRun,
} from "../../lib/kernel/load_verify.ts";
import { ProgramLoadError } from "../../lib/kernel/object_loader.ts";
import {
  kernelProgram,
  loadObjectWithRuntime,
} from "../../lib/kernel/object_runtime.ts";
import { brokenRuleObject } from "./sanitizer_env.ts";

interface OracleLine {
  program: string;
  verdict: "accept" | "reject";
  errno: number;
  message: string;
}

const ORACLE: OracleLine[] = Deno.readTextFileSync(
  new URL("../fixtures/scenarios/broken_rule.oracle.json", import.meta.url),
).split("\n").filter((l) => l.trim() !== "").map((l) => JSON.parse(l));

Deno.test("kernelProgram verifies first: the kernel's verdict on each program", async (t) => {
  const loaded = loadObjectWithRuntime(new Kernel(), brokenRuleObject());
  ok(ORACLE.some((o) => o.verdict === "reject"));
  for (const want of ORACLE) {
    await t.step(`${want.program}: ${want.verdict}`, () => {
      if (want.verdict === "accept") {
        kernelProgram(loaded, want.program);
        return;
      }
      let caught: unknown;
      try {
        kernelProgram(loaded, want.program);
      } catch (err) {
        caught = err;
      }
      ok(caught instanceof ProgramRejectedError);
      equal(caught.verifierMessage, want.message);
      equal(caught.result.errno, want.errno);
      equal(caught.program, want.program);
      ok(caught.message.includes(`'${want.program}'`));
      ok(caught.message.includes(want.message));
      ok(caught.cause instanceof VerifierError);
      if (caught.explain !== undefined) {
        ok(caught.message.endsWith(caught.explain), "the explanation follows");
      }
    });
  }
});

Deno.test("the escape hatch: verify false on the load or on the kernel", () => {
  const object = brokenRuleObject();
  const off = loadObjectWithRuntime(new Kernel(), object, { verify: false });
  equal(kernelProgram(off, "pop_unlocked").name, "pop_unlocked");
  const kernel = new Kernel({ verify: false });
  equal(kernel.verify, false);
  const byKernel = loadObjectWithRuntime(kernel, object);
  equal(kernelProgram(byKernel, "pop_unlocked").name, "pop_unlocked");
  // the load's own option wins over the kernel's
  const strict = loadObjectWithRuntime(kernel, object, { verify: true });
  throws(() => kernelProgram(strict, "pop_unlocked"), ProgramRejectedError);
});

Deno.test("verifyBeforeRun: the verdict, or a load error for an unknown program", () => {
  const object = brokenRuleObject();
  equal(verifyBeforeRun(object, "push").verdict, "accept");
  throws(() => verifyBeforeRun(object, "nope"), ProgramLoadError);
});

Deno.test("isUnmodelled: a rejection for a kernel feature bpfsim does not model is no verdict", () => {
  const verdict = {
    object: "x.o",
    program: "p",
    section: "tc",
    verdict: "reject" as const,
    errno: -22,
    message: "kernel function bpf_foo is not modelled by bpfsim",
    processed: 3,
    insns: 4,
    log: "",
  };
  ok(isUnmodelled(verdict));
  ok(!isUnmodelled({ ...verdict, message: "R1 invalid mem access 'scalar'" }));
  ok(!isUnmodelled({ ...verdict, verdict: "accept", errno: 0 }));
});
