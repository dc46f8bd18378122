/**
 * The context of a sock_ops program: `struct bpf_sock_ops_kern` as the
 * program sees it through `struct bpf_sock_ops`. Its region is hooked
 * (`RegionAccessHook`): a load gives what the verifier's rewrite
 * (`sock_ops_convert_ctx_access()`) computes — `op` and `args`/`reply`
 * from the kern struct, the addresses, ports and state from the socket,
 * the `tcp_sock` fields and `sk_txhash` only when `is_locked_tcp_sock`
 * (a full socket in a TCP callback, not a timestamping one: 0
 * otherwise), `sk` for any full socket (NULL otherwise), the `skb_*`
 * fields from the callback's skb (0 without one). Stores reach `reply`
 * (which is `args[0]`) and, when `is_locked_tcp_sock`, `sk_txhash`.
 * @module
 */
import type { AddressSpace, RegionAccessHook } from "../../../exec/memory.ts";
import { regionAddress } from "../../../exec/memory.ts";
import { readLe, writeLe } from "../../test_run_ctx.ts";
import type { SimTcpSock, SynHeaders } from "./sock_ops_sock.ts";
import type { HdrOptSkb } from "./tcp_hdr_opt.ts";
import {
  BPF_SOCK_OPS_SIZE,
  sockOpsIsValidAccess,
} from "../../../verifier/ctx_access/sock.ts";

/** `BPF_SOCK_OPS_*` callbacks (`bpf_sock_ops.op`). */
export const SOCK_OPS = {
  VOID: 0,
  TIMEOUT_INIT: 1,
  RWND_INIT: 2,
  TCP_CONNECT_CB: 3,
  ACTIVE_ESTABLISHED_CB: 4,
  PASSIVE_ESTABLISHED_CB: 5,
  NEEDS_ECN: 6,
  BASE_RTT: 7,
  RTO_CB: 8,
  RETRANS_CB: 9,
  STATE_CB: 10,
  TCP_LISTEN_CB: 11,
  RTT_CB: 12,
  PARSE_HDR_OPT_CB: 13,
  HDR_OPT_LEN_CB: 14,
  WRITE_HDR_OPT_CB: 15,
  TSTAMP_SCHED_CB: 16,
  TSTAMP_SND_SW_CB: 17,
  TSTAMP_SND_HW_CB: 18,
  TSTAMP_ACK_CB: 19,
  TSTAMP_SENDMSG_CB: 20,
} as const;

/** `offsetof(struct bpf_sock_ops, field)` for every field. */
export const SOCK_OPS_FIELD = {
  op: 0,
  reply: 4,
  family: 20,
  remote_ip4: 24,
  local_ip4: 28,
  remote_ip6: 32,
  local_ip6: 48,
  remote_port: 64,
  local_port: 68,
  is_fullsock: 72,
  snd_cwnd: 76,
  srtt_us: 80,
  bpf_sock_ops_cb_flags: 84,
  state: 88,
  rtt_min: 92,
  snd_ssthresh: 96,
  rcv_nxt: 100,
  snd_nxt: 104,
  snd_una: 108,
  mss_cache: 112,
  ecn_flags: 116,
  rate_delivered: 120,
  rate_interval_us: 124,
  packets_out: 128,
  retrans_out: 132,
  total_retrans: 136,
  segs_in: 140,
  data_segs_in: 144,
  segs_out: 148,
  data_segs_out: 152,
  lost_out: 156,
  sacked_out: 160,
  sk_txhash: 164,
  bytes_received: 168,
  bytes_acked: 176,
  sk: 184,
  skb_data: 192,
  skb_data_end: 200,
  skb_len: 208,
  skb_tcp_flags: 212,
  skb_hwtstamp: 216,
} as const;

/** The skb of a callback, with what `bpf_sock_ops` reads of it. */
export interface SockOpsSkb extends HdrOptSkb {
  /** `skb->len` (default: `bytes.length`). */
  readonly len: number;
  /** `TCP_SKB_CB(skb)->tcp_flags`. */
  readonly tcpFlags: number;
  /** `skb_shinfo(skb)->hwtstamps`. */
  readonly hwtstamp: bigint;
}

