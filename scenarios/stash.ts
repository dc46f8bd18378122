/**
 * Ownership moving between CPUs through a map: CPUs 0 and 1 allocate items
 * and stash them in an 8-slot array map with bpf_kptr_xchg (dropping any
 * item they displace); CPUs 2 and 3 take items out of random slots and drop
 * them. Every item is accounted for exactly once — taken, displaced, or
 * still in the map, which frees what it holds when it is destroyed. Then
 * one object that owns its own lock and list is filled with 8 leaves and
 * dropped: the leaves go with it.
 *
 *   deno run -A scenarios/stash.ts [--seed N] [--timeline out.html]
 */
import {
  defineScenario,
  kernelProgram,
  loadObject,
  loadObjectWithRuntime,
  scenarioMain,
} from "../mod.ts";

const OBJECT = new URL("../tests/fixtures/scenarios/stash.o", import.meta.url);
const ROUNDS = 30;

/** The scenario (exported for tests and `cli.ts scenario`). */
export const scenario = defineScenario({
  name: "kptr stash across CPUs",
  description:
    "objects stashed with bpf_kptr_xchg on two CPUs and taken back on two others",
  cpus: 4,
  run(s) {
    const { kernel } = s;
    const object = loadObject(Deno.readFileSync(OBJECT), "stash.o");
    const loaded = loadObjectWithRuntime(kernel, object);
    const stashIn = kernelProgram(loaded, "stash_in");
    const stashOut = kernelProgram(loaded, "stash_out");
    const bucket = kernelProgram(loaded, "bucket_fill_and_drop");
    const ctx = kernel.space.mapRegion("ctx", 192, {
      name: "skb",
      write: false,
    });
    const bss = loaded.maps.find((m) => m.name.endsWith(".bss"))?.map;
    const slots = loaded.maps.find((m) => m.name === "slots")?.map;
    if (!bss || !slots) throw new Error("stash.o: maps missing");
    const section = object.btf?.findByName(".bss", "DATASEC");
    const datasec = section === undefined
      ? undefined
      : object.btf?.typeById(section);
    if (datasec?.kind !== "DATASEC") {
      throw new Error("stash.o: no .bss DATASEC");
    }
    const read = (name: string) => {
      const v = datasec.vars.find((v) => object.btf?.nameOf(v.type) === name);
      const bytes = bss.lookupValueCopy(new Uint8Array(4));
      if (typeof bytes === "number") {
        throw new Error(`reading .bss failed: errno ${bytes}`);
      }
      return new DataView(bytes.buffer, bytes.byteOffset).getBigUint64(
        v!.offset,
        true,
      );
    };

    for (let i = 0; i < ROUNDS; i++) {
      for (const cpu of [0, 1]) kernel.submit(cpu, stashIn, { r1: ctx });
      for (const cpu of [2, 3]) kernel.submit(cpu, stashOut, { r1: ctx });
    }
    const summary = kernel.run();
    const occupied = Array.from({ length: 8 }, (_, k) => {
      const addr = slots.lookup(
        new Uint8Array(new Uint32Array([k]).buffer),
        0,
      )!;
      return kernel.space.read(addr, 8) !== 0n;
    }).filter(Boolean).length;
    const [stashed, taken, replaced] = [
      read("stashed"),
      read("taken"),
      read("replaced"),
    ];
    s.say(
      `${stashed} stashed, ${taken} taken back, ${replaced} displaced, ${occupied} left in the map`,
    );
    s.claim("the run finished", summary.outcome === "idle", summary.outcome);
    s.claim(
      "every stashed item is taken, displaced or still in the map, exactly once",
      stashed === taken + replaced + BigInt(occupied),
      `${stashed} = ${taken} + ${replaced} + ${occupied}`,
    );
    s.claim(
      "the values taken and displaced came from the values stashed",
      read("sum_taken") + read("sum_replaced") <= read("sum_stashed"),
    );
    const live = kernel.globalMa.inUse;
    s.claim(
      "the allocator holds exactly the items left in the map",
      live === occupied,
      `${live}`,
    );

    // the object that owns a list, dropped with its leaves
    let filled = -1n;
    kernel.submit(1, bucket, { r1: ctx, onExit: (r0) => (filled = r0) });
    kernel.run();
    kernel.rcu.barrier();
    s.say(`a bucket filled with ${filled} leaves was dropped`);
    s.claim("the bucket took 8 leaves", filled === 8n, `${filled}`);
    s.claim(
      "dropping the bucket freed its leaves too",
      kernel.globalMa.inUse === occupied,
      `${kernel.globalMa.inUse} in use`,
    );

    // destroying the map frees what its kptr fields still own
    slots.destroy();
    kernel.rcu.barrier();
    s.claim(
      "destroying the map freed every stashed item",
      kernel.globalMa.inUse === 0,
    );
    s.claim(
      "no CPU faulted",
      kernel.reports.length === 0,
      kernel.reports.join("; "),
    );
  },
});

if (import.meta.main) await scenarioMain(scenario);
