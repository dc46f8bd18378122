/**
 * `bpf_setsockopt()` / `bpf_getsockopt()` on a {@link SimTcpSock}
 * (net/core/filter.c `__bpf_setsockopt()` / `__bpf_getsockopt()`): the
 * level dispatch, each level's list of allowed options with its optlen
 * rule (`sol_socket_sockopt()`, `sol_tcp_sockopt()`, `sol_ip_sockopt()`,
 * `sol_ipv6_sockopt()`, `bpf_sol_tcp_setsockopt()` for `TCP_BPF_*`), then
 * what the socket layer does with the value (`sk_setsockopt()`,
 * `do_tcp_setsockopt()`, `do_ip_setsockopt()`, `do_ipv6_setsockopt()` and
 * their getters). A BPF caller passes every capability check
 * (`sockopt_ns_capable()` is true under `has_current_bpf_ctx()`), and the
 * simulated host has one device, `lo` (ifindex 1).
 *
 * Errnos are negative. A failed get leaves the buffer zeroed, and a
 * shorter answer (TCP_CONGESTION) is zero-padded: `__bpf_getsockopt()`.
 * @module
 */
import { EINVAL, ENODEV } from "../../../uapi/errno.ts";
import { AF } from "../../net/packet_sock.ts";
import { SIM_NET_SYSCTL as SYS, type SimTcpSock } from "./sock_ops_sock.ts";
import { type GetLen, optInt, putOptInt, solTcp } from "./sock_options_tcp.ts";

export {
  BPF_SOCK_OPS_ALL_CB_FLAGS,
  ENOPROTOOPT,
  TCP_OPT,
} from "./sock_options_tcp.ts";

/** Option levels. */
export const SOL = { IP: 0, SOCKET: 1, TCP: 6, IPV6: 41 } as const;
/** `SO_*` options `sol_socket_sockopt()` lets BPF use, and `SK_BPF_CB_FLAGS`. */
export const SO = {
  REUSEADDR: 2,
  SNDBUF: 7,
  RCVBUF: 8,
  KEEPALIVE: 9,
  PRIORITY: 12,
  REUSEPORT: 15,
  RCVLOWAT: 18,
  BINDTODEVICE: 25,
  MARK: 36,
  MAX_PACING_RATE: 47,
  BINDTOIFINDEX: 62,
  TXREHASH: 74,
  SK_BPF_CB_FLAGS: 1009,
} as const;
/** `IP_TOS`, `IPV6_TCLASS`, `IPV6_AUTOFLOWLABEL`. */
export const IP_OPT = {
  TOS: 1,
  IPV6_TCLASS: 67,
  IPV6_AUTOFLOWLABEL: 70,
} as const;
const INT_MAX = 0x7fffffff;
/** `SOCK_MIN_SNDBUF` / `SOCK_MIN_RCVBUF`: 2 × / 1 × (2048 + SKB_DATA_ALIGN(sizeof(sk_buff))). */
const SOCK_MIN_SNDBUF = 4608, SOCK_MIN_RCVBUF = 2304;
const SOCK_SNDBUF_LOCK = 1, SOCK_RCVBUF_LOCK = 2;
/** `ip_tos2prio[]` (net/ipv4/route.c), indexed by `IPTOS_TOS(tos) >> 1`. */
const IP_TOS2PRIO = [0, 0, 0, 0, 2, 2, 2, 2, 6, 6, 6, 6, 4, 4, 4, 4];

/** Mirrors `__bpf_setsockopt()`: 0 or a negative errno. */
export function bpfSetsockopt(
  sk: SimTcpSock,
  level: number,
  optname: number,
  optval: Uint8Array,
): number {
  if (!sk.fullsock) return -EINVAL;
  switch (level) {
    case SOL.SOCKET:
      return solSocket(sk, optname, optval, optval.length, undefined);
    case SOL.IP:
      return solIp(sk, optname, optval, undefined);
    case SOL.IPV6:
      return solIpv6(sk, optname, optval, undefined);
    case SOL.TCP:
      return solTcp(sk, optname, optval, undefined);
  }
  return -EINVAL;
}

/**
 * Mirrors `__bpf_getsockopt()`: fills `buf` (optval, `buf.length` =
 * optlen) and returns 0 or a negative errno; what is not answered is zeroed.
 */
