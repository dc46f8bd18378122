/**
 * Jumps: immediate sign extension (also for unsigned compares), JMP32 on
 * the low halves, `ja` / `gotol`, `may_goto` with the kernel's budget, and
 * a seeded differential run of every conditional jump against the model.
 */
import { deepStrictEqual as assertEquals } from "node:assert/strict";
import {
  alu64i,
  alu64r,
  callLocal,
  EDGES,
  exit,
  gotol,
  ja,
  jmp32i,
  jmp32r,
  JMP_OPS,
  jmpi,
  jmpr,
  lddw,
  ldx,
  mayGoto,
  mov,
  movr,
  pair,
  type Part,
  r0Of,
  rng,
} from "./build.ts";
import { refJmp } from "./reference.ts";
import { compileProgram } from "../../lib/exec/compile.ts";
import { runProgram } from "../../lib/exec/run.ts";
import { BPF_MAX_LOOPS } from "../../lib/exec/state.ts";
import { decodeRaw } from "../../lib/isa/decode.ts";

/** r0 = 1 if the jump (written with target +1) is taken, else 0. */
function taken(setup: Part[], jump: Part): bigint {
  return r0Of([...setup, mov(0, 0), jump, exit(), mov(0, 1), exit()]);
}

Deno.test("JMP immediates are sign-extended to 64 bits", async (t) => {
  await t.step("jeq r1, -1 matches r1 = 0xffffffffffffffff", () => {
    assertEquals(taken([mov(1, -1)], jmpi("jeq", 1, -1, 1)), 1n);
  });
  await t.step("jeq r1, -1 does not match r1 = 0x00000000ffffffff", () => {
    assertEquals(taken([lddw(1, 0xffffffffn)], jmpi("jeq", 1, -1, 1)), 0n);
  });
  await t.step("unsigned jgt 5 > imm -1 is false (imm is 2^64-1)", () => {
    assertEquals(taken([mov(1, 5)], jmpi("jgt", 1, -1, 1)), 0n);
    assertEquals(taken([mov(1, 5)], jmpi("jlt", 1, -1, 1)), 1n);
  });
  await t.step(
    "jge with imm 0x80000000 compares against 0xffffffff80000000",
    () => {
      assertEquals(
        taken([lddw(1, 0x80000000n)], jmpi("jge", 1, 0x80000000 | 0, 1)),
        0n,
      );
    },
  );
});

Deno.test("JMP32 compares only the low halves", async (t) => {
  const r1 = lddw(1, 0x1_00000005n);
  await t.step("jeq32 ignores the high half; jeq does not", () => {
    assertEquals(taken([r1], jmp32i("jeq", 1, 5, 1)), 1n);
    assertEquals(taken([r1], jmpi("jeq", 1, 5, 1)), 0n);
  });
  await t.step(
    "low half 0x80000000 is negative for jsgt32, large for jgt32",
    () => {
      const neg = lddw(1, 0x80000000n);
      assertEquals(taken([neg], jmp32i("jsgt", 1, 0, 1)), 0n);
      assertEquals(taken([neg], jmp32i("jgt", 1, 0, 1)), 1n);
      assertEquals(taken([neg], jmpi("jsgt", 1, 0, 1)), 1n);
    },
  );
  await t.step(
    "jset32 sees no common low bit where jset sees a high one",
    () => {
      const setup = [lddw(1, 0x100000000n), lddw(2, 0x100000000n)];
      assertEquals(taken(setup, jmpr("jset", 1, 2, 1)), 1n);
      assertEquals(taken(setup, jmp32r("jset", 1, 2, 1)), 0n);
    },
  );
  await t.step("signed 64-bit compares", () => {
    assertEquals(taken([mov(1, -2)], jmpi("jslt", 1, -1, 1)), 1n);
    assertEquals(taken([mov(1, -2)], jmpi("jsgt", 1, -1, 1)), 0n);
    assertEquals(taken([mov(1, -1)], jmpi("jsle", 1, -1, 1)), 1n);
  });
});

