/**
 * An allocation from NMI context while the same CPU is inside the
 * allocator (bpf_mem_alloc's re-entrancy guard): a tc program on CPU 0
 * calls bpf_obj_new; while the per-CPU cache is busy, a perf_event NMI
 * strikes and its own bpf_obj_new returns NULL — the kernel's answer to an
 * allocation it cannot make safely — and the interrupted allocation still
 * completes. Later NMIs, outside the window, allocate normally (from the
 * caches the deferred irq_work refills).
 *
 *   deno run -A scenarios/nmi_alloc.ts [--seed N] [--timeline out.html]
 */
import {
  defineScenario,
  kernelProgram,
  loadObject,
  loadObjectWithRuntime,
  scenarioMain,
} from "../mod.ts";

const OBJECT = new URL(
  "../tests/fixtures/scenarios/nmi_alloc.o",
  import.meta.url,
);

/** The scenario (exported for tests and `cli.ts scenario`). */
export const scenario = defineScenario({
  name: "NMI allocation during allocation",
  description: "bpf_obj_new from an NMI that interrupted bpf_obj_new gets NULL",
  cpus: 2,
  run(s) {
    const { kernel } = s;
    const object = loadObject(Deno.readFileSync(OBJECT), "nmi_alloc.o");
    const loaded = loadObjectWithRuntime(kernel, object);
    const task = kernelProgram(loaded, "task_alloc");
    const nmi = kernelProgram(loaded, "nmi_alloc");
    const ctx = kernel.space.mapRegion("ctx", 192, {
      name: "ctx",
      write: false,
    });
    const results: string[] = [];
    const record = (who: string) => (r0: bigint) =>
      results.push(`${who}:${r0}`);

    // 1. an NMI inside the allocator: it must get NULL
    kernel.injectNmiInAllocator(0, nmi, { r1: ctx });
    kernel.submit(0, task, { r1: ctx, onExit: record("task") });
    kernel.run();
    // 2. then many allocations, task and NMI alike, outside that window
    for (let i = 0; i < 20; i++) {
      kernel.submit(0, task, { r1: ctx, onExit: record("task") });
      kernel.injectNmi(0, nmi, { atInsn: 0, r1: ctx });
    }
    kernel.run();
    kernel.rcu.barrier();

    const nmiExits = kernel.trace.events.filter((e) =>
      e.ev === "prog_exit" && e.prog === "nmi_alloc"
    );
    const first = nmiExits[0]?.detail;
    const later = nmiExits.slice(1).map((e) => e.detail);
    const stats = kernel.globalMa.stats();
    s.say(`first NMI (inside the allocator): ${first}`);
    s.say(
      `later NMIs: ${
        later.filter((d) => d === "r0=0x0").length
      } of ${later.length} allocated`,
    );
    s.say(
      `task allocations: ${
        results.filter((r) => r === "task:0").length
      } of ${results.length} succeeded`,
    );
    const cpu0 = stats.caches.filter((c) => c.cpu === 0);
    const sum = (f: (c: (typeof cpu0)[number]) => number) =>
      cpu0.reduce((n, c) => n + f(c), 0);
    s.say(
      `CPU 0 caches: ${sum((c) => c.allocs)} allocs, ${
        sum((c) => c.nullActive)
      } NULL because ` +
        `the cache was busy, ${sum((c) => c.refills)} irq_work refills`,
    );
    s.say(`allocator: ${stats.inUse} objects in use at the end`);
    s.claim(
      "the NMI inside bpf_mem_alloc got NULL (returned 1)",
      first === "r0=0x1",
      first,
    );
    s.claim(
      "the interrupted task allocation still succeeded",
      results[0] === "task:0",
      results[0],
    );
    s.claim(
      "NMIs outside the window allocate",
      later.length === 20 && later.every((d) => d === "r0=0x0"),
      later.join(","),
    );
    s.claim(
      "the allocator counted exactly one busy-cache NULL",
      sum((c) => c.nullActive) === 1,
      `${sum((c) => c.nullActive)}`,
    );
    s.claim("nothing leaked", stats.inUse === 0, `${stats.inUse}`);
    s.claim(
      "no CPU faulted",
      kernel.reports.length === 0,
      kernel.reports.join("; "),
    );
  },
});

if (import.meta.main) await scenarioMain(scenario);
