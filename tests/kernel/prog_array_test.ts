/**
 * `bpf_tail_call` through a program array: a filled slot replaces the
 * program (its r0 is the result), an empty or out-of-range slot falls
 * through to the instruction after the call, as the kernel's
 * `JMP_TAIL_CALL` does.
 */
import assert from "node:assert/strict";
import { assemble } from "../../lib/isa/asm.ts";
import { compileProgram } from "../../lib/exec/compile.ts";
import { runProgram } from "../../lib/exec/run.ts";
import {
  BPF_FUNC_tail_call,
  ProgArray,
  tailCallHelper,
} from "../../lib/kernel/prog_array.ts";

const targets: Record<string, string> = {
  answer: "r0 = 42\nexit",
  again: "r2 = 0\nr3 = 0\ncall 12\nr0 = 7\nexit", // tail-calls slot 0 again
};

function tailCallVia(
  array: ProgArray,
  index: number,
  tailCalls?: number,
): bigint {
  let compiled = 0;
  const helper = tailCallHelper(() => array, (name) => {
    compiled++;
    return compileProgram(assemble(targets[name]));
  });
  const caller = `r3 = ${index}\ncall 12\nr0 = 1\nexit`;
  const { r0, state } = runProgram(assemble(caller), {
    helpers: new Map([[BPF_FUNC_tail_call, helper]]),
  });
  assert.ok(compiled <= 1, "each target compiles once");
  if (tailCalls !== undefined) assert.equal(state.tailCalls, tailCalls);
  return r0;
}

Deno.test("bpf_tail_call: filled slot, empty slot, out of range", () => {
  const array = new ProgArray("jmp", 3, ["answer", null]);
  assert.equal(tailCallVia(array, 0), 42n);
  assert.equal(tailCallVia(array, 1), 1n);
  assert.equal(tailCallVia(array, 2), 1n);
  assert.equal(tailCallVia(array, 5), 1n);
});

Deno.test("bpf_tail_call: the 34th tail call falls through (MAX_TAIL_CALL_CNT 33)", () => {
  const array = new ProgArray("jmp", 1, ["again"]);
  assert.equal(tailCallVia(array, 0, 33), 7n);
});
