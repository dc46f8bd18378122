/**
 * The kernel's view of a simulated TCP socket as a BPF TCP congestion
 * control (a `tcp_congestion_ops` struct_ops program, struct_ops.ts) sees
 * it: the `struct tcp_sock` its `struct sock *` argument points to, laid
 * out as in the 6.18 x86-64 vmlinux BTF, and `bpf_tcp_send_ack`
 * (net/ipv4/bpf_tcp_ca.c).
 *
 * ## The `struct tcp_sock`
 * One 2304-byte region per {@link SimTcpSock}, kept for the socket's life
 * as the kernel keeps its socket: what a congestion control stores in
 * `icsk_ca_priv` (`inet_csk_ca()`) is there at its next call. The fields
 * the simulated socket models (`snd_cwnd`, `rcv_nxt`, `sk_pacing_rate` …,
 * {@link TCP_SOCK_FIELDS}) are read from and written to the
 * {@link SimTcpSock}; every other byte is the region's own, zero at first
 * (`sk_alloc()` zeroes the socket) — among them `icsk_ca_priv`,
 * `snd_cwnd_cnt`, `icsk_ack` and `rcv_wup`.
 *
 * Stores are refused (a fault) outside the fields
 * `bpf_tcp_ca_btf_struct_access()` lets a program write: the verifier
 * refuses such programs ({@link tcpCaWritableEnd} is its rule), so only a
 * program loaded unverified meets the fault.
 *
 * ## `bpf_tcp_send_ack(tp, rcv_nxt)`
 * `__tcp_send_ack(sk, rcv_nxt, 0)` (net/ipv4/tcp_output.c), returning 0
 * always. A socket in `TCP_CLOSE` sends nothing. Otherwise the ACK is
 * recorded in {@link SimTcpSock.acksSent} with its `ack_seq` (`rcv_nxt`,
 * which may differ from `tp->rcv_nxt`: DCTCP acknowledges an earlier
 * sequence that way), and what `__tcp_transmit_skb()` changes that a
 * program can read afterwards follows:
 * - `tp->segs_out` grows by one (`tcp_skb_pcount()` of a pure ACK);
 * - `tcp_select_window()` sets `tp->rcv_wup = tp->rcv_nxt` (the socket's,
 *   not the argument). It also sets `tp->rcv_wnd` from the free receive
 *   space (`__tcp_select_window()`), which bpfsim does not model: `rcv_wnd`
 *   keeps its value;
 * - `tcp_event_ack_sent()`, only when `rcv_nxt == tp->rcv_nxt`:
 *   `tcp_dec_quickack_mode()` (with `icsk_ack.quick` set: one ACK counts
 *   when `ICSK_ACK_SCHED` is pending; the mode ends, `ato` becoming
 *   `TCP_ATO_MIN`, once the count reaches `quick`) then
 *   `inet_csk_clear_xmit_timer(sk, ICSK_TIME_DACK)` (`icsk_ack.pending`
 *   and `icsk_ack.retry` to 0). The compressed-ACK step before it does
 *   nothing here: `tp->compressed_ack` is never set in the simulation.
 *
 * The skb allocation never fails here (the kernel would re-arm the
 * delayed-ACK timer instead), and nothing else of the socket changes.
 * @module
 */
import type { CallContext, HelperFn } from "../../../exec/state.ts";
import { tcpCaWritableEnd } from "../../../verifier/ctx_access/struct_ops.ts";
import { ExecError } from "../../../exec/fault.ts";
import { bpfGetsockopt, bpfSetsockopt } from "./sock_options.ts";
import { readLe, writeLe } from "../../test_run_ctx.ts";
import type { AddressSpace, RegionAccessHook } from "../../../exec/memory.ts";
import {
  SIM_NET_SYSCTL,
  type SimTcpSock,
  TCP_STATES,
} from "./sock_ops_sock.ts";

/** Helper ids of the tcp_congestion_ops programs' own helpers (include/uapi/linux/bpf.h). */
export const TCP_CA_HELPER = {
  setsockopt: 49,
  getsockopt: 57,
  tcp_send_ack: 116,
} as const;

