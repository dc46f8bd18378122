/**
 * BPF timers on four CPUs beside a lock-heavy workload: each CPU arms a
 * periodic timer whose callback takes the shared `bpf_spin_lock` to count a
 * tick and re-arms itself, five times; meanwhile every CPU runs a program
 * that takes the same lock around an update. A timer's callback runs on
 * the CPU that armed it, interrupting what runs there — except while that
 * CPU holds (or spins on) the lock: `bpf_spin_lock` keeps interrupts off,
 * so the callback waits instead of deadlocking on a lock its own CPU holds.
 *
 *   deno run -A scenarios/timer_tick.ts [--seed N] [--timeline out.html]
 */
import {
  defineScenario,
  kernelProgram,
  loadObject,
  loadObjectWithRuntime,
  scenarioMain,
  timersOf,
  u32Key,
} from "../mod.ts";

const OBJECT = new URL(
  "../tests/fixtures/scenarios/timer_tick.o",
  import.meta.url,
);
/** Ticks each timer counts before it stops re-arming (TICKS in the C). */
const TICKS = 5n;
/** `work` runs per CPU. */
const WORK = 40;

/** The scenario (exported for tests and `cli.ts scenario`). */
export const scenario = defineScenario({
  name: "timer ticks beside a lock",
  description:
    "periodic BPF timers on 4 CPUs whose callbacks take the lock the CPUs' programs hold",
  cpus: 4,
  run(s) {
    const { kernel } = s;
    const object = loadObject(Deno.readFileSync(OBJECT), "timer_tick.o");
    const loaded = loadObjectWithRuntime(kernel, object);
    const arm = kernelProgram(loaded, "arm");
    const work = kernelProgram(loaded, "work");
    const ctx = kernel.space.mapRegion("ctx", 192, {
      name: "skb",
      write: false,
    });
    for (let cpu = 0; cpu < 4; cpu++) {
      kernel.submit(cpu, arm, { r1: ctx });
      for (let i = 0; i < WORK; i++) kernel.submit(cpu, work, { r1: ctx });
    }
    const summary = kernel.run();
    const ticks = loaded.maps.find((m) => m.name === "ticks")?.map;
    const totals = loaded.maps.find((m) => m.name === "totals")?.map;
    if (!ticks || !totals) throw new Error("timer_tick.o: maps missing");
    // struct tick { struct bpf_timer t; u64 ticks; }: ticks at offset 16
    const perCpu = [0, 1, 2, 3].map((cpu) =>
      new DataView(
        (ticks.lookupValueCopy(u32Key(cpu)) as Uint8Array).buffer,
      ).getBigUint64(16, true)
    );
    // struct shared { bpf_spin_lock lock; u64 count; u64 work; }
    const shared = new DataView(
      (totals.lookupValueCopy(u32Key(0)) as Uint8Array).buffer,
    );
    const count = shared.getBigUint64(8, true);
    const worked = shared.getBigUint64(16, true);
    const fired = kernel.trace.events.filter((e) => e.ev === "timer");
    const deferred = timersOf(kernel).deferrals;
    s.say(`ticks per CPU: ${perCpu.join(", ")}; ${fired.length} callbacks`);
    s.say(`shared count ${count}, work ${worked}`);
    s.say(
      `${deferred} expiries found their CPU holding or spinning on the lock and waited`,
    );
    s.claim("the run finished", summary.outcome === "idle", summary.outcome);
    s.claim(
      "every CPU's timer ticked five times, on that CPU",
      perCpu.every((n) => n === TICKS) &&
        [0, 1, 2, 3].every((cpu) =>
          fired.filter((e) => e.cpu === cpu).length === Number(TICKS)
        ),
      perCpu.join(", "),
    );
    s.claim(
      "every tick and every update was counted under the lock",
      count === 4n * TICKS && worked === BigInt(4 * WORK),
      `${count}, ${worked}`,
    );
    s.claim(
      "no callback deadlocked on the lock its own CPU held",
      !kernel.reports.some((r) => r.startsWith("deadlock")),
      kernel.reports.join("; "),
    );
    s.claim(
      "some expiries waited for their CPU to release the lock",
      deferred > 0,
      `${deferred}`,
    );
    s.claim("every lock was released", kernel.locks.heldCount === 0);
  },
});

if (import.meta.main) await scenarioMain(scenario);
