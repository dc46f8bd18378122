/**
 * Both engines (interpreter and JIT) against the kernel's JIT on the same
 * programs: the three loops of tests/fixtures/bench/loops.c, linked by our
 * ELF loader exactly as libbpf submits them (each run through `runProgram`,
 * set-up included; bench/jit_bench.ts times execution alone). The kernel's time per run was recorded by
 * `../shared/oracle/oracle run --repeat 10000` into loops.oracle-run.json
 * (re-record with `deno task fixtures`).
 *
 *   deno bench --allow-read bench/kernel_ratio_bench.ts
 *
 * Prints ns per executed instruction for each engine and its ratio to the
 * kernel's.
 * @module
 */
import { loadObject } from "../lib/elf/object.ts";
import { compileProgram } from "../lib/exec/compile.ts";
import { runProgram } from "../lib/exec/run.ts";
import { ENGINES } from "../lib/exec/jit/step_jit.ts";

const dir = new URL("../tests/fixtures/bench/", import.meta.url);
const object = loadObject(
  Deno.readFileSync(new URL("loops.o", dir)),
  "loops.o",
);
const kernel: { program: string; duration_ns: number }[] = Deno
  .readTextFileSync(
    new URL("loops.oracle-run.json", dir),
  ).trim().split("\n").map((l) => JSON.parse(l));
const ctx = new Uint8Array(64);

const cases = object.programs.map((p) => {
  const compiled = compileProgram(p.insns);
  const { steps } = runProgram(compiled, { ctx });
  const kernelNs = kernel.find((k) => k.program === p.name)?.duration_ns;
  return { name: p.name, compiled, steps, kernelNs };
});

for (const c of cases) {
  for (const engine of ENGINES) {
    Deno.bench({
      name: `${c.name} [${engine}] (${c.steps} insns per run)`,
      group: c.name,
      baseline: engine === "interp",
      fn: () => {
        runProgram(c.compiled, { ctx, engine });
      },
    });
  }
}

/** Best of 30 timed runs after 300 warm-up runs: the run least disturbed by other load. */
function bestNs(run: () => void): number {
  for (let i = 0; i < 300; i++) run(); // let V8 optimise the stepper first
  let best = Infinity;
  for (let i = 0; i < 30; i++) {
    const t0 = performance.now();
    run();
    best = Math.min(best, performance.now() - t0);
  }
  return best * 1e6;
}

console.log(
  "program      insns/run  engine  bpfsim ns/insn  kernel JIT ns/insn  ratio",
);
for (const c of cases) {
  const theirs = c.kernelNs === undefined ? NaN : c.kernelNs / c.steps;
  for (const engine of ENGINES) {
    const ours = bestNs(() => runProgram(c.compiled, { ctx, engine })) /
      c.steps;
    console.log(
      `${c.name.padEnd(12)} ${String(c.steps).padStart(9)}  ${
        engine.padEnd(6)
      }  ${ours.toFixed(2).padStart(14)}  ${theirs.toFixed(3).padStart(18)}  ${
        (ours / theirs).toFixed(1).padStart(5)
      }x`,
    );
  }
}
