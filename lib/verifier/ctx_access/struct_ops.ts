/**
 * struct_ops programs implementing `struct tcp_congestion_ops` members
 * (net/ipv4/bpf_tcp_ca.c, kernel/bpf/bpf_struct_ops.c): the members and
 * their prototypes as the 6.18 vmlinux BTF of the oracle's kernel has them,
 * the context rule `bpf_tcp_ca_is_valid_access()` and the store rule
 * `bpf_tcp_ca_btf_struct_access()`.
 *
 * The kernel finds a program's member through `attach_btf_id` (the struct)
 * and `expected_attach_type` (the member's index), which libbpf sets from
 * the `.struct_ops` map's relocations; bpfsim's loader records the member
 * by name (`BpfProgram.structOps`), and libbpf too matches the object's
 * members to the kernel's by name.
 *
 * Only `tcp_congestion_ops` is modelled: other struct_ops types (sched_ext,
 * hid_bpf, bpf_dummy_ops …) keep no context rule.
 * @module
 */
import { btfCtxAccess } from "./tracing.ts";
import type { BtfTargetProto } from "./btf_targets.ts";
import type {
  BtfCtxArg,
  CtxAccessOptions,
  CtxAccessResult,
  CtxAccessType,
} from "./types.ts";

/** BTF ids in the oracle kernel's vmlinux BTF (6.18.44): they appear in its log lines. */
export const VMLINUX_BTF_IDS = {
  sock: 2953,
  tcp_sock: 36746,
  tcp_congestion_ops: 14441,
  ack_sample: 14587,
  rate_sample: 14589,
} as const;

const sock: BtfCtxArg = Object.freeze({
  kind: "ptr",
  pointsToStruct: true,
  typeName: "sock",
  btfId: VMLINUX_BTF_IDS.sock,
});
const u32: BtfCtxArg = Object.freeze({ kind: "int", typeName: "u32", size: 4 });
const VOID: BtfCtxArg = Object.freeze({ kind: "void" });
const structPtr = (typeName: "ack_sample" | "rate_sample", size: number) =>
  Object.freeze({
    kind: "ptr",
    pointsToStruct: true,
    typeName,
    size,
    btfId: VMLINUX_BTF_IDS[typeName],
  }) as BtfCtxArg;

/** A function-pointer member of `struct tcp_congestion_ops`. */
export type TcpCongestionMember =
  | "ssthresh"
  | "cong_avoid"
  | "set_state"
  | "cwnd_event"
  | "in_ack_event"
  | "pkts_acked"
  | "min_tso_segs"
  | "cong_control"
  | "undo_cwnd"
  | "sndbuf_expand"
  | "get_info"
  | "init"
  | "release";

/**
 * The function-pointer members of `struct tcp_congestion_ops` (6.18,
 * include/net/tcp.h, as the vmlinux BTF of the oracle's kernel has them)
 * with their prototypes. A pointer to a struct other than `sock` carries
 * the struct's size.
 */
export const TCP_CONGESTION_OPS_PROTOS: Readonly<
  Record<TcpCongestionMember, BtfTargetProto>
> = Object.freeze({
  ssthresh: { args: [sock], ret: u32 },
  cong_avoid: { args: [sock, u32, u32], ret: VOID },
  set_state: {
    args: [sock, { kind: "int", typeName: "u8", size: 1 }],
    ret: VOID,
  },
  cwnd_event: {
    args: [sock, { kind: "enum", typeName: "tcp_ca_event", size: 4 }],
    ret: VOID,
  },
  in_ack_event: { args: [sock, u32], ret: VOID },
  pkts_acked: { args: [sock, structPtr("ack_sample", 12)], ret: VOID },
  min_tso_segs: { args: [sock], ret: u32 },
  cong_control: {
    args: [
      sock,
      u32,
      { kind: "int", typeName: "int", size: 4 },
      structPtr("rate_sample", 72),
    ],
    ret: VOID,
  },
  undo_cwnd: { args: [sock], ret: u32 },
  sndbuf_expand: { args: [sock], ret: u32 },
  get_info: {
    args: [
      sock,
      u32,
      { kind: "ptr", typeName: "int" },
      { kind: "ptr", typeName: "tcp_cc_info" },
    ],
    ret: { kind: "int", typeName: "size_t", size: 8 },
  },
  init: { args: [sock], ret: VOID },
  release: { args: [sock], ret: VOID },
});

