/**
 * The simulated kernel's speed, on both engines:
 * - simulated instructions per second with 4 CPUs contending on one
 *   bpf_spin_lock (8 invocations × 200 locked increments of one value),
 *   with the engine running many picks per call (the default) and with one
 *   engine call per pick (`pickRuns: false`, the reference);
 * - what the scheduler costs there: the same invocations on one CPU in
 *   quanta of up to 4096 cost only their instructions (helpers included);
 *   the contended run's excess over that is the scheduler's (picks, spins,
 *   contention), set against the instructions;
 * - the scheduler's cost per pick: 4 CPUs running a loop without helper
 *   calls, picked again after every instruction (quantum 1) versus after
 *   up to 4096 — the difference per pick is what a pick costs, set against
 *   what one instruction costs.
 *
 *   deno bench --allow-read bench/kernel_bench.ts
 *   deno run --allow-read bench/kernel_bench.ts     (the table only)
 * @module
 */
import { assemble } from "../lib/isa/asm.ts";
import type { Insn } from "../lib/isa/insn.ts";
import { Kernel } from "../lib/kernel/kernel.ts";
import type { Engine } from "../lib/exec/jit/step_jit.ts";

const ENGINES: readonly Engine[] = ["interp", "jit"];

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

// Plain ALU and branches: nothing but instructions to schedule (2 + 3 × 2000 + 1).
const PLAIN_LOOP = assemble(`
    r0 = 0
    r1 = 2000
loop:
    r0 += r1
    r1 -= 1
    if r1 != 0 goto loop
    exit
`);

/** One run: scheduler steps and instructions retired. */
interface WorldRun {
  readonly steps: number;
  readonly insns: number;
}

function world(
  insns: readonly Insn[],
  cpus: number,
  maxQuantum: number,
  engine: Engine,
  pickRuns = true,
): WorldRun {
  const k = new Kernel({
    cpus,
    seed: 1,
    keepTrace: false,
    maxQuantum,
    engine,
    pickRuns,
  });
  const value = k.space.mapRegion("map_value", 16);
  const prog = k.load("loop", insns);
  for (let i = 0; i < 8; i++) k.submit(i % cpus, prog, { r1: value });
  const summary = k.run();
  if (insns === LOCKED_LOOP && k.space.read(value + 8n, 8) !== 1600n) {
    throw new Error("lost an increment");
  }
  return {
    steps: summary.steps,
    insns: k.cpus.reduce((n, c) => n + c.retired, 0),
  };
}

for (const engine of ENGINES) {
  for (const q of [1, 4, 64]) {
    Deno.bench(
      `4 CPUs contending, quantum ≤ ${q}, ${engine}: 8 × 200 locked increments`,
      { group: `contended ${engine}` },
      () => {
        world(LOCKED_LOOP, 4, q, engine);
      },
    );
  }
  for (const q of [1, 4096]) {
    Deno.bench(
      `4 CPUs, plain loop, quantum ≤ ${q}, ${engine}`,
      { group: `scheduler ${engine}` },
      () => {
        world(PLAIN_LOOP, 4, q, engine);
      },
    );
  }
}

/** Best wall time per run (ms) over `n` runs after warming up. */
function best(run: () => WorldRun, n = 40): { ms: number; run: WorldRun } {
  let result = run();
  for (let i = 0; i < 5; i++) run();
  let ms = Infinity;
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    result = run();
    ms = Math.min(ms, performance.now() - t0);
  }
  return { ms, run: result };
}

/** Prints the figures the issue asks for. */
function table(): void {
  for (const engine of ENGINES) {
    // the contended invocations' own cost: one CPU, hardly any picks (the
    // best of two rounds, the second after the contended runs warmed up
    // everything they share)
    const soloRound = () => best(() => world(LOCKED_LOOP, 1, 4096, engine));
    for (const q of [1, 4, 64]) best(() => world(LOCKED_LOOP, 4, q, engine), 5);
    const rounds = [soloRound(), soloRound()];
    const solo = rounds[0].ms < rounds[1].ms ? rounds[0] : rounds[1];
    const soloNs = solo.ms * 1e6 / solo.run.insns;
    console.log(
      `contended workload alone on 1 CPU, ${engine}: ${
        soloNs.toFixed(1)
      } ns/insn (${(solo.run.insns / solo.ms / 1000).toFixed(2)} M/s)`,
    );
    for (const q of [1, 4, 64]) {
      const { ms, run } = best(() => world(LOCKED_LOOP, 4, q, engine));
      const ref = best(() => world(LOCKED_LOOP, 4, q, engine, false));
      const ns = ms * 1e6 / run.insns;
      console.log(
        `contended: 4 CPUs, quantum ≤ ${q}, ${engine}: ${
          (run.insns / ms / 1000).toFixed(2)
        } M simulated insns/s (${ns.toFixed(1)} ns/insn; ${
          (ref.ms / ms).toFixed(2)
        } × one engine call per pick); scheduler ${
          ((ns - soloNs) / soloNs).toFixed(2)
        } × the instructions`,
      );
    }
    // the plain loop at quantum 1: one pick per instruction; at 4096 the
    // pick is amortised away, leaving what the instructions cost
    const fine = best(() => world(PLAIN_LOOP, 4, 1, engine));
    const coarse = best(() => world(PLAIN_LOOP, 4, 4096, engine));
    const insnNs = coarse.ms * 1e6 / coarse.run.insns;
    const picks = fine.run.steps; // quantum 1: one pick per step
    const pickNs = (fine.ms * 1e6 - insnNs * fine.run.insns) / picks;
    console.log(
      `scheduler, ${engine}: ${insnNs.toFixed(1)} ns per instruction run ` +
        `in long quanta (${
          (coarse.run.insns / coarse.ms / 1000).toFixed(1)
        } M/s); ` +
        `${pickNs.toFixed(1)} ns per scheduler pick (quantum 1) = ` +
        `${(pickNs / insnNs).toFixed(1)} × an instruction; at the default ` +
        `quantum (≤ 4, mean 2.5 insns per pick) a pick costs ` +
        `${
          (pickNs / 2.5 / insnNs).toFixed(2)
        } × the ALU instructions it schedules`,
    );
  }
}

if (import.meta.main) table();
