/**
 * Which bytes of the context (`R1` at entry) a program of each type may
 * load or store, and what a load yields: the verifier's
 * `env->ops->is_valid_access` callbacks, one per program type.
 *
 * `ctxAccess()` is the single entry point; the verifier core calls it from
 * its `check_ctx_access()`, prints the rule's own `log` lines if any, then
 * {@link invalidCtxAccessMessage} when the answer is `{ ok: false }`.
 * The pointers a context load yields have rules of their own:
 * `sockPtrAccess()` (check_sock_access()) and `flowKeysAccessOk()`
 * (check_flow_keys_access()), with their messages.
 *
 * Every rule is checked against Linux 6.18 by tests/verifier/ctx_access_test.ts
 * on the facts recorded in tests/fixtures/ctx/.
 * @module
 */

import {
  cgSkbIsValidAccess,
  flowDissectorIsValidAccess,
  lwtIsValidAccess,
  SK_BUFF_SIZE,
  skFilterIsValidAccess,
  skSkbIsValidAccess,
  tcClsActIsValidAccess,
} from "./skb.ts";
import {
  BPF_SOCKOPT_SIZE,
  BPF_SYSCTL_SIZE,
  CGROUP_DEV_CTX_SIZE,
  cgroupDevIsValidAccess,
  cgSockoptIsValidAccess,
  sysctlIsValidAccess,
} from "./cgroup.ts";
import { BPF_NF_CTX_SIZE, netfilterIsValidAccess } from "./netfilter.ts";
import { iterCtxAccess } from "./iter.ts";
import {
  BPF_SK_LOOKUP_SIZE,
  SK_REUSEPORT_MD_SIZE,
  skLookupIsValidAccess,
  skReuseportIsValidAccess,
} from "./sk_select.ts";
import {
  BPF_SOCK_ADDR_SIZE,
  BPF_SOCK_OPS_SIZE,
  BPF_SOCK_SIZE,
  SK_MSG_MD_SIZE,
  skMsgIsValidAccess,
  sockAddrIsValidAccess,
  sockFilterIsValidAccess,
  sockOpsIsValidAccess,
} from "./sock.ts";
import { SYSCALL_CTX_MAX, syscallIsValidAccess } from "./syscall.ts";
import {
  btfCtxAccess,
  kprobeIsValidAccess,
  MAX_BPF_FUNC_ARGS,
  PERF_EVENT_DATA_SIZE,
  PERF_MAX_TRACE_SIZE,
  perfEventIsValidAccess,
  PT_REGS_SIZE,
  rawTracepointIsValidAccess,
  rawTracepointWritableIsValidAccess,
  tracepointIsValidAccess,
} from "./tracing.ts";
import {
  type CtxAccessOptions,
  type CtxAccessResult,
  type CtxAccessType,
  DENIED,
  scalarAccess,
} from "./types.ts";
import { XDP_MD_SIZE, xdpIsValidAccess } from "./xdp.ts";
import { knownBtfTarget } from "./btf_targets.ts";
import { structOpsMemberProto, tcpCaIsValidAccess } from "./struct_ops.ts";