/** `sizeof(struct tcp_sock)` on the 6.18 x86-64 kernel. */
export const TCP_SOCK_SIZE = 2304;

/** Offsets in `struct tcp_sock` of the fields this module reads or writes itself (6.18, x86-64). */
export const TCP_SOCK_LAYOUT = {
  /** `icsk_ack.pending` (u8), `.quick` (u8), `.retry` (u8), `.ato` (the low 8 bits of a u32). */
  icsk_ack_pending: 1256,
  icsk_ack_quick: 1257,
  icsk_ack_retry: 1259,
  icsk_ack_ato: 1260,
  /** `icsk_ca_priv`: 13 u64 (`ICSK_CA_PRIV_SIZE`), what `inet_csk_ca()` returns. */
  icsk_ca_priv: 1296,
  icsk_ca_priv_size: 104,
  snd_cwnd_cnt: 1932,
  rcv_wnd: 1720,
  rcv_wup: 1768,
  sk_pacing_status: 428,
  app_limited: 1716,
} as const;

/** `ICSK_ACK_SCHED`, and `TCP_ATO_MIN` (HZ / 25) in jiffies. */
const ICSK_ACK_SCHED = 1, TCP_ATO_MIN = SIM_NET_SYSCTL.hz / 25;

/** A number field of {@link SimTcpSock} at its `struct tcp_sock` offset. */
export interface TcpSockField {
  /** Offset in `struct tcp_sock`. */
  readonly off: number;
  /** Size in bytes (the kernel field's). */
  readonly size: 1 | 2 | 4 | 8;
  /** The {@link SimTcpSock} field it is. */
  readonly key: keyof SimTcpSock;
}

const f = (off: number, size: 1 | 2 | 4 | 8, key: keyof SimTcpSock) => ({
  off,
  size,
  key,
});

/**
 * The fields of `struct tcp_sock` (with its `sock`, `inet_sock` and
 * `inet_connection_sock`) that are {@link SimTcpSock} fields, at their
 * 6.18 x86-64 offsets (vmlinux BTF). `skc_daddr` (0) and `skc_rcv_saddr`
 * (4) are the socket's address bytes.
 */
export const TCP_SOCK_FIELDS: readonly TcpSockField[] = Object.freeze([
  f(12, 2, "dport"),
  f(14, 2, "num"),
  f(16, 2, "family"),
  f(18, 1, "state"),
  f(244, 4, "rcvbuf"),
  f(488, 8, "pacingRate"),
  f(504, 8, "maxPacingRate"),
  f(520, 4, "priority"),
  f(524, 4, "mark"),
  f(568, 4, "sndbuf"),
  f(1440, 4, "mssCache"),
  f(1444, 4, "sndCwnd"),
  f(1452, 4, "lostOut"),
  f(1456, 4, "sackedOut"),
  f(1480, 4, "retransOut"),
  f(1492, 4, "sndSsthresh"),
  f(1536, 4, "segsOut"),
  f(1540, 4, "dataSegsOut"),
  f(1640, 1, "ecnFlags"),
  f(1664, 4, "rcvNxt"),
  f(1668, 4, "sndNxt"),
  f(1672, 4, "sndUna"),
  f(1680, 4, "srttUs"),
  f(1684, 4, "packetsOut"),
  f(1752, 8, "bytesReceived"),
  f(1760, 4, "segsIn"),
  f(1764, 4, "dataSegsIn"),
  f(1780, 4, "rateDelivered"),
  f(1784, 4, "rateIntervalUs"),
  f(1824, 8, "bytesAcked"),
  f(1936, 4, "sndCwndClamp"),
  f(2200, 4, "totalRetrans"),
]);

const L = TCP_SOCK_LAYOUT;

export { tcpCaWritableEnd };

/**
 * A {@link SimTcpSock} as `struct tcp_sock` (see the module comment): a
 * hooked kernel region. Create it with {@link tcpSockView}.
 */
