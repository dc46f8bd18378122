/**
 * Why the verifier refuses `bpf_spin_lock` in programs that can run in NMI
 * context (perf_event, kprobe, tracepoint: "tracing progs cannot use
 * bpf_spin_lock yet"): a tc program on CPU 0 takes the lock of a map value;
 * while it holds it, a perf_event NMI strikes on the same CPU and its
 * program tries to take the same lock. The NMI spins forever — the holder
 * cannot run again until the NMI returns — and CPU 1, wanting the lock
 * too, spins behind them. The simulated kernel detects and explains it.
 *
 *   deno run -A scenarios/nmi_deadlock.ts [--seed N] [--timeline out.html]
 */
import { defineScenario, scenarioMain } from "../mod.ts";

const LOCKED_UPDATE = `
    r6 = r1                    ; r1 = &value: { struct bpf_spin_lock lock; u64 count; }
    r1 = r6
    call bpf_spin_lock
    r2 = *(u64 *)(r6 + 8)
    r2 += 1
    *(u64 *)(r6 + 8) = r2
    r1 = r6
    call bpf_spin_unlock
    r0 = 0
    exit
`;

/** The scenario (exported for tests and `cli.ts scenario`). */
export const scenario = defineScenario({
  name: "NMI self-deadlock",
  description: "an NMI program takes the spin lock its interrupted CPU holds",
  cpus: 2,
  // the point is a kernel that never finishes: no idle/unlocked end state
  expectsCleanEnd: false,
  // what runs here is what the verifier refuses (bpf_spin_lock in a
  // perf_event program): the scenario runs as with --no-verify (its
  // programs are assembled, not loaded from an object, so none is verified)
  verify: false,
  run(s) {
    const { kernel } = s;
    const value = kernel.space.mapRegion("map_value", 16, {
      name: "shared_value",
    });
    const tc = kernel.load("tc_update", s.assemble(LOCKED_UPDATE));
    const perf = kernel.load("perf_event_update", s.assemble(LOCKED_UPDATE));
    kernel.submit(0, tc, { r1: value });
    // slot 3 is the first instruction after bpf_spin_lock returned: the lock is held
    kernel.injectNmi(0, perf, { atInsn: 3, r1: value });
    const cpu1 = kernel.load("tc_update_cpu1", s.assemble(LOCKED_UPDATE));
    for (let i = 0; i < 20; i++) kernel.submit(1, cpu1, { r1: value });
    const summary = kernel.run({ maxSteps: 100_000 });
    for (const r of summary.reports) s.say(r);
    const deadlock = summary.reports.find((r) => r.startsWith("deadlock"));
    s.claim(
      "the run cannot finish",
      summary.outcome === "hung",
      summary.outcome,
    );
    s.claim(
      "the deadlock is found on CPU 0, in the NMI, against the lock its own task holds",
      deadlock !== undefined &&
        /CPU 0 in NMI program perf_event_update/.test(deadlock) &&
        /which CPU 0 already holds at level 0 \(program tc_update/.test(
          deadlock,
        ),
      deadlock,
    );
    s.claim(
      "CPU 1 spins behind it",
      kernel.trace.events.some((e) => e.ev === "lock_contend" && e.cpu === 1),
    );
  },
});

if (import.meta.main) await scenarioMain(scenario);
