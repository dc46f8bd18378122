/**
 * `SO_REUSEPORT` groups of the simulated host (net/core/sock_reuseport.c):
 * sockets bound to one address and port share a `struct sock_reuseport`
 * (`sk->sk_reuseport_cb`) with a `reuseport_id` of its own, the listening
 * (or bound, for UDP) sockets in `socks[0 … num_socks)` and the ones a
 * migration-capable TCP listener left behind on close in a "closed"
 * section. The receive path picks one socket of the group per packet
 * (`reuseport_select_sock()`): an sk_reuseport program's choice, or by the
 * flow hash (`reuseport_select_sock_by_hash()`).
 *
 * The host has no ida: a test names each group's `reuseport_id` (two
 * groups given the same id are, to `bpf_sk_select_reuseport()`, one
 * group — as two groups the kernel's ida gave one id would be).
 * @module
 */
import type { AddressSpace } from "../../../exec/memory.ts";
import { AF, TestRunSock } from "../../net/packet_sock.ts";
import { sockGenCookie } from "../../net/packet_sock_helpers.ts";
import type { SockmapSocket } from "../../maps/sockmap.ts";
import type {
  ReuseportArraySlot,
  ReuseportArraySocket,
} from "../../maps/reuseport_array.ts";

/** `IPPROTO_TCP`, `IPPROTO_UDP`. */
export const IPPROTO = { TCP: 6, UDP: 17 } as const;
/** `SOCK_STREAM`, `SOCK_DGRAM`. */
const SOCK_STREAM = 1, SOCK_DGRAM = 2;
/** `TCP_ESTABLISHED`, `TCP_CLOSE`, `TCP_LISTEN`. */
const TCP_ESTABLISHED = 1, TCP_CLOSE = 7, TCP_LISTEN = 10;

/** What a test says of a socket; the rest is what such a socket has. */
export interface ReuseportSockInit {
  /** `IPPROTO_TCP` (default) or `IPPROTO_UDP`: gives `sk_type` too. */
  readonly protocol?: number;
  /** `AF_INET` (default) or `AF_INET6`. */
  readonly family?: number;
  /** `skc_num`, the bound port (host order; default 0). */
  readonly localPort?: number;
  /** `skc_rcv_saddr` (4 bytes; default 0.0.0.0, `INADDR_ANY`). */
  readonly localIp4?: Uint8Array;
  /**
   * `sk_state` (default: `TCP_LISTEN` for TCP, `TCP_CLOSE` for UDP — a
   * bound, unconnected UDP socket; a connected one is `TCP_ESTABLISHED`).
   */
  readonly state?: number;
}

/**
 * A TCP or UDP socket that may join a reuseport group, read by programs
 * as a `struct bpf_sock` (packet_sock.ts) and storable in a sockmap
 * ({@link SockmapSocket}) or a reuseport array.
 */
export class ReuseportSock extends TestRunSock
  implements SockmapSocket, ReuseportArraySocket {
  /** See {@link TestRunSock.family}. */
  override readonly family: number;
  /** See {@link TestRunSock.type}. */
  override readonly type: number;
  /** See {@link TestRunSock.protocol}. */
  override readonly protocol: number;
  /** See {@link TestRunSock.state}: a UDP socket's changes on `connect()`. */
  override state: number;
  /** See {@link TestRunSock.num}. */
  override readonly num: number;
  /** See {@link TestRunSock.prot}: TCP's, or no TCP one for UDP. */
  override readonly prot: "bpf_dummy" | "tcp";
  /** `sk_is_tcp()`. */
  readonly isTcp: boolean;
  /** `sk->sk_reuseport_cb`: the group, while the socket is in one. */
  reuseportCb: ReuseportGroup | undefined = undefined;
  /** `sk->sk_user_data`: the reuseport array slot holding the socket. */
  userData: ReuseportArraySlot | undefined = undefined;
  private readonly home: AddressSpace;

  /** The socket `init` describes, in `space`. */
  constructor(space: AddressSpace, init: ReuseportSockInit = {}) {
    super(space, 0, new Uint8Array());
    this.home = space;
    this.protocol = init.protocol ?? IPPROTO.TCP;
    this.isTcp = this.protocol === IPPROTO.TCP;
    this.type = this.isTcp ? SOCK_STREAM : SOCK_DGRAM;
    this.prot = this.isTcp ? "tcp" : "bpf_dummy";
    this.family = init.family ?? AF.INET;
    this.num = (init.localPort ?? 0) & 0xffff;
    this.state = init.state ?? (this.isTcp ? TCP_LISTEN : TCP_CLOSE);
    if (init.localIp4) this.rcvSaddr.set(init.localIp4);
  }

  /**
   * `sk_hashed()` and `SOCK_RCU_FREE`: a socket in a reuseport group is
   * in the lookup tables (a TCP listener, a bound UDP socket), and
   * those are the sockets `inet_hash()` / `udp_lib_get_port()` make
   * RCU-freed.
   */
  get hashed(): boolean {
    return this.reuseportCb !== undefined &&
      this.reuseportCb.sockets.includes(this);
  }

  /** See {@link hashed}. */
  get rcuFree(): boolean {
    return this.hashed;
  }

  /** `__sock_gen_cookie()` on `cpu`: the socket keeps the first cookie given. */
  genCookie(cpu: number): bigint {
    return sockGenCookie(this, this.home, cpu);
  }
}

