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
  randomProgram,
  seededRandom,
  WHOLE,
} from "../../lib/exec/jit/fuzz.ts";

const ITERATIONS = 1500;

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

Deno.test("fuzz: the generator is deterministic and covers what it promises", () => {
  assertEquals(randomProgram(42), randomProgram(42));
  const kinds = new Set<string>();
  const outcomes = new Map<string, number>();
  let loops = 0, localCalls = 0;
  for (let seed = 1; seed <= 200; seed++) {
    const raws = randomProgram(seed);
    for (const insn of decodeRaw(raws)) {
      kinds.add(insn.kind === "alu" ? `alu:${insn.op}` : insn.kind);
    }
    if (raws.some((r) => r.code === 0x55 && r.dst === 9 && r.off < 0)) loops++;
    if (raws.some((r) => r.code === 0x85 && r.src === 1)) localCalls++;
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
