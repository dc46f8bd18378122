// Verification on or off for scenarios and the CLI: the Scenario API
// option, the scenario-level flag, `cli.ts scenario --no-verify` and
// `cli.ts run --no-verify`.
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { cli } from "../cli/harness.ts";
import { runScenario } from "../../lib/scenario/scenario.ts";
import { scenario as probe } from "../fixtures/scenarios/verify_probe.ts";
import { scenario as brokenRule } from "../../scenarios/broken_rule.ts";

const PROBE = new URL("../fixtures/scenarios/verify_probe.ts", import.meta.url)
  .pathname;
const BROKEN_RULE_O = new URL(
  "../fixtures/scenarios/broken_rule.o",
  import.meta.url,
).pathname;

Deno.test("runScenario: verification on by default, off by option or by the scenario", async () => {
  deepEqual((await runScenario(probe)).lines, ["verify=true"]);
  deepEqual((await runScenario(probe, 1, { verify: false })).lines, [
    "verify=false",
  ]);
  const unverified = { ...probe, verify: false };
  deepEqual((await runScenario(unverified)).lines, ["verify=false"]);
  deepEqual((await runScenario(unverified, 1, { verify: true })).lines, [
    "verify=true",
  ]);
});

Deno.test("broken rule with verification on: refused, and nothing runs", async () => {
  const r = await runScenario(brokenRule, 1, { verify: true });
  ok(r.ok, r.claims.map((c) => `${c.what}: ${c.detail}`).join("; "));
  ok(r.lines.some((l) => /cannot run/.test(l)));
  equal(r.kernel.trace.count, 0);
});

Deno.test("cli scenario --no-verify", async () => {
  const on = await cli("scenario", "--json", PROBE);
  equal(on.code, 0, on.err);
  deepEqual(JSON.parse(on.out).lines, ["verify=true"]);
  const off = await cli("scenario", "--json", "--no-verify", PROBE);
  equal(off.code, 0, off.err);
  deepEqual(JSON.parse(off.out).lines, ["verify=false"]);
  match((await cli("scenario", "--help")).out, /--no-verify/);
});

Deno.test("cli run: a program the verifier refuses does not run, unless --no-verify", async () => {
  const refused = await cli(
    "run",
    "--json",
    BROKEN_RULE_O,
    "--program",
    "pop_unlocked",
  );
  equal(refused.code, 1);
  equal(JSON.parse(refused.out).errno, -22);
  match(refused.err, /must be held for bpf_list_head/);
  const ran = await cli(
    "run",
    "--json",
    "--no-verify",
    BROKEN_RULE_O,
    "--program",
    "pop_unlocked",
  );
  equal(ran.code, 0, ran.err);
  equal(
    JSON.parse(ran.out).retval,
    "0x1",
    "an empty list: pop_unlocked returns 1",
  );
  match((await cli("run", "--help")).out, /--no-verify/);
});
