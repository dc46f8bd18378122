/**
 * `cli.ts scenario FILE.ts`: runs a scenario script's exported `scenario`
 * with a seed, prints its report, writes its timeline or trace.
 * @module
 */
import { pathToFileURL } from "node:url";
import { resolve } from "node:path";
import { renderTimeline } from "../scenario/timeline.ts";
import {
  formatScenarioResult,
  runScenario,
  type Scenario,
} from "../scenario/scenario.ts";
import type { Command } from "./command.ts";
import { InputError, parseCommand, UsageError } from "./usage.ts";

const HELP =
  `usage: cli.ts scenario [--seed N] [--seeds N] [--timeline FILE.html] [--trace FILE.jsonl] [--json] [--no-verify] FILE.ts

Runs the scenario that FILE.ts exports as \`scenario\` (see scenarios/) on the
simulated kernel and prints its report: what happened, and each claim with
whether it held. Exits 1 when a claim fails.

  --seed N              seed of the run (default 1): the same seed replays the same run
  --seeds N             run seeds 1..N and report each (timeline/trace: the last)
  --timeline FILE.html  write a self-contained HTML timeline, one lane per CPU
  --trace FILE.jsonl    write the trace as JSON lines
  --json                one JSON line per run instead of the report
  --no-verify           run programs the verifier has not accepted (or would
                        reject), for teaching: the sanitizer then reports what
                        goes wrong (default: every program is verified first)`;

function toNumber(
  option: string,
  text: string | undefined,
  fallback: number,
): number {
  if (text === undefined) return fallback;
  if (!/^[0-9]+$/.test(text)) {
    throw new UsageError(`${option}: expected a whole number, got '${text}'`);
  }
  return Number(text);
}

/** The `scenario` command. */
export const scenarioCommand: Command = {
  name: "scenario",
  summary: "run a scenario script on the simulated kernel",
  help: HELP,
  async run(args, io) {
    const { values, positionals } = parseCommand("scenario", args, {
      seed: { type: "string" },
      seeds: { type: "string" },
      timeline: { type: "string" },
      trace: { type: "string" },
      json: { type: "boolean" },
      "no-verify": { type: "boolean" },
    });
    if (values.help) {
      io.out(HELP);
      return 0;
    }
    if (positionals.length !== 1) {
      throw new UsageError("scenario: expects exactly one FILE.ts");
    }
    const file = positionals[0];
    let module: { scenario?: Scenario };
    try {
      module = await import(pathToFileURL(resolve(file)).href);
    } catch (e) {
      throw new InputError(
        `${file}: cannot load: ${(e as Error).message.split("\n")[0]}`,
      );
    }
    const scenario = module.scenario;
    if (scenario === undefined || typeof scenario.run !== "function") {
      throw new InputError(
        `${file}: exports no \`scenario\` (see scenarios/ for examples)`,
      );
    }
    const first = toNumber("--seed", values.seed as string | undefined, 1);
    const count = toNumber("--seeds", values.seeds as string | undefined, 1);
    const seeds = values.seeds === undefined
      ? [first]
      : Array.from({ length: count }, (_, i) => i + 1);
    let failed = 0;
    let last;
    for (const seed of seeds) {
      const result = await runScenario(scenario, seed, {
        verify: values["no-verify"] === true ? false : undefined,
      });
      last = result;
      if (!result.ok) failed++;
      if (values.json) {
        const { kernel: _kernel, ...plain } = result;
        io.out(JSON.stringify(plain));
      } else io.out(formatScenarioResult(result) + "\n");
    }
    if (last !== undefined && typeof values.timeline === "string") {
      const cpus = last.kernel.cpus.length;
      const title = `${scenario.name} (seed ${last.seed})`;
      Deno.writeTextFileSync(
        values.timeline,
        renderTimeline(last.kernel.trace.events, cpus, title),
      );
    }
    if (last !== undefined && typeof values.trace === "string") {
      Deno.writeTextFileSync(
        values.trace,
        last.kernel.trace.toJsonLines() + "\n",
      );
    }
    if (seeds.length > 1) {
      io.out(
        `${seeds.length - failed} of ${seeds.length} seeds hold every claim`,
      );
    }
    return failed === 0 ? 0 : 1;
  },
};
