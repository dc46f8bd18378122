/**
 * Resumable stepping and the run-level ExecErrors: budgets, resuming, the
 * step limit, falling off the end, jumps out of range, invalid slots, and
 * the legacy packet loads (network order; out of bounds ends with r0 = 0).
 */
import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import {
  alu64i,
  exit,
  ja,
  jmpi,
  ldAbs,
  lddw,
  ldInd,
  ldx,
  mov,
  movr,
  type Part,
  program,
  r0Of,
  run,
  st,
} from "./build.ts";
import { compileProgram } from "../../lib/exec/compile.ts";
import { ExecError } from "../../lib/exec/fault.ts";
import { AddressSpace } from "../../lib/exec/memory.ts";
import { ExecState } from "../../lib/exec/state.ts";
import { ENGINES, stepWith } from "../../lib/exec/jit/step_jit.ts";
import { rawInsn } from "../../lib/isa/decode.ts";
import type { RunOptions } from "../../lib/exec/run.ts";

function execErrorOf(parts: Part[], opts: RunOptions = {}): ExecError {
  try {
    run(parts, opts);
  } catch (e) {
    if (e instanceof ExecError) return e;
    throw e;
  }
  throw new Error("no ExecError");
}

// r0 = 0; r1 = 10; loop: r0 += r1; r1 -= 1; if r1 != 0 goto loop; exit
// retires 2 + 3 × 10 + 1 = 33 instructions and returns 55.
const LOOP: Part[] = [
  mov(0, 0),
  mov(1, 10),
  { ...alu64i("add", 0, 0), code: 0x0f, src: 1 },
  alu64i("sub", 1, 1),
  jmpi("jne", 1, 0, -3),
  exit(),
];

for (const engine of ENGINES) {
  const step = stepWith(engine);
  Deno.test(`[${engine}] step runs at most \`budget\` instructions and resumes where it stopped`, async (t) => {
    await t.step("a budget of 10 stops mid-loop", () => {
      const state = new ExecState(
        compileProgram(program(...LOOP)),
        new AddressSpace(),
      );
      assertEquals(step(state, 10), "running");
      // 2 setup + 8 loop insns: iterations 1–2 complete, then r0 += r1 (r1 = 8), r1 -= 1
      assertEquals([state.steps, state.pc, state.r0, state.getReg(1)], [
        10,
        4,
        27n,
        7n,
      ]);
    });
    await t.step(
      "resuming in slices of 7 gives the same result as one run",
      () => {
        const state = new ExecState(
          compileProgram(program(...LOOP)),
          new AddressSpace(),
        );
        const statuses = [];
        let status;
        do {
          status = step(state, 7);
          statuses.push(status);
        } while (status === "running");
        assertEquals(statuses, [
          "running",
          "running",
          "running",
          "running",
          "exited",
        ]);
        assertEquals([state.steps, state.r0], [33, 55n]);
        assertEquals(run(LOOP).steps, 33);
        assertEquals(step(state, 7), "exited"); // stays exited
        assertEquals(state.steps, 33);
      },
    );
    await t.step("an lddw counts as one instruction", () => {
      assertEquals(run([lddw(0, 1n), exit()]).steps, 2);
    });
  });

  Deno.test(`[${engine}] a state is reused across runs with reset`, () => {
    const space = new AddressSpace();
    const state = new ExecState(compileProgram(program(...LOOP)), space);
    const fp = state.getReg(10);
    assertEquals(step(state, 1000), "exited");
    state.reset();
    assertEquals([state.pc, state.status, state.getReg(0), state.getReg(10)], [
      0,
      "running",
      0n,
      fp,
    ]);
    assertEquals(step(state, 1000), "exited");
    assertEquals([state.r0, state.steps], [55n, 66]); // steps keep counting
    assertEquals(space.regions.length, 2); // still only the one stack region
  });
}

Deno.test("runProgram in a caller's space unmaps what it mapped", async (t) => {
  for (const engine of ENGINES) {
    await t.step(engine, () => {
      const space = new AddressSpace();
      run([st(8, 10, -8, 1), ldx(1, 0, 1, 0), exit()], {
        space,
        mem: new Uint8Array(4),
        engine,
      });
      const live = space.regions.filter((r) => r.live).map((r) => r.name);
      assertEquals(live, []);
      assertEquals(space.regions.map((r) => r.name), [
        "(null region)",
        "mem",
        "stack[0]",
      ]);
    });
  }
});

