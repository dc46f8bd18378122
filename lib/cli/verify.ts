/**
 * `cli.ts verify [--json] [--log] FILE.o…`: runs the simulated verifier on
 * every program of each object, each loaded alone, and prints the verdict
 * with the same fields as `../shared/oracle/oracle verify`.
 * @module
 */
import { verifyObject, type VerifyResult } from "../verifier/verify.ts";
import type { Command, Output } from "./command.ts";
import { readObject } from "./object.ts";
import { parseCommand, UsageError } from "./usage.ts";
import { xlatedLines } from "../verifier/xlated.ts";

const HELP =
  `usage: cli.ts verify [--json] [--log] [--log-level N] [--xlated] FILE.o...

Verifies every program of each object as the Linux 6.18 verifier would when
libbpf loads it alone, and prints one line per program: verdict, the
decisive log line of a rejection, processed instructions.

  --json          one JSON object per program with the oracle's fields:
                  object, program, section, verdict, errno, message,
                  processed, insns (and log with --log)
  --log           include (or print) the whole verifier log
  --log-level N   1 (default: the failing path) or 2 (every path)
  --xlated        after each accepted program, the program as rewritten
                  after verification (kfunc arguments filled in), listed
                  like bpftool prog dump xlated (JSON: field xlated)

A rejection about references or locks is explained: where the reference or
lock came from and the path to the failure (JSON: field explain).`;

function printHuman(
  r: VerifyResult,
  withLog: boolean,
  withXlated: boolean,
  io: Output,
): void {
  const what = r.verdict === "accept"
    ? "accept"
    : `reject (${r.errno}): ${r.message}`;
  io.out(
    `${r.object} ${r.program} [${r.section}]: ${what} — processed ${r.processed} of ${r.insns} insns`,
  );
  if (r.explain) {
    for (const line of r.explain.split("\n")) io.out(`  explain: ${line}`);
  }
  if (withLog) {
    for (const line of r.log.trimEnd().split("\n")) io.out(`  ${line}`);
  }
  if (withXlated && r.xlated) {
    for (const line of xlatedLines(r.xlated)) io.out(line);
  }
}

/** The `verify` command. */
export const verifyCommand: Command = {
  name: "verify",
  summary: "run the verifier on an object's programs",
  help: HELP,
  run(args, io) {
    const { values, positionals } = parseCommand("verify", args, {
      json: { type: "boolean" },
      log: { type: "boolean" },
      "log-level": { type: "string" },
      xlated: { type: "boolean" },
    });
    if (values.help) {
      io.out(HELP);
      return 0;
    }
    if (positionals.length === 0) {
      throw new UsageError("verify: expects at least one FILE.o");
    }
    const levelText = (values["log-level"] as string | undefined) ?? "1";
    if (levelText !== "1" && levelText !== "2") {
      throw new UsageError(
        `verify: --log-level must be 1 or 2, got '${levelText}'`,
      );
    }
    const logLevel = Number(levelText) as 1 | 2;
    const withLog = values.log === true;
    for (const path of positionals) {
      const results = verifyObject(readObject(path), { logLevel });
      for (const r of results) {
        if (!values.json) {
          printHuman(r, withLog, values.xlated === true, io);
          continue;
        }
        const line: Record<string, unknown> = {
          object: r.object,
          program: r.program,
          section: r.section,
          verdict: r.verdict,
          errno: r.errno,
          message: r.message,
          processed: r.processed,
          insns: r.insns,
        };
        if (r.explain) line.explain = r.explain;
        if (withLog) line.log = r.log;
        if (values.xlated && r.xlated) line.xlated = xlatedLines(r.xlated);
        io.out(JSON.stringify(line));
      }
    }
    return 0;
  },
};
