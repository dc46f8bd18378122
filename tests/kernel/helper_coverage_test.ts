// Every helper the verifier knows either runs on the simulated kernel or is
// listed, with the reason, in NOT_MODELLED_HELPERS — and no listed helper
// runs. The runtime's helpers are gathered from where programs get them:
// the kernel's own, a loaded object's (maps, generic, dynptr, timers,
// bpf_loop, kptr_xchg), tail calls, the packet helpers of skb and XDP
// test runs, and the helpers of the simulated trampoline and kprobe.
import { deepEqual, equal, ok } from "node:assert/strict";
import { allHelperProtos } from "../../lib/verifier/helper_protos.ts";
import { loadObject } from "../../lib/elf/object.ts";
import { Kernel } from "../../lib/kernel/kernel.ts";
import { loadObjectWithRuntime } from "../../lib/kernel/object_runtime.ts";
import { objectHelpers } from "../../lib/kernel/object_helpers.ts";
import { skbHelpers, xdpHelpers } from "../../lib/kernel/net/packet_helpers.ts";
import { SkbContext, XdpContext } from "../../lib/kernel/test_run_ctx.ts";
import { lwtHelpers } from "../../lib/kernel/hooks/lwt/lwt_helpers.ts";
import { seg6Helpers } from "../../lib/kernel/hooks/lwt/lwt_seg6_helpers.ts";
import {
  CgroupRunStorages,
  cgroupStorageHelpers,
} from "../../lib/kernel/cgroup_storage_helpers.ts";
import { trampolineHelpers } from "../../lib/kernel/hooks/tracing/trampoline.ts";
import { kprobeHelpers } from "../../lib/kernel/hooks/tracing/kprobe.ts";
import { BPF_FUNC_tail_call } from "../../lib/kernel/prog_array.ts";
import { SkMsg } from "../../lib/kernel/hooks/sock/sk_msg.ts";
import {
  MsgSock,
  SkMsgContext,
} from "../../lib/kernel/hooks/sock/sk_msg_ctx.ts";
import { skMsgHelpers } from "../../lib/kernel/hooks/sock/sk_msg_helpers.ts";
import { skbRedirectHelpers } from "../../lib/kernel/hooks/sock/sock_redirect_helpers.ts";
import { NOT_MODELLED_HELPERS } from "../../lib/kernel/helper_coverage.ts";
import { seqHelpers } from "../../lib/kernel/hooks/iter/seq_helpers.ts";
import { SysctlContext } from "../../lib/kernel/hooks/cgroup/sysctl_ctx.ts";
import { sysctlHelpers } from "../../lib/kernel/hooks/cgroup/sysctl_helpers.ts";
import {
  cgroupRetvalHelpers,
  CgroupRunCtx,
} from "../../lib/kernel/hooks/cgroup/cgroup_run_ctx.ts";
import { lircHelpers, RcDevice } from "../../lib/kernel/hooks/lirc_hook.ts";
import { sockOpsHelpers } from "../../lib/kernel/hooks/sock/sock_ops.ts";
import { SockOpsContext } from "../../lib/kernel/hooks/sock/sock_ops_ctx.ts";
import { SimTcpSock } from "../../lib/kernel/hooks/sock/sock_ops_sock.ts";
import {
  tcpCaHelpers,
  tcpSockView,
} from "../../lib/kernel/hooks/sock/tcp_ca.ts";
import { sockAddrHelpers } from "../../lib/kernel/hooks/cgroup/sock_addr.ts";
import { SockAddrContext } from "../../lib/kernel/hooks/cgroup/sock_addr_ctx.ts";
import { InetBindTable } from "../../lib/kernel/hooks/cgroup/inet_bind.ts";
import {
  SkReuseportContext,
  skReuseportHelpers,
} from "../../lib/kernel/hooks/sock/sk_reuseport_ctx.ts";
import {
  ReuseportGroup,
  ReuseportSock,
} from "../../lib/kernel/hooks/sock/sk_reuseport_group.ts";
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
  for (const id of lwtHelpers(skb, true).keys()) ids.add(id);
  const srh = { srh: null, hdrlen: 0, valid: false };
  for (const id of seg6Helpers(skb, srh).keys()) ids.add(id);
  const storages = cgroupStorageHelpers(
    loaded.registry,
    new CgroupRunStorages(),
  );
  for (const id of storages.keys()) ids.add(id);
  const msg = new SkMsgContext(
    kernel.space,
    new SkMsg([packet]),
    new MsgSock(kernel.space),
  );
  for (const id of skMsgHelpers(msg, loaded.registry).keys()) ids.add(id);
  for (const [id] of skbRedirectHelpers(loaded.registry, msg)) ids.add(id);
  for (const id of trampolineHelpers("trace_fexit").keys()) ids.add(id);
  for (const id of kprobeHelpers().keys()) ids.add(id);
  for (const id of seqHelpers(() => undefined).keys()) ids.add(id);
  const sysctl = new SysctlContext(kernel.space, { name: "a/b", write: true });
  for (const id of sysctlHelpers(sysctl).keys()) ids.add(id);
  for (const id of cgroupRetvalHelpers(new CgroupRunCtx()).keys()) ids.add(id);
  for (const id of lircHelpers(new RcDevice()).keys()) ids.add(id);
  const tcpSock = new SimTcpSock(kernel.space);
  const sockOps = new SockOpsContext(kernel.space, 0, tcpSock);
  for (const id of sockOpsHelpers(sockOps, loaded.registry).keys()) ids.add(id);
  const sockAddr = new SockAddrContext(
    kernel.space,
    tcpSock,
    "",
    new Uint8Array(16),
    16,
  );
  for (const id of sockAddrHelpers(sockAddr, new InetBindTable()).keys()) {
    ids.add(id);
  }
  const reuse = new SkReuseportContext(kernel.space, {
    group: new ReuseportGroup({ reuseportId: 0 }),
    sk: new ReuseportSock(kernel.space),
    frame: packet,
    hash: 0,
  });
  for (const id of skReuseportHelpers(reuse, loaded.registry).keys()) {
    ids.add(id);
  }
  const caSock = tcpSockView(kernel.space, tcpSock);
  for (const id of tcpCaHelpers([caSock]).keys()) ids.add(id);
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
  // the count the report gives: every known helper but the listed ones
  const running = [...known.values()].filter((id) => ids.has(id)).length;
  equal(running, known.size - Object.keys(NOT_MODELLED_HELPERS).length);
  equal(known.size, 211); // ids 1–211 of the 6.18 uapi, all known
});

Deno.test("calling a helper this runtime does not provide fails at the call, naming it", () => {
  // bpf_tcp_send_ack (116) runs only bound to the sockets of a
  // tcp_congestion_ops call (lib/kernel/hooks/sock/tcp_ca.ts): a plain run has none
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
