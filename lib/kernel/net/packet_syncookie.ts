/**
 * The raw SYN cookie helpers of tc and XDP programs (net/core/filter.c:
 * `bpf_tcp_raw_gen_syncookie_ipv4/6()`, `bpf_tcp_raw_check_syncookie_ipv4/6()`)
 * over the cookie arithmetic of net/ipv4/syncookies.c and
 * net/ipv6/syncookies.c: SipHash-2-4 of the addresses, ports and minute
 * counter under two secret keys per family, the sequence number added in,
 * the counter in the top 8 bits and the MSS table index hidden in the low 24.
 *
 * The kernel draws its secrets at random once per boot
 * (`net_get_random_once()`), so no cookie it makes can be compared with
 * one made here; the simulation's secrets are the fixed
 * {@link SYNCOOKIE_SECRET}. What carries over is everything else: the MSS
 * a cookie encodes, the argument checks, and that a cookie checks out on
 * the ACK of its own SYN within two minutes and not on another header.
 * @module
 */
import type { CallContext, HelperFn } from "../../exec/state.ts";
import { EACCES, EINVAL } from "../../uapi/errno.ts";

/** `COOKIEBITS`: the low 24 bits hold the hash and MSS index, the top 8 the count. */
const COOKIEBITS = 24, COOKIEMASK = (1 << COOKIEBITS) - 1;
/** `MAX_SYNCOOKIE_AGE`: a cookie is good for this many minutes' counts. */
const MAX_SYNCOOKIE_AGE = 2;
/** `TCP_MSS_DEFAULT`, and IPv6's clamp `IPV6_MIN_MTU - 20 - 40`. */
const MSS_DEFAULT_V4 = 536, MSS_DEFAULT_V6 = 1220;
/** `msstab` of net/ipv4/syncookies.c and of net/ipv6/syncookies.c. */
export const MSSTAB = {
  v4: [536, 1300, 1440, 1460],
  v6: [1220, 1420, 1440, 8940],
} as const;
/** `HZ` of the oracle's kernel (Debian: `CONFIG_HZ_250`). */
export const HZ = 250;
/** `INITIAL_JIFFIES` on 64-bit: five minutes before the 32-bit wrap. */
const INITIAL_JIFFIES = 2n ** 32n - 300n * BigInt(HZ);

/**
 * The simulation's `syncookie_secret[2]` (IPv4) and `syncookie6_secret[2]`
 * (IPv6): key byte i of secret c of family f (0: IPv4, 1: IPv6) is
 * `32f + 16c + i`, i.e. 00 01 … 0f, 10 … 1f, 20 … 2f, 30 … 3f.
 */
export const SYNCOOKIE_SECRET: readonly Uint8Array[] = [0, 1, 2, 3].map((n) =>
  Uint8Array.from({ length: 16 }, (_, i) => 16 * n + i)
);

const M64 = (1n << 64n) - 1n;
const rotl = (x: bigint, b: bigint) => ((x << b) | (x >> (64n - b))) & M64;

/** SipHash-2-4 of `msg` under the 16-byte `key` (lib/siphash.c `siphash()`). */
export function siphash(msg: Uint8Array, key: Uint8Array): bigint {
  const kv = new DataView(key.buffer, key.byteOffset, 16);
  const k0 = kv.getBigUint64(0, true), k1 = kv.getBigUint64(8, true);
  let v0 = 0x736f6d6570736575n ^ k0, v1 = 0x646f72616e646f6dn ^ k1;
  let v2 = 0x6c7967656e657261n ^ k0, v3 = 0x7465646279746573n ^ k1;
  const round = () => {
    v0 = (v0 + v1) & M64, v1 = rotl(v1, 13n) ^ v0, v0 = rotl(v0, 32n);
    v2 = (v2 + v3) & M64, v3 = rotl(v3, 16n) ^ v2;
    v0 = (v0 + v3) & M64, v3 = rotl(v3, 21n) ^ v0;
    v2 = (v2 + v1) & M64, v1 = rotl(v1, 17n) ^ v2, v2 = rotl(v2, 32n);
  };
  const compress = (m: bigint) => {
    v3 ^= m;
    round();
    round();
    v0 ^= m;
  };
  const full = msg.length & ~7;
  const mv = new DataView(msg.buffer, msg.byteOffset, msg.length);
  for (let i = 0; i < full; i += 8) compress(mv.getBigUint64(i, true));
  let last = BigInt(msg.length & 0xff) << 56n;
  for (let i = full; i < msg.length; i++) {
    last |= BigInt(msg[i]) << BigInt(8 * (i - full));
  }
  compress(last);
  v2 ^= 0xffn;
  for (let i = 0; i < 4; i++) round();
  return v0 ^ v1 ^ v2 ^ v3;
}

