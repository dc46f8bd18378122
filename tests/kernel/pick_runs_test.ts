// The engine's runs of scheduler picks (exec/picks.ts) must interleave the
// CPUs exactly as the scheduler's own loop does, one engine call per pick:
// every scenario, and kernels with contention, NMIs, irq_work, cut runs and
// a hang, give the same trace, clock and per-CPU counts both ways.
import { deepEqual, equal } from "node:assert/strict";
import { assemble } from "../../lib/isa/asm.ts";
import { Kernel } from "../../lib/kernel/kernel.ts";
import type { KernelOptions } from "../../lib/kernel/kernel_types.ts";
import { ENGINES } from "../../lib/exec/jit/step_jit.ts";
import { runScenario, type Scenario } from "../../lib/scenario/scenario.ts";
import { loadScenarios } from "../scenario/load_scenarios.ts";

/** What two runs must agree on. */
function fingerprint(k: Kernel): unknown {
  return {
    hash: k.trace.hash(),
    events: k.trace.count,
    now: k.now(),
    cpus: k.cpus.map((c) => [c.retired, c.spins, c.deadlocked]),
    reports: k.reports,
  };
}

const scenarios: Scenario[] = await loadScenarios();

for (const scenario of scenarios) {
  Deno.test(`scenario '${scenario.name}': runs of picks interleave as one pick per engine call`, async () => {
    const reference: Scenario = {
      ...scenario,
      kernel: { ...scenario.kernel, pickRuns: false },
    };
    for (const engine of ENGINES) {
      for (const verify of [true, false]) {
        for (const seed of [1, 2, 3, 4]) {
          const options = { engine, verify };
          const a = await runScenario(scenario, seed, options);
          const b = await runScenario(reference, seed, options);
          deepEqual(
            fingerprint(a.kernel),
            fingerprint(b.kernel),
            `${engine} verify=${verify} seed ${seed}`,
          );
        }
      }
    }
  });
}

// 50 locked increments of one value, each after an atomic add to another
// word and a little work outside the lock.
const LOCKED = assemble(`
    r6 = r1
    r8 = 50
again:
    r2 = 1
    lock *(u64 *)(r6 + 0) += r2
    r1 = r6
    r1 += 8
    call 93
    r3 = *(u64 *)(r6 + 16)
    r3 += 1
    *(u64 *)(r6 + 16) = r3
    r1 = r6
    r1 += 8
    call 94
    r8 -= 1
    if r8 != 0 goto again
    r0 = 0
    exit
`);
const NMI = assemble("r0 = 7\nr0 += 1\nexit");

/** A contended kernel run, cut into runs of `slice` steps. */
function contended(
  options: KernelOptions,
  nmi: "none" | "random" | "at",
  slice: number,
): Kernel {
  const k = new Kernel({ cpus: 3, keepTrace: false, ...options });
  const value = k.space.mapRegion("map_value", 24);
  const prog = k.load("loop", LOCKED);
  for (let i = 0; i < 7; i++) k.submit(i % 3, prog, { r1: value });
  if (nmi === "random") {
    k.injectNmi(1, k.load("nmi", NMI), { probability: 0.01 });
  }
  if (nmi === "at") k.injectNmi(2, k.load("nmi", NMI), { atInsn: 5 });
  while (k.run({ maxSteps: slice }).outcome === "limit");
  equal(k.space.read(value, 8), 350n, "every atomic add kept");
  equal(k.space.read(value + 16n, 8), 350n, "every locked increment kept");
  return k;
}

for (const engine of ENGINES) {
  Deno.test(`${engine}: contended runs with NMIs and cut runs interleave as one pick per engine call`, () => {
    for (const maxQuantum of [1, 2, 4, 7, 64]) {
      for (const seed of [1, 2, 3]) {
        for (const nmi of ["none", "random", "at"] as const) {
          for (const slice of [1_000_000, 97]) {
            const options = { seed, maxQuantum, engine };
            const a = contended(options, nmi, slice);
            const b = contended({ ...options, pickRuns: false }, nmi, slice);
            deepEqual(
              fingerprint(a),
              fingerprint(b),
              `q ${maxQuantum} seed ${seed} nmi ${nmi} slice ${slice}`,
            );
          }
        }
      }
    }
  });

  Deno.test(`${engine}: an ABBA deadlock hangs the same way in runs of picks`, () => {
    // CPU 0 takes A then B, CPU 1 takes B then A, with a few steps between
    const abba = (first: number, second: number) =>
      assemble(`
        r6 = r1
        r1 += ${first}
        call 93
        r0 = 0
        r0 += 1
        r0 += 1
        r1 = r6
        r1 += ${second}
        call 93
        r0 = 0
        exit
      `);
    const fingerprints = [true, false].map((pickRuns) => {
      const k = new Kernel({ cpus: 2, seed: 4, engine, pickRuns });
      const value = k.space.mapRegion("map_value", 16);
      k.submit(0, k.load("ab", abba(0, 8)), { r1: value });
      k.submit(1, k.load("ba", abba(8, 0)), { r1: value });
      const summary = k.run();
      return { outcome: summary.outcome, ...fingerprint(k) as object };
    });
    equal((fingerprints[0] as { outcome: string }).outcome, "hung");
    deepEqual(fingerprints[0], fingerprints[1]);
  });
}
