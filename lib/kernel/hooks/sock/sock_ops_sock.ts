/**
 * The simulated TCP socket a sock_ops program runs on: the `struct sock` /
 * `inet_sock` / `tcp_sock` state that `struct bpf_sock_ops` fields and the
 * socket-option helpers reach, with the defaults `tcp_init_sock()` and
 * `sock_init_data()` give, and the host's sysctls ({@link SIM_NET_SYSCTL}).
 *
 * The simulated kernel knows two congestion controls, `cubic` (the
 * default) and `reno`; its HZ is 250 and its sysctls are those of the
 * 6.18 host the oracle runs on (wmem_max/rmem_max 4 MiB, tcp_rmem[2]
 * 32 MiB), so that clamps match what that host computes.
 *
 * It is a {@link TestRunSock} of the TCP protocol: `bpf_sock_ops.sk`
 * reads it as a `struct bpf_sock` through packet_sock.ts's conversions,
 * and the socket-local storage, cookie and sockmap code that know test-run
 * sockets know it. It lives across callbacks (its `struct bpf_sock` stays
 * mapped, its sk storage kept) until {@link SimTcpSock.close}.
 * @module
 */
import type { AddressSpace } from "../../../exec/memory.ts";
import { bpfSkStorageFree } from "../../local_storage_helpers.ts";
import { AF, TestRunSock } from "../../net/packet_sock.ts";
import { sockGenCookie } from "../../net/packet_sock_helpers.ts";

/** `TCP_*` socket states (include/net/tcp_states.h). */
export const TCP_STATES = {
  ESTABLISHED: 1,
  SYN_SENT: 2,
  SYN_RECV: 3,
  FIN_WAIT1: 4,
  FIN_WAIT2: 5,
  TIME_WAIT: 6,
  CLOSE: 7,
  CLOSE_WAIT: 8,
  LAST_ACK: 9,
  LISTEN: 10,
  CLOSING: 11,
  NEW_SYN_RECV: 12,
} as const;

/** Kernel constants the options use: HZ and the simulated host's sysctls. */
export const SIM_NET_SYSCTL = {
  /** CONFIG_HZ of the oracle's kernel. */
  hz: 250,
  /** `net.core.wmem_max` / `rmem_max` of the oracle's host. */
  wmemMax: 4194304,
  rmemMax: 4194304,
  /** `net.ipv4.tcp_rmem[2]` / `tcp_wmem[1]` / `tcp_rmem[1]`. */
  tcpRmemMax: 33554432,
  tcpWmemDefault: 16384,
  tcpRmemDefault: 131072,
  /** `tcp_keepalive_time` / `_intvl` (s), `_probes`, `tcp_syn_retries`. */
  keepaliveTime: 7200,
  keepaliveIntvl: 75,
  keepaliveProbes: 9,
  synRetries: 6,
  /** `net.core.txrehash` (`SOCK_TXREHASH_ENABLED`). */
  txrehash: 1,
  /** `net.ipv6.auto_flowlabels` (1: opt-out, on unless the socket says no). */
  autoFlowlabels: 1,
} as const;

/** The congestion controls the simulated kernel has registered. */
export const SIM_CONGESTION_CONTROLS: readonly string[] = ["cubic", "reno"];

/** A saved (or in-flight) SYN: the bytes of each header, `struct saved_syn`. */
export interface SynHeaders {
  /** MAC header (may be empty: `TCP_SAVE_SYN` 1 does not keep it). */
  readonly mac: Uint8Array;
  /** IPv4/IPv6 header. */
  readonly network: Uint8Array;
  /** TCP header with its options. */
  readonly tcp: Uint8Array;
}

/** A pure ACK the socket sent: its `ack_seq` (the `rcv_nxt` it was sent with). */
export interface SentAck {
  /** `th->ack_seq` in host order. */
  readonly rcvNxt: number;
}

/** What a test describes of a socket; everything else takes its default. */
export type SimTcpSockInit = Partial<
  Omit<
    SimTcpSock,
    "address" | "release" | "close" | "fullsock" | "load" | "store" | "is"
  >
>;

/**
 * A TCP socket's state as far as sock_ops reaches. Fields are the kernel's
 * (names in camelCase); values in host order, addresses as network-order
 * bytes.
 */
