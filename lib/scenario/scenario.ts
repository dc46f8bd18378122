/**
 * The scenario API: a scenario builds a simulated kernel, loads programs,
 * queues work on CPUs, runs, and states claims about the outcome. Running it
 * gives a report whose claims a script, a test or `cli.ts scenario` checks;
 * the same seed replays the same run (compare `traceHash`).
 *
 * @example
 * ```ts
 * import { defineScenario, scenarioMain } from "../mod.ts";
 * export const scenario = defineScenario({
 *   name: "one cpu",
 *   description: "returns the CPU number",
 *   cpus: 2,
 *   run(s) {
 *     const p = s.kernel.load("id", s.assemble("call 8\nexit"));
 *     let r0 = -1n;
 *     s.kernel.submit(1, p, { onExit: (v) => (r0 = v) });
 *     s.kernel.run();
 *     s.claim("the program saw CPU 1", r0 === 1n, `r0 = ${r0}`);
 *   },
 * });
 * if (import.meta.main) await scenarioMain(scenario);
 * ```
 * @module
 */
import { parseArgs } from "node:util";
import { assemble } from "../isa/asm.ts";
import type { Insn } from "../isa/insn.ts";
import { Kernel, type KernelOptions } from "../kernel/kernel.ts";
import type { Engine } from "../exec/jit/step_jit.ts";
import { renderTimeline } from "./timeline.ts";

/** One claim a scenario makes, and whether it held. */
export interface Claim {
  /** What is claimed, in words. */
  readonly what: string;
  /** Whether it held. */
  readonly ok: boolean;
  /** Evidence: the numbers behind the verdict. */
  readonly detail?: string;
}

/** What a scenario's `run` gets. */
export interface ScenarioContext {
  /** The kernel, built from the scenario's CPU count and the seed. */
  readonly kernel: Kernel;
  /** The seed of this run. */
  readonly seed: number;
  /**
   * Whether programs are verified before they run (the kernel's `verify`
   * option: objects loaded with `loadObjectWithRuntime` follow it).
   */
  readonly verify: boolean;
  /** Assembles kernel-syntax (or bpf_conformance) text. */
  assemble(text: string): Insn[];
  /** Adds a line to the report. */
  say(line: string): void;
  /** States a claim; a false one makes the scenario fail. */
  claim(what: string, ok: boolean, detail?: string): void;
}

/** A scenario: what it shows and how it runs. */
export interface Scenario {
  /** Short name. */
  readonly name: string;
  /** What it shows, one or two sentences. */
  readonly description: string;
  /** CPUs of the kernel (default 4). */
  readonly cpus?: number;
  /**
   * Whether every run must end with idle CPUs and no lock held (default
   * true); false for scenarios that show a kernel getting stuck.
   */
  readonly expectsCleanEnd?: boolean;
  /**
   * Whether the kernel verifies programs before running them (default
   * true); false for scenarios that show what happens without the
   * verifier. `runScenario(…, { verify })` overrides it.
   */
  readonly verify?: boolean;
  /** More kernel options (quantum, schedule, helpers). */
  readonly kernel?: Omit<KernelOptions, "cpus" | "seed" | "verify">;
  /** Builds, runs and checks. */
  run(s: ScenarioContext): void | Promise<void>;
}

/** The outcome of one run of a scenario. */
export interface ScenarioResult {
  /** The scenario's name. */
  readonly name: string;
  /** The seed used. */
  readonly seed: number;
  /** The report lines `say` produced. */
  readonly lines: readonly string[];
  /** Every claim made. */
  readonly claims: readonly Claim[];
  /** True when there was at least one claim and all held. */
  readonly ok: boolean;
  /** Hash of the kernel's trace: equal seeds give equal hashes. */
  readonly traceHash: string;
  /** The kernel after the run, for further inspection. */
  readonly kernel: Kernel;
}

/** Declares a scenario (identity; gives the object its type). */
export function defineScenario(scenario: Scenario): Scenario {
  return scenario;
}

