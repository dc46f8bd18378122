/**
 * The `SOL_TCP` level of `bpf_setsockopt()` / `bpf_getsockopt()`
 * (net/core/filter.c `sol_tcp_sockopt()`): the options it lets through
 * with their optlen rule, `TCP_CONGESTION` (`sol_tcp_sockopt_congestion()`),
 * the BPF-only `TCP_BPF_*` options (`bpf_sol_tcp_setsockopt()` /
 * `bpf_sol_tcp_getsockopt()`), and what `do_tcp_setsockopt()` /
 * `do_tcp_getsockopt()` do with the rest. The simulated kernel registers
 * the congestion controls {@link SIM_CONGESTION_CONTROLS} (cubic, reno)
 * and runs at HZ 250, which the jiffies-based options round to.
 * @module
 */
import { EINVAL, ENOENT, ENOTSUPP } from "../../../uapi/errno.ts";
import {
  SIM_CONGESTION_CONTROLS,
  SIM_NET_SYSCTL as SYS,
  type SimTcpSock,
  TCP_STATES,
} from "./sock_ops_sock.ts";
import { ENOPROTOOPT } from "../../../uapi/errno.ts";
export { ENOPROTOOPT } from "../../../uapi/errno.ts";

/** `TCP_*` options, with the BPF-only `TCP_BPF_*` ones (uapi bpf.h). */
export const TCP_OPT = {
  NODELAY: 1,
  MAXSEG: 2,
  KEEPIDLE: 4,
  KEEPINTVL: 5,
  KEEPCNT: 6,
  SYNCNT: 7,
  WINDOW_CLAMP: 10,
  CONGESTION: 13,
  THIN_LINEAR_TIMEOUTS: 16,
  USER_TIMEOUT: 18,
  NOTSENT_LOWAT: 25,
  SAVE_SYN: 27,
  SAVED_SYN: 28,
  RTO_MAX_MS: 44,
  BPF_IW: 1001,
  BPF_SNDCWND_CLAMP: 1002,
  BPF_DELACK_MAX: 1003,
  BPF_RTO_MIN: 1004,
  BPF_SYN: 1005,
  BPF_SYN_IP: 1006,
  BPF_SYN_MAC: 1007,
  BPF_SOCK_OPS_CB_FLAGS: 1008,
} as const;

/** `BPF_SOCK_OPS_ALL_CB_FLAGS`: RTO, RETRANS, STATE, RTT, the three header-option flags. */
export const BPF_SOCK_OPS_ALL_CB_FLAGS = 0x7f;

/** `SOCK_MIN_RCVBUF`: 2048 + SKB_DATA_ALIGN(sizeof(struct sk_buff)). */
const SOCK_MIN_RCVBUF = 2304;
const TCP_MIN_MSS = 88, MAX_TCP_WINDOW = 32767;
const MAX_TCP_KEEPIDLE = 32767, MAX_TCP_KEEPINTVL = 32767;
const MAX_TCP_KEEPCNT = 127, MAX_TCP_SYNCNT = 127;
const TCP_CA_NAME_MAX = 16, TCP_TIMEOUT_MIN = 2, TCP_RTO_MAX_SEC = 120;

/** An option buffer's first 4 bytes as the C `int` (little-endian). */
export const optInt = (b: Uint8Array): number =>
  (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) | 0;
/** Stores `v` as the C `int` at the start of `b`. */
export const putOptInt = (b: Uint8Array, v: number): void => {
  for (let i = 0; i < 4; i++) b[i] = (v >>> (8 * i)) & 0xff;
};
/** The length a getter answered with (`*optlen` after the call). */
export interface GetLen {
  /** Bytes answered. */
  len: number;
}

/** `usecs_to_jiffies()` (rounds up) and `jiffies_to_usecs()`. */
const usecsToJiffies = (us: number): number =>
  Math.ceil((us >>> 0) / (1e6 / SYS.hz));
const jiffiesToUsecs = (j: number): number => j * (1e6 / SYS.hz);

