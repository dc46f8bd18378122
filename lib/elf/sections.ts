/**
 * libbpf's table of `SEC()` names (`section_defs[]` in libbpf.c, as of libbpf
 * 1.4): which program type and expected attach type a section name implies,
 * and its matching rule. A name ending in `+` matches itself or `name/…`; a
 * name ending in `/` matches as a prefix; any other name matches exactly.
 * The first matching entry wins, so order matters (`tc/ingress` before `tc`).
 * @module
 */
import type { AttachType, ProgType } from "../uapi/bpf.ts";

/** What a `SEC()` name implies for the program (libbpf's `struct bpf_sec_def`). */
export interface SectionDef {
  /** Section pattern, with libbpf's `+` / `/` suffix convention. */
  readonly pattern: string;
  /** Program type passed to `BPF_PROG_LOAD`. */
  readonly progType: ProgType;
  /** Expected attach type, or null when libbpf passes 0. */
  readonly attachType: AttachType | null;
  /** `SEC_SLEEPABLE`: loaded with `BPF_F_SLEEPABLE`. */
  readonly sleepable: boolean;
  /** `SEC_ATTACH_BTF`: the target is found by name in kernel BTF (`fentry/NAME`). */
  readonly attachBtf: boolean;
  /** `SEC_XDP_FRAGS`: loaded with `BPF_F_XDP_HAS_FRAGS`. */
  readonly xdpFrags: boolean;
}

const NONE = 0, SLEEPABLE = 1, ATTACH_BTF = 2, XDP_FRAGS = 4;

function def(
  pattern: string,
  progType: ProgType,
  attachType: AttachType | null,
  flags: number,
): SectionDef {
  return {
    pattern,
    progType,
    attachType,
    sleepable: (flags & SLEEPABLE) !== 0,
    attachBtf: (flags & ATTACH_BTF) !== 0,
    xdpFrags: (flags & XDP_FRAGS) !== 0,
  };
}

