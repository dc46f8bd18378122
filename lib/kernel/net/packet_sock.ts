/**
 * The socket `BPF_PROG_TEST_RUN` hangs on its skb (net/bpf/test_run.c,
 * `bpf_prog_test_run_skb()`): `sk_alloc(net, AF_UNSPEC, …, &bpf_dummy_proto)`
 * then `sock_init_data(NULL, sk)`, with `sk_family` and the addresses taken
 * from the packet's IP header. `__sk_buff.sk` points at it; a program reads
 * it as a `struct bpf_sock` whose loads the verifier rewrote into loads of
 * the `struct sock` (`bpf_sock_convert_ctx_access()`). Here the socket is a
 * hooked region (`RegionAccessHook`) whose loads give what those rewritten
 * loads give — including the narrow-load fix-ups of `convert_ctx_accesses()`
 * — and which no store reaches (`check_sock_access()` refuses them all).
 * @module
 */
import type { AddressSpace, RegionAccessHook } from "../../exec/memory.ts";
import {
  BPF_SOCK_OFFSETS,
  BPF_SOCK_SIZE,
  bpfSockIsValidAccess,
} from "../../verifier/ctx_access/sock.ts";

/** `AF_UNSPEC`, `AF_UNIX`, `AF_INET`, `AF_INET6`. */
export const AF = { UNSPEC: 0, UNIX: 1, INET: 2, INET6: 10 } as const;
/** `TCP_LISTEN`, `TCP_CLOSE`, `TCP_TIME_WAIT`, `TCP_NEW_SYN_RECV` (`sk_state`). */
export const TCP_STATE = {
  TIME_WAIT: 6,
  CLOSE: 7,
  LISTEN: 10,
  NEW_SYN_RECV: 12,
} as const;
/** `NO_QUEUE_MAPPING` (`USHRT_MAX`): `sk_rx_queue_clear()`'s value. */
export const NO_QUEUE_MAPPING = 0xffff;
/** `ETH_P_IP` and `ETH_P_IPV6` as the u32 `__sk_buff.protocol` reads them (little-endian host). */
const PROTO_IP_BE = 0x0008, PROTO_IPV6_BE = 0xdd86;

const O = BPF_SOCK_OFFSETS;
/**
 * The fields `bpf_sock_is_valid_access()` lets a program read a byte or a
 * half of (recording a 4-byte field): these offsets exactly …
 */
const NARROWABLE_AT: readonly number[] = [
  O.family,
  O.type,
  O.protocol,
  O.src_port,
  O.state,
  O.rx_queue_mapping,
];
/** … and anywhere in these ranges (`bpf_ctx_range()`, `bpf_ctx_range_till()`). */
const NARROWABLE_IN: readonly [number, number][] = [
  [O.src_ip4, 4],
  [O.src_ip6, 16],
  [O.dst_ip4, 4],
  [O.dst_ip6, 16],
];

/** The simulated sockets of each address space, by the address programs see. */
const SOCKETS = new WeakMap<AddressSpace, Map<bigint, TestRunSock>>();

function socketsOf(space: AddressSpace): Map<bigint, TestRunSock> {
  let m = SOCKETS.get(space);
  if (m === undefined) SOCKETS.set(space, m = new Map());
  return m;
}

/**
 * The simulated socket (a test run's, a sock_ops or sk_msg run's …) whose
 * `struct sock` sits at `address` in `space`, if any: what a helper given
 * a socket pointer finds there.
 */
export function registeredSockAt(
  space: AddressSpace,
  address: bigint,
): TestRunSock | undefined {
  return SOCKETS.get(space)?.get(address);
}

/**
 * The test run's dummy `struct sock`: the fields BPF can see. Everything
 * `sk_alloc()` zeroed stays 0 (type, protocol, mark, priority, ports,
 * bound_dev_if); `sock_init_data()` makes it `TCP_CLOSE`, clears its rx
 * queue (`NO_QUEUE_MAPPING`) and, without a `struct socket`, gives it uid 0.
 */