export class TcpSockView implements RegionAccessHook {
  /** The simulated socket. */
  readonly sock: SimTcpSock;
  /** The region's own bytes (the fields {@link TCP_SOCK_FIELDS} lists are the socket's). */
  readonly bytes: Uint8Array = new Uint8Array(TCP_SOCK_SIZE);
  private readonly space: AddressSpace;
  private mapped: bigint | undefined = undefined;

  /** The view of `sock` in `space` (mapped on first use of {@link address}). */
  constructor(space: AddressSpace, sock: SimTcpSock) {
    this.space = space;
    this.sock = sock;
  }

  /** The `struct sock *` a member gets: the region's address. */
  get address(): bigint {
    this.mapped ??= this.space.mapRegion("kernel", this.bytes, {
      name: "tcp_sock (struct_ops)",
      hook: this,
    });
    return this.mapped;
  }

  /** Whether `address` is this socket's `struct tcp_sock`. */
  is(address: bigint): boolean {
    return this.mapped !== undefined && address === this.mapped;
  }

  /** Unmaps the region (the socket's `__sk_destruct()`); a later {@link address} maps it again. */
  release(): void {
    if (this.mapped !== undefined) this.space.unmapRegion(this.mapped);
    this.mapped = undefined;
  }

  /** A little-endian unsigned read of `size` bytes at `off`, the socket's fields included. */
  read(off: number, size: 1 | 2 | 4 | 8): bigint {
    this.pull();
    return readLe(this.bytes, off, size);
  }

  /** `icsk_ca_priv` (a copy): what the congestion control keeps in the socket. */
  caPriv(): Uint8Array {
    return this.bytes.slice(
      L.icsk_ca_priv,
      L.icsk_ca_priv + L.icsk_ca_priv_size,
    );
  }

  /** Writes `value` at `off` of the region's own bytes (a test's set-up of an unmodelled field). */
  poke(off: number, size: 1 | 2 | 4 | 8, value: bigint): void {
    writeLe(this.bytes, off, size, value);
    this.push(off, size);
  }

  /** See {@link RegionAccessHook.load}: any read inside the struct. */
  load(offset: number, size: number): bigint | undefined {
    if (!validSize(size) || offset < 0 || offset + size > TCP_SOCK_SIZE) {
      return undefined;
    }
    return this.read(offset, size);
  }

  /** See {@link RegionAccessHook.store}: the writable fields only ({@link tcpCaWritableEnd}). */
  store(offset: number, size: number, value: bigint): boolean {
    const end = tcpCaWritableEnd(offset);
    if (!validSize(size) || end === undefined || offset + size > end) {
      return false;
    }
    this.pull();
    writeLe(this.bytes, offset, size, value);
    this.push(offset, size);
    return true;
  }

  /**
   * `__tcp_send_ack(sk, rcv_nxt, 0)` on this socket (see the module
   * comment): records the ACK and applies what a program can see of it.
   */
  sendAck(rcvNxt: number): void {
    const sock = this.sock;
    if (sock.state === TCP_STATES.CLOSE) return;
    sock.acksSent.push({ rcvNxt });
    sock.segsOut = (sock.segsOut + 1) >>> 0;
    writeLe(this.bytes, L.rcv_wup, 4, BigInt(sock.rcvNxt >>> 0)); // tcp_select_window()
    if (rcvNxt !== sock.rcvNxt >>> 0) return; // tcp_event_ack_sent(): DCTCP's special ACK
    const b = this.bytes;
    const quick = b[L.icsk_ack_quick];
    if (quick !== 0) { // tcp_dec_quickack_mode()
      const pkts = b[L.icsk_ack_pending] & ICSK_ACK_SCHED ? 1 : 0;
      if (pkts >= quick) {
        b[L.icsk_ack_quick] = 0;
        b[L.icsk_ack_ato] = TCP_ATO_MIN; // ato: the low 8 bits of its word
      } else {
        b[L.icsk_ack_quick] = quick - pkts;
      }
    }
    // inet_csk_clear_xmit_timer(sk, ICSK_TIME_DACK)
    b[L.icsk_ack_pending] = 0;
    b[L.icsk_ack_retry] = 0;
  }

