// Per program type: every helper the verifier offers a type (its 6.18
// get_func_proto chain) runs in the context bpfsim gives that type — the
// test-run contexts (skb, XDP, cgroup_skb, lwt, syscall) and the hook
// runners (trampoline, kprobe, iterator, sysctl, lirc, sock_ops, sock_addr,
// sk_msg, sk_skb, sk_reuseport, struct_ops). A helper counts when the
// context's own table or what every run gets (the kernel's helpers, the
// object's, tail calls, the run's cgroup storages) has it. The few a
// context lacks are listed below with the reason; a listed helper that
// starts to run must leave the list.
import { deepEqual } from "node:assert/strict";
import { helperProto } from "../../lib/verifier/helper_protos.ts";
import { helperName } from "../../lib/isa/helper_ids.ts";
import { loadObject } from "../../lib/elf/object.ts";
import { Kernel } from "../../lib/kernel/kernel.ts";
import { loadObjectWithRuntime } from "../../lib/kernel/object_runtime.ts";
import { objectHelpers } from "../../lib/kernel/object_helpers.ts";
import { BPF_FUNC_tail_call } from "../../lib/kernel/prog_array.ts";
import { skbHelpers, xdpHelpers } from "../../lib/kernel/net/packet_helpers.ts";
import { SkbContext, XdpContext } from "../../lib/kernel/test_run_ctx.ts";
import { lwtHelpers } from "../../lib/kernel/hooks/lwt/lwt_helpers.ts";
import {
  CgroupRunStorages,
  cgroupStorageHelpers,
} from "../../lib/kernel/cgroup_storage_helpers.ts";
import { trampolineHelpers } from "../../lib/kernel/hooks/tracing/trampoline.ts";
import { kprobeHelpers } from "../../lib/kernel/hooks/tracing/kprobe.ts";
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
import { sockAddrHelpers } from "../../lib/kernel/hooks/cgroup/sock_addr.ts";
import { SockAddrContext } from "../../lib/kernel/hooks/cgroup/sock_addr_ctx.ts";
import { InetBindTable } from "../../lib/kernel/hooks/cgroup/inet_bind.ts";
import { skbSockLookupHelpers } from "../../lib/kernel/net/packet_sock_lookup.ts";
import { SkMsg } from "../../lib/kernel/hooks/sock/sk_msg.ts";
import {
  MsgSock,
  SkMsgContext,
} from "../../lib/kernel/hooks/sock/sk_msg_ctx.ts";
import { skMsgHelpers } from "../../lib/kernel/hooks/sock/sk_msg_helpers.ts";
import { SkSkbContext } from "../../lib/kernel/hooks/sock/sk_skb_run.ts";
import { skSkbHelpers } from "../../lib/kernel/hooks/sock/sk_skb_helpers.ts";
import { skbRedirectHelpers } from "../../lib/kernel/hooks/sock/sock_redirect_helpers.ts";
import {
  SkReuseportContext,
  skReuseportHelpers,
} from "../../lib/kernel/hooks/sock/sk_reuseport_ctx.ts";
import {
  ReuseportGroup,
  ReuseportSock,
} from "../../lib/kernel/hooks/sock/sk_reuseport_group.ts";
import {
  tcpCaHelpers,
  tcpSockView,
} from "../../lib/kernel/hooks/sock/tcp_ca.ts";

/** Helpers a context knowingly lacks, by context label, with the reason. */
const KNOWN_GAPS: Readonly<Record<string, Readonly<Record<number, string>>>> =
  {};

