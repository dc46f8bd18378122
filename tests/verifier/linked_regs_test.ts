/**
 * Linked scalars with a constant delta (`BPF_ADD_CONST`, sync_linked_regs())
 * against the real kernel: for every program of verifier/linked_regs.o the
 * verdict, message and processed count the 6.18 kernel recorded, and for
 * the rejected ones its whole level-1 log line for line — the register
 * states print the link (`id=1-1`, `id=1+5`) and what the comparison taught
 * the linked register (`smin32=-5,smax32=26` of r3 after `w1 = w3 + 5` is
 * at most 31). Lines the host decides are left out: map addresses (`lddw`)
 * and the verification time.
 */
import { expectKernelVerdictsAndLogs } from "./kernel_logs.ts";

Deno.test("linked scalars: bpfsim verifies linked_regs.o as the 6.18 kernel does", async (t) => {
  await expectKernelVerdictsAndLogs(
    t,
    "verifier/linked_regs.o",
    new URL("../fixtures/verifier/logs/", import.meta.url),
    "linked_regs",
  );
});