export class SimTcpSock extends TestRunSock {
  /** `sk_family`: `AF_INET` or `AF_INET6`. */
  override family: number = AF.INET;
  /** `sk_type`: `SOCK_STREAM`. */
  override readonly type: number = 1;
  /** `sk_protocol`: `IPPROTO_TCP`. */
  override readonly protocol: number = 6;
  /** `sk_prot`: TCP's. */
  override readonly prot: "bpf_dummy" | "tcp" = "tcp";
  /** `skc_num`: the local port (host order). */
  override num = 0;
  /** `skc_dport`: the `__be16` as a little-endian u16 load reads it ({@link remotePort}). */
  override dport = 0;
  /** `sk_state` ({@link TCP_STATES}). */
  override state: number = TCP_STATES.CLOSE;
  /** `sk_mark`, `sk_priority`, `sk_bound_dev_if`. */
  override mark = 0;
  /** See {@link mark}. */
  override priority = 0;
  /** See {@link mark}. */
  override boundDevIf = 0;
  /** `sk_sndbuf` / `sk_rcvbuf` (`tcp_init_sock()`: tcp_wmem[1], tcp_rmem[1]). */
  sndbuf: number = SIM_NET_SYSCTL.tcpWmemDefault;
  /** See {@link sndbuf}. */
  rcvbuf: number = SIM_NET_SYSCTL.tcpRmemDefault;
  /** `sk_userlocks`: `SOCK_SNDBUF_LOCK` 1, `SOCK_RCVBUF_LOCK` 2. */
  userlocks = 0;
  /** `sk_reuse`, `sk_reuseport`, `SOCK_KEEPOPEN`. */
  reuse = 0;
  /** See {@link reuse}. */
  reuseport = 0;
  /** See {@link reuse}. */
  keepOpen = false;
  /** `sk_rcvlowat`. */
  rcvlowat = 1;
  /** `sk_socket` is set (a passive child has none until `accept()`). */
  hasSocket = true;
  /** `sk_max_pacing_rate` / `sk_pacing_rate` (unsigned long; ~0 is none). */
  maxPacingRate: bigint = 0xffffffffffffffffn;
  /** See {@link maxPacingRate}. */
  pacingRate: bigint = 0xffffffffffffffffn;
  /** `sk_txrehash`. */
  txrehash: number = SIM_NET_SYSCTL.txrehash;
  /** `sk_txhash` (`bpf_sock_ops.sk_txhash`, writable). */
  txhash = 0;
  /** `sk_bpf_cb_flags` (`SK_BPF_CB_FLAGS`). */
  skBpfCbFlags = 0;
  /** `inet->tos` / `np->tclass`, IPv6 `AUTOFLOWLABEL` (undefined: the sysctl's). */
  tos = 0;
  /** See {@link tos}. */
  tclass = 0;
  /** See {@link tos}. */
  autoflowlabel: boolean | undefined = undefined;
  /** `tcp_sock.bpf_sock_ops_cb_flags`. */
  bpfSockOpsCbFlags = 0;
  /** `snd_cwnd` (TCP_INIT_CWND), `snd_cwnd_clamp`, `snd_ssthresh`. */
  sndCwnd = 10;
  /** See {@link sndCwnd}. */
  sndCwndClamp = 0xffffffff;
  /** See {@link sndCwnd} (`TCP_INFINITE_SSTHRESH`). */
  sndSsthresh = 0x7fffffff;
  /** `srtt_us` (<< 3), `rtt_min` (minmax reset to ~0), `mss_cache` (TCP_MSS_DEFAULT). */
  srttUs = 0;
  /** See {@link srttUs}. */
  rttMin = 0xffffffff;
  /** See {@link srttUs}. */
  mssCache = 536;
  /** Sequence numbers and counters `bpf_sock_ops` exposes. */
  rcvNxt = 0;
  /** See {@link rcvNxt}. */
  sndNxt = 0;
  /** See {@link rcvNxt}. */
  sndUna = 0;
  /** See {@link rcvNxt}. */
  ecnFlags = 0;
  /** See {@link rcvNxt}. */
  rateDelivered = 0;
  /** See {@link rcvNxt}. */
  rateIntervalUs = 0;
  /** See {@link rcvNxt}. */
  packetsOut = 0;
  /** See {@link rcvNxt}. */
  retransOut = 0;
  /** See {@link rcvNxt}. */
  totalRetrans = 0;
  /** See {@link rcvNxt}. */
  segsIn = 0;
  /** See {@link rcvNxt}. */
  dataSegsIn = 0;
  /** See {@link rcvNxt}. */
  segsOut = 0;
  /** See {@link rcvNxt}. */
  dataSegsOut = 0;
  /** See {@link rcvNxt}. */
  lostOut = 0;
  /** See {@link rcvNxt}. */
  sackedOut = 0;
  /** `syn_data`: the SYN carried data (`TCP_BPF_IW` compares it). */
  synData = 0;
  /** `bytes_received` / `bytes_acked` (u64). */
  bytesReceived = 0n;
  /** See {@link bytesReceived}. */
  bytesAcked = 0n;
  /** TCP_NODELAY (`nonagle & TCP_NAGLE_OFF`), `rx_opt.user_mss`. */
  nodelay = false;
  /** See {@link nodelay}. */
  userMss = 0;
  /** Keepalive time / interval in seconds, probes, SYN retries (0: the sysctl's). */
  keepaliveTime = 0;
  /** See {@link keepaliveTime}. */
  keepaliveIntvl = 0;
  /** See {@link keepaliveTime}. */
  keepaliveProbes = 0;
  /** See {@link keepaliveTime}. */
  synRetries = 0;
  /** `window_clamp`, `thin_lto`, `icsk_user_timeout`, `notsent_lowat`, `save_syn`. */
  windowClamp = 0;
  /** See {@link windowClamp}. */
  thinLto = 0;
  /** See {@link windowClamp}. */
  userTimeout = 0;
  /** See {@link windowClamp}. */
  notsentLowat = 0;
  /** See {@link windowClamp}. */
  saveSyn = 0;
  /** `icsk_rto_max`, `icsk_rto_min`, `icsk_delack_max` in jiffies (120 s, 200 ms, 200 ms). */
  rtoMaxJiffies: number = 120 * SIM_NET_SYSCTL.hz;
  /** See {@link rtoMaxJiffies}. */
  rtoMinJiffies: number = SIM_NET_SYSCTL.hz / 5;
  /** See {@link rtoMaxJiffies}. */
  delackMaxJiffies: number = SIM_NET_SYSCTL.hz / 5;
  /** `icsk_ca_ops->name`. */
  congestion = "cubic";
  /** `tp->saved_syn` (or the request sock's), if `TCP_SAVE_SYN` kept one. */
  savedSyn: SynHeaders | undefined = undefined;
  /** Pure ACKs `__tcp_send_ack()` sent (`bpf_tcp_send_ack`, tcp_ca.ts), oldest first. */
  readonly acksSent: SentAck[] = [];
  /** `inet_saddr` (the transmit source; a multicast/broadcast bind leaves it 0). */
  readonly saddr: Uint8Array = new Uint8Array(4);
  /** `np->saddr` (IPv6 transmit source). */
  readonly v6Saddr: Uint8Array = new Uint8Array(16);
  /** `IP_FREEBIND`, `IP_TRANSPARENT`: a bind may name an address the host lacks. */
  freebind = false;
  /** See {@link freebind}. */
  transparent = false;
  /** `IP_BIND_ADDRESS_NO_PORT`: a port-0 bind leaves the port to connect(). */
  bindAddressNoPort = false;
  /** `sk_ipv6only` (`IPV6_V6ONLY`, or set by a bind to a specific IPv6 address). */
  ipv6only = false;

