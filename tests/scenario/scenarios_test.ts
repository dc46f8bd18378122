// Every scenario in scenarios/ over many seeds: its claims hold, it leaves
// no lock held, and the same seed replays the same run.
import { equal, ok } from "node:assert/strict";
import { runScenario, type Scenario } from "../../lib/scenario/scenario.ts";
import { loadScenarios } from "./load_scenarios.ts";

const scenarios: Scenario[] = await loadScenarios();

Deno.test("scenarios/ has scenarios to run", () => {
  ok(scenarios.length >= 1);
});

for (const scenario of scenarios) {
  Deno.test(`scenario '${scenario.name}': claims hold and invariants keep over 20 seeds`, async () => {
    for (let seed = 1; seed <= 20; seed++) {
      const result = await runScenario(scenario, seed);
      const failed = result.claims.filter((c) => !c.ok).map((c) =>
        `${c.what}: ${c.detail}`
      );
      ok(result.ok, `seed ${seed}: ${failed.join("; ") || "no claims"}`);
      if (scenario.expectsCleanEnd === false) continue;
      equal(
        result.kernel.locks.heldCount,
        0,
        `seed ${seed}: every lock released`,
      );
      ok(
        result.kernel.cpus.every((c) => c.contexts.length === 0),
        `seed ${seed}: every CPU idle`,
      );
    }
  });

  Deno.test(`scenario '${scenario.name}': the same seed gives the same trace`, async () => {
    const a = await runScenario(scenario, 7);
    const b = await runScenario(scenario, 7);
    equal(a.traceHash, b.traceHash);
    equal(a.kernel.trace.count, b.kernel.trace.count);
  });
}

for (const scenario of scenarios) {
  Deno.test(`scenario '${scenario.name}': the JIT gives the same trace as the interpreter`, async () => {
    // at the scenario's quantum, and at one long enough for the JIT's own
    // runs of picks (shorter quanta run their picks on the interpreter's)
    const longQuanta: Scenario = {
      ...scenario,
      kernel: { ...scenario.kernel, maxQuantum: 64 },
    };
    for (const variant of [scenario, longQuanta]) {
      for (const seed of [1, 2, 3]) {
        const interp = await runScenario(variant, seed, { engine: "interp" });
        const jit = await runScenario(variant, seed, { engine: "jit" });
        const q = variant.kernel?.maxQuantum ?? "default";
        equal(jit.traceHash, interp.traceHash, `seed ${seed}, quantum ${q}`);
        equal(jit.ok, interp.ok);
      }
    }
  });
}
