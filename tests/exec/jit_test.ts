/**
 * The JIT's own machinery: block boundaries, the translation cache, what may
 * reach the generated source, the generated function's budget contract, and
 * exact step counts when a fault or a budget stops a run inside a block.
 */
import {
  deepStrictEqual as assertEquals,
  notStrictEqual,
  ok,
  throws,
} from "node:assert/strict";
import {
  alu64i,
  call,
  exit,
  ja,
  jmpi,
  lddw,
  ldx,
  mov,
  type Part,
  program,
  st,
} from "./build.ts";
import {
  type CompiledProgram,
  compileProgram,
} from "../../lib/exec/compile.ts";
import { step } from "../../lib/exec/interp.ts";
import { AddressSpace } from "../../lib/exec/memory.ts";
import { ExecState } from "../../lib/exec/state.ts";
import { findBlocks, usedRegisters } from "../../lib/exec/jit/blocks.ts";
import {
  JIT_BUDGET,
  JIT_EXITED,
  JIT_FAULTED,
} from "../../lib/exec/jit/codegen.ts";
import { lit } from "../../lib/exec/jit/emit_insn.ts";
import { jitCompile } from "../../lib/exec/jit/jit.ts";
import { stepJit } from "../../lib/exec/jit/step_jit.ts";

const compiled = (...parts: Part[]): CompiledProgram =>
  compileProgram(program(...parts));
const stateOf = (prog: CompiledProgram): ExecState =>
  new ExecState(prog, new AddressSpace());
/** Registers, pc, steps and status: what must match between engines. */
const snapshot = (s: ExecState) => [s.status, s.pc, s.steps, [...s.regs]];

/** Twenty `r0 += k` in a row, then exit: one block of 21 instructions. */
const STRAIGHT: Part[] = [
  ...Array.from({ length: 20 }, (_, k) => alu64i("add", 0, k + 1)),
  exit(),
];

Deno.test("blocks start at slot 0, jump targets, after control transfers and at trap rows", () => {
  // 0: r0 = 1; 1: if r0 == 1 goto 4; 2: lddw (slots 2–3); 4: r0 += 1; 5: exit
  const prog = compiled(
    mov(0, 1),
    jmpi("jeq", 0, 1, 2),
    lddw(1, 5n),
    alu64i("add", 0, 1),
    exit(),
  );
  const map = findBlocks(prog);
  // Row 3 is lddw's second slot (a trap row), row 6 the fall-off trap.
  assertEquals(map.blocks.map((b) => [b.start, b.rows]), [
    [0, [0, 1]],
    [2, [2]],
    [3, [3]],
    [4, [4, 5]],
    [6, [6]],
  ]);
  assertEquals([...map.rest.subarray(0, 7)], [2, 1, 1, 1, 2, 1, 1]);
});

Deno.test("a program is translated once and cached", () => {
  const prog = compiled(mov(0, 1), exit());
  const first = jitCompile(prog);
  assertEquals(jitCompile(prog), first);
  notStrictEqual(jitCompile(compiled(mov(0, 1), exit())), first);
  ok(first.translateMs >= 0);
});

Deno.test("only integers from the program reach the generated source", async (t) => {
  await t.step(
    "programs differing only in numbers differ only in literals",
    () => {
      const shape = (k: number, off: number) =>
        compiled(
          mov(1, k),
          st(4, 10, off, k),
          ldx(4, 0, 10, off),
          jmpi("jgt", 0, k, 1),
          lddw(2, BigInt(k)),
          exit(),
        );
      const strip = (p: CompiledProgram) =>
        jitCompile(p).source.replace(/\(-\d+\)|\d+/g, "0");
      assertEquals(strip(shape(7, -8)), strip(shape(-123456, -64)));
    },
  );
  await t.step("trap messages stay out of the source", () => {
    const source = jitCompile(compiled(mov(0, 1), ja(9))).source;
    ok(!source.includes("fell off") && !source.includes("out of range"));
    ok(source.includes("traps["));
  });
  await t.step("lit refuses anything but a safe integer", () => {
    assertEquals([lit(5), lit(-5)], ["5", "(-5)"]);
    for (const bad of [1.5, NaN, Infinity, 2 ** 60]) throws(() => lit(bad));
  });
});

Deno.test("the generated function runs whole blocks only", async (t) => {
  await t.step("enough budget: runs to exit like the interpreter", () => {
    const prog = compiled(...STRAIGHT);
    const a = stateOf(prog), b = stateOf(prog);
    assertEquals(jitCompile(prog).run(a, 100), JIT_EXITED);
    assertEquals(step(b, 100), "exited");
    a.status = "exited"; // set by stepJit from the code
    assertEquals(snapshot(a), snapshot(b));
    assertEquals(a.r0, 210n);
  });
  await t.step("a budget smaller than the block: nothing runs", () => {
    const state = stateOf(compiled(...STRAIGHT));
    assertEquals(jitCompile(state.prog).run(state, 20), JIT_BUDGET);
    assertEquals([state.pc, state.steps, state.r0], [0, 0, 0n]);
  });
  await t.step(
    "a fault mid-block undoes the charge of what did not retire",
    () => {
      const prog = compiled(
        mov(0, 1),
        alu64i("add", 0, 1),
        ldx(8, 1, 10, -520),
        alu64i("add", 0, 1),
        exit(),
      );
      const a = stateOf(prog), b = stateOf(prog);
      assertEquals(jitCompile(prog).run(a, 100), JIT_FAULTED);
      assertEquals(step(b, 100), "faulted");
      assertEquals(snapshot(a), snapshot(b));
      assertEquals([a.pc, a.steps, a.r0, a.error?.message], [
        2,
        2,
        2n,
        b.error?.message,
      ]);
    },
  );
});

