// Throughput of the verifier's main pass, in processed instructions per
// second: the fixture programs that process the most instructions (bounded
// loops that the verifier unrolls), and a synthetic program of 200
// undecided branches in a row (each pushes a state; pruning at the joins
// keeps the work linear). Processed counts are printed once so that
// insns/s = processed x iter/s.
import { loadObject } from "../lib/elf/object.ts";
import type { ObjectFile } from "../lib/elf/types.ts";
import { verifyProgram } from "../lib/verifier/verify.ts";
import { buildObject } from "../tests/verifier/program.ts";
import { markRegKnown } from "../lib/verifier/reg_state.ts";
import {
  copyVerifierState,
  growStack,
  newFuncState,
  newVerifierState,
  STACK_SPILL,
} from "../lib/verifier/state.ts";

const FIXTURES = new URL("../tests/fixtures/", import.meta.url);

function fixture(path: string): ObjectFile {
  return loadObject(Deno.readFileSync(new URL(path, FIXTURES)), path);
}

const loops = fixture("bench/loops.o");

// 200 diamonds: if (r1 & bit) r0 += k; every diamond rejoins, so states
// prune at each join after the first path
function deepBranching(n: number): ObjectFile {
  const lines = ["r6 = *(u32 *)(r1 +0)", "r0 = 0"];
  for (let i = 0; i < n; i++) {
    lines.push(`if r6 > ${i * 7} goto +1`, `r0 += 1`, `r0 &= 0xffff`);
  }
  lines.push("exit");
  return buildObject(lines.join("\n"), "sched_cls");
}
const branching = deepBranching(200);

for (
  const [name, obj] of [["loops", loops], ["branching", branching]] as const
) {
  for (const p of obj.programs) {
    const r = verifyProgram(obj, p, { logLevel: 0 });
    console.log(`${name}/${p.name}: ${r.verdict}, processed ${r.processed}`);
  }
}

// Memory per explored state: heap growth while holding copies of a
// typical checkpoint (11 registers, 8 stack slots of which 4 spilled, a
// few history entries), as is_state_visited() stores them. Run with
// --v8-flags=--expose-gc for a steadier figure.
function bytesPerState(copies: number): number {
  const frame = newFuncState(0, -1, 0);
  growStack(frame, 64);
  for (let spi = 0; spi < 4; spi++) {
    frame.stack[spi].slotType.fill(STACK_SPILL);
    markRegKnown(frame.stack[spi].spilled, BigInt(spi));
  }
  for (let r = 0; r < 10; r++) markRegKnown(frame.regs[r], BigInt(r));
  const vs = newVerifierState(frame, 0);
  for (let i = 0; i < 4; i++) {
    vs.jmpHistory.push({
      idx: i,
      prevIdx: i - 1,
      flags: 0,
      linkedRegs: null,
      seq: i,
    });
  }
  const gc = (globalThis as { gc?: () => void }).gc;
  gc?.();
  const before = Deno.memoryUsage().heapUsed;
  const kept = [];
  for (let i = 0; i < copies; i++) kept.push(copyVerifierState(vs));
  gc?.();
  const after = Deno.memoryUsage().heapUsed;
  return kept.length ? Math.round((after - before) / kept.length) : 0;
}
console.log(`memory per explored state: ~${bytesPerState(20000)} bytes`);

for (const p of loops.programs) {
  Deno.bench(`verify bench/loops.o ${p.name}`, { group: "fixtures" }, () => {
    verifyProgram(loops, p, { logLevel: 0 });
  });
}

Deno.bench("verify 200 undecided branches", { group: "synthetic" }, () => {
  verifyProgram(branching, branching.programs[0], { logLevel: 0 });
});

Deno.bench("verify 200 undecided branches, log level 2", {
  group: "synthetic",
}, () => {
  verifyProgram(branching, branching.programs[0], { logLevel: 2 });
});