export class TestRunSock implements RegionAccessHook {
  /** `sk_family`: `AF_INET` / `AF_INET6` for IP packets, else `AF_UNSPEC`. */
  readonly family: number;
  /** `sk_type` (a `struct socket` would have set it). */
  readonly type: number = 0;
  /** `sk_protocol`: `bpf_dummy_proto` is no protocol. */
  readonly protocol: number = 0;
  /** `sk_state`. */
  readonly state: number = TCP_STATE.CLOSE;
  /** `sk_mark`, `sk_priority`, `sk_bound_dev_if`. */
  readonly mark: number = 0;
  /** See {@link mark}. */
  readonly priority: number = 0;
  /** See {@link mark}. */
  readonly boundDevIf: number = 0;
  /** `skc_num` (local port, host order) and `skc_dport` (`__be16`). */
  readonly num: number = 0;
  /** See {@link num}. */
  readonly dport: number = 0;
  /** `sk_rx_queue_mapping`. */
  readonly rxQueueMapping: number = NO_QUEUE_MAPPING;
  /** `sk_prot`: the test run's own `bpf_dummy_proto`, no TCP or UDP one. */
  readonly prot: "bpf_dummy" | "tcp" = "bpf_dummy";
  /** `sk_is_mptcp()`: an MPTCP subflow (never: not even TCP). */
  readonly isMptcp: boolean = false;
  /** `sk_uid`: root's, as `sock_init_data(NULL, …)` sets it. */
  readonly uid: number = 0;
  /** `skc_rcv_saddr` (IPv4 packets: `iph->saddr`), network order bytes. */
  readonly rcvSaddr: Uint8Array = new Uint8Array(4);
  /** `skc_daddr` (IPv4 packets: `iph->daddr`). */
  readonly daddr: Uint8Array = new Uint8Array(4);
  /** `skc_v6_rcv_saddr` (IPv6 packets: `ip6h->saddr`). */
  readonly v6RcvSaddr: Uint8Array = new Uint8Array(16);
  /** `skc_v6_daddr` (IPv6 packets: `ip6h->daddr`). */
  readonly v6Daddr: Uint8Array = new Uint8Array(16);
  /** `sk_cookie`: 0 until `__sock_gen_cookie()` hands one out. */
  cookie = 0n;
  private readonly space: AddressSpace;
  private mapped: bigint | undefined = undefined;

  /**
   * The socket of a test skb whose `skb->protocol` (as `__sk_buff.protocol`
   * reads it) is `protocolBe` and whose network header starts `l3`: the
   * addresses are copied only when the linear data holds the whole header.
   */
  constructor(space: AddressSpace, protocolBe: number, l3: Uint8Array) {
    this.space = space;
    if (protocolBe === PROTO_IP_BE) {
      this.family = AF.INET;
      if (l3.length >= 20) {
        this.rcvSaddr.set(l3.subarray(12, 16));
        this.daddr.set(l3.subarray(16, 20));
      }
    } else if (protocolBe === PROTO_IPV6_BE) {
      this.family = AF.INET6;
      if (l3.length >= 40) {
        this.v6RcvSaddr.set(l3.subarray(8, 24));
        this.v6Daddr.set(l3.subarray(24, 40));
      }
    } else {
      this.family = AF.UNSPEC;
    }
  }

  /**
   * `skb->sk`: the socket's address, its region mapped (and the socket
   * registered with its address space, {@link registeredSockAt}) on first use.
   */
  get address(): bigint {
    if (this.mapped === undefined) {
      this.mapped = this.space.mapRegion("kernel", BPF_SOCK_SIZE, {
        name: "sock (test run)",
        hook: this,
      });
      socketsOf(this.space).set(this.mapped, this);
    }
    return this.mapped;
  }

  /** Whether `address` is this socket (a helper's socket argument). */
  is(address: bigint): boolean {
    return this.mapped !== undefined && address === this.mapped;
  }

  /** Mirrors `sk_fullsock()`: neither a timewait nor a request socket. */
  get fullsock(): boolean {
    return this.state !== TCP_STATE.TIME_WAIT &&
      this.state !== TCP_STATE.NEW_SYN_RECV;
  }