/** Options of {@link runScenario}. */
export interface RunScenarioOptions {
  /** The engine (default: the scenario's, else the interpreter). */
  readonly engine?: Engine;
  /**
   * Verify programs before they run (default: the scenario's `verify`,
   * else true); false is `--no-verify`.
   */
  readonly verify?: boolean;
}

/**
 * Runs a scenario once with `seed` (and, optionally, another engine than
 * the interpreter, or with verification off).
 *
 * @example
 * ```ts
 * const r = await runScenario(scenario, 3, { verify: false });
 * console.log(formatScenarioResult(r));
 * ```
 */
export async function runScenario(
  scenario: Scenario,
  seed = 1,
  options: RunScenarioOptions = {},
): Promise<ScenarioResult> {
  const verify = options.verify ?? scenario.verify ?? true;
  const kernel = new Kernel({
    ...scenario.kernel,
    cpus: scenario.cpus ?? 4,
    seed,
    engine: options.engine ?? scenario.kernel?.engine,
    verify,
  });
  const lines: string[] = [];
  const claims: Claim[] = [];
  await scenario.run({
    kernel,
    seed,
    verify,
    assemble: (text) => assemble(text, { name: scenario.name }),
    say: (line) => lines.push(line),
    claim: (what, ok, detail) => claims.push({ what, ok, detail }),
  });
  return {
    name: scenario.name,
    seed,
    lines,
    claims,
    ok: claims.length > 0 && claims.every((c) => c.ok),
    traceHash: kernel.trace.hash(),
    kernel,
  };
}

/** The report as text: the lines, then each claim with ✓ or ✗. */
export function formatScenarioResult(result: ScenarioResult): string {
  const out = [`${result.name} (seed ${result.seed})`, ""];
  for (const line of result.lines) out.push(`  ${line}`);
  if (result.lines.length > 0) out.push("");
  for (const c of result.claims) {
    out.push(
      `  ${c.ok ? "✓" : "✗"} ${c.what}${c.detail ? ` — ${c.detail}` : ""}`,
    );
  }
  if (result.claims.length === 0) out.push("  ✗ the scenario made no claim");
  out.push(
    "",
    `  trace hash ${result.traceHash}; ${
      result.ok ? "all claims hold" : "FAILED"
    }`,
  );
  return out.join("\n");
}

/**
 * The `deno run` entry point of a scenario script: `--seed N`,
 * `--timeline FILE.html`, `--trace FILE.jsonl`, `--json`, `--no-verify`.
 * Exits 1 when a claim fails, 2 on bad arguments.
 */
export async function scenarioMain(
  scenario: Scenario,
  args: readonly string[] = Deno.args,
): Promise<ScenarioResult> {
  let values;
  try {
    values = parseArgs({
      args: [...args],
      options: {
        seed: { type: "string" },
        timeline: { type: "string" },
        trace: { type: "string" },
        json: { type: "boolean" },
        "no-verify": { type: "boolean" },
      },
      strict: true,
    }).values;
  } catch (e) {
    console.error(`${scenario.name}: ${(e as Error).message}`);
    Deno.exit(2);
  }
  const seed = values.seed === undefined ? 1 : Number(values.seed);
  if (!Number.isInteger(seed) || seed < 0) {
    console.error(`${scenario.name}: --seed expects a non-negative integer`);
    Deno.exit(2);
  }
  const result = await runScenario(scenario, seed, {
    verify: values["no-verify"] ? false : undefined,
  });
  if (values.timeline) {
    Deno.writeTextFileSync(
      values.timeline,
      renderTimeline(
        result.kernel.trace.events,
        result.kernel.cpus.length,
        `${scenario.name} (seed ${seed})`,
      ),
    );
  }
  if (values.trace) {
    Deno.writeTextFileSync(
      values.trace,
      result.kernel.trace.toJsonLines() + "\n",
    );
  }
  if (values.json) {
    const { kernel: _kernel, ...plain } = result;
    console.log(JSON.stringify(plain));
  } else console.log(formatScenarioResult(result));
  if (!result.ok) Deno.exit(1);
  return result;
}
