/**
 * Binding a simulated socket to an address (net/ipv4/af_inet.c
 * `__inet_bind()`, net/ipv6/af_inet6.c `__inet6_bind()`) as far as
 * `bpf_bind()` reaches them: the address checks against the simulated
 * host, the port's owner table (`inet_csk_get_port()` with
 * `inet_csk_bind_conflict()`), and what a bind sets on the socket.
 *
 * The simulated host has one device, `lo` (ifindex 1), with 127.0.0.1/8
 * and ::1 and nothing else: 127.0.0.0/8 is local (127.255.255.255 is its
 * broadcast), 0.0.0.0/8 and 255.255.255.255 are broadcast, 224.0.0.0/4
 * multicast, every other IPv4 address a remote unicast; of IPv6 unicast
 * addresses only ::1 is local. `net.ipv4.ip_nonlocal_bind` and its IPv6
 * twin are 0 and `ip_unprivileged_port_start` is 1024, the defaults.
 *
 * Only TCP sockets ({@link SimTcpSock}) are modelled, and their ports are
 * chosen by the caller: a port-0 bind without `BIND_FORCE_ADDRESS_NO_PORT`
 * or `IP_BIND_ADDRESS_NO_PORT` would need an ephemeral port, which
 * `bpf_bind()` never asks for (it always passes the flag with port 0).
 * @module
 */
import { EACCES, EAFNOSUPPORT, EINVAL, ENODEV } from "../../../uapi/errno.ts";
import type { Kernel } from "../../kernel.ts";
import { AF } from "../../net/packet_sock.ts";
import {
  SimTcpSock,
  type SimTcpSockInit,
  TCP_STATES,
} from "../sock/sock_ops_sock.ts";
import type { AddressSpace } from "../../../exec/memory.ts";
import { EADDRINUSE, EADDRNOTAVAIL } from "../../../uapi/errno.ts";
export { EADDRINUSE, EADDRNOTAVAIL } from "../../../uapi/errno.ts";

/** `BIND_*` flags of `__inet_bind()` (include/net/inet_common.h). */
export const BIND = {
  FORCE_ADDRESS_NO_PORT: 1 << 0,
  WITH_LOCK: 1 << 1,
  FROM_BPF: 1 << 2,
  NO_CAP_NET_BIND_SERVICE: 1 << 3,
} as const;

/** `SOCK_BINDADDR_LOCK` / `SOCK_BINDPORT_LOCK` in `sk_userlocks`. */
export const SOCK_BINDADDR_LOCK = 4;
/** See {@link SOCK_BINDADDR_LOCK}. */
export const SOCK_BINDPORT_LOCK = 8;

/** `sizeof(struct sockaddr_in)`, `sizeof(struct sockaddr_in6)`, `SIN6_LEN_RFC2133`. */
export const SOCKADDR_LEN = { in: 16, in6: 28, in6Rfc2133: 24 } as const;

/** `net.ipv4.ip_unprivileged_port_start` (`inet_port_requires_bind_service()`). */
const IP_PROT_SOCK = 1024;
/** The simulated host's one device, `lo`. */
const LO_IFINDEX = 1;

/** `RTN_*` route types `inet_addr_type_table()` answers. */
export const RTN = {
  UNICAST: 1,
  LOCAL: 2,
  BROADCAST: 3,
  MULTICAST: 5,
} as const;

/** Mirrors `inet_addr_type_table()` on the simulated host's local table. */
export function inetAddrType(addr: Uint8Array): number {
  const [a, b, c, d] = addr;
  if (a === 0 || (a === 255 && b === 255 && c === 255 && d === 255)) {
    return RTN.BROADCAST; // ipv4_is_zeronet() / ipv4_is_lbcast()
  }
  if ((a & 0xf0) === 0xe0) return RTN.MULTICAST;
  if (a === 127) {
    // "local 127.0.0.0/8 dev lo" and "broadcast 127.255.255.255 dev lo"
    return b === 255 && c === 255 && d === 255 ? RTN.BROADCAST : RTN.LOCAL;
  }
  return RTN.UNICAST;
}

/** `IPV6_ADDR_*` type bits (include/net/ipv6.h). */
export const IPV6_ADDR = {
  ANY: 0x0000,
  UNICAST: 0x0001,
  MULTICAST: 0x0002,
  LOOPBACK: 0x0010,
  LINKLOCAL: 0x0020,
  SITELOCAL: 0x0040,
  COMPATV4: 0x0080,
  MAPPED: 0x1000,
} as const;

