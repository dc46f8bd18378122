/**
 * The simulated kernel runs programs as the verifier rewrote them (their
 * `xlated` form: kfunc calls by address, `bpf_obj_new_impl(size, meta)`),
 * as the real kernel does. Every accepted graph fixture with a recorded
 * kernel run (tests/fixtures/graph/*.oracle-maps.json) is run rewritten:
 * the retval must be the kernel's, and the map contents the same as when
 * the program runs as loaded.
 */
import assert from "node:assert/strict";
import { loadFixture } from "../elf/fixtures.ts";
import { decodeRaw } from "../../lib/isa/decode.ts";
import { Kernel } from "../../lib/kernel/kernel.ts";
import { loadObjectWithRuntime } from "../../lib/kernel/object_runtime.ts";
import { TEST_RUN_TYPES, testRun } from "../../lib/kernel/test_run.ts";
import { dumpMaps } from "../../lib/cli/run_object.ts";
import { verifyProgram } from "../../lib/verifier/verify.ts";
import { isKfuncAddrId } from "../../lib/kernel/kfunc_ids.ts";

const DIR = new URL("../fixtures/graph/", import.meta.url);

interface Recorded {
  readonly program: string;
  readonly retval: number;
}

function runOnce(
  path: string,
  program: string,
  rewritten?: ReturnType<typeof decodeRaw>,
) {
  const obj = loadFixture(path);
  const kernel = new Kernel({ cpus: 1 });
  const loaded = loadObjectWithRuntime(kernel, obj, { verify: false });
  const r = testRun(loaded, program, { rewritten });
  return { retval: Number(r.r0 & 0xffffffffn), maps: dumpMaps(loaded) };
}

Deno.test("rewritten programs run as the kernel ran them", async (t) => {
  let runs = 0, withKfuncs = 0;
  const files = [...Deno.readDirSync(DIR)].map((e) => e.name)
    .filter((n) => n.endsWith(".oracle-maps.json")).sort();
  for (const file of files) {
    const path = `graph/${file.replace(".oracle-maps.json", ".o")}`;
    const obj = loadFixture(path);
    const recorded: Recorded[] = Deno.readTextFileSync(new URL(file, DIR))
      .trim().split("\n").filter((l) => l).map((l) => JSON.parse(l));
    await t.step(path, () => {
      for (const rec of recorded) {
        const prog = obj.programs.find((p) => p.name === rec.program)!;
        if (!TEST_RUN_TYPES.includes(prog.type)) continue;
        const v = verifyProgram(obj, prog, { logLevel: 0 });
        assert.equal(v.verdict, "accept", `${rec.program}: ${v.message}`);
        const xlated = decodeRaw(v.xlated!);
        if (
          xlated.some((i) =>
            i.kind === "call" && i.callee === "kfunc" &&
            isKfuncAddrId(i.imm >>> 0)
          )
        ) {
          withKfuncs++;
        }
        const asLoaded = runOnce(path, rec.program);
        const asRewritten = runOnce(path, rec.program, xlated);
        assert.equal(
          asRewritten.retval,
          rec.retval >>> 0,
          `${rec.program}: retval`,
        );
        assert.deepEqual(
          asRewritten.maps,
          asLoaded.maps,
          `${rec.program}: maps`,
        );
        runs++;
      }
    });
  }
  assert.ok(
    runs >= 40 && withKfuncs >= 30,
    `${runs} runs, ${withKfuncs} with rewritten kfunc calls`,
  );
});