/** Options of a {@link ReuseportGroup}. */
export interface ReuseportGroupInit {
  /** `reuse->reuseport_id` (the kernel's ida hands these out). */
  readonly reuseportId: number;
  /** `reuse->bind_inany`: the group is bound to `INADDR_ANY` / `in6addr_any`. */
  readonly bindInany?: boolean;
}

/** A `struct sock_reuseport`: see the module comment. */
export class ReuseportGroup {
  /** `reuseport_id`. */
  readonly reuseportId: number;
  /** `bind_inany`. */
  readonly bindInany: boolean;
  /** `socks[0 … num_socks)`: the listening (bound) section, in order. */
  readonly sockets: ReuseportSock[] = [];
  /** The closed section: listeners closed while migration was on. */
  readonly closed: ReuseportSock[] = [];

  /** An empty group. */
  constructor(init: ReuseportGroupInit) {
    this.reuseportId = init.reuseportId;
    this.bindInany = init.bindInany ?? false;
  }

  /**
   * `reuseport_alloc()` / `reuseport_add_sock()`: `sk` joins at the end
   * of the listening section. Throws for a socket already in a group
   * (the kernel's "socket already in reuseport group" warning).
   */
  add(sk: ReuseportSock): this {
    if (sk.reuseportCb !== undefined) {
      throw new Error("socket already in a reuseport group");
    }
    this.sockets.push(sk);
    sk.reuseportCb = this;
    return this;
  }

  /**
   * Mirrors `reuseport_detach_sock()` (close, unhash): the socket leaves
   * its reuseport array slot (`bpf_sk_reuseport_detach()`) and the group;
   * the last listening socket takes its place (`__reuseport_detach_sock()`).
   */
  detach(sk: ReuseportSock): void {
    if (sk.reuseportCb !== this) return;
    bpfSkReuseportDetach(sk);
    sk.reuseportCb = undefined;
    const c = this.closed.indexOf(sk);
    if (c >= 0) {
      this.closed.splice(c, 1);
      return;
    }
    const i = this.sockets.indexOf(sk);
    if (i < 0) return;
    const last = this.sockets.pop()!;
    if (i < this.sockets.length) this.sockets[i] = last;
  }

  /**
   * Mirrors `reuseport_stop_listen_sock()` for a migration-capable TCP
   * listener: it leaves its array slot and moves to the closed section,
   * keeping `sk_reuseport_cb` (its requests may still migrate).
   */
  stopListen(sk: ReuseportSock): void {
    const i = this.sockets.indexOf(sk);
    if (i < 0) return;
    bpfSkReuseportDetach(sk);
    const last = this.sockets.pop()!;
    if (i < this.sockets.length) this.sockets[i] = last;
    this.closed.push(sk);
    sk.state = TCP_CLOSE;
  }
}

/** `bpf_sk_reuseport_detach()`: the socket's reuseport array slot empties. */
export function bpfSkReuseportDetach(sk: ReuseportSock): void {
  const slot = sk.userData;
  sk.userData = undefined;
  slot?.clear();
}

/** `reciprocal_scale(val, ep_ro)`: `val` scaled into `[0, ep_ro)`. */
export function reciprocalScale(val: number, epRo: number): number {
  return Number((BigInt(val >>> 0) * BigInt(epRo)) >> 32n);
}

/**
 * Mirrors `reuseport_select_sock_by_hash()`: the socket
 * `reciprocal_scale(hash, n)` of the first `n` listening sockets, or the
 * next one (wrapping) that is not `TCP_ESTABLISHED` (a connected UDP
 * socket); undefined when every one is.
 */
export function selectSockByHash(
  group: ReuseportGroup,
  hash: number,
  n: number = group.sockets.length,
): ReuseportSock | undefined {
  if (n === 0) return undefined;
  const j = reciprocalScale(hash, n);
  let i = j;
  while (group.sockets[i].state === TCP_ESTABLISHED) {
    i = (i + 1) % n;
    if (i === j) return undefined;
  }
  return group.sockets[i];
}
