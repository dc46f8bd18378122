// Both engines against the real kernel: programs from a compiled object,
// run as libbpf links them, must return what BPF_PROG_TEST_RUN returned
// (recorded from ../shared/oracle beside the fixture), and the engines must
// agree with each other on r0 and the instructions retired.
import { deepStrictEqual, equal, ok } from "node:assert/strict";
import { loadObject } from "../../lib/elf/object.ts";
import { compileProgram } from "../../lib/exec/compile.ts";
import { ENGINES } from "../../lib/exec/jit/step_jit.ts";
import { runProgram } from "../../lib/exec/run.ts";

const dir = new URL("../fixtures/bench/", import.meta.url);
const object = loadObject(
  Deno.readFileSync(new URL("loops.o", dir)),
  "loops.o",
);
const recorded: { program: string; retval: number }[] = Deno.readTextFileSync(
  new URL("loops.oracle-run.json", dir),
).trim().split("\n").map((l) => JSON.parse(l));

for (const name of ["alu_loop", "stack_loop"]) {
  Deno.test(`${name} returns the kernel's retval`, async (t) => {
    const program = object.programs.find((p) => p.name === name);
    ok(program, `loops.o has ${name}`);
    const kernel = recorded.find((r) => r.program === name);
    ok(kernel, `the oracle's run of ${name} is recorded`);
    const compiled = compileProgram(program.insns); // shared by the engines
    const outcomes: string[] = [];
    for (const engine of ENGINES) {
      await t.step(engine, () => {
        // the context is not read by these programs; the kernel returns r0's low 32 bits
        const { r0, steps } = runProgram(compiled, {
          ctx: new Uint8Array(64),
          engine,
        });
        equal(Number(r0 & 0xffffffffn), kernel.retval);
        outcomes.push(`r0=${r0} steps=${steps}`);
      });
    }
    deepStrictEqual(new Set(outcomes).size, 1, outcomes.join(" / "));
  });
}

Deno.test("call_loop calls its subprogram and helper 5 a thousand times each", async (t) => {
  const program = object.programs.find((p) => p.name === "call_loop");
  ok(program);
  const compiled = compileProgram(program.insns);
  for (const engine of ENGINES) {
    await t.step(engine, () => {
      let calls = 0;
      const helpers = new Map([[5, () => (calls++, 2 * calls)]]); // even: bit 0 clear
      const { r0, steps } = runProgram(compiled, {
        ctx: new Uint8Array(64),
        helpers,
        engine,
      });
      equal(calls, 1000);
      // r7 accumulates r6 (1000 … 1) plus bit 0 of each helper result (0)
      equal(r0, 500500n);
      equal(steps, 10004); // as counted in loops.c: 2 + 5*1000 + 2 + 5*1000
    });
  }
});
