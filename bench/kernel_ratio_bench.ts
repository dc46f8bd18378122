/**
 * The interpreter against the kernel's JIT on the same programs: the three
 * loops of tests/fixtures/bench/loops.c, linked by our ELF loader exactly as
 * libbpf submits them. The kernel's time per run was recorded by
 * `../shared/oracle/oracle run --repeat 10000` into loops.oracle-run.json
 * (re-record with `deno task fixtures`).
 *
 *   deno bench --allow-read bench/kernel_ratio_bench.ts
 *
 * Prints ns per executed instruction for both and their ratio.
 * @module
 */
import { loadObject } from "../lib/elf/object.ts";
import { compileProgram } from "../lib/exec/compile.ts";
import { runProgram } from "../lib/exec/run.ts";

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
  Deno.bench({
    name: `${c.name} (${c.steps} insns per run)`,
    fn: () => {
      runProgram(c.compiled, { ctx });
    },
  });
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
  "program      insns/run  bpfsim ns/insn  kernel JIT ns/insn  ratio",
);
for (const c of cases) {
  const ours = bestNs(() => runProgram(c.compiled, { ctx })) / c.steps;
  const theirs = c.kernelNs === undefined ? NaN : c.kernelNs / c.steps;
  console.log(
    `${c.name.padEnd(12)} ${String(c.steps).padStart(9)}  ${
      ours.toFixed(2).padStart(14)
    }  ${theirs.toFixed(3).padStart(18)}  ${
      (ours / theirs).toFixed(1).padStart(5)
    }x`,
  );
}
