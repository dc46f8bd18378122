/**
 * A rule broken: CPUs 0 and 1 push allocated items on one BPF list under
 * its global bpf_spin_lock, CPU 2 pops them under the lock — and CPU 3 runs
 * `pop_unlocked`, the same pop without the lock
 * (tests/fixtures/scenarios/broken_rule.c).
 *
 * 1. With verification on, the program never runs: the verifier refuses it
 *    with the kernel's own words ("bpf_spin_lock at off=0 must be held for
 *    bpf_list_head"; the real kernel's verdict is recorded beside the
 *    fixture).
 * 2. With verification off (this scenario's premise: it runs as with
 *    `--no-verify`), the four CPUs interleave instruction by instruction.
 *    An unlocked pop reads and checks its neighbours, can be interrupted,
 *    then writes what it read — while a locked push or pop on another CPU
 *    changed the list. The sanitizer reports the damage: list corruption
 *    (list_debug), double frees and use-after-free (KASAN-style, with the
 *    CPU, program, instruction and the object's allocation and free
 *    sites), the kernel's WARN, and items that fell off the list (leaks).
 *    The claim: breaking the rule corrupts the list.
 *
 *   deno run -A scenarios/broken_rule.ts [--seed N] [--timeline out.html]
 */
import {
  defineScenario,
  Kernel,
  kernelProgram,
  loadObject,
  loadObjectWithRuntime,
  scenarioMain,
} from "../mod.ts";
// TODO(mod.ts): import from ../mod.ts once it exports ProgramRejectedError
import { ProgramRejectedError } from "../lib/kernel/load_verify.ts";

const OBJECT = new URL(
  "../tests/fixtures/scenarios/broken_rule.o",
  import.meta.url,
);
const ROUNDS = 30;
const MAX_BATCHES = 8;

/** Reports that show the list was damaged, by what the sanitizer found. */
const DAMAGE: readonly [string, RegExp][] = [
  ["list corruption", /list_(add|del) corruption|double add/],
  ["double free", /KASAN: double-free/],
  ["use-after-free", /use-after-free/],
  ["node not owned by its list", /__bpf_list_del/],
  ["leaked object", /KASAN: leak/],
];

/** The scenario (exported for tests and `cli.ts scenario`). */
export const scenario = defineScenario({
  name: "broken rule: a list pop without the lock",
  description:
    "the verifier refuses a pop without the list's lock; run anyway on 4 CPUs, it corrupts the list",
  cpus: 4,
  // the premise: run with verification off, to see what the rule prevents
  verify: false,
  // faults may leave the list's lock held and CPUs spinning on it
  expectsCleanEnd: false,
  kernel: { maxQuantum: 4 },
  run(s) {
    const object = loadObject(Deno.readFileSync(OBJECT), "broken_rule.o");

    // 1. loading with verification: the broken program is refused
    const checked = loadObjectWithRuntime(new Kernel({ cpus: 1 }), object, {
      verify: true,
    });
    let rejection: ProgramRejectedError | undefined;
    try {
      kernelProgram(checked, "pop_unlocked");
    } catch (e) {
      if (!(e instanceof ProgramRejectedError)) throw e;
      rejection = e;
    }
    const accepted = ["push", "pop"].every((name) => {
      kernelProgram(checked, name); // throws if refused
      return true;
    });
    const [first, ...explained] = (rejection?.message ?? "pop_unlocked loaded")
      .split("\n");
    s.say(`with verification: ${first}`);
    for (const line of explained) s.say(`  ${line}`);
    s.claim(
      "the verifier refuses pop_unlocked, as the kernel does",
      rejection?.verifierMessage ===
        "bpf_spin_lock at off=0 must be held for bpf_list_head",
      rejection?.verifierMessage,
    );
    s.claim("the verifier accepts push and pop", accepted);
    if (s.verify) {
      s.say("verification is on: the broken program cannot run");
      return;
    }

    // 2. without verification, on four CPUs
    const { kernel } = s;
    const loaded = loadObjectWithRuntime(kernel, object);
    const push = kernelProgram(loaded, "push");
    const pop = kernelProgram(loaded, "pop");
    const popUnlocked = kernelProgram(loaded, "pop_unlocked");
    const ctx = kernel.space.mapRegion("ctx", 192, {
      name: "skb",
      write: false,
    });
    // batches of rounds until the sanitizer has something to say: the race
    // needs another CPU to touch the list inside a pop's window
    let summary = kernel.run();
    let batches = 0;
    while (batches < MAX_BATCHES && kernel.reports.length === 0) {
      batches++;
      for (let i = 0; i < ROUNDS; i++) {
        kernel.submit(0, push, { r1: ctx });
        kernel.submit(1, push, { r1: ctx });
        kernel.submit(2, pop, { r1: ctx });
        kernel.submit(3, popUnlocked, { r1: ctx });
      }
      summary = kernel.run({ maxSteps: 1_000_000 });
      if (summary.outcome !== "idle") break;
    }
    s.say(
      `${batches} × ${ROUNDS} rounds on 4 CPUs; the run ended ${summary.outcome}`,
    );
    // with the list intact, draining it and the grace periods free every
    // item; whatever is still allocated fell off the list
    if (summary.outcome === "idle") {
      for (let guard = 0; guard < 1000; guard++) {
        let r0 = -1n;
        kernel.submit(2, pop, { r1: ctx, onExit: (v) => (r0 = v) });
        if (kernel.run({ maxSteps: 100_000 }).outcome !== "idle") break;
        if (r0 !== 0n) break;
      }
      kernel.checkLeaks();
    }
    const reports = kernel.reports;
    const found = DAMAGE.filter(([, re]) => reports.some((r) => re.test(r)));
    s.say(
      reports.length === 1
        ? "the sanitizer made 1 report:"
        : `the sanitizer made ${reports.length} reports; the first ones:`,
    );
    for (const r of reports.slice(0, 4)) s.say(`  ${r}`);
    s.claim(
      "breaking the rule corrupts the list, and the sanitizer says how",
      found.length > 0,
      found.map(([what]) => what).join(", ") || "no damage found",
    );
    s.claim(
      "each report names the CPU and the program or the allocation site",
      reports.length > 0 &&
        reports.every((r) => /CPU \d|allocated at/.test(r)),
    );
  },
});

if (import.meta.main) await scenarioMain(scenario);
