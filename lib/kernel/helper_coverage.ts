/**
 * Which helpers the verifier knows that the simulated kernel does not run,
 * and why. Today none: every helper of the 6.18 verifier has a runtime in
 * each program type bpfsim runs that the verifier offers it to
 * (tests/kernel/helper_coverage_test.ts and helper_coverage_types_test.ts).
 * The table stays as the place to say so, with the reason, if a helper the
 * verifier learns cannot be simulated: a program calling such a helper
 * fails at the call with an ExecError naming it ("… is not modelled by
 * bpfsim's runtime"), while the verifier still judges it as the kernel does.
 * @module
 */

/** Helper names (as the verifier prints them) with no runtime, and why: none today. */
export const NOT_MODELLED_HELPERS: Readonly<Record<string, string>> = {};
