/**
 * The tc helpers that act on a TCP listener given as a socket pointer
 * (net/core/filter.c): `bpf_sk_assign()`, `bpf_tcp_check_syncookie()`,
 * `bpf_tcp_gen_syncookie()`. Each follows the kernel's checks in order; in
 * a test run the only socket is the dummy `skb->sk` ({@link TestRunSock}),
 * so what a program sees is decided early:
 * - `bpf_sk_assign()`: flags other than 0 are -EINVAL, then a test skb is
 *   never at tc ingress (`skb->tc_at_ingress` is set only by the ingress
 *   hook, which `bpf_prog_test_run_skb()` does not go through): -EOPNOTSUPP.
 * - the SYN cookie helpers: a `th_len` (gen: and `th->doff`) check, then
 *   the dummy socket is no TCP listener (protocol 0, `TCP_CLOSE`): -EINVAL.
 *
 * The later steps (netns, reuseport, refcount, sysctl, header flags, IP
 * version, the cookie itself) are modelled for a listener the caller
 * describes ({@link TcpListenerState}); the cookie arithmetic is
 * packet_syncookie.ts's, under its fixed simulated secret.
 * @module
 */
import type { CallContext, HelperFn } from "../../exec/state.ts";
import { AF, TCP_STATE, type TestRunSock } from "./packet_sock.ts";
import { registeredSockArg, sockArg } from "./packet_sock_helpers.ts";
import { rawCheckSyncookie, rawGenSyncookie } from "./packet_syncookie.ts";
import {
  EINVAL,
  ENETUNREACH,
  ENOENT,
  EOPNOTSUPP,
  EPROTONOSUPPORT,
  ESOCKTNOSUPPORT,
} from "../../uapi/errno.ts";

/** Helper ids of the TCP-listener helpers. */
export const SOCK_TCP_HELPER = {
  tcp_check_syncookie: 100,
  tcp_gen_syncookie: 110,
  sk_assign: 124,
} as const;

/** `IPPROTO_TCP`; `sizeof(struct tcphdr)`, `struct iphdr`, `struct ipv6hdr`. */
const IPPROTO_TCP = 6, TCPHDR_LEN = 20, IPHDR_LEN = 20, IPV6HDR_LEN = 40;
/** Flag bits of byte 13 of a TCP header. */
const TH_FIN = 0x01, TH_SYN = 0x02, TH_RST = 0x04, TH_ACK = 0x10;

/**
 * What a TCP listener adds to a socket, for the SYN cookie helpers (no
 * test run has one: they describe the steps past the socket checks).
 */
export interface TcpListenerState {
  /** `net.ipv4.tcp_syncookies` of the socket's netns (0, 1 or 2). */
  readonly sysctlSyncookies: number;
  /** `tcp_synq_no_recent_overflow()`: no cookie sent in the last two minutes. */
  noRecentOverflow: boolean;
  /** `inet_csk_reqsk_queue_is_full()`: the SYN queue is full. */
  readonly reqskQueueFull: boolean;
  /** `sk_acceptq_is_full()`. */
  readonly acceptqFull: boolean;
}

/** What the SYN cookie helpers read of their socket argument. */
export interface SyncookieSock {
  /** `sk_protocol`. */
  readonly protocol: number;
  /** `sk_state`. */
  readonly state: number;
  /** `sk_family`. */
  readonly family: number;
  /** `ipv6_only_sock()`. */
  readonly ipv6Only: boolean;
  /** The listener's state, for a TCP `TCP_LISTEN` socket. */
  readonly listener?: TcpListenerState;
}

/** The listener state of `sk` once the checks found it is one. */
function listenerOf(sk: SyncookieSock): TcpListenerState {
  if (sk.listener === undefined) {
    throw new Error("a TCP listener needs its TcpListenerState");
  }
  return sk.listener;
}

/** Mirrors the socket test shared by both: `sk_protocol` TCP, `TCP_LISTEN`. */
const isTcpListener = (sk: SyncookieSock) =>
  sk.protocol === IPPROTO_TCP && sk.state === TCP_STATE.LISTEN;

/**
 * The IP version switch of both helpers: 0 (IPv4) or 1 (IPv6), or the
 * errno (`iph_len` too short for the version, a v4 header on an IPv6-only
 * socket, an IPv6 one on a non-IPv6 socket, another version).
 */