/** Mirrors `ipv6_addr_type()` (`__ipv6_addr_type()` & 0xffff). */
export function ipv6AddrType(addr: Uint8Array): number {
  const T = IPV6_ADDR;
  const top3 = addr[0] & 0xe0;
  if (top3 !== 0 && top3 !== 0xe0) return T.UNICAST; // global unicast
  if (addr[0] === 0xff) {
    // multicast: the scope (low nibble of byte 1) as a type bit
    const scope = addr[1] & 0x0f;
    const scopeType = scope === 1
      ? T.LOOPBACK
      : scope === 2
      ? T.LINKLOCAL
      : scope === 5
      ? T.SITELOCAL
      : 0;
    return T.MULTICAST | scopeType;
  }
  if (addr[0] === 0xfe && (addr[1] & 0xc0) === 0x80) {
    return T.LINKLOCAL | T.UNICAST;
  }
  if (addr[0] === 0xfe && (addr[1] & 0xc0) === 0xc0) {
    return T.SITELOCAL | T.UNICAST;
  }
  if ((addr[0] & 0xfe) === 0xfc) return T.UNICAST; // unique local
  if (addr.subarray(0, 8).every((b) => b === 0)) {
    if (addr.subarray(8, 12).every((b) => b === 0)) {
      if (addr.subarray(12, 16).every((b) => b === 0)) return T.ANY;
      if (
        addr[12] === 0 && addr[13] === 0 && addr[14] === 0 && addr[15] === 1
      ) {
        return T.LOOPBACK | T.UNICAST;
      }
      return T.COMPATV4 | T.UNICAST;
    }
    if (
      addr[8] === 0 && addr[9] === 0 && addr[10] === 0xff && addr[11] === 0xff
    ) {
      return T.MAPPED;
    }
  }
  return T.UNICAST;
}

/** `__ipv6_addr_needs_scope_id()`: link-local (and node/link-scope multicast). */
function needsScopeId(type: number): boolean {
  const T = IPV6_ADDR;
  return (type & T.LINKLOCAL) !== 0 ||
    ((type & T.MULTICAST) !== 0 && (type & (T.LOOPBACK | T.LINKLOCAL)) !== 0);
}

/** Whether `addr` is ::1, the host's one IPv6 address (`ipv6_chk_addr()`). */
function isLocal6(addr: Uint8Array): boolean {
  return addr.subarray(0, 15).every((b) => b === 0) && addr[15] === 1;
}

/** Mirrors `inet_addr_valid_or_nonlocal()`. */
function validOrNonlocal(sk: SimTcpSock, addr: Uint8Array, type: number) {
  return sk.freebind || sk.transparent ||
    addr.every((b) => b === 0) || type === RTN.LOCAL ||
    type === RTN.MULTICAST || type === RTN.BROADCAST;
}

/**
 * A fresh `socket(family, SOCK_STREAM, 0)` in `space`: `TCP_CLOSE`, no
 * address, no port, with `init`'s fields over that.
 */
export function unboundSock(
  space: AddressSpace,
  family: number,
  init: SimTcpSockInit = {},
): SimTcpSock {
  const sk = new SimTcpSock(space, { family, ...init });
  if (init.rcvSaddr === undefined) sk.rcvSaddr.fill(0);
  if (init.daddr === undefined) sk.daddr.fill(0);
  return sk;
}

/** The task that binds: whether it has `CAP_NET_BIND_SERVICE`. */
export interface BindTask {
  /** Default true: the simulated task is root, as on the oracle's host. */
  readonly capNetBindService?: boolean;
}

/**
 * The host's bound TCP sockets (`inet_hashinfo.bhash`): which socket holds
 * which port, for `inet_csk_get_port()`'s conflict check.
 */
export class InetBindTable {
  /** Sockets holding a port (`inet_num` set), every family. */
  readonly owners: Set<SimTcpSock> = new Set();

  /** Mirrors `inet_bind_hash()`: `sk` (its `num` set) holds its port. */
  hash(sk: SimTcpSock): void {
    this.owners.add(sk);
  }

  /** Mirrors `inet_put_port()`: `sk` gives its port up (close, failed connect). */
  unhash(sk: SimTcpSock): void {
    this.owners.delete(sk);
  }

  /**
   * Mirrors `inet_csk_get_port()` for a port the caller names: 0 and the
   * port taken, or -EADDRINUSE when a holder of it conflicts.
   */
  getPort(sk: SimTcpSock, snum: number): number {
    for (const sk2 of this.owners) {
      if (sk2 === sk || sk2.num !== snum) continue;
      if (bindConflict(sk, sk2) && rcvSaddrEqual(sk, sk2)) return -EADDRINUSE;
    }
    sk.num = snum;
    this.hash(sk);
    return 0;
  }
}

const TABLES = new WeakMap<Kernel, InetBindTable>();

