/**
 * Verification on load: before the simulated kernel runs a program of an
 * object, the verifier (lib/verifier) must accept it, as `BPF_PROG_LOAD`
 * demands. Switching it off (`verify: false`, `--no-verify`) is the
 * teaching escape hatch: the program then runs as written, and the
 * sanitizer shows what the verifier would have prevented.
 * @module
 */
import type { ObjectFile } from "../elf/types.ts";
import { ProgramLoadError } from "./object_loader.ts";
import {
  VerifierError,
  verifyProgram,
  type VerifyResult,
} from "../verifier/verify.ts";

/** A verdict that may carry the verifier's explanation of a rejection. */
type ExplainedResult = VerifyResult & { readonly explain?: string };

/**
 * Thrown when verification on load rejects a program: the message names
 * the object and program and gives the verifier's decisive line (and its
 * explanation, when the verifier gives one); the {@link VerifierError} is
 * the `cause`, with the whole log.
 */
export class ProgramRejectedError extends Error {
  /** The rejected program. */
  readonly program: string;
  /** The verifier's verdict. */
  readonly result: VerifyResult;
  /** The verifier's decisive line, as the kernel logs it. */
  readonly verifierMessage: string;
  /** The verifier's explanation of the rule broken, when it gives one. */
  readonly explain: string | undefined;

  /** Builds the error from a rejecting verdict. */
  constructor(result: VerifyResult) {
    const explain = (result as ExplainedResult).explain;
    const cause = new VerifierError(result, -1);
    super(
      `${result.object}: the verifier rejects program '${result.program}': ` +
        `${result.message}${explain ? `\n${explain}` : ""}`,
      { cause },
    );
    this.name = "ProgramRejectedError";
    this.program = result.program;
    this.result = result;
    this.verifierMessage = result.message;
    this.explain = explain;
  }
}

/**
 * True for a rejection that is no verdict: the program uses a kernel
 * feature bpfsim's verifier does not model yet (`kernel function X is not
 * modelled by bpfsim`), so it cannot judge it either way.
 */
export function isUnmodelled(result: VerifyResult): boolean {
  return result.verdict === "reject" &&
    /is not modelled by bpfsim/.test(result.message);
}

/**
 * Verifies program `name` of `object` (as parsed, before the kernel
 * resolves it) and returns the verdict; throws a
 * {@link ProgramRejectedError} when the verifier rejects it. A program the
 * verifier cannot judge ({@link isUnmodelled}) is not refused: the
 * returned verdict says so, and callers may tell the user it runs
 * unverified.
 */
export function verifyBeforeRun(
  object: ObjectFile,
  name: string,
): VerifyResult {
  const program = object.programs.find((p) => p.name === name);
  if (program === undefined) {
    throw new ProgramLoadError(`${object.file}: no program '${name}'`);
  }
  const result = verifyProgram(object, program, { logLevel: 1 });
  if (result.verdict === "reject" && !isUnmodelled(result)) {
    throw new ProgramRejectedError(result);
  }
  return result;
}