export type {
  BtfCtxArg,
  CtxAccessAllowed,
  CtxAccessDenied,
  CtxAccessOptions,
  CtxAccessResult,
  CtxAccessType,
  CtxRegType,
} from "./types.ts";
export { narrowAccessOk } from "./types.ts";
export { SK_BUFF_OFFSETS, SK_BUFF_SIZE } from "./skb.ts";
export { XDP_MD_OFFSETS, XDP_MD_SIZE } from "./xdp.ts";
export {
  BPF_SOCK_ADDR_OFFSETS,
  BPF_SOCK_ADDR_SIZE,
  BPF_SOCK_OFFSETS,
  BPF_SOCK_OPS_OFFSETS,
  BPF_SOCK_OPS_SIZE,
  BPF_SOCK_SIZE,
  bpfSockIsValidAccess,
  SK_MSG_MD_OFFSETS,
  SK_MSG_MD_SIZE,
} from "./sock.ts";
export {
  PERF_EVENT_DATA_OFFSETS,
  PERF_EVENT_DATA_SIZE,
  PERF_MAX_TRACE_SIZE,
  PT_REGS_SIZE,
} from "./tracing.ts";
export {
  BPF_SOCKOPT_OFFSETS,
  BPF_SOCKOPT_SIZE,
  BPF_SYSCTL_OFFSETS,
  BPF_SYSCTL_SIZE,
  CGROUP_DEV_CTX_OFFSETS,
  CGROUP_DEV_CTX_SIZE,
} from "./cgroup.ts";
export {
  BPF_SK_LOOKUP_OFFSETS,
  BPF_SK_LOOKUP_SIZE,
  SK_REUSEPORT_MD_OFFSETS,
  SK_REUSEPORT_MD_SIZE,
} from "./sk_select.ts";
export { BPF_NF_CTX_OFFSETS, BPF_NF_CTX_SIZE } from "./netfilter.ts";
export {
  BPF_FLOW_KEYS_SIZE,
  BPF_TCP_SOCK_END,
  BPF_TCP_SOCK_U64_OFFSETS,
  BPF_XDP_SOCK_END,
  bpfSockCommonIsValidAccess,
  bpfTcpSockIsValidAccess,
  bpfXdpSockIsValidAccess,
  flowKeysAccessMessage,
  flowKeysAccessOk,
  sockAccessMessage,
  sockPtrAccess,
  type SockPtrType,
} from "./sock_ptr.ts";
export { type BtfTargetProto, knownBtfTarget } from "./btf_targets.ts";
export {
  structOpsMemberProto,
  tcpCaBtfStructAccess,
  tcpCaIsValidAccess,
} from "./struct_ops.ts";

type Rule = (
  off: number,
  size: number,
  access: CtxAccessType,
  opts: CtxAccessOptions,
) => CtxAccessResult;

/** The `is_valid_access` of each program type (`bpf_verifier_ops`), by libbpf's type name. */
const RULES: Readonly<Record<string, Rule>> = {
  socket_filter: skFilterIsValidAccess,
  sched_cls: tcClsActIsValidAccess,
  sched_act: tcClsActIsValidAccess,
  cgroup_skb: cgSkbIsValidAccess,
  lwt_in: lwtIsValidAccess,
  lwt_out: lwtIsValidAccess,
  lwt_xmit: lwtIsValidAccess,
  lwt_seg6local: lwtIsValidAccess,
  sk_skb: skSkbIsValidAccess,
  flow_dissector: flowDissectorIsValidAccess,
  xdp: xdpIsValidAccess,
  cgroup_sock: sockFilterIsValidAccess,
  cgroup_sock_addr: sockAddrIsValidAccess,
  sock_ops: sockOpsIsValidAccess,
  sk_msg: skMsgIsValidAccess,
  sk_reuseport: skReuseportIsValidAccess,
  sk_lookup: skLookupIsValidAccess,
  cgroup_device: cgroupDevIsValidAccess,
  cgroup_sysctl: sysctlIsValidAccess,
  cgroup_sockopt: cgSockoptIsValidAccess,
  netfilter: netfilterIsValidAccess,
  kprobe: kprobeIsValidAccess,
  tracepoint: tracepointIsValidAccess,
  raw_tracepoint: rawTracepointIsValidAccess,
  raw_tracepoint_writable: rawTracepointWritableIsValidAccess,
  perf_event: perfEventIsValidAccess,
  tracing: btfCtxAccess,
  lsm: (off, size, access, opts) =>
    btfCtxAccess(off, size, access, opts, "lsm"),
  syscall: syscallIsValidAccess,
  // mirrors lirc_mode2_is_valid_access(): one u32 sample, read whole
  lirc_mode2: (off, size, access) =>
    access === "read" && off === 0 && size === 4 ? scalarAccess() : DENIED,
};

/** Program types {@link ctxAccess} has a rule for; any other is refused every access. */
export const CTX_ACCESS_PROG_TYPES: readonly string[] = Object.freeze(
  Object.keys(RULES),
);

/**
 * Asks the rule of `progType` (libbpf's name, as in `PROG_TYPE`) whether an
 * access of `size` bytes (1, 2, 4 or 8) at context offset `off` is allowed,
 * and if so what a load yields. Mirrors `env->ops->is_valid_access()`;
 * `ext` programs use `opts.targetProgType`'s rule.
 */
