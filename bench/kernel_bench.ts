/**
 * The simulated kernel's speed: 4 CPUs running a lock-protected increment
 * on one shared value (contending), and the same work on 1 CPU, so the
 * scheduler's cost per step shows as the difference.
 *
 *   deno bench --allow-read bench/kernel_bench.ts
 * @module
 */
import { assemble } from "../lib/isa/asm.ts";
import { Kernel } from "../lib/kernel/kernel.ts";

// A loop of 200 locked increments per invocation: 2 + 200 × 12 + 2 insns.
const LOCKED_LOOP = assemble(`
    r6 = r1
    r7 = 200
loop:
    r1 = r6
    call 93
    r2 = *(u64 *)(r6 + 8)
    r2 += 1
    *(u64 *)(r6 + 8) = r2
    r1 = r6
    call 94
    r7 -= 1
    if r7 == 0 goto out
    r3 = r7
    r3 &= 7
    goto loop
out:
    r0 = 0
    exit
`);

function world(
  cpus: number,
  maxQuantum: number,
  engine: "interp" | "jit" = "interp",
): { steps: number; insns: number } {
  const k = new Kernel({ cpus, seed: 1, keepTrace: false, maxQuantum, engine });
  const value = k.space.mapRegion("map_value", 16);
  const prog = k.load("locked_loop", LOCKED_LOOP);
  for (let i = 0; i < 8; i++) k.submit(i % cpus, prog, { r1: value });
  const summary = k.run();
  if (k.space.read(value + 8n, 8) !== 1600n) {
    throw new Error("lost an increment");
  }
  return {
    steps: summary.steps,
    insns: k.cpus.reduce((n, c) => n + c.retired, 0),
  };
}

for (const [cpus, q] of [[1, 64], [4, 1], [4, 4], [4, 64]]) {
  Deno.bench(
    `${cpus} CPU(s), quantum ≤ ${q}: 8 × 200 locked increments`,
    () => {
      world(cpus, q);
    },
  );
}

const CONFIGS: [number, number, "interp" | "jit"][] = [
  [1, 64, "interp"],
  [4, 1, "interp"],
  [4, 4, "interp"],
  [4, 64, "interp"],
  [4, 64, "jit"],
  [4, 1024, "jit"],
];
for (const [cpus, q, engine] of CONFIGS) {
  for (let i = 0; i < 20; i++) world(cpus, q, engine);
  let best = Infinity;
  let insns = 0;
  for (let i = 0; i < 20; i++) {
    const t0 = performance.now();
    insns = world(cpus, q, engine).insns;
    best = Math.min(best, performance.now() - t0);
  }
  console.log(
    `${cpus} CPU(s), quantum ≤ ${q}, ${engine}: ${
      (insns / best / 1000).toFixed(2)
    } M simulated insns/s ` +
      `(${(best * 1e6 / insns).toFixed(1)} ns/insn, ${insns} insns)`,
  );
}
