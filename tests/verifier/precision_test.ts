/**
 * State pruning with liveness and precision tracking (liveness.ts,
 * backtrack.ts, precision.ts, insn_precision.ts, prune.ts): live-register
 * sets and loop ids computed by hand, `processed` counts and verdicts
 * recorded from the real kernel (the oracle JSON beside each fixture), and
 * level-2 log lines that the kernel printed for the same programs.
 */
import assert from "node:assert/strict";
import { assemble } from "../../lib/isa/asm.ts";
import {
  computeLiveRegisters,
  computeScc,
} from "../../lib/verifier/liveness.ts";
import { verifyProgram } from "../../lib/verifier/verify.ts";
import { loadFixture, readOracle } from "../elf/fixtures.ts";
import { verifyText } from "./program.ts";

const mask = (regs: number[]) => regs.reduce((m, r) => m | (1 << r), 0);

Deno.test("liveness: compute_live_registers()", async (t) => {
  await t.step("straight line: defs kill, uses gen", () => {
    const insns = assemble(
      ["r1 = 1", "r2 = r1", "r0 = r2", "r0 += r3", "exit"].join("\n"),
    );
    const live = computeLiveRegisters(insns, () => -1);
    assert.deepEqual([...live], [
      mask([3]), // r1 = 1 needs r3 later
      mask([1, 3]),
      mask([2, 3]),
      mask([0, 3]),
      mask([0]),
    ]);
  });
  await t.step("branches join; a helper reads only its arguments", () => {
    const insns = assemble(
      [
        "if r1 > 3 goto +1", // 0
        "r6 = 1", // 1
        "r1 = 0", // 2
        "call 7", // 3: bpf_get_prandom_u32 takes no argument
        "r0 = r6", // 4
        "exit", // 5
      ].join("\n"),
    );
    const params = (id: number) => id === 7 ? 0 : -1;
    const live = computeLiveRegisters(insns, params);
    assert.equal(live[3], mask([6]));
    assert.equal(live[2], mask([6]));
    assert.equal(live[1], 0);
    assert.equal(live[0], mask([1, 6])); // r6 live through the jump
    // an unknown helper reads r1-r5
    assert.equal(
      computeLiveRegisters(insns, () => -1)[3],
      mask([1, 2, 3, 4, 5, 6]),
    );
  });
  await t.step("loops get SCC ids, straight code none", () => {
    const insns = assemble(
      ["r0 = 0", "r0 += 1", "if r0 < 10 goto -2", "exit"].join("\n"),
    );
    assert.deepEqual([...computeScc(insns)], [0, 1, 1, 0]);
  });
});

Deno.test("processed counts equal the kernel's", async (t) => {
  const oracle = readOracle("verifier/loops.o");
  const obj = loadFixture("verifier/loops.o", { allowUnknownSections: true });
  for (
    const name of ["ok_deep_branching_pruned", "ok_deep_branching_precise"]
  ) {
    await t.step(name, () => {
      const k = oracle.find((o) => o.program === name)!;
      const r = verifyProgram(obj, obj.programs.find((p) => p.name === name)!);
      assert.equal(r.verdict, "accept");
      assert.equal(r.processed, (k as { processed?: number }).processed);
    });
  }
  const pr = readOracle("verifier/pruning.o");
  const pobj = loadFixture("verifier/pruning.o");
  for (const k of pr) {
    await t.step(`pruning.o ${k.program}: ${k.verdict}`, () => {
      const p = pobj.programs.find((x) => x.name === k.program)!;
      const r = verifyProgram(pobj, p);
      assert.equal(r.verdict, k.verdict, r.log);
      assert.equal(r.processed, (k as { processed?: number }).processed);
    });
  }
});

Deno.test("precision: marks, backtracking and the level-2 log", async (t) => {
  const obj = loadFixture("verifier/pruning.o");
  const log2 = (name: string) =>
    verifyProgram(obj, obj.programs.find((p) => p.name === name)!, {
      logLevel: 2,
    }).log;
  await t.step("a spilled scalar is followed through the stack", () => {
    const log = log2("bad_prune_precise_spilled_scalar");
    // lines as the 6.18 kernel printed them for this program
    assert.ok(
      log.includes(
        "mark_precise: frame0: regs= stack=-16 before 4: (7b) *(u64 *)(r10 -16) = r6\n",
      ),
      log,
    );
    assert.ok(
      log.includes(
        "mark_precise: frame0: regs=r6 stack= before 3: (b7) r6 = 0\n",
      ),
    );
    assert.ok(
      log.includes("R6=P8 R10=fp0\n"),
      "the checkpoint's r6 is precise",
    );
  });
  await t.step("the live-register table opens the level-2 log", () => {
    const log = log2("bad_prune_precise_spilled_scalar");
    assert.ok(log.startsWith("func#0 @0\nLive regs before insn:\n"), log);
    assert.ok(
      log.includes("      4: ......6... (7b) *(u64 *)(r10 -16) = r6\n"),
    );
  });
  // 8 filler instructions so that the join gets a checkpoint (the kernel
  // adds one only after 2 jumps and 8 instructions)
  const pad = Array(8).fill("r3 = 0");
  const join = (use: string[]) =>
    [
      "call 7",
      ...pad,
      "r1 = 8",
      "if r0 & 1 goto +1",
      "r1 = 16",
      "r2 = r10", // the join
      ...use,
      "r0 = 0",
      "exit",
    ].join("\n");
  await t.step("an imprecise scalar does not stop pruning", () => {
    // r1 is live at the join but its value never matters
    const r = verifyText(join(["r4 = r1"]), "sched_cls", {}, 2);
    assert.equal(r.verdict, "accept");
    assert.match(r.log, /from 10 to 12: safe\n/);
    assert.equal(r.processed, 16 + 1); // the second path stops at 12
  });
  await t.step("a precise scalar keeps both paths apart", () => {
    // r1 becomes a stack offset: the checkpoint's r1=16 is marked precise
    // and the path with r1=8 must be walked to the end
    const use = ["r2 += -32", "r2 += r1", "*(u64 *)(r2 +0) = 0"];
    const r = verifyText(join(use), "sched_cls", {}, 2);
    assert.equal(r.verdict, "accept", r.log);
    assert.doesNotMatch(r.log, /safe/);
    assert.match(
      r.log,
      /mark_precise: frame0: parent state regs=r1 stack=: .*R1=P16/,
    );
    assert.equal(r.processed, 18 + 6); // both paths walk slots 12-17
  });
});