  /**
   * A socket of `space` (127.0.0.1 on both ends, `TCP_CLOSE`) with
   * `init`'s fields over the defaults.
   */
  /** `sk_is_tcp()`: always, for a sockmap (`SockmapSocket`). */
  readonly isTcp: boolean = true;
  private readonly home: AddressSpace;

  /** A TCP socket in `space`, closed unless `init` says otherwise. */
  constructor(space: AddressSpace, init: SimTcpSockInit = {}) {
    super(space, 0, new Uint8Array(0));
    this.home = space;
    this.rcvSaddr.set([127, 0, 0, 1]);
    this.daddr.set([127, 0, 0, 1]);
    Object.assign(this, init);
  }

  /** `__sock_gen_cookie()` on `cpu`: the socket keeps the first cookie given. */
  genCookie(cpu: number): bigint {
    return sockGenCookie(this, this.home, cpu);
  }

  /** The peer's port in host order (`ntohs(skc_dport)`). */
  get remotePort(): number {
    return swap16(this.dport);
  }

  set remotePort(port: number) {
    this.dport = swap16(port & 0xffff);
  }

  /** The socket dies (`__sk_destruct()`): its sk storage is freed, its region unmapped. */
  close(): void {
    bpfSkStorageFree(this);
    this.release();
  }
}

/** Swaps the two bytes of a u16 (htons on a little-endian host). */
export function swap16(v: number): number {
  return ((v & 0xff) << 8) | ((v >> 8) & 0xff);
}
