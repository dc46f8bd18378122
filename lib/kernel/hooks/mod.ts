/**
 * Running programs of the types the kernel cannot `BPF_PROG_TEST_RUN`, as
 * their hooks would, on the simulated kernel: each runner builds the
 * context the hook gives (the objects it points at, the helpers bound to
 * it) and runs one program (or a cgroup's chain) on one CPU, reporting r0
 * and what the hook does with it. As with `testRun`, a program of an
 * object loaded to verify (`loadObjectWithRuntime`'s default) is verified
 * first and runs as the verifier rewrote it — a rejected one throws
 * `ProgramRejectedError` — and `verify: false` runs it as written.
 *
 * - `tracing/`: fentry/fexit/fmod_ret trampolines, kprobes (with
 *   `bpf_override_return`), raw tracepoints and tp_btf with simulated
 *   `sk_buff` / `xdp_buff` objects
 * - `lsm/`: LSM hooks over simulated files, inodes and binprms
 * - `cgroup/`: cgroup sysctl and sock_addr hooks, the run context's retval,
 *   `bpf_bind`
 * - `sock/`: sock_ops on a simulated TCP socket, sk_msg / sk_skb with
 *   sockmap and sockhash, sk_reuseport groups, struct_ops
 *   `tcp_congestion_ops`
 * - `iter/`: BPF iterators read like `cat` reads them, and the kernel's BTF
 *   object printer (`bpf_snprintf_btf`, `bpf_seq_printf_btf`)
 * - `lwt/`: the LWT helpers of test runs and seg6local's End.BPF action
 * - `lirc_hook.ts`: lirc_mode2 on a simulated IR receiver
 *
 * @example
 * ```ts
 * import { Kernel, loadObject, loadObjectWithRuntime, runSysctlHook } from "./mod.ts";
 * const loaded = loadObjectWithRuntime(new Kernel({ cpus: 1 }),
 *   loadObject(Deno.readFileSync("tests/fixtures/runtime/hooks/sysctl.o"), "sysctl.o"));
 * const r = runSysctlHook(loaded, "deny", {
 *   name: "kernel/domainname", current: "host\n", write: true, newValue: "x\n",
 * });
 * console.log(r.retval, r.proceeds); // -1 (-EPERM), false: the write is refused
 * ```
 * @module
 */
export {
  runTracingProgram,
  type TracingRunOptions,
  type TracingRunResult,
} from "./tracing/trampoline.ts";
export {
  type KprobeRunOptions,
  type KprobeRunResult,
  PT_REGS_OFFSETS,
  type PtRegs,
  type PtRegsField,
  runKprobeProgram,
} from "./tracing/kprobe.ts";
export {
  type RawTpRunOptions,
  runRawTracepointProgram,
} from "./tracing/raw_tp.ts";
export {
  type NetObjects,
  netObjects,
  SimSkb,
  SimXdpBuff,
} from "./tracing/sim_skb.ts";
export {
  type LsmArg,
  type LsmObjectState,
  type LsmRunResult,
  runLsmProgram,
} from "./lsm/lsm_run.ts";
export {
  type LsmEnv,
  lsmEnv,
  SimBinprm,
  type SimBinprmOptions,
  SimFile,
  type SimFileOptions,
  SimInode,
  type SimInodeOptions,
  type SimLsmObject,
} from "./lsm/lsm_env.ts";
export { runSysctlHook, type SysctlHookResult } from "./cgroup/sysctl_hook.ts";
export type { SysctlAccess } from "./cgroup/sysctl_ctx.ts";
export { CgroupRunCtx } from "./cgroup/cgroup_run_ctx.ts";
export {
  runSockAddrProgram,
  type SockAddrResult,
  type SockAddrRun,
} from "./cgroup/sock_addr.ts";
export { type SockAddr } from "./cgroup/sock_addr_ctx.ts";
export {
  type BindTask,
  InetBindTable,
  inetBindTable,
  unboundSock,
} from "./cgroup/inet_bind.ts";
export {
  runSockOpsProgram,
  type SockOpsResult,
  type SockOpsRun,
} from "./sock/sock_ops.ts";
export { SOCK_OPS } from "./sock/sock_ops_ctx.ts";
export {
  type SentAck,
  SimTcpSock,
  type SimTcpSockInit,
  type SynHeaders,
} from "./sock/sock_ops_sock.ts";
export type { SockRedirect } from "./sock/sock_redirect_helpers.ts";
export {
  runSkMsgProgram,
  SK_ACTION,
  type SkMsgInput,
  type SkMsgRunResult,
} from "./sock/sk_msg_run.ts";
export { MsgSock, type SockEndpoints } from "./sock/sk_msg_ctx.ts";
export {
  runSkSkbProgram,
  type SkSkbInput,
  type SkSkbRunResult,
} from "./sock/sk_skb_run.ts";
export {
  runSkReuseportProgram,
  type SkReuseportInput,
  type SkReuseportRunResult,
} from "./sock/sk_reuseport.ts";
export { ReuseportGroup, ReuseportSock } from "./sock/sk_reuseport_group.ts";
export {
  runStructOpsProgram,
  type StructOpsArg,
  type StructOpsRunResult,
  TCP_CONGESTION_OPS_PROTOS,
  type TcpCongestionMember,
} from "./sock/struct_ops.ts";
export {
  attachIterator,
  IterAttachError,
  type IterAttachSpec,
  type IterLink,
  type IterOptions,
  type IterReadResult,
  readIterator,
} from "./iter/bpf_iter.ts";
export type { IterSeqRead } from "./iter/bpf_iter_read.ts";
export { SeqFile } from "./iter/seq_helpers.ts";
export type { MapIterElem } from "./iter/bpf_iter_map.ts";
export { type BtfSnprintf, btfTypeSnprintfShow } from "./iter/btf_show.ts";
export {
  BTF_F_COMPACT,
  BTF_F_NONAME,
  BTF_F_PTR_RAW,
  BTF_F_ZERO,
  type KernelCopy,
} from "./iter/btf_show_state.ts";
export {
  runSeg6local,
  type Seg6localResult,
  type Seg6localVerdict,
} from "./lwt/seg6local_hook.ts";
export {
  type LircRunResult,
  RcDevice,
  type RcEvent,
  runLircProgram,
} from "./lirc_hook.ts";
