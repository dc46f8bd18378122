/**
 * JIT throughput against the interpreter and the kernel's JIT: the four
 * programs of bench/interp_bench.ts (bench_programs.ts) and
 * the three loops of tests/fixtures/bench/loops.o, whose kernel time per run
 * is recorded in loops.oracle-run.json. Also the translation cost per
 * instruction (block analysis, source generation and `new Function`; V8's
 * own optimisation happens later, while the program runs).
 *
 *   deno bench --allow-read bench/jit_bench.ts
 *
 * Prints ns per executed instruction for both engines and the ratios, the
 * same by scheduler quantum (1, 4, 16 instructions per entry, unbounded),
 * and the translation cost per instruction with the break-even point.
 * @module
 */
import { decodeRaw } from "../lib/isa/decode.ts";
import { loadObject } from "../lib/elf/object.ts";
import { type CompiledProgram, compileProgram } from "../lib/exec/compile.ts";
import { defaultHelpers, runProgram } from "../lib/exec/run.ts";
import { AddressSpace, regionAddress } from "../lib/exec/memory.ts";
import { ExecState } from "../lib/exec/state.ts";
import { jitCompile } from "../lib/exec/jit/jit.ts";
import { randomProgram } from "../lib/exec/jit/fuzz.ts";
import { type Engine, stepWith } from "../lib/exec/jit/step_jit.ts";
import { aluLoop, callLoop, helperLoop, memoryLoop } from "./bench_programs.ts";

interface Case {
  readonly name: string;
  readonly program: CompiledProgram;
  readonly steps: number;
  readonly mem?: Uint8Array;
  readonly ctx?: Uint8Array;
  /** Kernel JIT ns per run, when recorded. */
  readonly kernelNs?: number;
}

const dir = new URL("../tests/fixtures/bench/", import.meta.url);
const object = loadObject(
  Deno.readFileSync(new URL("loops.o", dir)),
  "loops.o",
);
const kernel: { program: string; duration_ns: number }[] = Deno
  .readTextFileSync(new URL("loops.oracle-run.json", dir))
  .trim().split("\n").map((l) => JSON.parse(l));

function prepare(
  name: string,
  program: CompiledProgram,
  io: { mem?: Uint8Array; ctx?: Uint8Array },
  kernelNs?: number,
): Case {
  const ref = runProgram(program, io);
  const jit = runProgram(program, { ...io, engine: "jit" });
  if (ref.r0 !== jit.r0 || ref.steps !== jit.steps) {
    throw new Error(`${name}: the engines disagree`);
  }
  return { name, program, steps: ref.steps, ...io, kernelNs };
}

const ctx = new Uint8Array(64);
const CASES: Case[] = [
  prepare("alu loop", compileProgram(decodeRaw(aluLoop())), {}),
  prepare("memory loop", compileProgram(decodeRaw(memoryLoop())), {
    mem: new Uint8Array(16),
  }),
  prepare("call loop", compileProgram(decodeRaw(callLoop())), {}),
  prepare("helper loop", compileProgram(decodeRaw(helperLoop())), {}),
  ...object.programs.map((p) =>
    prepare(
      `loops.o ${p.name}`,
      compileProgram(p.insns),
      { ctx },
      kernel.find((k) => k.program === p.name)?.duration_ns,
    )
  ),
];

/**
 * One run on a state kept across runs and reset each time, as a simulated
 * CPU does — so the figure is execution, not the set-up of `runProgram`
 * (address space, regions, state), and compares with the kernel's
 * `bpf_prog_test_run` duration, which also times the program alone.
 */
function runOn(c: Case, engine: Engine, quantum = 1 << 30): () => void {
  const space = new AddressSpace();
  const input = c.ctx ?? c.mem;
  const inputId = input
    ? space.mapRegionId(c.ctx ? "ctx" : "mem", input.slice())
    : 0;
  const state = new ExecState(c.program, space, {
    helpers: defaultHelpers(),
    packetRegion: inputId,
  });
  const stepper = stepWith(engine);
  return () => {
    state.reset();
    if (input) {
      state.setReg(1, regionAddress(inputId));
      state.setReg(2, BigInt(input.length));
    }
    // A quantum smaller than a run is how the kernel's scheduler drives a
    // CPU: one `step` call per quantum, each paying the engine's entry cost.
    let status = stepper(state, quantum);
    while (status === "running") status = stepper(state, quantum);
    if (status !== "exited") throw new Error("no exit");
  };
}

for (const c of CASES) {
  for (const engine of ["interp", "jit"] as const) {
    Deno.bench({
      name: `${c.name} [${engine}] (${c.steps} insns)`,
      group: c.name,
      baseline: engine === "interp",
      fn: runOn(c, engine),
    });
  }
}

/** Best of `rounds` timed runs after a warm-up long enough for V8 to optimise. */
function bestNs(run: () => void, steps: number, rounds = 30): number {
  const warm = Math.max(5, Math.ceil(3e6 / steps));
  for (let i = 0; i < warm; i++) run();
  let best = Infinity;
  for (let i = 0; i < rounds; i++) {
    const t0 = performance.now();
    run();
    best = Math.min(best, performance.now() - t0);
  }
  return best * 1e6;
}