/** The table, in libbpf's order. */
export const SECTION_DEFS: readonly SectionDef[] = [
  def("socket", "socket_filter", null, NONE),
  def(
    "sk_reuseport/migrate",
    "sk_reuseport",
    "sk_reuseport_select_or_migrate",
    NONE,
  ),
  def("sk_reuseport", "sk_reuseport", "sk_reuseport_select", NONE),
  def("kprobe+", "kprobe", null, NONE),
  def("uprobe+", "kprobe", null, NONE),
  def("uprobe.s+", "kprobe", null, SLEEPABLE),
  def("kretprobe+", "kprobe", null, NONE),
  def("uretprobe+", "kprobe", null, NONE),
  def("uretprobe.s+", "kprobe", null, SLEEPABLE),
  def("kprobe.multi+", "kprobe", "trace_kprobe_multi", NONE),
  def("kretprobe.multi+", "kprobe", "trace_kprobe_multi", NONE),
  def("uprobe.multi+", "kprobe", "trace_uprobe_multi", NONE),
  def("uretprobe.multi+", "kprobe", "trace_uprobe_multi", NONE),
  def("uprobe.multi.s+", "kprobe", "trace_uprobe_multi", SLEEPABLE),
  def("uretprobe.multi.s+", "kprobe", "trace_uprobe_multi", SLEEPABLE),
  def("ksyscall+", "kprobe", null, NONE),
  def("kretsyscall+", "kprobe", null, NONE),
  def("usdt+", "kprobe", null, NONE),
  def("usdt.s+", "kprobe", null, SLEEPABLE),
  def("tc/ingress", "sched_cls", "tcx_ingress", NONE),
  def("tc/egress", "sched_cls", "tcx_egress", NONE),
  def("tcx/ingress", "sched_cls", "tcx_ingress", NONE),
  def("tcx/egress", "sched_cls", "tcx_egress", NONE),
  def("tc", "sched_cls", null, NONE),
  def("classifier", "sched_cls", null, NONE),
  def("action", "sched_act", null, NONE),
  def("netkit/primary", "sched_cls", "netkit_primary", NONE),
  def("netkit/peer", "sched_cls", "netkit_peer", NONE),
  def("tracepoint+", "tracepoint", null, NONE),
  def("tp+", "tracepoint", null, NONE),
  def("raw_tracepoint+", "raw_tracepoint", null, NONE),
  def("raw_tp+", "raw_tracepoint", null, NONE),
  def("raw_tracepoint.w+", "raw_tracepoint_writable", null, NONE),
  def("raw_tp.w+", "raw_tracepoint_writable", null, NONE),
  def("tp_btf+", "tracing", "trace_raw_tp", ATTACH_BTF),
  def("fentry+", "tracing", "trace_fentry", ATTACH_BTF),
  def("fmod_ret+", "tracing", "modify_return", ATTACH_BTF),
  def("fexit+", "tracing", "trace_fexit", ATTACH_BTF),
  def("fentry.s+", "tracing", "trace_fentry", ATTACH_BTF | SLEEPABLE),
  def("fmod_ret.s+", "tracing", "modify_return", ATTACH_BTF | SLEEPABLE),
  def("fexit.s+", "tracing", "trace_fexit", ATTACH_BTF | SLEEPABLE),
  def("freplace+", "ext", null, ATTACH_BTF),
  def("lsm+", "lsm", "lsm_mac", ATTACH_BTF),
  def("lsm.s+", "lsm", "lsm_mac", ATTACH_BTF | SLEEPABLE),
  def("lsm_cgroup+", "lsm", "lsm_cgroup", ATTACH_BTF),
  def("iter+", "tracing", "trace_iter", ATTACH_BTF),
  def("iter.s+", "tracing", "trace_iter", ATTACH_BTF | SLEEPABLE),
  def("syscall", "syscall", null, SLEEPABLE),
  def("xdp.frags/devmap", "xdp", "xdp_devmap", XDP_FRAGS),
  def("xdp/devmap", "xdp", "xdp_devmap", NONE),
  def("xdp.frags/cpumap", "xdp", "xdp_cpumap", XDP_FRAGS),
  def("xdp/cpumap", "xdp", "xdp_cpumap", NONE),
  def("xdp.frags", "xdp", "xdp", XDP_FRAGS),
  def("xdp", "xdp", "xdp", NONE),
  def("perf_event", "perf_event", null, NONE),
  def("lwt_in", "lwt_in", null, NONE),
  def("lwt_out", "lwt_out", null, NONE),
  def("lwt_xmit", "lwt_xmit", null, NONE),
  def("lwt_seg6local", "lwt_seg6local", null, NONE),
  def("sockops", "sock_ops", "cgroup_sock_ops", NONE),
  def("sk_skb/stream_parser", "sk_skb", "sk_skb_stream_parser", NONE),
  def("sk_skb/stream_verdict", "sk_skb", "sk_skb_stream_verdict", NONE),
  def("sk_skb", "sk_skb", null, NONE),
  def("sk_msg", "sk_msg", "sk_msg_verdict", NONE),
  def("lirc_mode2", "lirc_mode2", "lirc_mode2", NONE),
  def("flow_dissector", "flow_dissector", "flow_dissector", NONE),
  def("cgroup_skb/ingress", "cgroup_skb", "cgroup_inet_ingress", NONE),
  def("cgroup_skb/egress", "cgroup_skb", "cgroup_inet_egress", NONE),
  def("cgroup/skb", "cgroup_skb", null, NONE),
  def("cgroup/sock_create", "cgroup_sock", "cgroup_inet_sock_create", NONE),
  def("cgroup/sock_release", "cgroup_sock", "cgroup_inet_sock_release", NONE),
  def("cgroup/sock", "cgroup_sock", "cgroup_inet_sock_create", NONE),
  def("cgroup/post_bind4", "cgroup_sock", "cgroup_inet4_post_bind", NONE),
  def("cgroup/post_bind6", "cgroup_sock", "cgroup_inet6_post_bind", NONE),
  def("cgroup/bind4", "cgroup_sock_addr", "cgroup_inet4_bind", NONE),
  def("cgroup/bind6", "cgroup_sock_addr", "cgroup_inet6_bind", NONE),
  def("cgroup/connect4", "cgroup_sock_addr", "cgroup_inet4_connect", NONE),
  def("cgroup/connect6", "cgroup_sock_addr", "cgroup_inet6_connect", NONE),
  def("cgroup/connect_unix", "cgroup_sock_addr", "cgroup_unix_connect", NONE),
  def("cgroup/sendmsg4", "cgroup_sock_addr", "cgroup_udp4_sendmsg", NONE),
  def("cgroup/sendmsg6", "cgroup_sock_addr", "cgroup_udp6_sendmsg", NONE),
  def("cgroup/sendmsg_unix", "cgroup_sock_addr", "cgroup_unix_sendmsg", NONE),
  def("cgroup/recvmsg4", "cgroup_sock_addr", "cgroup_udp4_recvmsg", NONE),
  def("cgroup/recvmsg6", "cgroup_sock_addr", "cgroup_udp6_recvmsg", NONE),
  def("cgroup/recvmsg_unix", "cgroup_sock_addr", "cgroup_unix_recvmsg", NONE),
  def(
    "cgroup/getpeername4",
    "cgroup_sock_addr",
    "cgroup_inet4_getpeername",
    NONE,
  ),
  def(
    "cgroup/getpeername6",
    "cgroup_sock_addr",
    "cgroup_inet6_getpeername",
    NONE,
  ),
  def(
    "cgroup/getpeername_unix",
    "cgroup_sock_addr",
    "cgroup_unix_getpeername",
    NONE,
  ),
  def(
    "cgroup/getsockname4",
    "cgroup_sock_addr",
    "cgroup_inet4_getsockname",
    NONE,
  ),
  def(
    "cgroup/getsockname6",
    "cgroup_sock_addr",
    "cgroup_inet6_getsockname",
    NONE,
  ),
  def(
    "cgroup/getsockname_unix",
    "cgroup_sock_addr",
    "cgroup_unix_getsockname",
    NONE,
  ),
  def("cgroup/sysctl", "cgroup_sysctl", "cgroup_sysctl", NONE),
  def("cgroup/getsockopt", "cgroup_sockopt", "cgroup_getsockopt", NONE),
  def("cgroup/setsockopt", "cgroup_sockopt", "cgroup_setsockopt", NONE),
  def("cgroup/dev", "cgroup_device", "cgroup_device", NONE),
  def("struct_ops+", "struct_ops", null, NONE),
  def("struct_ops.s+", "struct_ops", null, SLEEPABLE),
  def("sk_lookup", "sk_lookup", "sk_lookup", NONE),
  def("netfilter", "netfilter", "netfilter", NONE),
];

/** Whether one table entry matches a section name (mirrors `sec_def_matches()`). */
export function sectionDefMatches(entry: SectionDef, secName: string): boolean {
  const pattern = entry.pattern;
  const last = pattern[pattern.length - 1];
  if (last === "/") return secName.startsWith(pattern);
  if (last === "+") {
    const stem = pattern.slice(0, -1);
    if (!secName.startsWith(stem)) return false;
    return secName.length === stem.length || secName[stem.length] === "/";
  }
  return secName === pattern;
}

/**
 * The first entry matching a section name, or undefined for names libbpf
 * does not know (mirrors `find_sec_def()`; a leading `?` — libbpf's "do not
 * autoload" mark — must already be stripped).
 */
export function findSectionDef(secName: string): SectionDef | undefined {
  return SECTION_DEFS.find((entry) => sectionDefMatches(entry, secName));
}
