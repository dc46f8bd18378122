// Every helper the verifier knows either runs on the simulated kernel or is
// listed, with the reason, in NOT_MODELLED_HELPERS — and no listed helper
// runs. The runtime's helpers are gathered from where programs get them:
// the kernel's own, a loaded object's (maps, generic, dynptr, timers,
// bpf_loop, kptr_xchg), tail calls, and the packet helpers of skb and XDP
// test runs.
import { deepEqual, equal, ok } from "node:assert/strict";
import { allHelperProtos } from "../../lib/verifier/helper_protos.ts";
import { loadObject } from "../../lib/elf/object.ts";
import { Kernel } from "../../lib/kernel/kernel.ts";
import { loadObjectWithRuntime } from "../../lib/kernel/object_runtime.ts";
import { objectHelpers } from "../../lib/kernel/object_helpers.ts";
import { skbHelpers, xdpHelpers } from "../../lib/kernel/packet_helpers.ts";
import { SkbContext, XdpContext } from "../../lib/kernel/test_run_ctx.ts";
import { BPF_FUNC_tail_call } from "../../lib/kernel/prog_array.ts";
import { NOT_MODELLED_HELPERS } from "../../lib/kernel/helper_coverage.ts";
import { runProgram } from "../../lib/exec/run.ts";
import { assemble } from "../../lib/isa/asm.ts";
import { ExecError } from "../../lib/exec/fault.ts";

/** Helper ids some context of the simulated kernel provides. */
function runtimeHelperIds(): Set<number> {
  const kernel = new Kernel({ cpus: 2 });
  const object = loadObject(
    Deno.readFileSync(new URL("../fixtures/graph/alloc.o", import.meta.url)),
    "alloc.o",
  );
  const loaded = loadObjectWithRuntime(kernel, object, { verify: false });
  const ids = new Set<number>([
    ...kernel.helpers.keys(),
    ...loaded.helpers.keys(),
    ...objectHelpers(loaded).keys(),
    BPF_FUNC_tail_call,
  ]);
  const packet = new Uint8Array(64);
  const skb = new SkbContext(kernel.space, packet, { isL2: true });
  for (const id of skbHelpers(skb).keys()) ids.add(id);
  const xdp = new XdpContext(kernel.space, packet);
  for (const id of xdpHelpers(xdp).keys()) ids.add(id);
  return ids;
}

Deno.test("every helper the verifier knows runs, or is listed as not modelled with a reason", () => {
  const ids = runtimeHelperIds();
  const known = new Map<string, number>();
  for (const p of allHelperProtos()) known.set(p.name, p.id);
  const neither = [...known].filter(([name, id]) =>
    !ids.has(id) && NOT_MODELLED_HELPERS[name] === undefined
  ).map(([name]) => name);
  deepEqual(neither, [], "helpers with neither a runtime nor a reason");
  const both = Object.keys(NOT_MODELLED_HELPERS).filter((name) =>
    ids.has(known.get(name) ?? -1)
  );
  deepEqual(both, [], "listed as not modelled, yet they run");
  const strangers = Object.keys(NOT_MODELLED_HELPERS).filter((name) =>
    !known.has(name)
  );
  deepEqual(strangers, [], "listed, but the verifier does not know them");
  // the share that runs, as the report gives it
  const running = [...known.values()].filter((id) => ids.has(id)).length;
  ok(running > known.size / 2, `${running} of ${known.size} run`);
});

Deno.test("calling a helper that is not modelled fails at the call, naming it", () => {
  // bpf_tcp_send_ack (116): listed, so no table provides it
  equal(NOT_MODELLED_HELPERS.bpf_tcp_send_ack !== undefined, true);
  try {
    runProgram(assemble("r1 = 0\nr2 = 0\ncall 116\nexit"));
    throw new Error("the call did not fail");
  } catch (e) {
    ok(e instanceof ExecError, String(e));
    equal(
      (e as ExecError).reason,
      "helper bpf_tcp_send_ack#116 is not modelled by bpfsim's runtime here",
    );
    equal((e as ExecError).insnIndex, 2);
  }
});