console.log(
  "program               insns/run  interp ns/insn  jit ns/insn  speed-up  kernel JIT ns/insn  jit/kernel",
);
for (const c of CASES) {
  const interp = bestNs(runOn(c, "interp"), c.steps) / c.steps;
  const jit = bestNs(runOn(c, "jit"), c.steps) / c.steps;
  const theirs = c.kernelNs === undefined ? NaN : c.kernelNs / c.steps;
  console.log(
    `${c.name.padEnd(21)} ${String(c.steps).padStart(9)}  ${
      interp.toFixed(2).padStart(14)
    }  ${jit.toFixed(3).padStart(11)}  ${
      (interp / jit).toFixed(1).padStart(7)
    }x  ${
      Number.isNaN(theirs) ? "-".padStart(18) : theirs.toFixed(3).padStart(18)
    }  ${Number.isNaN(theirs) ? "-" : (jit / theirs).toFixed(1) + "x"}`,
  );
}

// Small quanta: the scheduler hands a CPU 1–8 instructions at a time (and
// exactly 1 while an NMI may strike), so the cost of entering an engine
// matters as much as its speed once inside.
const QUANTA = [1, 4, 16, 1 << 30];
const quantumCases = CASES.filter((c) =>
  ["alu loop", "call loop", "helper loop"].includes(c.name)
);
console.log(
  "\nns/insn by quantum    " +
    QUANTA.map((q) => `q=${q === 1 << 30 ? "∞" : q}`.padStart(16)).join(""),
);
/**
 * ns/insn of `runs` (one per engine), timed in alternation so that load
 * from other processes hits both alike; best of `rounds` each.
 */
function alternateNs(runs: (() => void)[], steps: number, rounds = 12) {
  const best = runs.map(() => Infinity);
  for (let round = 0; round < rounds; round++) {
    runs.forEach((run, i) => {
      const t0 = performance.now();
      run();
      best[i] = Math.min(best[i], performance.now() - t0);
    });
  }
  return best.map((ms) => ms * 1e6 / steps);
}
for (const c of quantumCases) {
  const rows = QUANTA.map((q) => {
    const runs = (["interp", "jit"] as const).map((e) => runOn(c, e, q));
    for (const run of runs) for (let i = 0; i < 3; i++) run(); // warm up
    return alternateNs(runs, c.steps);
  });
  (["interp", "jit"] as const).forEach((engine, e) => {
    const row = rows.map((r) => r[e].toFixed(2).padStart(16));
    console.log(`${`${c.name} [${engine}]`.padEnd(22)}${row.join("")}`);
  });
  console.log(
    `${"  jit speed-up".padEnd(22)}${
      rows.map((r) => `${(r[0] / r[1]).toFixed(1)}x`.padStart(16)).join("")
    }`,
  );
}

// Translation cost: fresh, distinct programs, so no cache can help. Two
// parts: ours (blocks, source, `new Function`, which compiles the function
// eagerly) and the first call, which would pay V8's compile if it were
// lazy. Random programs of growing size give a fixed cost
// per program and a cost per instruction (least-squares line); with the
// speed gap of the ALU loop, that says after how many executed
// instructions the JIT has paid for itself.
function translationUs(size: number, rounds: number) {
  let ours = Infinity, total = Infinity, insns = 0;
  for (let round = 0; round < rounds; round++) {
    // a different program each round: equal sources share V8's compile
    const fresh = compileProgram(
      decodeRaw(randomProgram(size * 1000 + round, size)),
    );
    insns = fresh.insns.length;
    const state = new ExecState(fresh, new AddressSpace());
    const t0 = performance.now();
    const jit = jitCompile(fresh);
    const t1 = performance.now();
    jit.run(state, 0); // budget 0: compiled, entered, nothing runs
    const t2 = performance.now();
    ours = Math.min(ours, (t1 - t0) * 1000);
    total = Math.min(total, (t2 - t0) * 1000);
  }
  return { insns, ours, total };
}
const points = [50, 200, 500, 1000, 2000].map((size) => translationUs(size, 9));
/** Least-squares line through (insns, cost): [fixed µs, µs per insn]. */
function fit(cost: (p: (typeof points)[number]) => number): [number, number] {
  const mx = points.reduce((a, p) => a + p.insns, 0) / points.length;
  const my = points.reduce((a, p) => a + cost(p), 0) / points.length;
  const slope =
    points.reduce((a, p) => a + (p.insns - mx) * (cost(p) - my), 0) /
    points.reduce((a, p) => a + (p.insns - mx) ** 2, 0);
  return [my - slope * mx, slope];
}
const [oursFixed, oursSlope] = fit((p) => p.ours);
const [fixed, slope] = fit((p) => p.total);
console.log(
  `\ntranslation, µs (translate / translate + first call): ${
    points.map((p) =>
      `${p.insns} insns ${p.ours.toFixed(0)}/${p.total.toFixed(0)}`
    ).join(", ")
  }\n  translate ≈ ${oursFixed.toFixed(0)} µs + ${
    oursSlope.toFixed(2)
  } µs/insn; with the first call ≈ ${fixed.toFixed(0)} µs + ${
    slope.toFixed(2)
  } µs/insn`,
);
const aluGap = bestNs(runOn(CASES[0], "interp"), CASES[0].steps, 10) /
    CASES[0].steps -
  bestNs(runOn(CASES[0], "jit"), CASES[0].steps, 10) / CASES[0].steps;
console.log(
  `  break-even (ALU loop, ${aluGap.toFixed(2)} ns/insn saved): each ` +
    `translated insn costs as much as ≈ ${
      (slope * 1000 / aluGap).toFixed(0)
    } interpreted insns; a 100-insn program pays off after ≈ ${
      (Math.max(0, fixed + 100 * slope) * 1000 / aluGap / 1000).toFixed(0)
    }K executed insns`,
);