/** The bind table of `kernel`'s one network namespace (made on first use). */
export function inetBindTable(kernel: Kernel): InetBindTable {
  let table = TABLES.get(kernel);
  if (table === undefined) TABLES.set(kernel, table = new InetBindTable());
  return table;
}

/**
 * Mirrors `inet_bind_conflict()` as `inet_csk_get_port()` calls it (relax,
 * reuseport_ok): the devices overlap and neither SO_REUSEADDR (both set,
 * the holder not listening) nor SO_REUSEPORT (both set, same owner uid or
 * the holder in TIME_WAIT) lets them share.
 */
function bindConflict(sk: SimTcpSock, sk2: SimTcpSock): boolean {
  if (sk.boundDevIf && sk2.boundDevIf && sk.boundDevIf !== sk2.boundDevIf) {
    return false;
  }
  if (sk.reuse && sk2.reuse && sk2.state !== TCP_STATES.LISTEN) return false;
  const reuseport = sk.reuseport && sk2.reuseport &&
    (sk2.state === TCP_STATES.TIME_WAIT || sk.uid === sk2.uid);
  return !reuseport;
}

const zero = (b: Uint8Array) => b.every((x) => x === 0);
const sameBytes = (a: Uint8Array, b: Uint8Array) =>
  a.length === b.length && a.every((x, i) => x === b[i]);

/** Mirrors `inet_rcv_saddr_equal(sk, sk2, true)` (wildcards match). */
function rcvSaddrEqual(sk: SimTcpSock, sk2: SimTcpSock): boolean {
  const v4Equal = () =>
    sameBytes(sk.rcvSaddr, sk2.rcvSaddr) || zero(sk.rcvSaddr) ||
    zero(sk2.rcvSaddr);
  const only2 = sk2.family === AF.INET6 && sk2.ipv6only;
  if (sk.family !== AF.INET6) return !only2 && v4Equal(); // ipv4_rcv_saddr_equal()
  // ipv6_rcv_saddr_equal(): a v4 holder has no IPv6 address (mapped)
  const T = IPV6_ADDR;
  const type1 = ipv6AddrType(sk.v6RcvSaddr);
  const six2 = sk2.family === AF.INET6 ? sk2.v6RcvSaddr : undefined;
  const type2 = six2 === undefined ? T.MAPPED : ipv6AddrType(six2);
  if (type1 === T.MAPPED && type2 === T.MAPPED) return !only2 && v4Equal();
  if (type1 === T.ANY && type2 === T.ANY) return true;
  if (type2 === T.ANY && !(only2 && type1 === T.MAPPED)) return true;
  if (type1 === T.ANY && !(sk.ipv6only && type2 === T.MAPPED)) return true;
  return six2 !== undefined && sameBytes(sk.v6RcvSaddr, six2);
}

/** `ntohs()` of the `__be16` at `off` of `sa`. */
function portAt(sa: Uint8Array, off: number): number {
  return (sa[off] << 8) | sa[off + 1];
}

/** The errno for a privileged port without the capability, else 0. */
function portPermission(snum: number, flags: number, task: BindTask): number {
  const capable = task.capNetBindService ?? true;
  return !(flags & BIND.NO_CAP_NET_BIND_SERVICE) && snum !== 0 &&
      snum < IP_PROT_SOCK && !capable
    ? -EACCES
    : 0;
}

/** The caller must take the port (`snum`, or none asked for). */
function wantsPort(sk: SimTcpSock, snum: number, flags: number): boolean {
  if (snum !== 0) return true;
  if (sk.bindAddressNoPort || (flags & BIND.FORCE_ADDRESS_NO_PORT)) {
    return false;
  }
  // an ephemeral port: inet_csk_find_open_port(), which BPF never reaches
  throw new RangeError(
    "a port-0 bind without BIND_FORCE_ADDRESS_NO_PORT needs an ephemeral port: not modelled",
  );
}

/**
 * Mirrors `__inet_bind()`: binds `sk` to the `sockaddr_in` in `sa` (the
 * caller checked that all 16 bytes are there) with `flags`. Returns
 * 0 or a negative errno. `BIND_FROM_BPF` skips the post-bind hook, which
 * bpfsim does not run anyway.
 */
