// Runs every file of ../shared/conformance (the bpf_conformance suite):
// positive programs must return their expected r0 on every engine (the
// interpreter and the JIT, which must also agree on steps and the bytes
// they leave in mem), and the
// kernel-rule checks must refuse exactly what the real kernel refused
// (verdicts recorded in the suite's index.json).
import { deepEqual, equal, ok } from "node:assert/strict";
import { fileURLToPath as fromFileUrl } from "node:url";
import {
  dataFileProgram,
  parseDataFile,
} from "../../lib/isa/conformance_data.ts";
import { decodeRaw } from "../../lib/isa/decode.ts";
import { validateProgram } from "../../lib/isa/validate.ts";
import { compileProgram } from "../../lib/exec/compile.ts";
import { ENGINES } from "../../lib/exec/jit/step_jit.ts";
import { runProgram } from "../../lib/exec/run.ts";

const suite = fromFileUrl(
  new URL("../../../shared/conformance/", import.meta.url),
);

interface IndexEntry {
  file: string;
  purpose: string;
  linux?: { verdict?: string; log?: string | null };
}
const index: IndexEntry[] = JSON.parse(
  Deno.readTextFileSync(suite + "index.json"),
);
const byFile = new Map(index.map((e) => [e.file, e]));

function files(dir: string): string[] {
  return [...Deno.readDirSync(suite + dir)]
    .map((e) => e.name)
    .filter((n) => n.endsWith(".data"))
    .sort();
}

// Messages the instruction-level checks can give; others (R0 !read_ok,
// unreachable insn) need the verifier proper and are only required to refuse.
const FIELD_LEVEL =
  /uses reserved fields|invalid shift|unknown opcode|addr_space_cast/;

Deno.test("conformance: every positive program returns its expected r0 on every engine, identically", async (t) => {
  const names = files("tests");
  equal(names.length, 313, "the suite holds 313 positive tests");
  // Parsed and compiled once, shared by the engines.
  const cases = names.map((name) => {
    const file = parseDataFile(
      Deno.readTextFileSync(`${suite}tests/${name}`),
      name,
    );
    try {
      return {
        name,
        file,
        program: compileProgram(decodeRaw(dataFileProgram(file))),
      };
    } catch (e) {
      return { name, file, program: e as Error };
    }
  });
  const outcomes: string[][] = [];
  for (const engine of ENGINES) {
    await t.step(engine, () => {
      const failures: string[] = [], seen: string[] = [];
      for (const { name, file, program } of cases) {
        try {
          if (program instanceof Error) throw program;
          const { r0, steps, memOut } = runProgram(program, {
            mem: file.mem,
            engine,
          });
          seen.push(`${name}: r0=${r0} steps=${steps} mem=${memOut}`);
          if (r0 !== file.result) {
            failures.push(
              `${name}: r0 = 0x${r0.toString(16)}, expected 0x${
                file.result?.toString(16)
              }`,
            );
          }
        } catch (e) {
          seen.push(`${name}: ${(e as Error).message}`);
          failures.push(`${name}: ${(e as Error).message}`);
        }
      }
      outcomes.push(seen);
      equal(
        failures.join("\n"),
        "",
        `${names.length - failures.length}/${names.length} pass`,
      );
    });
  }
  await t.step("the engines agree on r0, steps and the mem bytes after", () => {
    for (let i = 1; i < outcomes.length; i++) {
      deepEqual(
        outcomes[i],
        outcomes[0],
        `${ENGINES[i]} against ${ENGINES[0]}`,
      );
    }
  });
});

Deno.test("conformance: kernel-rule checks agree with the kernel's recorded verdicts", () => {
  const disagreements: string[] = [];
  for (const name of files("tests")) {
    const linux = byFile.get(`tests/${name}`)?.linux;
    ok(linux?.verdict, `index.json records the kernel's verdict for ${name}`);
    const file = parseDataFile(
      Deno.readTextFileSync(`${suite}tests/${name}`),
      name,
    );
    const issue = validateProgram(dataFileProgram(file));
    if (linux.verdict === "accept" && issue !== null) {
      disagreements.push(
        `${name}: kernel accepts, we refuse: ${issue.message}`,
      );
    }
    if (linux.verdict === "reject" && issue?.message !== linux.log) {
      disagreements.push(
        `${name}: kernel says '${linux.log}', we say '${issue?.message}'`,
      );
    }
  }
  equal(disagreements.join("\n"), "");
});

Deno.test("conformance: every negative/unused-* program is refused at load", () => {
  const names = files("negative").filter((n) => n.startsWith("unused-"));
  equal(names.length, 45);
  const problems: string[] = [];
  for (const name of names) {
    const file = parseDataFile(
      Deno.readTextFileSync(`${suite}negative/${name}`),
      name,
    );
    const issue = validateProgram(dataFileProgram(file));
    const kernel = byFile.get(`negative/${name}`)?.linux?.log ?? "";
    if (issue === null) problems.push(`${name}: accepted`);
    else if (FIELD_LEVEL.test(kernel) && issue.message !== kernel) {
      problems.push(
        `${name}: kernel says '${kernel}', we say '${issue.message}'`,
      );
    }
  }
  equal(problems.join("\n"), "");
});