function familyOf(sk: SyncookieSock, iph: Uint8Array): 0 | 1 | number {
  switch (iph[0] >> 4) {
    case 4:
      return sk.family === AF.INET6 && sk.ipv6Only ? -EINVAL : 0;
    case 6:
      if (iph.length < IPV6HDR_LEN) return -EINVAL;
      return sk.family !== AF.INET6 ? -EINVAL : 1;
    default:
      return -EPROTONOSUPPORT;
  }
}

/**
 * Mirrors `bpf_tcp_check_syncookie(sk, iph, iph_len, th, th_len)` at
 * simulated time `ns` (`iph`, `th` hold `iph_len`, `th_len` bytes): 0 when
 * `ack_seq - 1` is a valid cookie for the flow, else a negative errno.
 */
export function tcpCheckSyncookie(
  sk: SyncookieSock,
  iph: Uint8Array,
  th: Uint8Array,
  ns: number,
): number {
  if (th.length < TCPHDR_LEN) return -EINVAL;
  // sk_listener() would let TCP_NEW_SYN_RECV through: the kernel does not
  if (!isTcpListener(sk)) return -EINVAL;
  const listener = listenerOf(sk);
  if (!listener.sysctlSyncookies) return -EINVAL;
  const flags = th[13];
  if (!(flags & TH_ACK) || flags & (TH_RST | TH_SYN)) return -ENOENT;
  if (iph.length < IPHDR_LEN) return -EINVAL;
  if (listener.noRecentOverflow) return -ENOENT;
  const family = familyOf(sk, iph);
  if (family !== 0 && family !== 1) return family;
  // __cookie_v4/6_check() finds an MSS (> 0) exactly when the raw check is 0
  return rawCheckSyncookie(family, iph, th, ns) === 0 ? 0 : -ENOENT;
}

/**
 * Mirrors `bpf_tcp_gen_syncookie(sk, iph, iph_len, th, th_len)` at
 * simulated time `ns`: the cookie in the low 32 bits and its MSS above,
 * or a negative errno. Past the checks, `tcp_v4/6_get_syncookie()`:
 * `tcp_get_syncookie_mss()` sends a cookie only when the sysctl is 2 or
 * the SYN queue is full, and not when the accept queue is; the listener
 * has no `TCP_MAXSEG` (`user_mss` 0), so the MSS and cookie are the raw
 * helper's; `tcp_synq_overflow()` then stamps the listener.
 */
export function tcpGenSyncookie(
  sk: SyncookieSock,
  iph: Uint8Array,
  th: Uint8Array,
  ns: number,
): bigint {
  if (th.length < TCPHDR_LEN || th.length !== (th[12] >> 4) * 4) {
    return BigInt(-EINVAL);
  }
  if (!isTcpListener(sk)) return BigInt(-EINVAL);
  const listener = listenerOf(sk);
  if (!listener.sysctlSyncookies) return BigInt(-ENOENT);
  const flags = th[13];
  if (!(flags & TH_SYN) || flags & (TH_ACK | TH_FIN | TH_RST)) {
    return BigInt(-EINVAL);
  }
  if (iph.length < IPHDR_LEN) return BigInt(-EINVAL);
  const family = familyOf(sk, iph);
  if (family !== 0 && family !== 1) return BigInt(family);
  const wantsCookie = listener.sysctlSyncookies === 2 ||
    listener.reqskQueueFull;
  if (!wantsCookie || listener.acceptqFull) return BigInt(-ENOENT);
  listener.noRecentOverflow = false;
  return rawGenSyncookie(family, iph, th, ns);
}

/** What `bpf_sk_assign()` reads and changes of its socket. */
export interface SkAssignSock {
  /** `sock_net(sk)` (an identity). */
  readonly netns: number;
  /** `sk_fullsock(sk)`. */
  readonly fullsock: boolean;
  /** `sk->sk_reuseport`. */
  readonly reuseport: boolean;
  /** `sk_is_refcounted()`: not a full socket with `SOCK_RCU_FREE`. */
  readonly refcounted: boolean;
  /** `sk_refcnt`. */
  refcnt: number;
}

/** What `bpf_sk_assign()` reads and changes of its skb. */
export interface SkAssignSkb {
  /** `skb_at_tc_ingress()`: `skb->tc_at_ingress`. */
  readonly atTcIngress: boolean;
  /** The netns of `skb->dev` (an identity). */
  readonly netns: number;
  /** `skb->sk`. */
  sk: SkAssignSock | undefined;
  /** `skb->destructor`: none, or `sock_pfree` once a socket was assigned. */
  destructor: "none" | "sock_pfree";
}

