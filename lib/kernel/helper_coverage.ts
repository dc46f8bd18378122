/**
 * Which helpers the verifier knows that the simulated kernel does not run,
 * and why: each needs a piece of the kernel bpfsim does not simulate —
 * sockets and the socket-level hooks, tracing attachments
 * (trampolines, perf events, branch records). A program calling one fails at the
 * call with an ExecError naming the helper ("… is not modelled by bpfsim's
 * runtime"); the verifier still judges it as the kernel does. Every other
 * helper the verifier knows has a runtime (tests/kernel/helper_coverage_test.ts
 * checks both ways).
 * @module
 */

/** Helper names (as the verifier prints them) with no runtime, and why. */
export const NOT_MODELLED_HELPERS: Readonly<Record<string, string>> = {};
