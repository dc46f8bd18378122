/**
 * The helpers that take a socket pointer (net/core/filter.c), run on the
 * only socket a test run has: the dummy `skb->sk` ({@link TestRunSock}),
 * and `__sock_gen_cookie()` for `bpf_get_socket_cookie()`. Each helper
 * tests what the kernel's tests: for the dummy socket (full, `TCP_CLOSE`,
 * protocol 0, `bpf_dummy_proto`) `bpf_sk_fullsock()` gives it back and
 * every other cast gives NULL.
 * @module
 */
import type { AddressSpace } from "../../exec/memory.ts";
import { ExecError } from "../../exec/fault.ts";
import type { CallContext, HelperFn } from "../../exec/state.ts";
import { SIM_ROOT_CGROUP_ID } from "../generic_helpers_task.ts";
import type { StateOwner } from "../helpers.ts";
import {
  AF,
  registeredSockAt,
  TCP_STATE,
  type TestRunSock,
} from "./packet_sock.ts";

/** Helper ids of the socket-pointer helpers. */
export const SOCK_HELPER = {
  sk_fullsock: 95,
  tcp_sock: 96,
  get_listener_sock: 98,
  sk_cgroup_id: 128,
  sk_ancestor_cgroup_id: 129,
  skc_to_tcp6_sock: 136,
  skc_to_tcp_sock: 137,
  skc_to_tcp_timewait_sock: 138,
  skc_to_tcp_request_sock: 139,
  skc_to_udp6_sock: 140,
  skc_to_unix_sock: 178,
  skc_to_mptcp_sock: 196,
} as const;

/** `IPPROTO_TCP`, `IPPROTO_UDP`, `SOCK_DGRAM`. */
const IPPROTO_TCP = 6, IPPROTO_UDP = 17, SOCK_DGRAM = 2;
/** `COOKIE_LOCAL_BATCH`: cookies a CPU takes from the global counter at once. */
const COOKIE_LOCAL_BATCH = 4096n;

/** `struct gen_cookie` (include/linux/cookie.h): the global and per-CPU counters. */
interface GenCookie {
  forwardLast: bigint;
  readonly local: Map<number, bigint>;
}

/** The socket cookie generator of each simulated host (one per address space). */
const sockCookies = new WeakMap<AddressSpace, GenCookie>();

/**
 * Mirrors `gen_cookie_next()`: a CPU hands out cookies from its own batch
 * of {@link COOKIE_LOCAL_BATCH}, taking the next batch from the global
 * counter when it runs out — so a fresh host's first socket cookie is 1.
 */
function genCookieNext(space: AddressSpace, cpu: number): bigint {
  let gen = sockCookies.get(space);
  if (gen === undefined) {
    gen = { forwardLast: 0n, local: new Map() };
    sockCookies.set(space, gen);
  }
  let last = gen.local.get(cpu) ?? 0n;
  if (last % COOKIE_LOCAL_BATCH === 0n) {
    gen.forwardLast += COOKIE_LOCAL_BATCH;
    last = gen.forwardLast - COOKIE_LOCAL_BATCH;
  }
  last += 1n;
  gen.local.set(cpu, last);
  return last;
}

/** The id of the simulated CPU a helper runs on (0 when the state has none). */
function cpuOf(vm: CallContext): number {
  return (vm.owner as Partial<StateOwner> | undefined)?.cpu?.id ?? 0;
}

/**
 * Mirrors `__sock_gen_cookie()`: the socket keeps the first cookie it is
 * given. The value depends on every socket the host asked a cookie for
 * before (the real host's are not this one's).
 */
export function sockGenCookie(
  sock: TestRunSock,
  space: AddressSpace,
  cpu: number,
): bigint {
  if (sock.cookie === 0n) sock.cookie = genCookieNext(space, cpu);
  return sock.cookie;
}

/** `bpf_get_socket_cookie(skb)`: `skb->sk`'s cookie (a test skb always has one). */
export function socketCookieHelper(sock: TestRunSock): HelperFn {
  return (vm) => sockGenCookie(sock, vm.mem, cpuOf(vm));
}

/**
 * The socket-pointer helpers of an skb carrying `sock`: 95, 96, 98, 128,
 * 129 and the seven `bpf_skc_to_*()` casts. A pointer that is not `sock`
 * cannot come from a test run (socket lookups find nothing): it stops the
 * program with an ExecError.
 */
export function sockHelpers(sock: TestRunSock): [number, HelperFn][] {
  return sockPtrHelpers((vm, argNo) => sockArg(sock, vm, argNo));
}

