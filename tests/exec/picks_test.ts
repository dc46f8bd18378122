// A run of scheduler picks inside the engine (exec/picks.ts) against a
// host written here: the picks follow the generator's draws in the
// scheduler's order, each state retires exactly its picks' quanta, spins
// cost one step, and what the run cannot do goes to the host.
import { deepEqual, equal, ok } from "node:assert/strict";
import { assemble } from "../../lib/isa/asm.ts";
import { compileProgram } from "../../lib/exec/compile.ts";
import { AddressSpace } from "../../lib/exec/memory.ts";
import { ExecState, type ExecStatus } from "../../lib/exec/state.ts";
import { runPicks } from "../../lib/exec/interp.ts";
import {
  type PickHost,
  type PickWait,
  runPicksStepwise,
} from "../../lib/exec/picks.ts";
import { stepJit } from "../../lib/exec/jit/step_jit.ts";
import { Prng } from "../../lib/kernel/prng.ts";

// a long loop: no state exits during these runs
const LOOP = compileProgram(assemble(`
    r1 = 1000000
loop:
    r1 -= 1
    if r1 != 0 goto loop
    exit
`));

/** A host with `n` slots; `slowPick` records the picks handed to it. */
class TestHost implements PickHost {
  states: (ExecState | undefined)[] = [];
  waits: (PickWait | undefined)[] = [];
  ids: Int32Array;
  spinningCount = 0;
  count: number;
  prng = new Prng(42);
  maxQuantum = 4;
  limit: number;
  clock = 0;
  runningState: ExecState | undefined = undefined;
  runningBase = 0;
  pickStart = 0;
  stop = false;
  picks = 0;
  retired: Float64Array;
  spins: Float64Array;
  slot = 0;
  quantum = 0;
  status: ExecStatus = "running";
  slow: [number, number, ExecStatus][] = [];
  unwaited: number[] = [];
  constructor(n: number, limit: number) {
    const mem = new AddressSpace();
    for (let i = 0; i < n; i++) this.states.push(new ExecState(LOOP, mem));
    this.waits = this.states.map(() => undefined);
    this.ids = Int32Array.from(this.states.keys());
    this.count = n;
    this.limit = limit;
    this.retired = new Float64Array(n);
    this.spins = new Float64Array(n);
  }
  slowPick(): boolean {
    this.slow.push([this.slot, this.quantum, this.status]);
    this.clock += 1; // as if the scheduler ran one step for it
    return true;
  }
  unwait(slot: number): ExecState {
    this.unwaited.push(slot);
    this.waits[slot] = undefined;
    this.states[slot] = this.states.find((s) => s !== undefined);
    return this.states[slot] as ExecState;
  }
}

for (
  const [engine, run] of [
    ["interp", runPicks],
    ["jit", (h: PickHost) => runPicksStepwise(h, stepJit)],
  ] as const
) {
  Deno.test(`${engine}: picks follow the draws, and each state retires its quanta`, () => {
    const host = new TestHost(3, 5000);
    run(host);
    // the same draws, made here: slot, then quantum, cut at the limit
    const draws = { prng: new Prng(42), picks: 0 }, expected = [0, 0, 0];
    for (let clock = 0; clock < 5000; draws.picks++) {
      const slot = draws.prng.below(3);
      const quantum = Math.min(1 + draws.prng.below(4), 5000 - clock);
      expected[slot] += quantum;
      clock += quantum;
    }
    deepEqual(host.states.map((s) => s!.steps), expected);
    deepEqual([...host.retired], expected);
    equal(host.clock, 5000);
    equal(host.slow.length, 0);
    equal(host.picks, draws.picks);
  });

  Deno.test(`${engine}: a spin costs one step; a free lock runs again; the rest goes to the host`, () => {
    const host = new TestHost(3, 3000);
    const heldByOther: PickWait = { held: true, cpu: 0 };
    host.states[1] = undefined;
    host.waits[1] = heldByOther; // slot 1 spins on CPU 0's lock
    host.spinningCount = 1;
    host.states[2] = undefined; // slot 2 needs the host
    run(host);
    ok(host.spins[1] > 0, "slot 1 spun");
    equal(host.retired[1], 0);
    equal(host.retired[2], 0);
    ok(
      host.slow.length > 0 &&
        host.slow.every(([s, , st]) => s === 2 && st === "running"),
    );
    equal(host.clock, host.retired[0] + host.spins[1] + host.slow.length);

    // the lock comes free: the next pick of slot 1 runs it again
    const freed = new TestHost(2, 200);
    freed.states[1] = undefined;
    freed.waits[1] = { held: false, cpu: -1 };
    freed.spinningCount = 1;
    run(freed);
    deepEqual(freed.unwaited, [1]);
    ok(freed.retired[1] > 0);
  });

  Deno.test(`${engine}: when every slot spins, the spin goes to the host`, () => {
    const host = new TestHost(2, 50);
    for (const i of [0, 1]) {
      host.states[i] = undefined;
      host.waits[i] = { held: true, cpu: 1 - i };
    }
    host.spinningCount = 2;
    run(host);
    equal(host.spins[0] + host.spins[1], 0);
    equal(host.slow.length, 50);
  });
}