const F = SOCK_OPS_FIELD;
/** `tcp_sock` u32 fields and `sk_txhash`: read only when `is_locked_tcp_sock` (`SOCK_OPS_GET_FIELD`). */
const TCP_FIELDS: Readonly<Record<number, (sk: SimTcpSock) => number>> = {
  [F.snd_cwnd]: (sk) => sk.sndCwnd,
  [F.srtt_us]: (sk) => sk.srttUs,
  [F.bpf_sock_ops_cb_flags]: (sk) => sk.bpfSockOpsCbFlags,
  [F.snd_ssthresh]: (sk) => sk.sndSsthresh,
  [F.rcv_nxt]: (sk) => sk.rcvNxt,
  [F.snd_nxt]: (sk) => sk.sndNxt,
  [F.snd_una]: (sk) => sk.sndUna,
  [F.mss_cache]: (sk) => sk.mssCache,
  [F.ecn_flags]: (sk) => sk.ecnFlags,
  [F.rate_delivered]: (sk) => sk.rateDelivered,
  [F.rate_interval_us]: (sk) => sk.rateIntervalUs,
  [F.packets_out]: (sk) => sk.packetsOut,
  [F.retrans_out]: (sk) => sk.retransOut,
  [F.total_retrans]: (sk) => sk.totalRetrans,
  [F.segs_in]: (sk) => sk.segsIn,
  [F.data_segs_in]: (sk) => sk.dataSegsIn,
  [F.segs_out]: (sk) => sk.segsOut,
  [F.data_segs_out]: (sk) => sk.dataSegsOut,
  [F.lost_out]: (sk) => sk.lostOut,
  [F.sacked_out]: (sk) => sk.sackedOut,
  [F.sk_txhash]: (sk) => sk.txhash,
};

/**
 * `struct bpf_sock_ops_kern` for one callback on `sock`, mapped as the
 * program's ctx; also the state the helpers bound to it share.
 */
export class SockOpsContext implements RegionAccessHook {
  /** `op` and `args[4]` (`reply` is `args[0]`), as the kern struct holds them. */
  readonly kern: Uint8Array = new Uint8Array(20);
  /** The socket. */
  readonly sock: SimTcpSock;
  /** The callback's skb (header-option and RTT-style callbacks), if any. */
  readonly skb: SockOpsSkb | undefined;
  /** `syn_skb`: the SYN a SYNACK's header-option callbacks answer. */
  readonly synSkb: SynHeaders | undefined;
  /** `remaining_opt_len`: header-option room left to reserve or write. */
  remainingOptLen: number;
  /** Address of the ctx region (r1). */
  readonly address: bigint;
  private readonly space: AddressSpace;
  private readonly skbRegion: number;

  /** Maps the ctx (and the skb's bytes as a packet) in `space`. */
  constructor(
    space: AddressSpace,
    op: number,
    sock: SimTcpSock,
    extra: {
      args?: readonly number[];
      skb?: SockOpsSkb;
      synSkb?: SynHeaders;
      remainingOptLen?: number;
    } = {},
  ) {
    this.space = space;
    this.sock = sock;
    this.skb = extra.skb;
    this.synSkb = extra.synSkb;
    this.remainingOptLen = extra.remainingOptLen ?? 0;
    writeLe(this.kern, 0, 4, BigInt(op >>> 0));
    (extra.args ?? []).slice(0, 4).forEach((a, i) =>
      writeLe(this.kern, 4 + 4 * i, 4, BigInt(a >>> 0))
    );
    this.skbRegion = this.skb === undefined
      ? 0
      : space.mapRegionId("packet", this.skb.bytes, { name: "sock_ops skb" });
    this.address = space.mapRegion("ctx", BPF_SOCK_OPS_SIZE, {
      name: "bpf_sock_ops",
      hook: this,
    });
  }

  /** `bpf_sock_ops_kern.op`. */
  get op(): number {
    return Number(readLe(this.kern, 0, 4));
  }

  /** `reply` (= `args[0]`) as the hook reads it: a signed int. */
  get reply(): number {
    return Number(readLe(this.kern, 4, 4)) | 0;
  }

