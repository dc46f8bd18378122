/**
 * Explanations of rejections (lib/verifier/explain.ts) checked against the
 * kernel's own logs of the graph fixtures (tests/fixtures/graph/logs/):
 * a leak explanation must name the instruction the kernel reports as
 * `alloc_insn`, a lock explanation the `call bpf_spin_lock` of the failing
 * path the kernel printed; and every reference/lock rejection of the graph
 * fixtures gets an explanation.
 */
import assert from "node:assert/strict";
import { loadFixture, readOracle } from "../elf/fixtures.ts";
import { verifyProgram } from "../../lib/verifier/verify.ts";

const LOGS = new URL("../fixtures/graph/logs/", import.meta.url);

function kernelLog(obj: string, prog: string): string | null {
  try {
    return Deno.readTextFileSync(new URL(`${obj}.${prog}.log`, LOGS));
  } catch {
    return null;
  }
}

/** Graph fixtures' rejections: [object, program, kernel message, kernel log]. */
function rejections(): [string, string, string, string][] {
  const out: [string, string, string, string][] = [];
  for (
    const e of Deno.readDirSync(new URL("../fixtures/graph/", import.meta.url))
  ) {
    if (!e.name.endsWith(".oracle.json")) continue;
    const base = e.name.replace(".oracle.json", "");
    for (const o of readOracle(`graph/${base}.o`)) {
      if (o.verdict !== "reject" || o.program === null) continue;
      const log = kernelLog(base, o.program);
      if (log) out.push([base, o.program, o.message, log]);
    }
  }
  return out.sort();
}

Deno.test("explain: leaks name the kernel's alloc_insn", () => {
  let checked = 0;
  for (const [base, prog, message, log] of rejections()) {
    if (!message.endsWith("would lead to reference leak")) continue;
    const obj = loadFixture(`graph/${base}.o`);
    const r = verifyProgram(obj, obj.programs.find((p) => p.name === prog)!);
    const allocs = [...log.matchAll(/alloc_insn=(\d+)/g)].map((m) => m[1]);
    assert.ok(allocs.length > 0, `${base}:${prog} kernel log has alloc_insn`);
    for (const at of allocs) {
      assert.match(
        r.explain ?? "",
        new RegExp(`acquired at insn ${at} `),
        `${base}:${prog}`,
      );
    }
    checked++;
  }
  assert.ok(checked >= 5, `checked ${checked} leaks`);
});

Deno.test("explain: held locks name the kernel's bpf_spin_lock call", () => {
  let checked = 0;
  for (const [base, prog, message, log] of rejections()) {
    const about =
      message === "function calls are not allowed while holding a lock" ||
      message.endsWith("cannot be used inside bpf_spin_lock-ed region") ||
      message === "Locking two bpf_spin_locks are not allowed";
    if (!about) continue;
    const calls = [...log.matchAll(/^(\d+): \(85\) call bpf_spin_lock#93/gm)];
    if (calls.length === 0) continue; // the lock was taken in a subprogram
    const obj = loadFixture(`graph/${base}.o`);
    const r = verifyProgram(obj, obj.programs.find((p) => p.name === prog)!);
    const first = calls[0][1];
    assert.match(
      r.explain ?? "",
      new RegExp(`bpf_spin_lock taken at insn ${first} `),
      `${base}:${prog}: ${r.explain}`,
    );
    checked++;
  }
  assert.ok(checked >= 5, `checked ${checked} lock explanations`);
});

Deno.test("explain: reference and lock rejections are explained", () => {
  const about =
    /reference leak|bpf_spin_lock|holding a lock|invalid mem access 'scalar'|or_null|Possibly NULL|must be referenced or trusted/;
  let n = 0;
  for (const [base, prog, message] of rejections()) {
    if (!about.test(message)) continue;
    if (
      /cannot use bpf_spin_lock yet|has to have BTF|doesn't point to 'struct bpf_spin_lock'|cannot be accessed directly|dereference of modified/
        .test(message)
    ) continue;
    const obj = loadFixture(`graph/${base}.o`);
    const r = verifyProgram(obj, obj.programs.find((p) => p.name === prog)!, {
      logLevel: 0,
    });
    assert.equal(r.message, message, `${base}:${prog}`);
    assert.ok(r.explain, `${base}:${prog} (${message}) has no explanation`);
    n++;
  }
  assert.ok(n >= 30, `explained ${n}`);
});
