/**
 * `cli.ts fuzz`: the differential fuzzer — random valid programs run on the
 * interpreter and on the JIT; any difference is minimised and printed.
 * @module
 */
import { fuzzEngines } from "../exec/jit/fuzz.ts";
import type { Command } from "./command.ts";
import { parseCommand, parsePositiveInt, UsageError } from "./usage.ts";

const HELP = `usage: cli.ts fuzz [--seed N] [--iterations N] [--size N] [--json]

Generates random valid BPF programs from a seed (ALU and JMP in both widths,
forward jumps, bounded loops, stack loads and stores), runs each on the
interpreter and on the JIT, whole and in odd step budgets, and compares the
final state. A difference is minimised (instructions removed while it
persists) and printed with its disassembly; exit 1 then.

  --seed N         first seed (default 1); the same seed gives the same programs
  --iterations N   programs to try (default 2000)
  --size N         slots per program (default 40)
  --json           one JSON line per finding, then a summary line`;

/** The `fuzz` command. */
export const fuzzCommand: Command = {
  name: "fuzz",
  summary: "differential fuzzing of the interpreter against the JIT",
  help: HELP,
  run(args, io) {
    const { values, positionals } = parseCommand("fuzz", args, {
      seed: { type: "string" },
      iterations: { type: "string" },
      size: { type: "string" },
      json: { type: "boolean" },
    });
    if (values.help) {
      io.out(HELP);
      return 0;
    }
    if (positionals.length > 0) throw new UsageError("fuzz: takes no FILE");
    const num = (name: string, fallback: number) =>
      typeof values[name] === "string"
        ? parsePositiveInt(`--${name}`, values[name] as string)
        : fallback;
    const seed = num("seed", 1),
      iterations = num("iterations", 2000),
      size = num("size", 40);
    const findings = fuzzEngines(seed, iterations, size);
    for (const f of findings) {
      if (values.json) io.out(JSON.stringify(f));
      else {
        io.out(
          `seed ${f.seed}: the engines differ\n  interp: ${f.interp}\n  jit:    ${f.jit}`,
        );
        f.disassembly.forEach((line) => io.out(`    ${line}`));
      }
    }
    const summary =
      `${iterations} programs from seed ${seed}: ${findings.length} difference(s)`;
    io.out(
      values.json
        ? JSON.stringify({
          seed,
          iterations,
          size,
          differences: findings.length,
        })
        : summary,
    );
    return findings.length === 0 ? 0 : 1;
  },
};