export function bpfGetsockopt(
  sk: SimTcpSock,
  level: number,
  optname: number,
  buf: Uint8Array,
): number {
  const out = { len: buf.length };
  let err = -EINVAL;
  if (sk.fullsock) {
    if (level === SOL.SOCKET) {
      err = solSocket(sk, optname, buf, buf.length, out);
    } else if (level === SOL.TCP) err = solTcp(sk, optname, buf, out);
    else if (level === SOL.IP) err = solIp(sk, optname, buf, out);
    else if (level === SOL.IPV6) err = solIpv6(sk, optname, buf, out);
  }
  const answered = err !== 0 ? 0 : out.len;
  buf.fill(0, Math.max(0, answered));
  return err;
}

/** Mirrors `sol_socket_sockopt()`, then `sk_setsockopt()` / `sk_getsockopt()`. */
function solSocket(
  sk: SimTcpSock,
  optname: number,
  optval: Uint8Array,
  optlen: number,
  get: GetLen | undefined,
): number {
  const intOpts: number[] = [
    SO.REUSEADDR,
    SO.SNDBUF,
    SO.RCVBUF,
    SO.KEEPALIVE,
    SO.PRIORITY,
    SO.REUSEPORT,
    SO.RCVLOWAT,
    SO.MARK,
    SO.MAX_PACING_RATE,
    SO.BINDTOIFINDEX,
    SO.TXREHASH,
    SO.SK_BPF_CB_FLAGS,
  ];
  if (intOpts.includes(optname)) {
    if (optlen !== 4) return -EINVAL;
  } else if (optname !== SO.BINDTODEVICE) return -EINVAL;
  if (get !== undefined) {
    if (optname === SO.BINDTODEVICE) return -EINVAL;
    putOptInt(optval, sockGetInt(sk, optname));
    return 0;
  }
  if (optname === SO.BINDTODEVICE) return setBindToDevice(sk, optval);
  const val = optInt(optval);
  switch (optname) {
    case SO.SK_BPF_CB_FLAGS: // sk_bpf_set_get_cb_flags(): SK_BPF_CB_MASK is 1
      if ((val >>> 0) & ~1) return -EINVAL;
      sk.skBpfCbFlags = val;
      return 0;
    case SO.REUSEADDR:
      sk.reuse = val ? 1 : 0; // SK_CAN_REUSE
      return 0;
    case SO.SNDBUF: // min_t(u32, val, wmem_max), then the doubling
      sk.userlocks |= SOCK_SNDBUF_LOCK;
      sk.sndbuf = doubledBuf(val, SYS.wmemMax, SOCK_MIN_SNDBUF);
      return 0;
    case SO.RCVBUF: // __sock_set_rcvbuf()
      sk.userlocks |= SOCK_RCVBUF_LOCK;
      sk.rcvbuf = doubledBuf(val, SYS.rmemMax, SOCK_MIN_RCVBUF);
      return 0;
    case SO.KEEPALIVE:
      sk.keepOpen = val !== 0;
      return 0;
    case SO.PRIORITY: // sk_set_prio_allowed(): capable under BPF
      sk.priority = val >>> 0;
      return 0;
    case SO.REUSEPORT:
      sk.reuseport = val ? 1 : 0;
      return 0;
    case SO.RCVLOWAT: {
      // through sock->ops->set_rcvlowat (tcp_set_rcvlowat()) when there is
      // a struct socket, else stored as is
      const lowat = val < 0 ? INT_MAX : val;
      if (sk.hasSocket) return tcpSetRcvlowat(sk, lowat);
      sk.rcvlowat = lowat || 1;
      return 0;
    }
    case SO.MARK:
      sk.mark = val >>> 0;
      return 0;
    case SO.MAX_PACING_RATE: {
      // ~0U means "no limit" (~0UL); the pacing rate follows it down
      const rate = (val >>> 0) === 0xffffffff
        ? 0xffffffffffffffffn
        : BigInt(val >>> 0);
      sk.maxPacingRate = rate;
      if (sk.pacingRate > rate) sk.pacingRate = rate;
      return 0;
    }
    case SO.BINDTOIFINDEX:
      return bindToIndex(sk, val);
    case SO.TXREHASH:
      if (val < -1 || val > 1) return -EINVAL;
      sk.txrehash = val === -1 ? SYS.txrehash : val; // (u8)-1: the sysctl's
      return 0;
  }
  return -EINVAL; // unreachable: listed above
}

/** `max_t(int, min(min_t(u32, val, max), INT_MAX / 2) * 2, floor)`. */
function doubledBuf(val: number, max: number, floor: number): number {
  const capped = Math.min(Math.min(val >>> 0, max), Math.floor(INT_MAX / 2));
  return Math.max(capped * 2, floor);
}

/**
 * Mirrors `tcp_set_rcvlowat()`: capped by half the locked rcvbuf, else by
 * half of tcp_rmem[2]. (The kernel then grows an unlocked rcvbuf to fit
 * the new low-water mark through `tcp_space_from_win()`: not modelled.)
 */
