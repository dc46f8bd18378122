// Throughput of the bpf_mem_alloc model: allocation + free pairs, the work a
// hash map or bpf_obj_new/bpf_obj_drop does per element. Each iteration
// allocates a batch on one CPU, frees it, and lets the scheduler run the
// refill irq_work when an allocation comes back NULL (as the kernel would
// between two program runs). Objects per second = 2 * BATCH / iteration time.
import { AddressSpace } from "../lib/exec/memory.ts";
import { bpfMemAllocInit } from "../lib/kernel/mem_alloc.ts";
import { RcuState } from "../lib/kernel/rcu.ts";

const BATCH = 64;

function setup(size: number) {
  const space = new AddressSpace();
  const rcu = new RcuState(2);
  return { rcu, ma: bpfMemAllocInit({ space, rcu }, size) };
}

const kmallocStyle = setup(0);
Deno.bench("bpf_mem_alloc(48) + bpf_mem_free, 64 pairs", () => {
  const { ma } = kmallocStyle;
  const ptrs: bigint[] = [];
  for (let i = 0; i < BATCH; i++) {
    let p = ma.alloc(0, 48);
    if (p === 0n) {
      ma.runIrqWork(0);
      p = ma.alloc(0, 48);
    }
    ptrs.push(p);
  }
  for (const p of ptrs) ma.free(0, p);
  ma.runIrqWork(0);
});

const fixed = setup(40);
Deno.bench("bpf_mem_cache_alloc + bpf_mem_cache_free_rcu, 64 pairs", () => {
  const { ma, rcu } = fixed;
  const ptrs: bigint[] = [];
  for (let i = 0; i < BATCH; i++) {
    let p = ma.cacheAlloc(1);
    if (p === 0n) {
      ma.runIrqWork(1);
      p = ma.cacheAlloc(1);
    }
    ptrs.push(p);
  }
  for (const p of ptrs) ma.cacheFreeRcu(1, p);
  ma.runIrqWork(1);
  rcu.advance();
});
