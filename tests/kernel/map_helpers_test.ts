/**
 * The map helpers as a program calls them: a map is the address of its
 * `struct bpf_map`, keys and values live on the program's stack. Expected
 * values follow the helpers' contracts in include/uapi/linux/bpf.h
 * (queue FIFO / stack LIFO, -ENOENT when empty, -E2BIG when full;
 * bpf_trace_printk returns the length it wrote; bpf_iter_num_* walk
 * [start, end)).
 */
import assert from "node:assert/strict";
import { assemble } from "../../lib/isa/asm.ts";
import { runProgram } from "../../lib/exec/run.ts";
import { AddressSpace } from "../../lib/exec/memory.ts";
import { createMap } from "../../lib/kernel/maps/create.ts";
import { MAP_TYPE } from "../../lib/uapi/bpf.ts";
import { type MapHelperLog, mapHelpers } from "../../lib/kernel/map_helpers.ts";
import { MapRegistry } from "../../lib/kernel/object_loader.ts";
import { iterKfuncs } from "../../lib/kernel/iter_kfuncs.ts";
import { kfuncBtfId } from "../../lib/kernel/kfunc_ids.ts";

function setup(type: number, maxEntries: number) {
  const space = new AddressSpace();
  const registry = new MapRegistry();
  const map = createMap(space, {
    name: "q",
    type,
    keySize: 0,
    valueSize: 8,
    maxEntries,
    flags: 0,
  });
  const address = space.mapRegion("kernel", 256, { read: false, write: false });
  registry.add(address, map);
  const log: MapHelperLog = { printk: [] };
  const run = (body: string) =>
    runProgram(assemble(body.replaceAll("MAP", `0x${address.toString(16)}`)), {
      space,
      helpers: mapHelpers(registry, log),
    }).r0;
  return { run, log };
}

/** push(v) for each value, then pop twice: r0 = first pop * 16 + second pop. */
const PUSH_POP = (values: number[]) =>
  values.map((v) =>
    `r1 = MAP ll\n*(u64 *)(r10 - 8) = ${v}\nr2 = r10\nr2 += -8\nr3 = 0\ncall 87\n`
  ).join("") +
  `r1 = MAP ll\nr2 = r10\nr2 += -8\ncall 88\nr6 = *(u64 *)(r10 - 8)\n` +
  `r1 = MAP ll\nr2 = r10\nr2 += -8\ncall 88\nr0 = *(u64 *)(r10 - 8)\n` +
  `r6 <<= 4\nr0 += r6\nexit`;

Deno.test("queue and stack helpers: order, empty, full", () => {
  assert.equal(setup(MAP_TYPE.queue, 4).run(PUSH_POP([1, 2, 3])), 0x12n);
  assert.equal(setup(MAP_TYPE.stack, 4).run(PUSH_POP([1, 2, 3])), 0x32n);
  const popEmpty = "r1 = MAP ll\nr2 = r10\nr2 += -8\ncall 88\nexit";
  assert.equal(setup(MAP_TYPE.queue, 4).run(popEmpty), BigInt.asUintN(64, -2n));
  const pushFull =
    "r1 = MAP ll\n*(u64 *)(r10 - 8) = 5\nr2 = r10\nr2 += -8\nr3 = 0\n" +
    "call 87\nr1 = MAP ll\nr2 = r10\nr2 += -8\nr3 = 0\ncall 87\nexit";
  assert.equal(setup(MAP_TYPE.queue, 1).run(pushFull), BigInt.asUintN(64, -7n));
});

Deno.test("bpf_trace_printk formats, records and returns the length", () => {
  const { run, log } = setup(MAP_TYPE.queue, 1);
  // "x=%d\n" on the stack: 78 3d 25 64 0a 00
  const r0 = run(
    "r1 = 0x000a64253d78 ll\n*(u64 *)(r10 - 8) = r1\nr1 = r10\nr1 += -8\n" +
      "r2 = 6\nr3 = -5\ncall 6\nexit",
  );
  assert.deepEqual(log.printk, ["x=-5\n"]);
  assert.equal(r0, 5n);
});

Deno.test("bpf_iter_num_*: sums [2, 6) and refuses start > end", () => {
  const [idNew, idNext, idDestroy] = [
    "bpf_iter_num_new",
    "bpf_iter_num_next",
    "bpf_iter_num_destroy",
  ]
    .map((n) => kfuncBtfId(n)!);
  // `call name#id` with a name that is no helper assembles as a kfunc call
  const kfunc = (id: number) => `call kfunc#${id}`;
  const text = [
    "r6 = 0",
    "r1 = r10",
    "r1 += -8",
    "r2 = 2",
    "r3 = 6",
    kfunc(idNew),
    "r1 = r10",
    "r1 += -8",
    kfunc(idNext), // loop at slot 6
    "if r0 == 0 goto +3",
    "r0 = *(u32 *)(r0 + 0)",
    "r6 += r0",
    "goto -7",
    "r1 = r10",
    "r1 += -8",
    kfunc(idDestroy),
    "r0 = r6",
    "exit",
  ].join("\n");
  const insns = assemble(text);
  assert.ok(insns.some((i) => i.kind === "call" && i.callee === "kfunc"));
  assert.equal(
    runProgram(insns, { kfuncs: iterKfuncs() }).r0,
    2n + 3n + 4n + 5n,
  );
  const bad = assemble(
    `r1 = r10\nr1 += -8\nr2 = 3\nr3 = 1\n${kfunc(idNew)}\nexit`,
  );
  assert.equal(
    runProgram(bad, { kfuncs: iterKfuncs() }).r0,
    BigInt.asUintN(64, -22n),
  );
});
