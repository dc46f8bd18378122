/**
 * The inventory: every program with a recorded kernel verdict
 * (tests/fixtures/**\/*.oracle.json, one line per program) is verified by
 * bpfsim. The verdict must equal the kernel's and, for rejections, the
 * decisive message must equal it once numbers are normalised — unless the
 * program is listed in xfail.json with a reason. A listed program that now
 * agrees fails the test (the list stays honest). A program the kernel
 * rejects but bpfsim accepts is listed separately as
 * `kernel_rejects_we_accept` and fails the test unless its xfail reason
 * names a feature the slice does not model ("unmodelled feature: …") or
 * a refusal that is not about memory safety ("not memory safety: …").
 *
 * `BPFSIM_XFAIL_WRITE=1` rewrites xfail.json with the current disagreements
 * (reasons then need a human look).
 */
import assert from "node:assert/strict";
import { loadFixture, objectsWithOracle, readOracle } from "../elf/fixtures.ts";
import { verifyProgram } from "../../lib/verifier/verify.ts";
import type { ObjectFile } from "../../lib/elf/types.ts";

const XFAIL_URL = new URL("./xfail.json", import.meta.url);
const xfail: Record<string, string> = JSON.parse(
  Deno.readTextFileSync(XFAIL_URL),
);

/** Every decimal or hex number becomes N. */
function normalise(message: string): string {
  return message.replace(/0x[0-9a-f]+|\d+/gi, "N");
}

interface Outcome {
  key: string;
  kernel: string;
  ours: string;
  agree: boolean;
  messageAgree: boolean;
  kernelRejectsWeAccept: boolean;
  /** A rejection with the kernel's message but another errno. */
  errnoMismatch?: string;
}

/**
 * `-ENOSPC`: what a load returns when the verifier's log overflowed the
 * oracle's buffer, whatever the verifier's own error was.
 */
const LOG_FULL = -28;

function runInventory(): Outcome[] {
  const out: Outcome[] = [];
  for (const path of objectsWithOracle()) {
    const oracle = readOracle(path);
    let obj: ObjectFile | null = null;
    let loadError = "";
    try {
      obj = loadFixture(path, { allowUnknownSections: true });
    } catch (e) {
      loadError = `object open failed: ${(e as Error).message}`;
    }
    for (const o of oracle) {
      const key = `${path}:${o.program ?? "(object)"}`;
      const kernel = `${o.verdict}: ${o.message}`;
      if (!obj || o.program === null) {
        const agree = !obj && o.verdict === "reject" && o.program === null;
        out.push({
          key,
          kernel,
          ours: obj ? "accept: (object opened)" : `reject: ${loadError}`,
          agree,
          messageAgree: agree,
          kernelRejectsWeAccept: false,
        });
        continue;
      }
      const prog = obj.programs.find((p) => p.name === o.program);
      if (!prog) {
        out.push({
          key,
          kernel,
          ours: "missing program",
          agree: false,
          messageAgree: false,
          kernelRejectsWeAccept: false,
        });
        continue;
      }
      const r = verifyProgram(obj, prog, { logLevel: 0 });
      const verdictAgree = r.verdict === o.verdict;
      const messageAgree = verdictAgree &&
        (o.verdict === "accept" ||
          normalise(r.message) === normalise(o.message));
      out.push({
        key,
        kernel,
        ours: `${r.verdict}: ${r.message}`,
        agree: messageAgree,
        messageAgree,
        kernelRejectsWeAccept: o.verdict === "reject" &&
          r.verdict === "accept",
        errnoMismatch: o.verdict === "reject" && messageAgree &&
            r.errno !== o.errno && o.errno !== LOG_FULL
          ? `${key}: kernel ${o.errno}, bpfsim ${r.errno} (${o.message})`
          : undefined,
      });
    }
  }
  return out;
}

Deno.test("inventory: bpfsim agrees with the kernel on every fixture", () => {
  const outcomes = runInventory();
  assert.ok(outcomes.length > 50, "the fixtures are there");
  if (Deno.env.get("BPFSIM_XFAIL_WRITE") === "1") {
    const next: Record<string, string> = {};
    for (const o of outcomes) {
      if (!o.agree) {
        next[o.key] = xfail[o.key] ??
          `TODO: kernel ${o.kernel} / bpfsim ${o.ours}`;
      }
    }
    Deno.writeTextFileSync(XFAIL_URL, JSON.stringify(next, null, 2) + "\n");
  }
  const total = outcomes.length;
  const agree = outcomes.filter((o) => o.agree).length;
  const verdictAgree =
    outcomes.filter((o) =>
      o.agree || (o.kernel.split(":")[0] === o.ours.split(":")[0])
    ).length;
  const byReason = new Map<string, number>();
  const unexpected: string[] = [];
  const stale: string[] = [];
  const rejectsWeAccept: string[] = [];
  for (const o of outcomes) {
    const reason = xfail[o.key];
    if (o.agree) {
      if (reason !== undefined) stale.push(o.key);
      continue;
    }
    if (o.kernelRejectsWeAccept) {
      rejectsWeAccept.push(`${o.key} — kernel: ${o.kernel}`);
      const allowed = reason?.startsWith("unmodelled feature") ||
        reason?.startsWith("not memory safety");
      if (!allowed) {
        unexpected.push(
          `${o.key}: kernel rejects (${o.kernel}), bpfsim accepts`,
        );
        continue;
      }
    }
    if (reason === undefined) {
      unexpected.push(
        `${o.key}\n    kernel: ${o.kernel}\n    bpfsim: ${o.ours}`,
      );
      continue;
    }
    const category = reason.split(":")[0];
    byReason.set(category, (byReason.get(category) ?? 0) + 1);
  }
  console.log(
    `inventory: ${agree}/${total} agree (verdict ${verdictAgree}/${total}, ` +
      `message agreement ${(100 * agree / total).toFixed(1)}%)`,
  );
  for (const [r, n] of byReason) console.log(`  xfail ${n}: ${r}`);
  console.log(`  kernel_rejects_we_accept: ${rejectsWeAccept.length}`);
  for (const k of rejectsWeAccept) console.log(`    ${k}`);
  assert.deepEqual(stale, [], "xfail entries that now agree (remove them)");
  assert.deepEqual(unexpected, [], "disagreements not listed in xfail.json");
  // a rejection with the kernel's message also has its errno
  assert.deepEqual(
    outcomes.flatMap((o) => o.errnoMismatch ? [o.errnoMismatch] : []),
    [],
    "rejections with the kernel's message but another errno",
  );
});
