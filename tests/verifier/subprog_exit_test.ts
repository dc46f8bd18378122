/**
 * A subprogram's abnormal returns against the real kernel: a tail call
 * that succeeds returns to the caller with R0 unknown (explored before the
 * failed call's fall-through), a BPF_LD_ABS past the packet returns 0 —
 * for every program of verifier/subprog_exit.o the 6.18 kernel's verdict,
 * errno, message and processed count, and for the rejected one its
 * level-1 log line for line ("returning from callee" at the tail call).
 */
import { expectKernelVerdictsAndLogs } from "./kernel_logs.ts";

Deno.test("subprogram exits: bpfsim verifies subprog_exit.o as the 6.18 kernel does", async (t) => {
  await expectKernelVerdictsAndLogs(
    t,
    "verifier/subprog_exit.o",
    new URL("../fixtures/verifier/logs/", import.meta.url),
    "subprog_exit",
  );
});