/**
 * The members of the kernel's `struct tcp_congestion_ops` in order (their
 * index is `expected_attach_type`); the ones that are not function
 * pointers too (`name`, `owner`, `list`, `key`, `flags`).
 */
export const TCP_CONGESTION_OPS_MEMBERS: readonly string[] = Object.freeze([
  "ssthresh",
  "cong_avoid",
  "set_state",
  "cwnd_event",
  "in_ack_event",
  "pkts_acked",
  "min_tso_segs",
  "cong_control",
  "undo_cwnd",
  "sndbuf_expand",
  "get_info",
  "name",
  "owner",
  "list",
  "key",
  "flags",
  "init",
  "release",
]);

/**
 * The prototype of member `member` of struct_ops type `structName`, or
 * undefined when the type is not modelled or the member is not a
 * function pointer.
 */
export function structOpsMemberProto(
  structName: string | undefined,
  member: string | undefined,
): BtfTargetProto | undefined {
  if (structName !== "tcp_congestion_ops" || member === undefined) {
    return undefined;
  }
  return Object.hasOwn(TCP_CONGESTION_OPS_PROTOS, member)
    ? TCP_CONGESTION_OPS_PROTOS[member as TcpCongestionMember]
    : undefined;
}

/**
 * Mirrors `bpf_tcp_ca_is_valid_access()`: `bpf_tracing_btf_ctx_access()`
 * over the member's prototype (`opts.btfCtxArgs`, struct_ops arguments are
 * trusted), then a `struct sock *` argument promoted to `struct tcp_sock`.
 */
export function tcpCaIsValidAccess(
  off: number,
  size: number,
  type: CtxAccessType,
  opts: CtxAccessOptions = {},
): CtxAccessResult {
  const r = btfCtxAccess(off, size, type, opts, "struct_ops");
  if (r.ok && r.regType === "PTR_TO_BTF_ID" && r.btfName === "sock") {
    return { ...r, btfId: VMLINUX_BTF_IDS.tcp_sock, btfName: "tcp_sock" };
  }
  return r;
}

/**
 * Offsets in `struct tcp_sock` (6.18, x86-64, vmlinux BTF) of the fields
 * `bpf_tcp_ca_btf_struct_access()` lets a program write, with their sizes.
 */
export const TCP_CA_WRITABLE_FIELDS: Readonly<
  Record<string, { readonly off: number; readonly size: number }>
> = Object.freeze({
  sk_pacing_status: { off: 428, size: 4 },
  sk_pacing_rate: { off: 488, size: 8 },
  icsk_ack_pending: { off: 1256, size: 1 },
  icsk_ca_priv: { off: 1296, size: 104 },
  snd_cwnd: { off: 1444, size: 4 },
  snd_ssthresh: { off: 1492, size: 4 },
  ecn_flags: { off: 1640, size: 1 },
  app_limited: { off: 1716, size: 4 },
  snd_cwnd_cnt: { off: 1932, size: 4 },
});

/**
 * Mirrors `bpf_tcp_ca_btf_struct_access()`'s `switch (off)`: the end of
 * the field a store of `struct tcp_sock` at `off` may write (the store
 * must end by it), or undefined for "no write support to tcp_sock at off".
 * Only `icsk_ca_priv` is a range (`bpf_ctx_range()`); every other field
 * must be written from its first byte.
 */
export function tcpCaWritableEnd(off: number): number | undefined {
  for (const [name, f] of Object.entries(TCP_CA_WRITABLE_FIELDS)) {
    const isRange = name === "icsk_ca_priv";
    if (off === f.off || (isRange && off > f.off && off < f.off + f.size)) {
      return f.off + f.size;
    }
  }
  return undefined;
}

/**
 * Mirrors `bpf_tcp_ca_btf_struct_access()` for a store of `size` bytes at
 * `off` into the kernel struct `btfName` points at: the line it logs when
 * it refuses (-EACCES), or undefined when the store is allowed.
 */
export function tcpCaBtfStructAccess(
  btfName: string,
  off: number,
  size: number,
): string | undefined {
  if (btfName !== "tcp_sock") return "only read is supported";
  const end = tcpCaWritableEnd(off);
  if (end === undefined) return `no write support to tcp_sock at off ${off}`;
  if (off + size > end) {
    return `write access at off ${off} with size ${size} beyond the member of tcp_sock ended at ${end}`;
  }
  return undefined;
}
