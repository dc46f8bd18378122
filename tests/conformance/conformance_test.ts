// Runs every file of ../shared/conformance (the bpf_conformance suite):
// positive programs must return their expected r0 on the interpreter, and the
// kernel-rule checks must refuse exactly what the real kernel refused
// (verdicts recorded in the suite's index.json).
import { equal, ok } from "node:assert/strict";
import { fileURLToPath as fromFileUrl } from "node:url";
import {
  dataFileProgram,
  parseDataFile,
} from "../../lib/isa/conformance_data.ts";
import { decodeRaw } from "../../lib/isa/decode.ts";
import { validateProgram } from "../../lib/isa/validate.ts";
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

Deno.test("conformance: every positive program returns its expected r0", async (t) => {
  const names = files("tests");
  equal(names.length, 313, "the suite holds 313 positive tests");
  const failures: string[] = [];
  for (const name of names) {
    const file = parseDataFile(
      Deno.readTextFileSync(`${suite}tests/${name}`),
      name,
    );
    try {
      const program = decodeRaw(dataFileProgram(file));
      const { r0 } = runProgram(program, { mem: file.mem });
      if (r0 !== file.result) {
        failures.push(
          `${name}: r0 = 0x${r0.toString(16)}, expected 0x${
            file.result?.toString(16)
          }`,
        );
      }
    } catch (e) {
      failures.push(`${name}: ${(e as Error).message}`);
    }
  }
  await t.step(`${names.length - failures.length}/${names.length} pass`, () => {
    equal(failures.join("\n"), "");
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