/** Mirrors `sol_tcp_sockopt()` and what it hands on to: 0 or a negative errno. */
export function solTcp(
  sk: SimTcpSock,
  optname: number,
  optval: Uint8Array,
  get: GetLen | undefined,
): number {
  // sk_protocol is always IPPROTO_TCP here
  const intOpts: number[] = [
    TCP_OPT.NODELAY,
    TCP_OPT.MAXSEG,
    TCP_OPT.KEEPIDLE,
    TCP_OPT.KEEPINTVL,
    TCP_OPT.KEEPCNT,
    TCP_OPT.SYNCNT,
    TCP_OPT.WINDOW_CLAMP,
    TCP_OPT.THIN_LINEAR_TIMEOUTS,
    TCP_OPT.USER_TIMEOUT,
    TCP_OPT.NOTSENT_LOWAT,
    TCP_OPT.SAVE_SYN,
    TCP_OPT.RTO_MAX_MS,
  ];
  const optlen = optval.length;
  if (optname === TCP_OPT.CONGESTION) {
    return congestion(sk, optval, get);
  }
  if (optname === TCP_OPT.SAVED_SYN) {
    if (optlen < 1) return -EINVAL;
    if (get === undefined) return -ENOPROTOOPT; // do_tcp_setsockopt(): unknown
    const syn = sk.savedSyn;
    if (syn === undefined) return -EINVAL;
    const all = [...syn.mac, ...syn.network, ...syn.tcp];
    if (optlen > all.length) return -EINVAL;
    optval.set(all.slice(0, optlen));
    return 0;
  }
  if (!intOpts.includes(optname)) {
    return get !== undefined
      ? bpfSolTcpGet(sk, optname, optval)
      : bpfSolTcpSet(sk, optname, optval);
  }
  if (optlen !== 4) return -EINVAL;
  if (get !== undefined) {
    putOptInt(optval, tcpGetInt(sk, optname));
    return 0;
  }
  return tcpSetInt(sk, optname, optInt(optval));
}

/** Mirrors `sol_tcp_sockopt_congestion()` and `tcp_set_congestion_control()`. */
function congestion(
  sk: SimTcpSock,
  optval: Uint8Array,
  get: GetLen | undefined,
): number {
  if (optval.length < 2) return -EINVAL;
  if (get !== undefined) {
    // optval[--optlen] = 0, then do_tcp_getsockopt() copies min(len, 16)
    // bytes of the NUL-padded icsk_ca_ops->name
    get.len = optval.length - 1;
    optval[get.len] = 0;
    const name = new Uint8Array(TCP_CA_NAME_MAX);
    name.set(new TextEncoder().encode(sk.congestion));
    const n = Math.min(get.len, TCP_CA_NAME_MAX);
    optval.set(name.subarray(0, n));
    get.len = n;
    return 0;
  }
  const raw = optval.subarray(0, Math.min(optval.length, TCP_CA_NAME_MAX - 1));
  if (
    raw.length >= 3 && "cdg" === new TextDecoder().decode(raw.subarray(0, 3))
  ) {
    // strncmp("cdg", optval, optlen) == 0 with optlen >= 3
    const rest = raw.subarray(3);
    if (rest.length === 0 || rest[0] === 0) return -ENOTSUPP;
  }
  const nul = raw.indexOf(0);
  const name = new TextDecoder().decode(nul < 0 ? raw : raw.subarray(0, nul));
  if (name === sk.congestion) return 0;
  if (!SIM_CONGESTION_CONTROLS.includes(name)) return -ENOENT;
  sk.congestion = name; // tcp_reinit_congestion_control()
  return 0;
}

/** Mirrors the int options of `do_tcp_setsockopt()`. */
function tcpSetInt(sk: SimTcpSock, optname: number, val: number): number {
  const inRange = (lo: number, hi: number) => val >= lo && val <= hi;
  switch (optname) {
    case TCP_OPT.NODELAY:
      sk.nodelay = val !== 0;
      return 0;
    case TCP_OPT.MAXSEG: // tcp_sock_set_maxseg()
      if (val && !inRange(TCP_MIN_MSS, MAX_TCP_WINDOW)) return -EINVAL;
      sk.userMss = val;
      return 0;
    case TCP_OPT.KEEPIDLE:
      if (!inRange(1, MAX_TCP_KEEPIDLE)) return -EINVAL;
      sk.keepaliveTime = val;
      return 0;
    case TCP_OPT.KEEPINTVL:
      if (!inRange(1, MAX_TCP_KEEPINTVL)) return -EINVAL;
      sk.keepaliveIntvl = val;
      return 0;
    case TCP_OPT.KEEPCNT:
      if (!inRange(1, MAX_TCP_KEEPCNT)) return -EINVAL;
      sk.keepaliveProbes = val;
      return 0;
    case TCP_OPT.SYNCNT:
      if (!inRange(1, MAX_TCP_SYNCNT)) return -EINVAL;
      sk.synRetries = val;
      return 0;
    case TCP_OPT.WINDOW_CLAMP: // tcp_set_window_clamp()
      if (val === 0) {
        if (sk.state !== TCP_STATES.CLOSE) return -EINVAL;
        sk.windowClamp = 0;
        return 0;
      }
      sk.windowClamp = Math.max(SOCK_MIN_RCVBUF / 2, val);
      return 0;
    case TCP_OPT.THIN_LINEAR_TIMEOUTS:
      if (!inRange(0, 1)) return -EINVAL;
      sk.thinLto = val;
      return 0;
    case TCP_OPT.USER_TIMEOUT:
      if (val < 0) return -EINVAL;
      sk.userTimeout = val;
      return 0;
    case TCP_OPT.NOTSENT_LOWAT:
      sk.notsentLowat = val >>> 0;
      return 0;
    case TCP_OPT.SAVE_SYN:
      if (!inRange(0, 2)) return -EINVAL;
      sk.saveSyn = val;
      return 0;
    case TCP_OPT.RTO_MAX_MS: // msecs_to_jiffies() rounds up
      if (!inRange(1000, TCP_RTO_MAX_SEC * 1000)) return -EINVAL;
      sk.rtoMaxJiffies = Math.ceil(val / (1000 / SYS.hz));
      return 0;
  }
  return -ENOPROTOOPT;
}