Deno.test("run-level ExecErrors carry the instruction index", async (t) => {
  await t.step("the step limit", () => {
    const e = execErrorOf([ja(-1)], { maxSteps: 1000 });
    assertEquals([e.insnIndex, e.reason], [
      0,
      "step limit of 1000 instructions exceeded",
    ]);
  });
  await t.step("falling off the end", () => {
    const e = execErrorOf([mov(0, 0), mov(1, 0)]);
    assertEquals([e.insnIndex, e.reason], [
      1,
      "fell off the end of the program",
    ]);
  });
  await t.step("falling off after an lddw names the lddw", () => {
    const e = execErrorOf([mov(0, 0), lddw(1, 5n)]);
    assertEquals([e.insnIndex, e.reason], [
      1,
      "fell off the end of the program",
    ]);
  });
  await t.step("a taken jump out of range", () => {
    const e = execErrorOf([mov(0, 0), ja(5), exit()]);
    assertEquals([e.insnIndex, e.reason], [
      1,
      "jump out of range from insn 1 to 7",
    ]);
  });
  await t.step("an untaken jump out of range is harmless", () => {
    assertEquals(r0Of([mov(0, 4), jmpi("jeq", 0, 0, -9), exit()]), 4n);
  });
  await t.step("a jump to the end of the program is out of range", () => {
    const e = execErrorOf([mov(0, 0), ja(1), exit()]);
    assertEquals(e.reason, "jump out of range from insn 1 to 3");
  });
  await t.step("a jump into the second half of an lddw", () => {
    const e = execErrorOf([ja(1), lddw(0, 1n), exit()]);
    assertEquals([e.insnIndex, e.reason], [
      2,
      "jump into the middle of ldimm64 insn",
    ]);
  });
  await t.step("a register above r10", () => {
    const e = execErrorOf([mov(0, 0), rawInsn(0xb7, 11, 0, 0, 1), exit()]);
    assertEquals([e.insnIndex, e.reason], [1, "R11 is invalid"]);
  });
  await t.step("addr_space_cast has no arena to convert into", () => {
    const e = execErrorOf([rawInsn(0xbf, 1, 2, 1, 1), exit()]);
    assertEquals(e.insnIndex, 0);
    ok(e.reason.startsWith("addr_space_cast"));
  });
});

Deno.test("ld_abs / ld_ind read the packet in network byte order", async (t) => {
  const packet = new Uint8Array([0x12, 0x34, 0x56, 0x78, 0x9a]);
  await t.step("ld_abs of each size", () => {
    assertEquals(r0Of([ldAbs(1, 4), exit()], { mem: packet }), 0x9an);
    assertEquals(r0Of([ldAbs(2, 0), exit()], { mem: packet }), 0x1234n);
    assertEquals(r0Of([ldAbs(4, 1), exit()], { mem: packet }), 0x3456789an);
  });
  await t.step("ld_ind adds the source register", () => {
    assertEquals(
      r0Of([mov(2, 2), ldInd(2, 2, 1), exit()], { mem: packet }),
      0x789an,
    );
  });
  await t.step("the `packet` option overrides mem", () => {
    const r = r0Of([ldAbs(2, 0), exit()], { mem: new Uint8Array(4), packet });
    assertEquals(r, 0x1234n);
  });
  await t.step("out of bounds ends the program with r0 = 0", () => {
    const tail: Part[] = [mov(0, 77), exit()];
    const result = run([mov(0, 5), ldAbs(4, 2), ...tail], { mem: packet });
    // the ld_abs retires (like the exit it turns into), the tail never runs
    assertEquals([result.r0, result.steps, result.state.pc], [0n, 2, 1]);
    assertEquals(
      r0Of([mov(6, 99), mov(2, -1), ldInd(1, 2, 0), movr(0, 6), exit()], {
        mem: packet,
      }),
      0n,
    );
  });
  await t.step("without a packet it is an ExecError", () => {
    const e = execErrorOf([ldAbs(1, 0), exit()]);
    assertEquals([e.insnIndex, e.reason], [
      0,
      "BPF_LD_[ABS|IND] without a packet",
    ]);
  });
});
