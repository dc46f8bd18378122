/**
 * Four CPUs increment one shared counter in a map value, 50 times each. The
 * increment is a load, an add and a store: with `bpf_spin_lock` around it no
 * update is lost; without it, the CPUs interleave between load and store and
 * updates vanish.
 *
 *   deno run -A scenarios/spin_lock_counter.ts [--seed N] [--timeline out.html]
 */
import { defineScenario, scenarioMain } from "../mod.ts";

const INCREMENTS = 50;

const LOCKED = `
    r6 = r1                    ; r1 = &value: { struct bpf_spin_lock lock; u64 count; }
    r1 = r6
    call bpf_spin_lock
    r2 = *(u64 *)(r6 + 8)      ; load, add, store: not atomic on its own
    r2 += 1
    *(u64 *)(r6 + 8) = r2
    r1 = r6
    call bpf_spin_unlock
    r0 = 0
    exit
`;

const UNLOCKED = `
    r2 = *(u64 *)(r1 + 8)
    r2 += 1
    *(u64 *)(r1 + 8) = r2
    r0 = 0
    exit
`;

/** The scenario (exported for tests and `cli.ts scenario`). */
export const scenario = defineScenario({
  name: "spin lock counter",
  description: "4 CPUs increment one counter with and without bpf_spin_lock",
  cpus: 4,
  kernel: { maxQuantum: 3 },
  run(s) {
    const { kernel } = s;
    const locked = kernel.space.mapRegion("map_value", 16, {
      name: "locked_counter",
    });
    const unlocked = kernel.space.mapRegion("map_value", 16, {
      name: "unlocked_counter",
    });
    const lockedProg = kernel.load("locked_inc", s.assemble(LOCKED));
    const unlockedProg = kernel.load("unlocked_inc", s.assemble(UNLOCKED));
    for (let cpu = 0; cpu < 4; cpu++) {
      for (let i = 0; i < INCREMENTS; i++) {
        kernel.submit(cpu, lockedProg, { r1: locked });
        kernel.submit(cpu, unlockedProg, { r1: unlocked });
      }
    }
    const summary = kernel.run();
    const total = BigInt(4 * INCREMENTS);
    const lockedCount = kernel.space.read(locked + 8n, 8);
    const unlockedCount = kernel.space.read(unlocked + 8n, 8);
    const contended = kernel.trace.events.filter((e) =>
      e.ev === "lock_contend"
    ).length;
    const spins = kernel.cpus.reduce((n, c) => n + c.spins, 0);
    s.say(`with bpf_spin_lock: count = ${lockedCount} of ${total}`);
    s.say(`without a lock:     count = ${unlockedCount} of ${total}`);
    s.say(`${contended} contended acquisitions, ${spins} steps spent spinning`);
    s.claim("the run finished", summary.outcome === "idle", summary.outcome);
    s.claim(
      "no update is lost under the lock",
      lockedCount === total,
      `${lockedCount}`,
    );
    s.claim("every lock was released", kernel.locks.heldCount === 0);
    s.claim(
      "the CPUs really contended for the lock",
      contended > 0,
      `${contended}`,
    );
    s.claim(
      "without the lock, at most every increment lands",
      unlockedCount <= total,
      `${unlockedCount}`,
    );
  },
});

if (import.meta.main) await scenarioMain(scenario);
