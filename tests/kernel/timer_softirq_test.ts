// BPF timers on the simulated kernel's clock: a timer armed by a program
// starts at its expiry on the CPU that armed it — idle CPUs let time jump to
// it — as a softirq context (not an NMI: cancelling its own timer is
// -EDEADLK, and re-arming works), and the scheduler's runs of picks stop at
// the expiry exactly as one engine call per pick does.
import { deepEqual, equal, ok } from "node:assert/strict";
import { loadObject } from "../../lib/elf/object.ts";
import { Kernel } from "../../lib/kernel/kernel.ts";
import {
  kernelProgram,
  loadObjectWithRuntime,
} from "../../lib/kernel/object_runtime.ts";
import { u32Key } from "../../lib/kernel/maps/map.ts";
import { ENGINES } from "../../lib/exec/jit/step_jit.ts";
import type { ArrayMap } from "../../lib/kernel/maps/array.ts";

const TIMER_O = new URL("../fixtures/runtime/dynptr/timer.o", import.meta.url);
const SEC = 1_000_000_000;

/** Runs `timer_arm` on CPU 1 (and a busy program on CPU 0), up to `until` ns. */
function armAndRun(engine: "interp" | "jit", pickRuns: boolean, until: number) {
  const obj = loadObject(Deno.readFileSync(TIMER_O), "timer.o");
  const k = new Kernel({ cpus: 2, seed: 3, engine, pickRuns });
  const loaded = loadObjectWithRuntime(k, obj);
  k.submit(1, kernelProgram(loaded, "timer_arm"));
  // timer_states arms and cancels its own timers: busy work beside it
  k.submit(0, kernelProgram(loaded, "timer_states"));
  const summary = k.run({ maxSteps: until });
  const map = loaded.maps.find((m) => m.name === "timers")!.map as ArrayMap;
  const value = new DataView(
    (map.lookupValueCopy(u32Key(1)) as Uint8Array).buffer,
  );
  return {
    outcome: summary.outcome,
    now: k.now(),
    hash: k.trace.hash(),
    fired: k.trace.events.filter((e) => e.ev === "timer")
      .map((e) => [e.t, e.cpu]),
    // arm_cb: v += 1000 + key; w = bpf_timer_cancel(own timer)
    v: value.getBigUint64(16, true),
    w: value.getBigInt64(24, true),
  };
}

for (const engine of ENGINES) {
  Deno.test(`${engine}: a timer fires at its expiry on the CPU that armed it, and again when re-armed`, () => {
    const r = armAndRun(engine, true, 160 * SEC);
    equal(r.outcome, "idle");
    equal(r.fired.length, 2);
    const [first, second] = r.fired as [number, number][];
    equal(first[1], 1);
    equal(second[1], 1);
    // armed 100 s ahead (from a time within the first few hundred steps),
    // re-armed 50 s after the callback's bpf_timer_start — a few of its
    // instructions (they take simulated time too) after it started
    const gap = second[0] - first[0] - 50 * SEC;
    ok(gap > 0 && gap < 100, `re-armed ${gap} steps into the callback`);
    equal(first[0] >= 100 * SEC && first[0] < 100 * SEC + 10_000, true);
    equal(r.v, 2002n);
    equal(r.w, -35n); // -EDEADLK: a softirq callback cancelling its own timer
  });

  Deno.test(`${engine}: a timer not yet due does not fire; runs of picks stop at expiries as single picks do`, () => {
    const early = armAndRun(engine, true, 50 * SEC);
    deepEqual([early.fired, early.v], [[], 0n]);
    const a = armAndRun(engine, true, 160 * SEC);
    const b = armAndRun(engine, false, 160 * SEC);
    deepEqual(a, b);
  });
}