/** Each context: the program types and attach types it serves, and its own helpers. */
function contexts(): {
  base: Set<number>;
  rows: [string, string, Set<number>][];
} {
  const kernel = new Kernel({ cpus: 2 });
  const object = loadObject(
    Deno.readFileSync(new URL("../fixtures/graph/alloc.o", import.meta.url)),
    "alloc.o",
  );
  const loaded = loadObjectWithRuntime(kernel, object, { verify: false });
  const { space } = kernel;
  const base = new Set<number>([
    ...kernel.helpers.keys(),
    ...loaded.helpers.keys(),
    ...objectHelpers(loaded).keys(),
    BPF_FUNC_tail_call,
    ...cgroupStorageHelpers(loaded.registry, new CgroupRunStorages()).keys(),
  ]);
  const ids = (...tables: Iterable<[number, unknown]>[]) => {
    const s = new Set<number>();
    for (const t of tables) for (const [id] of t) s.add(id);
    return s;
  };
  const packet = new Uint8Array(64);
  const l2 = new SkbContext(space, packet, { isL2: true });
  const l3 = new SkbContext(space, packet, { isL2: false });
  const tcpSock = new SimTcpSock(space);
  const retval = cgroupRetvalHelpers(new CgroupRunCtx());
  const msg = new SkMsgContext(
    space,
    new SkMsg([packet]),
    new MsgSock(space),
  );
  const skSkb = new SkSkbContext(space, packet, new MsgSock(space), true);
  const reuse = new SkReuseportContext(space, {
    group: new ReuseportGroup({ reuseportId: 0 }),
    sk: new ReuseportSock(space),
    frame: packet,
    hash: 0,
  });
  const rows: [string, string, Set<number>][] = [
    ["socket_filter", "", ids(skbHelpers(l3))],
    ["sched_cls", "", ids(skbHelpers(l2))],
    ["sched_act", "", ids(skbHelpers(l2))],
    ["xdp", "", ids(xdpHelpers(new XdpContext(space, packet)))],
    ["syscall", "", new Set()],
    ["cgroup_skb", "cgroup_inet_ingress", ids(skbHelpers(l3))],
    ["lwt_in", "", ids(skbHelpers(l3), lwtHelpers(l3, true))],
    ["lwt_out", "", ids(skbHelpers(l3), lwtHelpers(l3, false))],
    ["lwt_xmit", "", ids(skbHelpers(l3), lwtHelpers(l3, false))],
    ["tracing", "trace_fentry", ids(trampolineHelpers("trace_fentry"))],
    ["tracing", "trace_fexit", ids(trampolineHelpers("trace_fexit"))],
    ["tracing", "modify_return", ids(trampolineHelpers("modify_return"))],
    ["lsm", "lsm_mac", ids(trampolineHelpers("lsm_mac"))],
    ["tracing", "trace_raw_tp", new Set()],
    ["raw_tracepoint", "", new Set()],
    ["kprobe", "", ids(kprobeHelpers())],
    ["tracing", "trace_iter", ids(seqHelpers(() => undefined, object.btf))],
    [
      "cgroup_sysctl",
      "cgroup_sysctl",
      ids(
        sysctlHelpers(new SysctlContext(space, { name: "a/b", write: true })),
        retval,
      ),
    ],
    ["lirc_mode2", "lirc_mode2", ids(lircHelpers(new RcDevice()))],
    [
      "sock_ops",
      "",
      ids(sockOpsHelpers(
        new SockOpsContext(space, 0, tcpSock),
        loaded.registry,
      )),
    ],
    [
      "cgroup_sock_addr",
      "cgroup_inet4_connect",
      ids(
        skbSockLookupHelpers(),
        sockAddrHelpers(
          new SockAddrContext(space, tcpSock, "", new Uint8Array(16), 16),
          new InetBindTable(),
        ),
        retval,
      ),
    ],
    ["sk_msg", "sk_msg", ids(skMsgHelpers(msg, loaded.registry))],
    [
      "sk_skb",
      "sk_skb_stream_verdict",
      ids(skbRedirectHelpers(loaded.registry, skSkb), skSkbHelpers(skSkb)),
    ],
    [
      "sk_reuseport",
      "sk_reuseport_select",
      ids(skReuseportHelpers(reuse, loaded.registry)),
    ],
    [
      "struct_ops",
      "",
      ids(tcpCaHelpers([tcpSockView(space, tcpSock)])),
    ],
  ];
  return { base, rows };
}

Deno.test("each program type bpfsim runs finds every helper the verifier offers it", async (t) => {
  const { base, rows } = contexts();
  for (const [type, attach, own] of rows) {
    const label = attach ? `${type}/${attach}` : type;
    await t.step(label, () => {
      const gaps = KNOWN_GAPS[label] ?? {};
      const missing: string[] = [];
      const stale: string[] = [];
      for (let id = 1; id < 212; id++) {
        if (!helperProto(type, id, { attachType: attach })) continue;
        const runs = base.has(id) || own.has(id);
        const name = `${helperName(id)}#${id}`;
        if (!runs && gaps[id] === undefined) missing.push(name);
        if (runs && gaps[id] !== undefined) stale.push(name);
      }
      deepEqual(missing, [], `offered to ${label}, no runtime there`);
      deepEqual(stale, [], `listed as a gap of ${label}, yet it runs`);
    });
  }
});

Deno.test("testRun's refusal names hook runners mod.ts exports, for every type it refuses", async () => {
  const { HOOK_RUNNERS, TEST_RUN_TYPES } = await import(
    "../../lib/kernel/test_run.ts"
  );
  const mod = await import("../../mod.ts") as Record<string, unknown>;
  const types = new Set(contexts().rows.map(([type]) => type));
  for (const type of types) {
    if (TEST_RUN_TYPES.includes(type)) continue;
    deepEqual(
      typeof HOOK_RUNNERS[type],
      "string",
      `${type} has a runner named`,
    );
  }
  for (const [type, named] of Object.entries(HOOK_RUNNERS)) {
    for (const fn of (named as string).split(/, | or /)) {
      deepEqual(typeof mod[fn], "function", `${type}: ${fn}`);
    }
  }
});
