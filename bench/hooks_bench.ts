/**
 * What a hook runner costs per call (lib/kernel/hooks): a cgroup sysctl
 * hook on one program, a sock_ops callback, and an iterator read of a
 * 5-element array map (a program run per element, and the stop run), each
 * on a loaded object reused across calls — the program is verified and
 * compiled once, the context built for each call.
 *
 *   deno bench --allow-read bench/hooks_bench.ts
 * @module
 */
import { Kernel } from "../lib/kernel/kernel.ts";
import { loadObject } from "../lib/elf/object.ts";
import { loadObjectWithRuntime } from "../lib/kernel/object_runtime.ts";
import { runSysctlHook } from "../lib/kernel/hooks/cgroup/sysctl_hook.ts";
import { readIterator } from "../lib/kernel/hooks/iter/bpf_iter.ts";
import { runSockOpsProgram } from "../lib/kernel/hooks/sock/sock_ops.ts";
import { SimTcpSock } from "../lib/kernel/hooks/sock/sock_ops_sock.ts";
import { SOCK_OPS } from "../lib/kernel/hooks/sock/sock_ops_ctx.ts";

const FIXTURES = new URL("../tests/fixtures/runtime/", import.meta.url);
const load = (path: string) =>
  loadObjectWithRuntime(
    new Kernel({ cpus: 1 }),
    loadObject(Deno.readFileSync(new URL(path, FIXTURES)), path),
  );

const sysctl = load("hooks/sysctl.o");
Deno.bench("cgroup sysctl hook: get_current on a read", () => {
  runSysctlHook(sysctl, "get_current", {
    name: "kernel/domainname",
    current: "host\n",
    write: false,
  });
});

const iter = load("iter/iter.o");
Deno.bench("iterator: cat of a 5-element array map", () => {
  readIterator(iter, "dump_array", { map: "arr" });
});

const sockops = load("sockops/sockops.o");
const sock = new SimTcpSock(sockops.kernel.space);
const first = sockops.object.programs[0].name;
Deno.bench(`sock_ops callback (${first})`, () => {
  runSockOpsProgram(sockops, first, {
    op: SOCK_OPS.TCP_CONNECT_CB,
    socket: sock,
  });
});