export function inetBind(
  table: InetBindTable,
  sk: SimTcpSock,
  sa: Uint8Array,
  flags: number,
  task: BindTask = {},
): number {
  const family = sa[0] | (sa[1] << 8);
  const addr = sa.slice(4, 8);
  if (family !== AF.INET && (family !== AF.UNSPEC || !zero(addr))) {
    return -EAFNOSUPPORT; // AF_UNSPEC passes only with INADDR_ANY
  }
  const type = inetAddrType(addr);
  if (!validOrNonlocal(sk, addr, type)) return -EADDRNOTAVAIL;
  const snum = portAt(sa, 2);
  const denied = portPermission(snum, flags, task);
  if (denied) return denied;
  // an active or already bound socket
  if (sk.state !== TCP_STATES.CLOSE || sk.num !== 0) return -EINVAL;
  sk.rcvSaddr.set(addr);
  sk.saddr.set(
    type === RTN.MULTICAST || type === RTN.BROADCAST ? [0, 0, 0, 0] : addr,
  );
  if (wantsPort(sk, snum, flags)) {
    const err = table.getPort(sk, snum);
    if (err) {
      sk.rcvSaddr.fill(0);
      sk.saddr.fill(0);
      return err;
    }
  }
  finishBind(sk, !zero(addr), snum);
  return 0;
}

/** The tail both binds share: user locks, and no peer any more. */
function finishBind(sk: SimTcpSock, addrLocked: boolean, snum: number): void {
  if (addrLocked) sk.userlocks |= SOCK_BINDADDR_LOCK;
  if (snum) sk.userlocks |= SOCK_BINDPORT_LOCK;
  sk.dport = 0; // inet_sport follows inet_num; inet_daddr and dport are reset
  sk.daddr.fill(0);
}

/**
 * Mirrors `__inet6_bind()` (`ipv6_bpf_stub->inet6_bind`): binds the IPv6
 * socket `sk` to the `sockaddr_in6` in `sa` (`addrLen` ≥ 24 bytes; the
 * scope id counts only when all 28 are there). Returns 0 or a negative
 * errno. On an IPv4 socket the kernel would write through its missing
 * `ipv6_pinfo`: refused here with a RangeError.
 */
export function inet6Bind(
  table: InetBindTable,
  sk: SimTcpSock,
  sa: Uint8Array,
  addrLen: number,
  flags: number,
  task: BindTask = {},
): number {
  if (sk.family !== AF.INET6) {
    throw new RangeError(
      "__inet6_bind() on an IPv4 socket dereferences its missing ipv6_pinfo: not modelled",
    );
  }
  const T = IPV6_ADDR;
  if ((sa[0] | (sa[1] << 8)) !== AF.INET6) return -EAFNOSUPPORT;
  const addr = sa.slice(8, 24);
  const type = ipv6AddrType(addr);
  if ((type & T.MULTICAST) && sk.type === 1) return -EINVAL; // SOCK_STREAM
  const snum = portAt(sa, 2);
  const denied = portPermission(snum, flags, task);
  if (denied) return denied;
  if (sk.state !== TCP_STATES.CLOSE || sk.num !== 0) return -EINVAL;
  let v4addr = new Uint8Array(4);
  if (type === T.MAPPED) {
    if (sk.ipv6only) return -EINVAL; // a v4-mapped address on a v6-only socket
    if (sk.boundDevIf && sk.boundDevIf !== LO_IFINDEX) return -ENODEV;
    v4addr = addr.slice(12, 16);
    if (!validOrNonlocal(sk, v4addr, inetAddrType(v4addr))) {
      return -EADDRNOTAVAIL;
    }
  } else if (type !== T.ANY) {
    if (needsScopeId(type)) {
      const scopeId = addrLen >= SOCKADDR_LEN.in6
        ? new DataView(sa.buffer, sa.byteOffset).getUint32(24, true)
        : 0;
      if (scopeId) sk.boundDevIf = scopeId; // stays, even if the bind fails
      if (!sk.boundDevIf) return -EINVAL; // link-local needs an interface
    }
    if (sk.boundDevIf && sk.boundDevIf !== LO_IFINDEX) return -ENODEV;
    v4addr = Uint8Array.of(127, 0, 0, 6); // LOOPBACK4_IPV6: no v4 equivalent
    const nonlocal = sk.freebind || sk.transparent;
    if (!(type & T.MULTICAST) && !nonlocal && !isLocal6(addr)) {
      return -EADDRNOTAVAIL;
    }
  }
  sk.rcvSaddr.set(v4addr);
  sk.saddr.set(v4addr);
  sk.v6RcvSaddr.set(addr);
  if (!(type & T.MULTICAST)) sk.v6Saddr.set(addr);
  const savedIpv6only = sk.ipv6only;
  if (type !== T.ANY && type !== T.MAPPED) sk.ipv6only = true;
  if (wantsPort(sk, snum, flags)) {
    const err = table.getPort(sk, snum);
    if (err) {
      sk.ipv6only = savedIpv6only;
      // inet_reset_saddr()
      for (const b of [sk.rcvSaddr, sk.saddr, sk.v6RcvSaddr, sk.v6Saddr]) {
        b.fill(0);
      }
      return err;
    }
  }
  finishBind(sk, type !== T.ANY, snum);
  return 0;
}
