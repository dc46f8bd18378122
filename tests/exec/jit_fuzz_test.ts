/**
 * Differential fuzzing, JIT against interpreter: seeded random programs must
 * behave identically, run whole and in odd slices. Also checks that the
 * generator makes what it promises and that the minimiser shrinks a failing
 * program while keeping jumps on their targets.
 */
import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { decodeRaw, rawInsn } from "../../lib/isa/decode.ts";
import type { RawInsn } from "../../lib/isa/insn.ts";
import {
  fuzzEngines,
  minimise,
  observe,
  type Observer,
  randomProgram,
  seededRandom,
  WHOLE,
} from "../../lib/exec/jit/fuzz.ts";
import { FUZZ_HELPER, FUZZ_KFUNC_ID } from "../../lib/exec/jit/fuzz_helpers.ts";
import { BPF_FUNC_ktime_get_ns } from "../../lib/exec/run.ts";
import { setStepwiseAfter } from "../../lib/exec/jit/step_jit.ts";

const ITERATIONS = 1200;

Deno.test(`fuzz: ${ITERATIONS} random programs behave the same on both engines`, () => {
  const findings = fuzzEngines(20261130, ITERATIONS);
  assertEquals(
    findings.map((f) =>
      `seed ${f.seed}\n${
        f.disassembly.join("\n")
      }\ninterp: ${f.interp}\njit:    ${f.jit}`
    ),
    [],
  );
});

Deno.test("fuzz: 400 more, the JIT's stepwise entry taking every partial block", () => {
  const previous = setStepwiseAfter(0);
  try {
    assertEquals(fuzzEngines(7_000_000, 400).map((f) => f.seed), []);
  } finally {
    setStepwiseAfter(previous);
  }
});

Deno.test("fuzz: the generator is deterministic and covers what it promises", () => {
  assertEquals(randomProgram(42), randomProgram(42));
  const kinds = new Set<string>();
  const outcomes = new Map<string, number>();
  let loops = 0, localCalls = 0;
  const calls = new Set<string>();
  for (let seed = 1; seed <= 200; seed++) {
    const raws = randomProgram(seed);
    for (const insn of decodeRaw(raws)) {
      kinds.add(insn.kind === "alu" ? `alu:${insn.op}` : insn.kind);
    }
    if (raws.some((r) => r.code === 0x55 && r.dst === 9 && r.off < 0)) loops++;
    if (raws.some((r) => r.code === 0x85 && r.src === 1)) localCalls++;
    for (const r of raws) {
      if (r.code === 0x8d) calls.add("callx");
      if (r.code === 0x85 && r.src === 2) calls.add(`kfunc ${r.imm}`);
      if (r.code === 0x85 && r.src === 0) calls.add(`helper ${r.imm}`);
    }
    const status = observe(raws, "interp", WHOLE).split(" ")[0];
    outcomes.set(status, (outcomes.get(status) ?? 0) + 1);
  }
  for (
    const k of [
      "alu:add",
      "alu:mul",
      "alu:sdiv",
      "alu:movsx",
      "alu:arsh",
      "endian",
      "ld_imm64",
      "ldx",
      "st",
      "stx",
      "atomic",
      "jcond",
      "may_goto",
      "call",
      "exit",
    ]
  ) ok(kinds.has(k), `no ${k}`);
  assertEquals(
    [...calls].sort(),
    [
      "callx",
      `helper ${BPF_FUNC_ktime_get_ns}`,
      ...Object.values(FUZZ_HELPER).map((id) => `helper ${id}`),
      `kfunc ${FUZZ_KFUNC_ID}`,
    ].sort(),
  );
  ok(loops > 20, `only ${loops} programs with loops`);
  ok(localCalls > 20, `only ${localCalls} programs with bpf-to-bpf calls`);
  ok((outcomes.get("exited") ?? 0) > 100, "most programs exit");
  ok((outcomes.get("faulted") ?? 0) > 0, "some programs fault");
  const rand = seededRandom(7);
  assertEquals([rand(100), rand(100)], [
    seededRandom(7)(100),
    (() => {
      const r = seededRandom(7);
      r(100);
      return r(100);
    })(),
  ]);
});

Deno.test("fuzz: the minimiser keeps only what the failure needs", async (t) => {
  const faults = (raws: readonly RawInsn[]) =>
    observe(raws, "interp", WHOLE).includes("out-of-bounds");
  await t.step(
    "a faulting random program shrinks to its faulting access",
    () => {
      let seed = 1;
      while (!faults(randomProgram(seed))) seed++;
      const small = minimise(randomProgram(seed), faults);
      assertEquals(small.length, 1);
      ok([0x61, 0x62, 0x63, 0x81, 0xc3].includes(small[0].code & 0xe7));
    },
  );
  await t.step("deleting around a jump keeps it on its target", () => {
    // 0: r0 = 1; 1: goto +2; 2: r0 = 2; 3: r0 = 3; 4: r1 = 7; 5: exit → r0 = 1, r1 = 7
    const raws = [
      rawInsn(0xb7, 0, 0, 0, 1),
      rawInsn(0x05, 0, 0, 2, 0),
      rawInsn(0xb7, 0, 0, 0, 2),
      rawInsn(0xb7, 0, 0, 0, 3),
      rawInsn(0xb7, 1, 0, 0, 7),
      rawInsn(0x95, 0, 0, 0, 0),
    ];
    const keeps = (r: readonly RawInsn[]) =>
      r.some((x) => x.code === 0x05) &&
      observe(r, "interp", WHOLE).startsWith("exited") &&
      observe(r, "interp", WHOLE).includes("regs=1,0,7,0,");
    const small = minimise(raws, keeps);
    // Both skipped moves are gone; the goto now skips nothing.
    assertEquals(small.map((r) => [r.code, r.off, r.imm]), [
      [0xb7, 0, 1],
      [0x05, 0, 0],
      [0xb7, 0, 7],
      [0x95, 0, 0],
    ]);
  });
});

Deno.test("fuzz: a planted JIT bug is found, minimised to its instruction and reported", () => {
  // The "JIT" gets r0 wrong after a 64-bit multiply by a register.
  const isMul = (r: RawInsn) => r.code === 0x2f;
  const planted: Observer = (raws, engine, budgets) =>
    observe(raws, engine, budgets) +
    (engine === "jit" && raws.some(isMul) ? " r0 corrupted" : "");
  const findings = fuzzEngines(1, 40, 40, planted);
  const affected = Array.from({ length: 40 }, (_, i) => randomProgram(1 + i))
    .filter((raws) => raws.some(isMul)).length;
  ok(affected > 0, "the seeds hold multiplies");
  assertEquals(findings.length, affected);
  for (const f of findings) {
    ok(randomProgram(f.seed).some(isMul));
    // all that is left is the multiply, disassembled as the verifier prints it
    assertEquals(f.disassembly.length, 1);
    ok(/^0: \(2f\) r\d+ \*= r\d+$/.test(f.disassembly[0]), f.disassembly[0]);
    ok(f.jit.endsWith("r0 corrupted") && !f.interp.includes("corrupted"));
  }
  // and with the real engines, the same seeds agree
  assertEquals(fuzzEngines(1, 40).length, 0);
});
