/**
 * The rewriting after verification (lib/verifier/fixup.ts) against the
 * real kernel's: tests/fixtures/graph/*.xlated.json hold the programs the
 * 6.18 kernel ran after `fixup_kfunc_call()` (recorded with
 * tests/fixtures/tools/xlated_dump.c). For every kfunc call, the
 * instructions inserted before it must be the kernel's: the same moves
 * with the same object sizes and node offsets, and a struct meta address
 * exactly where the kernel passes one (addresses themselves differ).
 * Other kernel rewrites (inlined map lookups, context conversion) are not
 * compared.
 */
import assert from "node:assert/strict";
import { loadFixture } from "../elf/fixtures.ts";
import { verifyProgram } from "../../lib/verifier/verify.ts";
import type { RawInsn } from "../../lib/isa/insn.ts";
import { kfuncName } from "../../lib/kernel/kfunc_ids.ts";

const DIR = new URL("../fixtures/graph/", import.meta.url);
const KFUNC_CALL = (i: RawInsn) => i.code === 0x85 && i.src === 2;

/** Slots fixup_kfunc_call() inserts before a call of each kfunc. */
const INSERTED: Record<string, number> = {
  bpf_obj_new_impl: 3,
  bpf_percpu_obj_new_impl: 3,
  bpf_obj_drop_impl: 2,
  bpf_percpu_obj_drop_impl: 2,
  bpf_refcount_acquire_impl: 2,
  bpf_list_push_front_impl: 3,
  bpf_list_push_back_impl: 3,
  bpf_rbtree_add_impl: 3,
};

/** The inserted instructions before each kfunc call, normalised. */
function prologues(insns: readonly RawInsn[], lens: number[]): string[][] {
  const out: string[][] = [];
  let k = 0;
  insns.forEach((insn, i) => {
    if (!KFUNC_CALL(insn)) return;
    const len = lens[k++] ?? 0;
    const pro = insns.slice(i - len, i).map((p, j, all) => {
      if (p.code === 0x18) {
        const hi = all[j + 1]?.imm ?? 0;
        return `lddw r${p.dst} ${p.imm !== 0 || hi !== 0 ? "meta" : "0"}`;
      }
      if (p.code === 0 && j > 0 && all[j - 1].code === 0x18) return "";
      return `${p.code.toString(16)} r${p.dst} r${p.src} ${p.off} ${p.imm}`;
    }).filter((s) => s !== "");
    out.push(pro);
  });
  return out;
}

Deno.test("fixup: kfunc rewriting equals the kernel's on every graph fixture", async (t) => {
  let compared = 0;
  for (
    const entry of [...Deno.readDirSync(DIR)].sort((a, b) =>
      a.name < b.name ? -1 : 1
    )
  ) {
    if (!entry.name.endsWith(".xlated.json")) continue;
    const base = entry.name.replace(/\.xlated\.json$/, "");
    const obj = loadFixture(`graph/${base}.o`);
    const lines = Deno.readTextFileSync(new URL(entry.name, DIR)).trim().split(
      "\n",
    );
    await t.step(base, () => {
      for (const line of lines) {
        const rec = JSON.parse(line) as { program: string; xlated: number[][] };
        const kernel: RawInsn[] = rec.xlated.map((
          [code, dst, src, off, imm],
        ) => ({
          code,
          dst,
          src,
          off,
          imm,
        }));
        const prog = obj.programs.find((p) => p.name === rec.program)!;
        const r = verifyProgram(obj, prog, { logLevel: 0 });
        assert.equal(r.verdict, "accept", `${rec.program}: ${r.message}`);
        const ours = r.xlated!;
        const ourCalls = ours.filter(KFUNC_CALL);
        const lens = ourCalls.map((c) =>
          INSERTED[kfuncName(c.imm >>> 0)!] ?? 0
        );
        const kernelCalls = kernel.filter(KFUNC_CALL).length;
        assert.equal(
          kernelCalls,
          ourCalls.length,
          `${rec.program}: kfunc calls`,
        );
        assert.deepEqual(
          prologues(ours, lens),
          prologues(kernel, lens),
          `${rec.program}: inserted instructions`,
        );
        compared += lens.filter((n) => n > 0).length;
      }
    });
  }
  assert.ok(compared > 50, `compared ${compared} rewritten calls`);
});