Deno.test("stepJit retires exactly `budget` instructions inside a block", async (t) => {
  await t.step("7 of a 21-instruction block, then the rest", () => {
    const a = stateOf(compiled(...STRAIGHT)),
      b = stateOf(compiled(...STRAIGHT));
    assertEquals([stepJit(a, 7), step(b, 7)], ["running", "running"]);
    assertEquals(snapshot(a), snapshot(b));
    assertEquals([a.pc, a.steps, a.r0], [7, 7, 28n]);
    assertEquals([stepJit(a, 100), step(b, 100)], ["exited", "exited"]);
    assertEquals(snapshot(a), snapshot(b));
  });
  await t.step(
    "a loop stopped at every budget from 1 to 40 resumes identically",
    () => {
      const loop = compiled(
        mov(0, 0),
        mov(1, 9),
        alu64i("add", 0, 3),
        alu64i("sub", 1, 1),
        jmpi("jne", 1, 0, -3),
        exit(),
      );
      for (let budget = 1; budget <= 40; budget++) {
        const a = stateOf(loop), b = stateOf(loop);
        stepJit(a, budget);
        step(b, budget);
        assertEquals(snapshot(a), snapshot(b), `budget ${budget}`);
        assertEquals([stepJit(a, 1000), step(b, 1000)], ["exited", "exited"]);
        assertEquals(snapshot(a), snapshot(b), `budget ${budget}, resumed`);
      }
    },
  );
  await t.step("a helper sees the same steps and pc", () => {
    const seen: number[][] = [];
    const prog = compiled(
      mov(0, 0),
      alu64i("add", 0, 1),
      call(3),
      alu64i("add", 0, 1),
      call(3),
      exit(),
    );
    for (const run of [stepJit, step]) {
      const state = new ExecState(prog, new AddressSpace(), {
        helpers: new Map([[
          3,
          (vm) => void seen.push([vm.insnIndex, vm.steps]),
        ]]),
      });
      assertEquals(run(state, 100), "exited");
    }
    assertEquals(seen, [[2, 2], [4, 4], [2, 2], [4, 4]]);
  });
});

Deno.test("only the registers a program names live in locals; the others stay in the register file", async (t) => {
  // r1 is named nowhere: a helper still reads it as set before the run,
  // and it is the same after.
  const prog = compiled(mov(3, 5), call(7), alu64i("add", 0, 1), exit());
  assertEquals(
    usedRegisters(prog).flatMap((u, r) => (u ? [r] : [])),
    [0, 3],
  );
  const source = jitCompile(prog).source;
  ok(source.includes("l3 = R[6]") && !/\bl1\b/.test(source));
  await t.step(
    "a helper sees an unnamed argument; a named one is stored before the call",
    () => {
      for (const run of [stepJit, step]) {
        const state = new ExecState(prog, new AddressSpace(), {
          helpers: new Map([[7, (vm) => vm.argLo(1) * 10 + vm.argLo(3)]]),
        });
        state.setReg(1, 4n);
        assertEquals(run(state, 100), "exited");
        assertEquals([state.r0, state.getReg(1), state.getReg(3)], [
          46n,
          4n,
          5n,
        ]);
      }
    },
  );
});

Deno.test("the stepwise entry starts and stops at any instruction, across blocks", () => {
  // a loop (blocks of 2, 3 and 1) stopped after every count from 1 to 40
  const loop = compiled(
    mov(0, 0),
    mov(1, 9),
    alu64i("add", 0, 3),
    alu64i("sub", 1, 1),
    jmpi("jne", 1, 0, -3),
    exit(),
  );
  const stepwise = jitCompile(loop).stepwise();
  assertEquals(jitCompile(loop).stepwise(), stepwise); // translated once
  assertEquals(findBlocks(loop, true).blocks.length, 7); // 6 rows + the fall-off trap
  for (let count = 1; count <= 40; count++) {
    const a = stateOf(loop), b = stateOf(loop);
    const code = stepwise(a, count);
    const status = step(b, count);
    assertEquals(code === JIT_EXITED ? "exited" : "running", status);
    if (code === JIT_EXITED) a.status = "exited";
    assertEquals(snapshot(a), snapshot(b), `count ${count}`);
    // and from there, in ones
    while (a.status === "running") {
      const c = stepwise(a, 1);
      if (c === JIT_EXITED) a.status = "exited";
      step(b, 1);
      assertEquals(snapshot(a), snapshot(b), `count ${count}, resumed`);
    }
  }
});