Deno.test("unconditional jumps", async (t) => {
  await t.step("ja skips forward and a backward ja loops", () => {
    // r0 = 0; loop: r0 += 1; if r0 == 3 goto out; ja loop; out: exit
    assertEquals(
      r0Of([
        mov(0, 0),
        alu64i("add", 0, 1),
        jmpi("jeq", 0, 3, 1),
        ja(-3),
        exit(),
      ]),
      3n,
    );
  });
  await t.step("gotol uses the 32-bit imm as offset", () => {
    assertEquals(r0Of([mov(0, 1), gotol(1), mov(0, 2), exit()]), 1n);
  });
});

Deno.test("may_goto falls through BPF_MAX_LOOPS times per frame, then jumps", async (t) => {
  // r0 = 0; loop: may_goto +2; r0 += 1; ja loop; exit
  const loop: Part[] = [
    mov(0, 0),
    mayGoto(2),
    alu64i("add", 0, 1),
    ja(-3),
    exit(),
  ];
  await t.step("with a budget of 3, the body runs 3 times", () => {
    assertEquals(r0Of(loop, { mayGotoBudget: 3 }), 3n);
  });
  await t.step("the default budget is the kernel's 8M (BPF_MAX_LOOPS)", () => {
    assertEquals(BPF_MAX_LOOPS, 8388608);
    assertEquals(r0Of(loop), 8388608n);
  });
  await t.step("each call of a subprogram gets a fresh budget", () => {
    const prog: Part[] = [
      callLocal(4), // 0: call f (slot 5)
      movr(6, 0), // 1
      callLocal(2), // 2: call f again
      alu64r("add", 0, 6), // 3: r0 += r6
      exit(), // 4
      mov(0, 0), // 5: f
      mayGoto(2), // 6
      alu64i("add", 0, 1), // 7
      ja(-3), // 8
      exit(), // 9
    ];
    assertEquals(r0Of(prog, { mayGotoBudget: 2 }), 4n);
  });
});

Deno.test("every conditional jump matches the bigint model", async (t) => {
  const next = rng(0x0b5e55edn);
  const operand = (): bigint => {
    const r = next();
    return (r & 1n) === 0n ? EDGES[Number(r >> 8n) % EDGES.length] : next();
  };
  for (const op of JMP_OPS) {
    for (const w32 of [false, true]) {
      const regForm = compileProgram(decodeRaw([
        ldx(8, 3, 1, 0),
        ldx(8, 2, 1, 8),
        mov(0, 0),
        (w32 ? jmp32r : jmpr)(op, 3, 2, 1),
        exit(),
        mov(0, 1),
        exit(),
      ]));
      await t.step(`${op}${w32 ? "32" : ""}`, () => {
        for (let i = 0; i < 150; i++) {
          // half the time compare equal-ish values so jeq/jge paths are hit
          const a = operand(),
            b = (i & 1) === 0 ? operand() : a ^ (next() & 1n);
          const got = runProgram(regForm, { mem: pair(a, b) }).r0;
          assertEquals(
            runProgram(regForm, { mem: pair(a, b), engine: "jit" }).r0,
            got,
            "jit against interp",
          );
          assertEquals(
            got,
            refJmp(op, w32, a, b) ? 1n : 0n,
            `${op} 0x${a.toString(16)} 0x${b.toString(16)}`,
          );
          const imm = Number(BigInt.asIntN(32, operand()));
          const immRun = r0Of(
            [
              ldx(8, 1, 1, 0),
              mov(0, 0),
              (w32 ? jmp32i : jmpi)(op, 1, imm, 1),
              exit(),
              mov(0, 1),
              exit(),
            ],
            { mem: pair(a, 0n) },
          );
          assertEquals(
            immRun,
            refJmp(op, w32, a, BigInt(imm)) ? 1n : 0n,
            `${op} imm ${imm}`,
          );
        }
      });
    }
  }
});