/** The addresses and ports a cookie hashes, as they lie in the headers. */
interface Flow {
  /** 0: IPv4, 1: IPv6. */
  readonly family: 0 | 1;
  /** `saddr` then `daddr` (4 or 16 bytes each). */
  readonly saddr: Uint8Array;
  /** See {@link saddr}. */
  readonly daddr: Uint8Array;
  /** `th->source` and `th->dest`, in memory order. */
  readonly ports: Uint8Array;
}

/**
 * `cookie_hash()`: IPv4 hashes saddr, daddr, `sport << 16 | dport`, count
 * as four u32 (`siphash_4u32()`); IPv6 a struct of saddr, daddr, count,
 * sport, dport (40 bytes). Both are the same bytes in memory order.
 */
function cookieHash(flow: Flow, count: number, c: 0 | 1): number {
  const v4 = flow.family === 0;
  const msg = new Uint8Array(v4 ? 16 : 40);
  const dv = new DataView(msg.buffer);
  msg.set(flow.saddr, 0);
  msg.set(flow.daddr, v4 ? 4 : 16);
  const sport = flow.ports[0] | (flow.ports[1] << 8);
  const dport = flow.ports[2] | (flow.ports[3] << 8);
  if (v4) {
    dv.setUint32(8, ((sport << 16) | dport) >>> 0, true);
    dv.setUint32(12, count, true);
  } else {
    dv.setUint32(32, count, true);
    msg.set(flow.ports, 36);
  }
  const key = SYNCOOKIE_SECRET[2 * flow.family + c];
  return Number(siphash(msg, key) & 0xffffffffn);
}

/** `tcp_cookie_time()` at simulated time `ns`: minutes of jiffies, as a u32. */
export function tcpCookieTime(ns: number): number {
  const jiffies = INITIAL_JIFFIES + BigInt(ns) * BigInt(HZ) / 1_000_000_000n;
  return Number((jiffies / BigInt(60 * HZ)) & 0xffffffffn);
}

/** `secure_tcp_syn_cookie()`. */
function secureSynCookie(f: Flow, sseq: number, data: number, count: number) {
  return (cookieHash(f, 0, 0) + sseq + (count << COOKIEBITS) +
    ((cookieHash(f, count, 1) + data) & COOKIEMASK)) >>> 0;
}

/** `check_tcp_syn_cookie()`: the MSS index, or 0xffffffff for a stale count. */
function checkSynCookie(f: Flow, cookie: number, sseq: number, count: number) {
  const c = (cookie - (cookieHash(f, 0, 0) + sseq)) >>> 0;
  const diff = (count - (c >>> COOKIEBITS)) & (0xffffffff >>> COOKIEBITS);
  if (diff >= MAX_SYNCOOKIE_AGE) return 0xffffffff;
  return ((c - cookieHash(f, (count - diff) >>> 0, 1)) & COOKIEMASK) >>> 0;
}

/**
 * `tcp_parse_mss_option(th, 0)`: the MSS option's value among the options
 * after the 20-byte header (`th` holds `doff * 4` bytes), or 0.
 */
