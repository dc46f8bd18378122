// The simulated kernel's scheduler, spin locks and NMI injection.
import { deepEqual, equal, match, notEqual, ok } from "node:assert/strict";
import { assemble } from "../../lib/isa/asm.ts";
import { Kernel } from "../../lib/kernel/kernel.ts";

// A lock word and a counter in one 16-byte region; each program takes the
// lock, increments the counter non-atomically (load, add, store) and
// releases it — correct only if the lock excludes the other CPUs.
const INCREMENT = assemble(`
    r6 = r1
    r1 = r6
    call 93                  ; bpf_spin_lock(&value->lock)
    r2 = *(u64 *)(r6 + 8)
    r2 += 1
    *(u64 *)(r6 + 8) = r2
    r1 = r6
    call 94                  ; bpf_spin_unlock(&value->lock)
    r0 = 0
    exit
`);

function contendedRun(seed: number, cpus = 4, perCpu = 25) {
  const k = new Kernel({ cpus, seed });
  const value = k.space.mapRegion("map_value", 16, { name: "counter" });
  const prog = k.load("increment", INCREMENT);
  for (let c = 0; c < cpus; c++) {
    for (let i = 0; i < perCpu; i++) k.submit(c, prog, { r1: value });
  }
  const summary = k.run();
  return { k, value, summary };
}

Deno.test("a spin lock makes a non-atomic increment correct on 4 CPUs", () => {
  for (const seed of [1, 2, 3, 42, 1000]) {
    const { k, value, summary } = contendedRun(seed);
    equal(summary.outcome, "idle");
    deepEqual(summary.reports, []);
    equal(
      k.space.read(value + 8n, 8),
      100n,
      `seed ${seed}: every increment counted`,
    );
    equal(k.locks.heldCount, 0);
  }
});

Deno.test("contention is real and traced: some CPU spins on a held lock", () => {
  const { k } = contendedRun(7);
  const contends = k.trace.events.filter((e) => e.ev === "lock_contend");
  ok(contends.length > 0, "with 4 CPUs and small quanta, locks contend");
  ok(k.cpus.some((c) => c.spins > 0));
  const acquires = k.trace.events.filter((e) => e.ev === "lock_acquire").length;
  const releases = k.trace.events.filter((e) => e.ev === "lock_release").length;
  equal(acquires, 100);
  equal(releases, 100);
});

Deno.test("the same seed replays the same run; another seed interleaves differently", () => {
  const a = contendedRun(11).k.trace.hash();
  const b = contendedRun(11).k.trace.hash();
  equal(a, b);
  const others = [12, 13, 14].map((s) => contendedRun(s).k.trace.hash());
  ok(
    others.some((h) => h !== a),
    "at least one other seed gives another interleaving",
  );
});

Deno.test("without the lock, the same increments race and lose updates", () => {
  const racy = assemble(`
    r2 = *(u64 *)(r1 + 8)
    r2 += 1
    *(u64 *)(r1 + 8) = r2
    r0 = 0
    exit
  `);
  let lost = false;
  for (const seed of [1, 2, 3, 4, 5]) {
    const k = new Kernel({ cpus: 4, seed, maxQuantum: 2 });
    const value = k.space.mapRegion("map_value", 16);
    const prog = k.load("racy", racy);
    for (let c = 0; c < 4; c++) {
      for (let i = 0; i < 25; i++) k.submit(c, prog, { r1: value });
    }
    k.run();
    if (k.space.read(value + 8n, 8) < 100n) lost = true;
  }
  ok(lost, "some seed interleaves a load and a store of two CPUs");
});

Deno.test("an explicit schedule decides the interleaving", () => {
  const k = new Kernel({ cpus: 2, seed: 0, schedule: [1, 1, 0, 0, 0] });
  const prog = k.load("id", assemble("call 8\nexit"));
  k.submit(0, prog);
  k.submit(1, prog);
  k.run();
  const starts = k.trace.events.filter((e) => e.ev === "prog_start").map((e) =>
    e.cpu
  );
  deepEqual(starts, [1, 0]);
  const exits = k.trace.events.filter((e) => e.ev === "prog_exit");
  deepEqual(exits.map((e) => [e.cpu, e.detail]), [[1, "r0=0x1"], [
    0,
    "r0=0x0",
  ]]);
});

Deno.test("an NMI interrupts at the chosen instruction and the program resumes after it", () => {
  const k = new Kernel({ cpus: 1, seed: 3 });
  const value = k.space.mapRegion("map_value", 16);
  const task = k.load("task", assemble("r6 = 5\nr6 += 1\nr0 = r6\nexit"));
  const handler = k.load("nmi", assemble("*(u64 *)(r1 + 8) = 7\nr0 = 0\nexit"));
  k.submit(0, task);
  k.injectNmi(0, handler, { atInsn: 2, r1: value });
  const order = () => k.trace.events.map((e) => `${e.ev}:${e.prog}`);
  k.run();
  deepEqual(order().slice(0, 5), [
    "prog_start:task",
    "nmi_enter:nmi",
    "prog_exit:nmi",
    "nmi_exit:nmi",
    "prog_exit:task",
  ]);
  equal(k.space.read(value + 8n, 8), 7n, "the NMI handler's store landed");
  const taskExit = k.trace.events.find((e) =>
    e.ev === "prog_exit" && e.prog === "task"
  );
  equal(taskExit?.detail, "r0=0x6", "r6 survived the NMI");
});

Deno.test("an NMI taking the lock its CPU already holds is a deadlock, reported and explained", () => {
  const k = new Kernel({ cpus: 2, seed: 5 });
  const value = k.space.mapRegion("map_value", 16, { name: "shared" });
  k.submit(0, k.load("holder", INCREMENT), { r1: value });
  // insn 3 runs with the lock held (after the call at insn 2)
  k.injectNmi(0, k.load("nmi_locker", INCREMENT), { atInsn: 3, r1: value });
  k.submit(1, k.load("other", INCREMENT), { r1: value });
  const summary = k.run({ maxSteps: 10_000 });
  notEqual(summary.outcome, "idle");
  const report = summary.reports.find((r) => r.startsWith("deadlock"));
  ok(report, summary.reports.join("\n"));
  match(
    report,
    /CPU 0 in NMI program nmi_locker insn 2 spins on lock .* which CPU 0 already holds at level 0 \(program holder, insn 2\)/,
  );
  ok(k.trace.events.some((e) => e.ev === "deadlock" && e.cpu === 0));
});

Deno.test("a seeded NMI probability strikes deterministically", () => {
  const hits = (seed: number) => {
    const k = new Kernel({ cpus: 1, seed });
    const loop = k.load(
      "loop",
      assemble("r1 = 100\nr1 -= 1\nif r1 != 0 goto -2\nr0 = 0\nexit"),
    );
    k.submit(0, loop);
    k.injectNmi(0, k.load("nmi", assemble("r0 = 0\nexit")), {
      probability: 0.05,
    });
    k.run();
    return k.trace.events.find((e) => e.ev === "nmi_enter")?.t;
  };
  equal(hits(9), hits(9));
  ok(hits(9) !== undefined);
});