/**
 * Mirrors `bpf_sk_assign(skb, sk, flags)`: -EINVAL for any flag,
 * -EOPNOTSUPP off tc ingress, -ENETUNREACH across netns, -ESOCKTNOSUPPORT
 * for a reuseport socket, -ENOENT for a dying one; else it takes a
 * reference, orphans the skb (`skb_orphan()`: the old destructor runs, so
 * a socket an earlier call assigned is put back) and makes `sk` its
 * socket, to be put by `sock_pfree`; 0.
 */
export function skAssign(
  skb: SkAssignSkb,
  sk: SkAssignSock,
  flags: bigint,
): number {
  if (flags !== 0n) return -EINVAL;
  if (!skb.atTcIngress) return -EOPNOTSUPP;
  if (skb.netns !== sk.netns) return -ENETUNREACH;
  if (sk.fullsock && sk.reuseport) return -ESOCKTNOSUPPORT;
  if (sk.refcounted) {
    if (sk.refcnt === 0) return -ENOENT; // refcount_inc_not_zero()
    sk.refcnt++;
  }
  const old = skb.sk;
  if (skb.destructor === "sock_pfree" && old?.refcounted) old.refcnt--;
  skb.sk = sk;
  skb.destructor = "sock_pfree";
  return 0;
}

/**
 * The three helpers on an skb carrying `sock`, the test run's dummy
 * socket: not at tc ingress, in the socket's own netns; the socket full,
 * without `SO_REUSEPORT` or `SOCK_RCU_FREE`, held once by the test run,
 * no TCP listener. A socket pointer that is not `sock` stops the program
 * with an ExecError (no other socket exists in a test run).
 */
export function sockTcpHelpers(sock: TestRunSock): [number, HelperFn][] {
  const view = sockView(sock);
  // bpf_prog_test_run_skb() sets skb->sk without a destructor
  const skb: SkAssignSkb = {
    atTcIngress: false,
    netns: 0,
    sk: view,
    destructor: "none",
  };
  const checked = (vm: CallContext, argNo: number) => {
    sockArg(sock, vm, argNo);
    return view;
  };
  return [
    ...syncookieHelpers((vm) => checked(vm, 1)),
    [
      SOCK_TCP_HELPER.sk_assign,
      (vm) => skAssign(skb, checked(vm, 2), vm.arg(3)),
    ],
  ];
}

/** What the socket helpers see of a simulated socket. */
function sockView(sock: TestRunSock): SkAssignSock & SyncookieSock {
  return {
    netns: 0,
    fullsock: sock.fullsock,
    reuseport: false,
    refcounted: true,
    refcnt: 1,
    protocol: sock.protocol,
    state: sock.state,
    family: sock.family,
    ipv6Only: false,
  };
}

/**
 * `bpf_tcp_check_syncookie()` and `bpf_tcp_gen_syncookie()` on the socket
 * `sockOf` finds for the call: `iph` (arg 2, `iph_len` bytes) and `th`
 * (arg 4, `th_len` bytes).
 */
function syncookieHelpers(
  sockOf: (vm: CallContext) => SkAssignSock & SyncookieSock,
): [number, HelperFn][] {
  const headers = (vm: CallContext) => ({
    iph: vm.mem.readBytes(vm.arg(2), vm.argLo(3) >>> 0),
    th: vm.mem.readBytes(vm.arg(4), vm.argLo(5) >>> 0),
  });
  return [
    [SOCK_TCP_HELPER.tcp_check_syncookie, (vm) => {
      const sk = sockOf(vm), { iph, th } = headers(vm);
      return tcpCheckSyncookie(sk, iph, th, vm.nowNs());
    }],
    [SOCK_TCP_HELPER.tcp_gen_syncookie, (vm) => {
      const sk = sockOf(vm), { iph, th } = headers(vm);
      return tcpGenSyncookie(sk, iph, th, vm.nowNs());
    }],
  ];
}

/**
 * The SYN cookie helpers for any program (an XDP one: its socket comes
 * from a lookup), on whichever simulated socket the pointer names.
 */
export function anySockSyncookieHelpers(): [number, HelperFn][] {
  return syncookieHelpers((vm) => sockView(registeredSockArg(vm, 1)));
}