export function ctxAccess(
  progType: string,
  off: number,
  size: number,
  access: CtxAccessType,
  opts: CtxAccessOptions = {},
): CtxAccessResult {
  // freplace programs run in their target's context
  if (
    progType === "ext" && opts.targetProgType && opts.targetProgType !== "ext"
  ) {
    return ctxAccess(opts.targetProgType, off, size, access, opts);
  }
  if (progType === "struct_ops") {
    return structOpsCtxAccess(off, size, access, opts);
  }
  const rule = RULES[progType];
  if (!rule) return DENIED;
  if (
    (progType === "tracing" || progType === "lsm") && !opts.btfCtxArgs
  ) {
    // without vmlinux BTF, a listed target's prototype stands in for it
    const proto = knownBtfTarget(opts.expectedAttachType, opts.attachFuncName);
    if (proto) {
      opts = { ...opts, btfCtxArgs: proto.args, btfCtxRet: proto.ret };
    }
  }
  if (progType === "tracing" && opts.expectedAttachType === "trace_iter") {
    return iterCtxAccess(off, size, access, opts);
  }
  return rule(off, size, access, opts);
}

/**
 * The struct_ops type's `verifier_ops->is_valid_access`: only
 * `tcp_congestion_ops` is modelled (`bpf_tcp_ca_is_valid_access()`), over
 * the prototype of the member `opts.attachFuncName`.
 */
function structOpsCtxAccess(
  off: number,
  size: number,
  access: CtxAccessType,
  opts: CtxAccessOptions,
): CtxAccessResult {
  if (opts.structOpsName !== "tcp_congestion_ops") return DENIED;
  const proto = opts.btfCtxArgs
    ? undefined
    : structOpsMemberProto(opts.structOpsName, opts.attachFuncName);
  if (proto) opts = { ...opts, btfCtxArgs: proto.args, btfCtxRet: proto.ret };
  return tcpCaIsValidAccess(off, size, access, opts);
}

/** The context's size in bytes for `progType` (0 when not modelled), the bound its rule checks. */
export function ctxSize(progType: string): number {
  switch (progType) {
    case "socket_filter":
    case "sched_cls":
    case "sched_act":
    case "cgroup_skb":
    case "lwt_in":
    case "lwt_out":
    case "lwt_xmit":
    case "lwt_seg6local":
    case "sk_skb":
    case "flow_dissector":
      return SK_BUFF_SIZE;
    case "xdp":
      return XDP_MD_SIZE;
    case "cgroup_sock":
      return BPF_SOCK_SIZE;
    case "cgroup_sock_addr":
      return BPF_SOCK_ADDR_SIZE;
    case "sock_ops":
      return BPF_SOCK_OPS_SIZE;
    case "sk_msg":
      return SK_MSG_MD_SIZE;
    case "sk_reuseport":
      return SK_REUSEPORT_MD_SIZE;
    case "sk_lookup":
      return BPF_SK_LOOKUP_SIZE;
    case "cgroup_device":
      return CGROUP_DEV_CTX_SIZE;
    case "cgroup_sysctl":
      return BPF_SYSCTL_SIZE;
    case "cgroup_sockopt":
      return BPF_SOCKOPT_SIZE;
    case "netfilter":
      return BPF_NF_CTX_SIZE;
    case "kprobe":
      return PT_REGS_SIZE;
    case "tracepoint":
      return PERF_MAX_TRACE_SIZE;
    case "raw_tracepoint":
    case "raw_tracepoint_writable":
    case "tracing":
    case "lsm":
    case "struct_ops": // bpf_tcp_ca_is_valid_access()'s first bound
      return 8 * MAX_BPF_FUNC_ARGS;
    case "perf_event":
      return PERF_EVENT_DATA_SIZE;
    case "syscall":
      return SYSCALL_CTX_MAX;
    case "lirc_mode2":
      return 4; // the u32 sample
    default:
      return 0;
  }
}

/** check_ctx_access()'s refusal line: `invalid bpf_context access off=%d size=%d`. */
export function invalidCtxAccessMessage(off: number, size: number): string {
  return `invalid bpf_context access off=${off} size=${size}`;
}