  /** Mirrors `is_locked_tcp_sock_ops()`: the callbacks run under the socket lock. */
  get lockedTcpSockOps(): boolean {
    return this.op <= SOCK_OPS.WRITE_HDR_OPT_CB;
  }

  /**
   * `bpf_sock_ops_kern.is_locked_tcp_sock`: set with `is_fullsock` by the
   * TCP and header-option callers (`tcp_call_bpf()` …), left 0 by the
   * timestamping callbacks (`bpf_skops_tx_timestamping()`).
   */
  get isLockedTcpSock(): boolean {
    return this.sock.fullsock && this.lockedTcpSockOps;
  }

  /** See {@link RegionAccessHook.load}. */
  load(offset: number, size: number): bigint | undefined {
    const access = sockOpsIsValidAccess(offset, size, "read");
    if (!access.ok) return undefined;
    if (offset >= F.skb_tcp_flags && offset < F.skb_tcp_flags + 4) {
      // the u8 field is read with its own width (target_size 1): a narrow
      // load at any byte of it gives the flags unshifted
      return BigInt((this.skb?.tcpFlags ?? 0) & 0xff);
    }
    return this.field(offset);
  }

  /** See {@link RegionAccessHook.store}: `reply`, and `sk_txhash` when `is_locked_tcp_sock`. */
  store(offset: number, size: number, value: bigint): boolean {
    if (!sockOpsIsValidAccess(offset, size, "write").ok) return false;
    if (offset === F.reply) writeLe(this.kern, 4, 4, value);
    else if (this.isLockedTcpSock) {
      this.sock.txhash = Number(value & 0xffffffffn);
    }
    return true;
  }

  /** The value of the field at `off` (whole field), as converted. */
  private field(off: number): bigint {
    const sk = this.sock;
    if (off < F.family) return readLe(this.kern, off, 4);
    if (off >= F.remote_ip6 && off < F.remote_ip6 + 16) {
      return readLe(sk.v6Daddr, off - F.remote_ip6, 4);
    }
    if (off >= F.local_ip6 && off < F.local_ip6 + 16) {
      return readLe(sk.v6RcvSaddr, off - F.local_ip6, 4);
    }
    const tcp = TCP_FIELDS[off];
    if (tcp !== undefined) {
      return this.isLockedTcpSock ? BigInt(tcp(sk) >>> 0) : 0n;
    }
    const skb = this.skb;
    switch (off) {
      case F.family:
        return BigInt(sk.family);
      case F.remote_ip4:
        return readLe(sk.daddr, 0, 4);
      case F.local_ip4:
        return readLe(sk.rcvSaddr, 0, 4);
      case F.remote_port: // the __be16 shifted into the upper half (LE host)
        return BigInt(sk.dport) << 16n;
      case F.local_port:
        return BigInt(sk.num);
      case F.is_fullsock:
        return sk.fullsock ? 1n : 0n;
      case F.state:
        return BigInt(sk.state);
      case F.rtt_min:
        // read with no test at all: of a request sock the kernel reads
        // whatever lies at that offset (0 here)
        return sk.fullsock ? BigInt(sk.rttMin >>> 0) : 0n;
      case F.bytes_received:
        return this.isLockedTcpSock ? sk.bytesReceived : 0n;
      case F.bytes_acked:
        return this.isLockedTcpSock ? sk.bytesAcked : 0n;
      case F.sk:
        return sk.fullsock ? sk.address : 0n;
      case F.skb_data:
        return skb === undefined ? 0n : regionAddress(this.skbRegion);
      case F.skb_data_end:
        return skb === undefined
          ? 0n
          : regionAddress(this.skbRegion) + BigInt(skb.dataEnd);
      case F.skb_len:
        return BigInt(skb?.len ?? 0);
      case F.skb_hwtstamp:
        return skb?.hwtstamp ?? 0n;
    }
    return 0n; // unreachable: every readable field is listed
  }

  /** Unmaps the ctx and the skb (the socket outlives the callback). */
  release(): void {
    this.space.unmapRegion(this.address);
    if (this.skbRegion !== 0) {
      this.space.unmapRegion(regionAddress(this.skbRegion));
    }
  }
}
