/**
 * Producer/consumer on one BPF list shared by four CPUs under one global
 * bpf_spin_lock (tests/fixtures/scenarios/producer_consumer.c, which the
 * real kernel's verifier accepts). CPUs 0 and 1 allocate items with
 * bpf_obj_new and push them; CPUs 2 and 3 pop and drop them — all
 * interleaved instruction by instruction from the seed. Afterwards every
 * item pushed was popped exactly once, the sums agree, no lock is held and
 * the allocator has nothing left in use.
 *
 *   deno run -A scenarios/producer_consumer.ts [--seed N] [--timeline out.html]
 */
import {
  defineScenario,
  kernelProgram,
  loadObject,
  loadObjectWithRuntime,
  scenarioMain,
} from "../mod.ts";

const OBJECT = new URL(
  "../tests/fixtures/scenarios/producer_consumer.o",
  import.meta.url,
);
const PER_PRODUCER = 40;

/** The scenario (exported for tests and `cli.ts scenario`). */
export const scenario = defineScenario({
  name: "producer/consumer",
  description:
    "2 CPUs push allocated items on a locked BPF list, 2 CPUs pop and drop them",
  cpus: 4,
  kernel: { maxQuantum: 4 },
  run(s) {
    const { kernel } = s;
    const object = loadObject(Deno.readFileSync(OBJECT), "producer_consumer.o");
    const loaded = loadObjectWithRuntime(kernel, object);
    const produce = kernelProgram(loaded, "produce");
    const consume = kernelProgram(loaded, "consume");
    const ctx = kernel.space.mapRegion("ctx", 192, {
      name: "skb",
      write: false,
    });
    const bss = loaded.maps.find((m) => m.name.endsWith(".bss"))?.map;
    if (!bss) throw new Error("producer_consumer.o has no .bss map");
    // the statistics' offsets in .bss, from the object's BTF (DATASEC .bss)
    const section = object.btf?.findByName(".bss", "DATASEC");
    const datasec = section === undefined
      ? undefined
      : object.btf?.typeById(section);
    if (datasec?.kind !== "DATASEC") {
      throw new Error("producer_consumer.o: no .bss DATASEC");
    }
    const offsetOf = (name: string) => {
      const v = datasec.vars.find((v) => object.btf?.nameOf(v.type) === name);
      if (v === undefined) {
        throw new Error(`producer_consumer.o: no .bss variable ${name}`);
      }
      return v.offset;
    };
    const counters = () => {
      const v = bss.lookupValueCopy(new Uint8Array(4));
      if (typeof v === "number") {
        throw new Error(`reading .bss failed: errno ${v}`);
      }
      const view = new DataView(v.buffer, v.byteOffset);
      const at = (name: string) => view.getBigUint64(offsetOf(name), true);
      return {
        produced: at("produced"),
        consumed: at("consumed"),
        sumProduced: at("sum_produced"),
        sumConsumed: at("sum_consumed"),
        allocFailed: at("alloc_failed"),
        emptyPolls: at("empty_polls"),
      };
    };

    // producers and consumers run side by side; each consumer polls as often
    // as a producer produces
    for (let i = 0; i < PER_PRODUCER; i++) {
      for (const cpu of [0, 1]) kernel.submit(cpu, produce, { r1: ctx });
      for (const cpu of [2, 3]) kernel.submit(cpu, consume, { r1: ctx });
    }
    const summary = kernel.run();
    const mid = counters();
    s.say(
      `concurrent phase: ${mid.produced} produced, ${mid.consumed} consumed, ` +
        `${mid.emptyPolls} polls found the list empty, ${mid.allocFailed} allocations failed`,
    );

    // drain: one CPU consumes until the list is empty
    let drained = 0;
    for (let guard = 0; guard < 10_000; guard++) {
      let r0 = -1n;
      kernel.submit(2, consume, { r1: ctx, onExit: (v) => (r0 = v) });
      kernel.run();
      if (r0 !== 0n) break;
      drained++;
    }
    const end = counters();
    const contended = kernel.trace.events.filter((e) =>
      e.ev === "lock_contend"
    ).length;
    s.say(`drained ${drained} items left in the list`);
    s.say(`${contended} contended lock acquisitions`);
    kernel.rcu.barrier();
    const inUse = kernel.globalMa.inUse;
    s.say(`allocator: ${inUse} objects in use after the grace periods`);

    s.claim(
      "the concurrent phase finished",
      summary.outcome === "idle",
      summary.outcome,
    );
    s.claim(
      "no CPU faulted",
      kernel.reports.length === 0,
      kernel.reports.join("; "),
    );
    s.claim(
      "every allocation succeeded or was counted as failed",
      end.produced + end.allocFailed === BigInt(2 * PER_PRODUCER),
      `${end.produced} + ${end.allocFailed}`,
    );
    s.claim(
      "every item produced was consumed exactly once",
      end.consumed === end.produced,
      `${end.consumed} of ${end.produced}`,
    );
    s.claim(
      "the values consumed add up to the values produced",
      end.sumConsumed === end.sumProduced,
      `${end.sumConsumed} vs ${end.sumProduced}`,
    );
    s.claim("every lock was released", kernel.locks.heldCount === 0);
    s.claim("no allocated object leaked", inUse === 0, `${inUse} in use`);
  },
});

if (import.meta.main) await scenarioMain(scenario);
