/**
 * Random workloads replayed against the real kernel: maps_probe.c drives a
 * 16-entry map over 48 keys with a deterministic LCG — user-space updates
 * (BPF_ANY / BPF_NOEXIST / BPF_EXIST), lookups from a BPF program (which
 * set LRU reference bits), deletes, and moves between CPUs every 40 steps —
 * and records each result and the key set after it (`OP|RESULT|KEYS`). The simulator, driven
 * by the same LCG, must agree at every step.
 */
import assert from "node:assert/strict";
import { AddressSpace } from "../../lib/exec/memory.ts";
import {
  BPF_F_NO_COMMON_LRU,
  type BpfMap,
  createMap,
} from "../../lib/kernel/maps/mod.ts";
import { k32, kernelAnswers } from "./maps_fakes.ts";

const HASH = 1, LRU_HASH = 9, LRU_PERCPU_HASH = 10;

/** The probe's `rnd()`: glibc-style LCG, bits 16..30. */
function lcg(seed: number): (n: number) => number {
  let x = seed >>> 0;
  return (n) => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return ((x >>> 16) & 0x7fff) % n;
  };
}

function sortedKeys(m: BpfMap): number[] {
  return m.dump().map((e) => new DataView(e.key.buffer).getUint32(0, true))
    .sort((a, b) => a - b);
}

function replay(type: number, flags: number, steps: readonly string[]) {
  const nrCpus = kernelAnswers().nrCpus;
  const m = createMap(new AddressSpace(), {
    name: "random",
    type,
    keySize: 4,
    valueSize: 8,
    maxEntries: 16,
    flags,
  }, { nrCpus });
  const value = new Uint8Array(m.syscallValueSize);
  const rnd = lcg(1);
  let cpu = 0;
  steps.forEach((line, i) => {
    const [wantOp, wantResult, wantKeys] = line.split("|");
    let op: string, result: number;
    if (i % 40 === 39) {
      cpu = rnd(nrCpus);
      op = `cpu ${cpu}`;
      result = 0;
    } else {
      const r = rnd(100), k = 1 + rnd(48);
      if (r < 60) {
        const f = r < 40 ? 0 : r < 50 ? 1 : 2;
        op = `update ${k} ${f}`;
        result = m.updateFromSyscall(k32(k), value, f, cpu);
      } else if (r < 85) {
        op = `lookup ${k}`;
        result = m.lookup(k32(k), cpu) === null ? 0 : 1;
      } else {
        op = `delete ${k}`;
        result = m.deleteFromSyscall(k32(k));
      }
    }
    assert.equal(op, wantOp, `step ${i}: the same script`);
    assert.equal(result, Number(wantResult), `step ${i}: ${op}`);
    assert.equal(
      sortedKeys(m).join(","),
      wantKeys,
      `step ${i}: keys after ${op}`,
    );
  });
}

Deno.test("random workloads agree with the kernel step by step", async (t) => {
  const k = kernelAnswers();
  await t.step("hash (preallocated)", () => replay(HASH, 0, k.randomHash));
  await t.step("LRU hash, common LRU", () => replay(LRU_HASH, 0, k.randomLru));
  await t.step(
    "LRU hash, per-CPU lists",
    () => replay(LRU_HASH, BPF_F_NO_COMMON_LRU, k.randomPercpuLru),
  );
  await t.step(
    "LRU per-CPU hash",
    () => replay(LRU_PERCPU_HASH, 0, k.randomLruPercpuHash),
  );
});
