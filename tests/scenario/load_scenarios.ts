/**
 * Every scenario in scenarios/ (the modules exporting `scenario`), in file
 * name order, for the tests that run them all.
 * @module
 */
import type { Scenario } from "../../lib/scenario/scenario.ts";

/** Imports scenarios/*.ts and returns the scenarios they export. */
export async function loadScenarios(): Promise<Scenario[]> {
  const dir = new URL("../../scenarios/", import.meta.url);
  const names = [...Deno.readDirSync(dir)].map((e) => e.name)
    .filter((name) => name.endsWith(".ts")).sort();
  const scenarios: Scenario[] = [];
  for (const name of names) {
    const module = await import(new URL(name, dir).href);
    if (module.scenario !== undefined) scenarios.push(module.scenario);
  }
  return scenarios;
}
