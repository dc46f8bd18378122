/**
 * Compares bpfsim's `processed` instruction count with the kernel's (the
 * oracle JSON files) over every accepted fixture program. Equal counts are
 * strong evidence that state pruning (liveness, precision, checkpoints)
 * matches the kernel's. Prints one line per differing program with `-v`,
 * then `equal/accepted` and the summed counts.
 *
 * Run: deno run -A bench/processed_compare.ts [-v] [path-filter]
 * @module
 */
import { parseArgs } from "node:util";
import {
  loadFixture,
  objectsWithOracle,
  readOracle,
} from "../tests/elf/fixtures.ts";
import { verifyProgram } from "../lib/verifier/verify.ts";

/** One accepted program's counts. */
export interface ProcessedRow {
  /** `object:program`. */
  readonly name: string;
  /** The kernel's `processed`. */
  readonly kernel: number;
  /** bpfsim's `processed`. */
  readonly bpfsim: number;
}

/** Counts for every program both verifiers accept (filter on the path). */
export function compareProcessed(filter = ""): ProcessedRow[] {
  const rows: ProcessedRow[] = [];
  for (const path of objectsWithOracle()) {
    if (!path.includes(filter)) continue;
    let obj;
    try {
      obj = loadFixture(path, { allowUnknownSections: true });
    } catch {
      continue;
    }
    for (const o of readOracle(path)) {
      if (o.program === null || o.verdict !== "accept") continue;
      const prog = obj.programs.find((p) => p.name === o.program);
      if (!prog) continue;
      const r = verifyProgram(obj, prog, { logLevel: 0 });
      if (r.verdict !== "accept") continue;
      rows.push({
        name: `${path}:${o.program}`,
        // `processed` is in every recorded line (see the oracle README)
        kernel: (o as { processed?: number }).processed ?? -1,
        bpfsim: r.processed,
      });
    }
  }
  return rows;
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    options: { v: { type: "boolean", short: "v" } },
    allowPositionals: true,
  });
  const rows = compareProcessed(positionals[0] ?? "");
  let equal = 0, more = 0, less = 0, k = 0, b = 0;
  for (const r of rows) {
    k += r.kernel;
    b += r.bpfsim;
    if (r.kernel === r.bpfsim) equal++;
    else if (r.bpfsim > r.kernel) more++;
    else less++;
    if (values.v && r.kernel !== r.bpfsim) {
      console.log(`${r.name}: kernel ${r.kernel} bpfsim ${r.bpfsim}`);
    }
  }
  console.log(
    `equal ${equal}/${rows.length} (bpfsim more ${more}, less ${less}); ` +
      `sum kernel ${k} bpfsim ${b}`,
  );
}