/** Mirrors the int options of `do_tcp_getsockopt()`. */
function tcpGetInt(sk: SimTcpSock, optname: number): number {
  switch (optname) {
    case TCP_OPT.NODELAY:
      return sk.nodelay ? 1 : 0;
    case TCP_OPT.MAXSEG: {
      const closedOrListen = sk.state === TCP_STATES.CLOSE ||
        sk.state === TCP_STATES.LISTEN;
      return sk.userMss && closedOrListen ? sk.userMss : sk.mssCache;
    }
    case TCP_OPT.KEEPIDLE:
      return sk.keepaliveTime || SYS.keepaliveTime;
    case TCP_OPT.KEEPINTVL:
      return sk.keepaliveIntvl || SYS.keepaliveIntvl;
    case TCP_OPT.KEEPCNT:
      return sk.keepaliveProbes || SYS.keepaliveProbes;
    case TCP_OPT.SYNCNT:
      return sk.synRetries || SYS.synRetries;
    case TCP_OPT.WINDOW_CLAMP:
      return sk.windowClamp;
    case TCP_OPT.THIN_LINEAR_TIMEOUTS:
      return sk.thinLto;
    case TCP_OPT.USER_TIMEOUT:
      return sk.userTimeout;
    case TCP_OPT.NOTSENT_LOWAT:
      return sk.notsentLowat;
    case TCP_OPT.SAVE_SYN:
      return sk.saveSyn;
    case TCP_OPT.RTO_MAX_MS:
      return sk.rtoMaxJiffies * (1000 / SYS.hz);
  }
  return 0; // unreachable: listed by the caller
}

/** Mirrors `bpf_sol_tcp_setsockopt()`: the `TCP_BPF_*` options. */
function bpfSolTcpSet(
  sk: SimTcpSock,
  optname: number,
  optval: Uint8Array,
): number {
  if (optval.length !== 4) return -EINVAL;
  const val = optInt(optval);
  switch (optname) {
    case TCP_OPT.BPF_IW:
      if (val <= 0 || sk.dataSegsOut > sk.synData) return -EINVAL;
      sk.sndCwnd = val;
      return 0;
    case TCP_OPT.BPF_SNDCWND_CLAMP:
      if (val <= 0) return -EINVAL;
      sk.sndCwndClamp = val;
      sk.sndSsthresh = val;
      return 0;
    case TCP_OPT.BPF_DELACK_MAX:
    case TCP_OPT.BPF_RTO_MIN: {
      // TCP_DELACK_MAX and TCP_RTO_MIN are both HZ / 5
      const timeout = usecsToJiffies(val);
      if (timeout > SYS.hz / 5 || timeout < TCP_TIMEOUT_MIN) return -EINVAL;
      if (optname === TCP_OPT.BPF_DELACK_MAX) sk.delackMaxJiffies = timeout;
      else sk.rtoMinJiffies = timeout;
      return 0;
    }
    case TCP_OPT.BPF_SOCK_OPS_CB_FLAGS:
      if (val & ~BPF_SOCK_OPS_ALL_CB_FLAGS) return -EINVAL;
      sk.bpfSockOpsCbFlags = val;
      return 0;
  }
  return -EINVAL;
}

/** Mirrors `bpf_sol_tcp_getsockopt()`. */
function bpfSolTcpGet(
  sk: SimTcpSock,
  optname: number,
  optval: Uint8Array,
): number {
  if (optval.length !== 4) return -EINVAL;
  switch (optname) {
    case TCP_OPT.BPF_SOCK_OPS_CB_FLAGS:
      putOptInt(optval, sk.bpfSockOpsCbFlags);
      return 0;
    case TCP_OPT.BPF_RTO_MIN:
      putOptInt(optval, jiffiesToUsecs(sk.rtoMinJiffies));
      return 0;
    case TCP_OPT.BPF_DELACK_MAX:
      putOptInt(optval, jiffiesToUsecs(sk.delackMaxJiffies));
      return 0;
  }
  return -EINVAL;
}