/**
 * The same helpers for any program, on whichever simulated socket the
 * pointer names (`registeredSockAt`): a program of a type that cannot
 * hold a socket (XDP, whose lookups find none; syscall programs) only
 * reaches them unverified, and a pointer that is no socket stops it.
 */
export function anySockHelpers(): [number, HelperFn][] {
  return sockPtrHelpers(registeredSockArg);
}

/** The socket argument `argNo` names, among the simulated sockets, or an ExecError. */
export function registeredSockArg(vm: CallContext, argNo: number): TestRunSock {
  const address = vm.arg(argNo);
  const sk = registeredSockAt(vm.mem, address);
  if (sk === undefined) {
    throw new ExecError(
      vm.insnIndex,
      `socket pointer 0x${address.toString(16)} names no simulated socket`,
    );
  }
  return sk;
}

/** The socket-pointer helpers over `resolve` (see {@link sockHelpers}). */
function sockPtrHelpers(
  resolve: (vm: CallContext, argNo: number) => TestRunSock,
): [number, HelperFn][] {
  const arg = (vm: CallContext): TestRunSock => resolve(vm, 1);
  /** A cast: the socket when `test` holds, else NULL. */
  const cast = (test: (sk: TestRunSock) => boolean): HelperFn => (vm) => {
    const sk = arg(vm);
    return test(sk) ? sk.address : 0;
  };
  const isTcp = (sk: TestRunSock) => sk.fullsock && sk.protocol === IPPROTO_TCP;
  return [
    [SOCK_HELPER.sk_fullsock, cast((sk) => sk.fullsock)],
    [SOCK_HELPER.tcp_sock, cast(isTcp)],
    // sk_to_full_sk() then a listener with SOCK_RCU_FREE
    [
      SOCK_HELPER.get_listener_sock,
      cast((sk) => sk.state === TCP_STATE.LISTEN),
    ],
    [SOCK_HELPER.skc_to_tcp_sock, cast(isTcp)],
    [
      SOCK_HELPER.skc_to_tcp6_sock,
      cast((sk) => isTcp(sk) && sk.family === AF.INET6),
    ],
    // sk->sk_prot == &tcp_prot (or tcpv6_prot) and the state: never bpf_dummy_proto
    [
      SOCK_HELPER.skc_to_tcp_timewait_sock,
      cast((sk) => sk.prot === "tcp" && sk.state === TCP_STATE.TIME_WAIT),
    ],
    [
      SOCK_HELPER.skc_to_tcp_request_sock,
      cast((sk) => sk.prot === "tcp" && sk.state === TCP_STATE.NEW_SYN_RECV),
    ],
    [
      SOCK_HELPER.skc_to_udp6_sock,
      cast((sk) =>
        sk.fullsock && sk.protocol === IPPROTO_UDP &&
        sk.type === SOCK_DGRAM && sk.family === AF.INET6
      ),
    ],
    [
      SOCK_HELPER.skc_to_unix_sock,
      cast((sk) => sk.fullsock && sk.family === AF.UNIX),
    ],
    // bpf_mptcp_sock_from_subflow(): a TCP subflow with sk_is_mptcp()
    [SOCK_HELPER.skc_to_mptcp_sock, cast((sk) => isTcp(sk) && sk.isMptcp)],
    // __bpf_sk_cgroup_id(): sk_to_full_sk(), then the cgroup sk_alloc() gave
    // it (the creating task's: the simulated host runs everything in the root)
    [
      SOCK_HELPER.sk_cgroup_id,
      (vm) => arg(vm).fullsock ? SIM_ROOT_CGROUP_ID : 0,
    ],
    // cgroup_ancestor(cgrp, (int)level): only the root, at level 0
    [
      SOCK_HELPER.sk_ancestor_cgroup_id,
      (vm) => arg(vm).fullsock && vm.argLo(2) === 0 ? SIM_ROOT_CGROUP_ID : 0,
    ],
  ];
}

/**
 * `sock`, when argument `argNo` of the call points at it; any other socket
 * pointer stops the program (the test run's socket is the only one).
 */
export function sockArg(
  sock: TestRunSock,
  vm: CallContext,
  argNo: number,
): TestRunSock {
  const address = vm.arg(argNo);
  if (!sock.is(address)) {
    throw new ExecError(
      vm.insnIndex,
      `socket pointer 0x${
        address.toString(16)
      } is not the test run's socket, the only one bpfsim models`,
    );
  }
  return sock;
}
