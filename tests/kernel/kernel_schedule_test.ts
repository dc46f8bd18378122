// The scheduler keeps its list of runnable CPUs between picks: whatever
// changes that list in the middle of a run — a program submitted from an
// exit callback, a CPU that deadlocks, a CPU whose queue runs dry — must be
// seen by the next pick, and a run is the same whatever slice of it the
// scheduler runs at a time.
import { deepEqual, equal, ok } from "node:assert/strict";
import { assemble } from "../../lib/isa/asm.ts";
import { Kernel } from "../../lib/kernel/kernel.ts";
import { ENGINES } from "../../lib/exec/jit/step_jit.ts";

const COUNT = assemble(`
    r0 = 0
    r1 = 50
loop:
    r0 += 1
    r1 -= 1
    if r1 != 0 goto loop
    exit
`);

for (const engine of ENGINES) {
  Deno.test(`${engine}: a program submitted by an exit callback runs in the same run, on an idle CPU`, () => {
    const k = new Kernel({ cpus: 3, seed: 5, engine });
    const prog = k.load("count", COUNT);
    const order: string[] = [];
    // CPU 2 has nothing queued at the start; CPU 0's exit gives it work
    k.submit(0, prog, {
      onExit: () => {
        order.push("cpu0");
        k.submit(2, prog, { onExit: (r0) => order.push(`cpu2 r0=${r0}`) });
      },
    });
    k.submit(1, prog, { onExit: () => order.push("cpu1") });
    const summary = k.run();
    equal(summary.outcome, "idle");
    ok(order.includes("cpu2 r0=50"), order.join(", "));
    equal(k.cpus[2].retired, 2 + 3 * 50 + 1);
    ok(k.cpus.every((c) => c.contexts.length === 0 && c.queue.length === 0));
  });

  Deno.test(`${engine}: a CPU that deadlocks is never picked again, the others finish`, () => {
    const k = new Kernel({ cpus: 2, seed: 3, engine });
    const value = k.space.mapRegion("map_value", 8);
    // takes the lock twice on the same CPU: a self-deadlock
    const twice = k.load(
      "twice",
      assemble("r6 = r1\ncall 93\nr1 = r6\ncall 93\nexit"),
    );
    const prog = k.load("count", COUNT);
    k.submit(0, twice, { r1: value });
    for (let i = 0; i < 3; i++) k.submit(1, prog);
    const summary = k.run();
    ok(k.cpus[0].deadlocked);
    equal(k.cpus[1].queue.length, 0);
    equal(k.cpus[1].contexts.length, 0);
    equal(k.cpus[1].retired, 3 * (2 + 3 * 50 + 1));
    ok(summary.reports.some((r) => r.startsWith("deadlock")));
    // the deadlocked CPU's steps stop: one spin at most after the report
    ok(k.cpus[0].spins <= 1, `spins ${k.cpus[0].spins}`);
  });
}

Deno.test("runs cut by maxSteps replay alike, and see work submitted between them", () => {
  const cutRun = () => {
    const k = new Kernel({ cpus: 4, seed: 9, keepTrace: false });
    const prog = k.load("count", COUNT);
    for (let i = 0; i < 6; i++) k.submit(i % 3, prog); // CPU 3 idle
    let steps = 0, runs = 0;
    for (;;) {
      const part = k.run({ maxSteps: 37 });
      steps += part.steps;
      if (++runs === 3) k.submit(3, prog); // between two runs
      if (part.outcome !== "limit") break;
    }
    return { k, steps };
  };
  const a = cutRun(), b = cutRun();
  equal(a.k.trace.hash(), b.k.trace.hash());
  equal(a.steps, b.steps);
  const insns = 2 + 3 * 50 + 1;
  deepEqual(a.k.cpus.map((c) => c.retired), [2, 2, 2, 1].map((n) => n * insns));
  equal(a.steps, 7 * insns, "no spinning: one step per instruction");
});
