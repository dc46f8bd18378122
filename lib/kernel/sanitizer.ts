/**
 * The reports of the simulated kernel's sanitizer, worded like KASAN's and
 * lockdep's: what went wrong, where (program and instruction), on which
 * CPU, and for memory of `bpf_global_ma` where the object was allocated and
 * freed. Faults come from the memory model (use-after-free, out-of-bounds),
 * the allocator (double free), the graph runtime's list_debug checks (list
 * corruption) and the end-of-run leak check.
 * @module
 */
import { MemoryFault } from "../exec/fault.ts";
import type { BpfMemAlloc } from "./mem_alloc.ts";

/**
 * The report of a program that faulted: `PROG on CPU N: MESSAGE`, with the
 * instruction when the message does not name it (faults raised inside a
 * helper or kfunc), and the object's allocation and free sites when the
 * faulting address is (or was) an object of `ma`.
 */
export function faultReport(
  prog: string,
  cpu: number,
  pc: number,
  error: Error | undefined,
  ma: BpfMemAlloc | undefined,
): string {
  const message = error?.message ?? "fault";
  const at = /\binsn \d+/.test(message) ? "" : ` at insn ${pc}`;
  let report = `${prog} on CPU ${cpu}${at}: ${message}`;
  if (error instanceof MemoryFault && ma !== undefined) {
    const sites = ma.sitesOf(error.address);
    if (sites !== undefined) {
      if (sites.allocSite !== "") report += `; allocated at ${sites.allocSite}`;
      if (sites.freeSite !== "") report += `; freed at ${sites.freeSite}`;
    }
  }
  return report;
}

/**
 * The reports of the end-of-run leak check: every object `ma` still has
 * handed out, with its address and allocation site (kmemleak's view).
 */
export function leakReports(ma: BpfMemAlloc | undefined): string[] {
  return ma === undefined ? [] : ma.liveObjectReports().map((e) => e.message);
}