  /** Unmaps the socket's region, if a program ever asked for it. */
  release(): void {
    if (this.mapped !== undefined) {
      this.space.unmapRegion(this.mapped);
      socketsOf(this.space).delete(this.mapped);
    }
    this.mapped = undefined;
  }

  /**
   * A load of `size` bytes at `offset` of `struct bpf_sock`, as the
   * rewritten program computes it (undefined, a fault, for what the
   * verifier refuses). Mirrors `convert_ctx_accesses()`: a load narrower
   * than the field the verifier recorded is widened to the field's
   * aligned start, converted, then shifted and masked with 32-bit ALU ops
   * only if still narrower than the kernel field it read — so a u16 of
   * `rx_queue_mapping` is the conversion's 64-bit -1, a u8 of it 0xff.
   */
  load(offset: number, size: number): bigint | undefined {
    if (!bpfSockIsValidAccess(offset, size, "read").ok) return undefined;
    const recorded = recordedFieldSize(offset, size);
    const narrow = size < recorded;
    const base = narrow ? offset & ~(recorded - 1) : offset;
    const { value, width } = this.convert(base);
    if (!narrow || size >= width) return value;
    const shift = BigInt((offset & (recorded - 1)) * 8);
    return (BigInt.asUintN(32, value) >> shift) &
      ((1n << BigInt(8 * size)) - 1n);
  }

  /** Sockets are read-only to BPF (`R%d cannot write into sock_common`). */
  store(): boolean {
    return false;
  }

  /**
   * Mirrors `bpf_sock_convert_ctx_access()` for a load at `off` (after the
   * narrow-load widening): the value and the width of the `struct sock`
   * field it loads (`target_size`).
   */
  private convert(off: number): { value: bigint; width: number } {
    const word = (bytes: Uint8Array, at: number) => ({
      value: BigInt(
        new DataView(bytes.buffer, bytes.byteOffset).getUint32(at, true),
      ),
      width: 4,
    });
    const n = (value: number, width: number) => ({
      value: BigInt(value),
      width,
    });
    if (off >= O.src_ip6 && off < O.src_ip6 + 16) {
      return word(this.v6RcvSaddr, off - O.src_ip6);
    }
    if (off >= O.dst_ip6 && off < O.dst_ip6 + 16) {
      return word(this.v6Daddr, off - O.dst_ip6);
    }
    switch (off) {
      case O.bound_dev_if:
        return n(this.boundDevIf, 4);
      case O.family:
        return n(this.family, 2);
      case O.type:
        return n(this.type, 2);
      case O.protocol:
        return n(this.protocol, 2);
      case O.mark:
        return n(this.mark, 4);
      case O.priority:
        return n(this.priority, 4);
      case O.src_ip4:
        return word(this.rcvSaddr, 0);
      case O.dst_ip4:
        return word(this.daddr, 0);
      case O.src_port:
        return n(this.num, 2);
      case O.dst_port:
        return n(this.dport, 2);
      case O.state:
        return n(this.state, 1);
      case O.rx_queue_mapping:
        // the u16 field, then `if (r != NO_QUEUE_MAPPING) skip; r = -1` (MOV64)
        return this.rxQueueMapping === NO_QUEUE_MAPPING
          ? { value: 0xffffffffffffffffn, width: 2 }
          : n(this.rxQueueMapping, 2);
    }
    throw new Error(`bpf_sock offset ${off} has no conversion`); // unreachable: checked access
  }
}

/**
 * The `ctx_field_size` `bpf_sock_is_valid_access()` records for a load:
 * 4 for the narrowable fields, the size of `dst_port` (2) for its narrow
 * loads, none (0: never narrowed) for the u32-only fields.
 */
function recordedFieldSize(offset: number, size: number): number {
  if (offset >= O.dst_port && offset < O.dst_port + 2) {
    return size === 4 ? 4 : 2;
  }
  const hit = NARROWABLE_AT.includes(offset) ||
    NARROWABLE_IN.some(([at, len]) => offset >= at && offset < at + len);
  return hit ? 4 : 0;
}