export function tcpParseMssOption(th: Uint8Array): number {
  let length = (th[12] >> 4) * 4 - 20, at = 20, mss = 0;
  while (length > 0) {
    const opcode = th[at++];
    if (opcode === 0) return mss; // TCPOPT_EOL
    if (opcode === 1) { // TCPOPT_NOP
      length--;
      continue;
    }
    if (length < 2) return mss;
    const opsize = th[at++];
    if (opsize < 2 || opsize > length) return mss; // silly or partial
    if (opcode === 2 && opsize === 4) { // TCPOPT_MSS, TCPOLEN_MSS
      const inMss = (th[at] << 8) | th[at + 1];
      if (inMss) mss = inMss;
    }
    at += opsize - 2;
    length -= opsize;
  }
  return mss;
}

/** `ntohl()` of the u32 at `off`. */
const be32 = (b: Uint8Array, off: number) =>
  new DataView(b.buffer, b.byteOffset).getUint32(off, false);

/** The flow of an IP header (20 or 40 bytes) and a TCP header. */
function flowOf(family: 0 | 1, iph: Uint8Array, th: Uint8Array): Flow {
  const [at, len] = family === 0 ? [12, 4] : [8, 16];
  return {
    family,
    saddr: iph.slice(at, at + len),
    daddr: iph.slice(at + len, at + 2 * len),
    ports: th.slice(0, 4),
  };
}

/**
 * `bpf_tcp_raw_gen_syncookie_ipv4/6(iph, th, th_len)` at time `ns`: -EINVAL
 * unless `th_len` is the header's `doff * 4` (≥ 20); else the cookie in
 * the low 32 bits and the MSS it encodes above (`__cookie_v4/6_init_sequence()`).
 */
export function rawGenSyncookie(
  family: 0 | 1,
  iph: Uint8Array,
  th: Uint8Array,
  ns: number,
): bigint {
  if (th.length < 20 || th.length !== (th[12] >> 4) * 4) return BigInt(-EINVAL);
  const table = family === 0 ? MSSTAB.v4 : MSSTAB.v6;
  const mss = tcpParseMssOption(th) ||
    (family === 0 ? MSS_DEFAULT_V4 : MSS_DEFAULT_V6);
  let mssind = table.length - 1;
  while (mssind > 0 && mss < table[mssind]) mssind--;
  const cookie = secureSynCookie(
    flowOf(family, iph, th),
    be32(th, 4),
    mssind,
    tcpCookieTime(ns),
  );
  return BigInt(cookie) | (BigInt(table[mssind]) << 32n);
}

/**
 * `bpf_tcp_raw_check_syncookie_ipv4/6(iph, th)` at time `ns`: 0 when
 * `ack_seq - 1` is a cookie for this flow and `seq - 1`
 * (`__cookie_v4/6_check()` finds an MSS), else -EACCES.
 */
export function rawCheckSyncookie(
  family: 0 | 1,
  iph: Uint8Array,
  th: Uint8Array,
  ns: number,
): number {
  const table = family === 0 ? MSSTAB.v4 : MSSTAB.v6;
  const mssind = checkSynCookie(
    flowOf(family, iph, th),
    (be32(th, 8) - 1) >>> 0,
    (be32(th, 4) - 1) >>> 0,
    tcpCookieTime(ns),
  );
  return mssind < table.length ? 0 : -EACCES;
}

/** Reads the IP header (20 or 40 bytes) of argument 1. */
const ipHeader = (vm: CallContext, family: 0 | 1) =>
  vm.mem.readBytes(vm.arg(1), family === 0 ? 20 : 40);

/** The four raw SYN cookie helpers (ids 204–207), for tc and XDP. */
export function syncookieHelpers(): [number, HelperFn][] {
  const gen = (family: 0 | 1): HelperFn => (vm) =>
    rawGenSyncookie(
      family,
      ipHeader(vm, family),
      vm.mem.readBytes(vm.arg(2), vm.argLo(3) >>> 0),
      vm.nowNs(),
    );
  const check = (family: 0 | 1): HelperFn => (vm) =>
    rawCheckSyncookie(
      family,
      ipHeader(vm, family),
      vm.mem.readBytes(vm.arg(2), 20),
      vm.nowNs(),
    );
  return [[204, gen(0)], [205, gen(1)], [206, check(0)], [207, check(1)]];
}