function tcpSetRcvlowat(sk: SimTcpSock, val: number): number {
  const cap = (sk.userlocks & SOCK_RCVBUF_LOCK)
    ? sk.rcvbuf >> 1
    : SYS.tcpRmemMax >> 1;
  sk.rcvlowat = Math.min(val, cap) || 1;
  return 0;
}

/** Mirrors `sock_bindtoindex_locked()` (the caller is capable). */
function bindToIndex(sk: SimTcpSock, ifindex: number): number {
  if (ifindex < 0) return -EINVAL;
  sk.boundDevIf = ifindex;
  return 0;
}

/** Mirrors `sock_setbindtodevice()`: the name (≤ 15 bytes) of a device on the host. */
function setBindToDevice(sk: SimTcpSock, optval: Uint8Array): number {
  const bytes = optval.subarray(0, Math.min(optval.length, 15));
  const nul = bytes.indexOf(0);
  const name = new TextDecoder().decode(
    nul < 0 ? bytes : bytes.subarray(0, nul),
  );
  let index = 0;
  if (name !== "") {
    if (name !== "lo") return -ENODEV;
    index = 1;
  }
  return bindToIndex(sk, index);
}

/** Mirrors `sk_getsockopt()` for the options BPF may read. */
function sockGetInt(sk: SimTcpSock, optname: number): number {
  switch (optname) {
    case SO.REUSEADDR:
      return sk.reuse;
    case SO.SNDBUF:
      return sk.sndbuf;
    case SO.RCVBUF:
      return sk.rcvbuf;
    case SO.KEEPALIVE:
      return sk.keepOpen ? 1 : 0;
    case SO.PRIORITY:
      return sk.priority;
    case SO.REUSEPORT:
      return sk.reuseport;
    case SO.RCVLOWAT:
      return sk.rcvlowat;
    case SO.MARK:
      return sk.mark;
    case SO.MAX_PACING_RATE: // a 4-byte answer: min_t(unsigned long, ~0U, rate)
      return Number(
        sk.maxPacingRate > 0xffffffffn ? 0xffffffffn : sk.maxPacingRate,
      );
    case SO.BINDTOIFINDEX:
      return sk.boundDevIf;
    case SO.TXREHASH:
      return sk.txrehash;
    case SO.SK_BPF_CB_FLAGS:
      return sk.skBpfCbFlags;
  }
  return 0; // unreachable: listed by the caller
}

/** Mirrors `sol_ip_sockopt()` with `do_ip_{set,get}sockopt(IP_TOS)`. */
function solIp(
  sk: SimTcpSock,
  optname: number,
  optval: Uint8Array,
  get: GetLen | undefined,
): number {
  if (sk.family !== AF.INET) return -EINVAL;
  if (optname !== IP_OPT.TOS || optval.length !== 4) return -EINVAL;
  if (get !== undefined) {
    putOptInt(optval, sk.tos);
    return 0;
  }
  // __ip_sock_set_tos(): a stream socket keeps its ECN bits; the priority
  // follows a changed TOS (rt_tos2priority())
  const tos = ((optInt(optval) & ~3) | (sk.tos & 3)) & 0xff;
  if (tos !== sk.tos) {
    sk.tos = tos;
    sk.priority = IP_TOS2PRIO[(tos & 0x1e) >> 1];
  }
  return 0;
}

/** Mirrors `sol_ipv6_sockopt()` with `do_ipv6_{set,get}sockopt()`. */
function solIpv6(
  sk: SimTcpSock,
  optname: number,
  optval: Uint8Array,
  get: GetLen | undefined,
): number {
  if (sk.family !== AF.INET6) return -EINVAL;
  const known = optname === IP_OPT.IPV6_TCLASS ||
    optname === IP_OPT.IPV6_AUTOFLOWLABEL;
  if (!known || optval.length !== 4) return -EINVAL;
  if (get !== undefined) {
    const auto = sk.autoflowlabel ?? SYS.autoFlowlabels === 1;
    putOptInt(
      optval,
      optname === IP_OPT.IPV6_TCLASS ? sk.tclass : auto ? 1 : 0,
    );
    return 0;
  }
  const val = optInt(optval);
  if (optname === IP_OPT.IPV6_AUTOFLOWLABEL) {
    sk.autoflowlabel = val !== 0;
    return 0;
  }
  if (val < -1 || val > 0xff) return -EINVAL;
  // RFC 3542's default of 0 for -1; a stream socket keeps its ECN bits
  sk.tclass = ((val === -1 ? 0 : val) & ~3) | (sk.tclass & 3);
  return 0;
}
