// The graph runtime's trace events inside the kernel: alloc, push, pop and
// free, each with CPU, program, instruction, the object's address and a
// short detail.
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { kfuncBtfId } from "../../lib/kernel/kfunc_ids.ts";
import type { LoadedObject } from "../../lib/kernel/object_loader.ts";
import { sanitizerBench } from "./sanitizer_env.ts";

/** Slot of the (only) call of kfunc `name` in program `prog`. */
function callSlot(loaded: LoadedObject, prog: string, name: string): number {
  const id = kfuncBtfId(name);
  const insns = loaded.object.programs.find((p) => p.name === prog)!.insns;
  const slots = insns.flatMap((insn, i) =>
    insn.kind === "call" && insn.imm === id ? [i] : []
  );
  equal(slots.length, 1, `${prog} calls ${name} once`);
  return slots[0];
}

Deno.test("push on CPU 1, pop on CPU 0: alloc, push, pop, free of one object, in order", () => {
  const b = sanitizerBench();
  b.runOn(1, b.fixture("push"));
  b.runOn(0, b.fixture("pop"));
  const events = b.kernel.trace.events.filter((e) =>
    ["alloc", "free", "push", "pop"].includes(e.ev)
  );
  deepEqual(
    events.map((e) => [e.ev, e.cpu, e.prog, e.insn]),
    [
      ["alloc", 1, "push", callSlot(b.loaded, "push", "bpf_obj_new_impl")],
      [
        "push",
        1,
        "push",
        callSlot(b.loaded, "push", "bpf_list_push_back_impl"),
      ],
      ["pop", 0, "pop", callSlot(b.loaded, "pop", "bpf_list_pop_front")],
      ["free", 0, "pop", callSlot(b.loaded, "pop", "bpf_obj_drop_impl")],
    ],
  );
  const addr = events[0].addr!;
  match(addr, /^0x[0-9a-f]{16}$/);
  ok(events.every((e) => e.addr === addr), "the same object throughout");
  ok(events.every((e, i) => i === 0 || e.t > events[i - 1].t));
  const btf = b.loaded.object.btf!;
  const size = btf.sizeOf(b.itemType);
  equal(events[0].detail, `struct item (${size} B)`);
  equal(events[3].detail, `struct item (${size} B)`);
  const [, head, end] = events[1].detail!.match(/^list ([0-9a-f]{16}) (\w+)$/)!;
  equal(end, "back");
  equal(events[2].detail, `list ${head} front`);
  // the head lives in the .bss.A map value, beside its lock
  const bssA = b.loaded.maps.find((m) => m.name.endsWith(".bss.A"))!.map!;
  const value = bssA.lookup(new Uint8Array(4), 0)!;
  equal(
    b.kernel.space.regionAt(BigInt(`0x${head}`)),
    b.kernel.space.regionAt(value),
  );
});

Deno.test("no program, no CPU of its own: a map freeing what it owns traces the free without prog", () => {
  const b = sanitizerBench();
  b.runOn(0, b.fixture("push"));
  const bssA = b.loaded.maps.find((m) => m.name.endsWith(".bss.A"))!.map!;
  bssA.destroy(); // bpf_list_head_free(): the item is dropped
  const free = b.kernel.trace.events.find((e) => e.ev === "free");
  ok(free, "the drained item's free is traced");
  equal(free.prog, undefined);
  equal(free.insn, undefined);
  equal(
    free.addr,
    b.kernel.trace.events.find((e) => e.ev === "alloc")!.addr,
  );
  deepEqual(b.kernel.checkLeaks(), []);
});
