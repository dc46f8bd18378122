/**
 * Interpreter throughput: four programs (ALU, memory, calls, helper calls),
 * each retiring a known number of
 * instructions, so time per iteration / instructions = ns per instruction.
 *
 *   deno bench --allow-read bench/interp_bench.ts
 *
 * Besides Deno.bench's table, the module prints its own ns/insn figure for
 * each program (timed over several runs after a warm-up).
 * @module
 */
import { decodeRaw } from "../lib/isa/decode.ts";
import type { Insn, RawInsn } from "../lib/isa/insn.ts";
import { type CompiledProgram, compileProgram } from "../lib/exec/compile.ts";
import { defaultHelpers, runProgram } from "../lib/exec/run.ts";
import { step } from "../lib/exec/interp.ts";
import { AddressSpace, regionAddress } from "../lib/exec/memory.ts";
import { ExecState } from "../lib/exec/state.ts";

import {
  aluLoop,
  callLoop,
  helperLoop,
  ITERATIONS,
  memoryLoop,
} from "./bench_programs.ts";

interface Case {
  readonly name: string;
  readonly program: CompiledProgram;
  readonly insns: number;
  readonly mem?: Uint8Array;
}

function prepare(
  name: string,
  raws: RawInsn[],
  insns: number,
  mem?: Uint8Array,
): Case {
  const decoded: Insn[] = decodeRaw(raws);
  const program = compileProgram(decoded);
  const steps = runProgram(program, { mem }).steps;
  if (steps !== insns) {
    throw new Error(`${name}: expected ${insns} insns, ran ${steps}`);
  }
  return { name, program, insns, mem };
}

const CASES: Case[] = [
  prepare("alu loop", aluLoop(), 3 + 12 * ITERATIONS, undefined),
  prepare("memory loop", memoryLoop(), 4 + 12 * ITERATIONS, new Uint8Array(16)),
  prepare("call loop", callLoop(), 4 + 10 * ITERATIONS, undefined),
  prepare("helper loop", helperLoop(), 4 + 4 * ITERATIONS, undefined),
];

/** Best of several timed runs after a warm-up: the least disturbed by other load. */
function nsPerInsn(c: Case): number {
  for (let i = 0; i < 5; i++) runProgram(c.program, { mem: c.mem });
  let best = Infinity;
  for (let i = 0; i < 15; i++) {
    const t0 = performance.now();
    runProgram(c.program, { mem: c.mem });
    best = Math.min(best, performance.now() - t0);
  }
  return (best * 1e6) / c.insns;
}

for (const c of CASES) {
  Deno.bench({
    name: `${c.name} (${c.insns} insns)`,
    warmup: 20,
    n: 60,
    fn: () => {
      runProgram(c.program, { mem: c.mem });
    },
  });
}

for (const c of CASES) {
  console.log(
    `${c.name}: ${nsPerInsn(c).toFixed(2)} ns/insn over ${c.insns} insns`,
  );
}

// Small quanta, as the kernel's scheduler hands them out: one `step` call
// per quantum on a state kept across runs (bench/jit_bench.ts has the same
// rows for both engines).
const QUANTA = [1, 4, 16, 1 << 30];
console.log(
  "ns/insn by quantum " +
    QUANTA.map((q) => `q=${q === 1 << 30 ? "∞" : q}`.padStart(10)).join(""),
);
for (const c of CASES) {
  const space = new AddressSpace();
  const memId = c.mem ? space.mapRegionId("mem", c.mem.slice()) : 0;
  const state = new ExecState(c.program, space, { helpers: defaultHelpers() });
  const row = QUANTA.map((q) => {
    let best = Infinity;
    for (let round = 0; round < 8; round++) {
      state.reset();
      if (memId !== 0) state.setReg(1, regionAddress(memId));
      const before = state.steps;
      const t0 = performance.now();
      while (step(state, q) === "running");
      if (state.status !== "exited") throw new Error(`${c.name}: no exit`);
      best = Math.min(
        best,
        (performance.now() - t0) * 1e6 / (state.steps - before),
      );
    }
    return best.toFixed(2).padStart(10);
  });
  console.log(`${c.name.padEnd(19)}${row.join("")}`);
}