  /** Copies the socket's fields into the bytes. */
  private pull(): void {
    const s = this.sock;
    this.bytes.set(s.daddr.subarray(0, 4), 0);
    this.bytes.set(s.rcvSaddr.subarray(0, 4), 4);
    for (const fld of TCP_SOCK_FIELDS) {
      const v = s[fld.key] as number | bigint;
      writeLe(this.bytes, fld.off, fld.size, BigInt(v));
    }
  }

  /** Copies back the socket's fields that bytes `[off, off + size)` overlap. */
  private push(off: number, size: number): void {
    const s = this.sock as unknown as Record<string, number | bigint>;
    for (const fld of TCP_SOCK_FIELDS) {
      if (fld.off >= off + size || fld.off + fld.size <= off) continue;
      const v = readLe(this.bytes, fld.off, fld.size);
      s[fld.key] = typeof s[fld.key] === "bigint" ? v : Number(v);
    }
  }
}

function validSize(size: number): size is 1 | 2 | 4 | 8 {
  return size === 1 || size === 2 || size === 4 || size === 8;
}

/** Each socket's one `struct tcp_sock`, for the socket's life. */
const VIEWS = new WeakMap<SimTcpSock, TcpSockView>();

/** The `struct tcp_sock` of `sock` in `space`: the same view at every call. */
export function tcpSockView(
  space: AddressSpace,
  sock: SimTcpSock,
): TcpSockView {
  let view = VIEWS.get(sock);
  if (view === undefined) {
    view = new TcpSockView(space, sock);
    VIEWS.set(sock, view);
  }
  return view;
}

/**
 * The helpers a tcp_congestion_ops program gets beyond the base ones
 * (`bpf_tcp_ca_get_func_proto()`), bound to the sockets of one call:
 * `bpf_tcp_send_ack` (see the module comment). Its `tp` must be one of
 * `socks` — the verifier only lets the member's own `struct tcp_sock`
 * through; anything else (unverified code) fails the call.
 */
export function tcpCaHelpers(
  socks: readonly TcpSockView[],
): Map<number, HelperFn> {
  return new Map<number, HelperFn>([
    [TCP_CA_HELPER.tcp_send_ack, (vm: CallContext) => {
      const tp = vm.arg(1);
      const view = socks.find((s) => s.is(tp));
      if (view === undefined) {
        throw new ExecError(
          vm.insnIndex,
          `bpf_tcp_send_ack: 0x${
            tp.toString(16)
          } is not a tcp_sock of this call`,
        );
      }
      view.sendAck(vm.argLo(2) >>> 0);
      return 0;
    }],
    // bpf_sk_setsockopt() / bpf_sk_getsockopt(): _bpf_setsockopt() and
    // _bpf_getsockopt() on the call's socket (no sock_ops lock check)
    [TCP_CA_HELPER.setsockopt, (vm: CallContext) => {
      const sock = viewArg(socks, vm, "bpf_setsockopt").sock;
      const len = Math.max(0, vm.argLo(5));
      const optval = len > 0
        ? vm.mem.readBytes(vm.arg(4), len)
        : new Uint8Array();
      return bpfSetsockopt(sock, vm.argLo(2), vm.argLo(3), optval);
    }],
    [TCP_CA_HELPER.getsockopt, (vm: CallContext) => {
      const sock = viewArg(socks, vm, "bpf_getsockopt").sock;
      const buf = new Uint8Array(Math.max(0, vm.argLo(5)));
      const ret = bpfGetsockopt(sock, vm.argLo(2), vm.argLo(3), buf);
      if (buf.length > 0) vm.mem.writeBytes(vm.arg(4), buf);
      return ret;
    }],
  ]);
}

/** The view argument 1 names, or an ExecError naming `helper`. */
function viewArg(
  socks: readonly TcpSockView[],
  vm: CallContext,
  helper: string,
): TcpSockView {
  const view = socks.find((s) => s.is(vm.arg(1)));
  if (view === undefined) {
    throw new ExecError(
      vm.insnIndex,
      `${helper}: 0x${vm.arg(1).toString(16)} is not a tcp_sock of this call`,
    );
  }
  return view;
}
