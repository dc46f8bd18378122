/**
 * The socket lookup helpers of tc and XDP programs (net/core/filter.c):
 * `bpf_sk_lookup_tcp` (84), `bpf_sk_lookup_udp` (85) and
 * `bpf_skc_lookup_tcp` (99), and the release of what they return,
 * `bpf_sk_release` (86). bpfsim's kernel has no sockets: its socket
 * tables are empty, so a lookup that gets as far as the tables finds
 * nothing, exactly as the real kernel's does in a `BPF_PROG_TEST_RUN`
 * when no socket matches the tuple. Every helper therefore returns NULL;
 * what is modelled is *why*, step by step as `__bpf_skc_lookup()` decides
 * it, so that the argument checks that end a lookup before it looks are
 * the kernel's own (and can be asked with {@link skLookupOutcome}).
 *
 * Since no lookup hands out a socket, no program holds a reference for
 * `bpf_sk_release` to drop: the verifier lets it be called only on a
 * reference a lookup returned, and those are all NULL. Its runtime is
 * `bpf_sk_release()`'s `if (sk && sk_is_refcounted(sk))`: NULL returns 0;
 * anything else can only reach it with verification off, and is the
 * refcount underflow the kernel would suffer — the call fails, naming it.
 * @module
 */
import { ExecError } from "../../exec/fault.ts";
import type { HelperFn } from "../../exec/state.ts";

/** Helper ids of the socket lookups. */
export const SOCK_LOOKUP_HELPER = {
  sk_lookup_tcp: 84,
  sk_lookup_udp: 85,
  skc_lookup_tcp: 99,
  sk_release: 86,
} as const;

/** `sizeof(tuple->ipv4)`: saddr, daddr, sport, dport. */
export const SOCK_TUPLE_IPV4_SIZE = 12;
/** `sizeof(tuple->ipv6)`: saddr[4], daddr[4], sport, dport. */
export const SOCK_TUPLE_IPV6_SIZE = 36;
/** `AF_INET`, `AF_INET6`. */
const AF_INET = 2, AF_INET6 = 10;
/** `IPPROTO_TCP`, `IPPROTO_UDP`. */
const IPPROTO_TCP = 6, IPPROTO_UDP = 17;
/** `S32_MAX`: the largest netns id `__bpf_skc_lookup()` accepts. */
const S32_MAX = 0x7fffffffn;

/**
 * Why a lookup found no socket, in the order `__bpf_skc_lookup()` tests:
 * - `tuple_size`: `len` is neither the IPv4 nor the IPv6 tuple's size;
 * - `flags`: a flag is set (none is defined);
 * - `netns_id`: the id is neither negative as an s32 (the caller's
 *   namespace, `BPF_F_CURRENT_NETNS`) nor at most `S32_MAX`;
 * - `no_netns`: `get_net_ns_by_id()` knows no namespace with that id;
 * - `no_socket`: the lookup ran in a namespace whose tables hold no
 *   matching socket (in bpfsim, no socket at all).
 */
export type SkLookupMiss =
  | "tuple_size"
  | "flags"
  | "netns_id"
  | "no_netns"
  | "no_socket";

/** What a socket lookup decided, with the family and namespace it used. */
export interface SkLookupOutcome {
  /** Why nothing was found (the helper returns NULL in every case). */
  readonly miss: SkLookupMiss;
  /** `AF_INET` or `AF_INET6` once the size chose one, else undefined. */
  readonly family?: number;
  /**
   * The namespace the tables were searched in (`no_socket` only):
   * `"caller"` for the caller's own, else the netns id.
   */
  readonly netns?: "caller" | number;
}

/**
 * `get_net_ns_by_id(caller_net, id)`: the namespace the caller's netns
 * knows by `id`. Ids are handed out (`peernet2id_alloc()`) only when a
 * namespace refers to another one (a veth pair across namespaces, a
 * netlink request); the simulated host has one namespace and no ids.
 */
function netnsById(_id: number): boolean {
  return false;
}

/**
 * Mirrors `__bpf_skc_lookup()` (and `__bpf_sk_lookup()`, which differs
 * only in what it does with a socket it found): the tuple size picks the
 * family, then `flags` and the netns id are checked, then the lookup
 * runs in the caller's namespace (`(s32)netns_id < 0`) or in the one
 * `get_net_ns_by_id()` returns. `netnsId` is the helper's argument as
 * the prototype types it: u64 for skb programs, u32 for XDP
 * (`bpf_xdp_sk_lookup_*()` take a `u32 netns_id`). `sdif` and `ifindex`
 * only narrow a search that finds nothing here, so they are not taken.
 */
export function skLookupOutcome(
  len: number,
  netnsId: bigint,
  flags: bigint,
): SkLookupOutcome {
  let family: number;
  if (len === SOCK_TUPLE_IPV4_SIZE) family = AF_INET;
  else if (len === SOCK_TUPLE_IPV6_SIZE) family = AF_INET6;
  else return { miss: "tuple_size" };
  if (flags !== 0n) return { miss: "flags", family };
  const low = BigInt.asIntN(32, netnsId);
  if (!(low < 0n || netnsId <= S32_MAX)) return { miss: "netns_id", family };
  if (low < 0n) return { miss: "no_socket", family, netns: "caller" };
  const id = Number(netnsId);
  if (!netnsById(id)) return { miss: "no_netns", family };
  return { miss: "no_socket", family, netns: id };
}

/** A lookup as a helper made it: the table searched and the outcome. */
export interface SkLookupCall extends SkLookupOutcome {
  /** `IPPROTO_TCP` (6) or `IPPROTO_UDP` (17). */
  readonly proto: number;
}

/** Called with each lookup a helper makes (for tests and tracing). */
export type SkLookupObserver = (call: SkLookupCall) => void;

/**
 * One lookup helper: `(ctx, tuple, len, netns_id, flags)`. `proto` is the
 * table searched: with empty tables it changes nothing, but the observer
 * is told. The tuple (r2) is not read: the kernel reads it only inside
 * `sk_lookup()`, and the verifier has proved it readable for `len` bytes.
 */
function lookupHelper(
  proto: number,
  netnsIdBits: 32 | 64,
  observe: SkLookupObserver | undefined,
): HelperFn {
  return (vm) => {
    const len = vm.argLo(3) >>> 0; // u32 len
    const raw = vm.arg(4);
    const netnsId = netnsIdBits === 32 ? raw & 0xffffffffn : raw;
    const outcome = skLookupOutcome(len, netnsId, vm.arg(5));
    observe?.({ ...outcome, proto });
    return 0; // NULL: whatever the outcome, no socket
  };
}

/**
 * `bpf_sk_release(sk)`: 0 for NULL; any other pointer is a socket no
 * lookup acquired (bpfsim's lookups find none), so releasing it would
 * drop a reference the program does not own — an error only a program
 * that was not verified can make.
 */
const skRelease: HelperFn = (vm) => {
  const sk = vm.arg(1);
  if (sk === 0n) return 0;
  throw new ExecError(
    vm.insnIndex,
    `bpf_sk_release of 0x${sk.toString(16)}: the program holds no socket ` +
      "reference (no lookup returned one), so the release would underflow " +
      "its refcount",
  );
};

/**
 * The lookups of an skb program (`bpf_sk_lookup_tcp()`,
 * `bpf_sk_lookup_udp()`, `bpf_skc_lookup_tcp()`, and tc's
 * `bpf_tc_sk_lookup_*()`): a u64 netns id. The verifier offers them to
 * tc, cgroup skb and sk_skb programs, not to socket filters.
 */
export function skbSockLookupHelpers(
  observe?: SkLookupObserver,
): [number, HelperFn][] {
  return [
    [SOCK_LOOKUP_HELPER.sk_lookup_tcp, lookupHelper(IPPROTO_TCP, 64, observe)],
    [SOCK_LOOKUP_HELPER.sk_lookup_udp, lookupHelper(IPPROTO_UDP, 64, observe)],
    [SOCK_LOOKUP_HELPER.skc_lookup_tcp, lookupHelper(IPPROTO_TCP, 64, observe)],
    [SOCK_LOOKUP_HELPER.sk_release, skRelease],
  ];
}

/**
 * The lookups of an XDP program (`bpf_xdp_sk_lookup_tcp()`,
 * `bpf_xdp_sk_lookup_udp()`, `bpf_xdp_skc_lookup_tcp()`): their netns id
 * is a u32, so its upper half is dropped before the checks.
 */
export function xdpSockLookupHelpers(
  observe?: SkLookupObserver,
): [number, HelperFn][] {
  return [
    [SOCK_LOOKUP_HELPER.sk_lookup_tcp, lookupHelper(IPPROTO_TCP, 32, observe)],
    [SOCK_LOOKUP_HELPER.sk_lookup_udp, lookupHelper(IPPROTO_UDP, 32, observe)],
    [SOCK_LOOKUP_HELPER.skc_lookup_tcp, lookupHelper(IPPROTO_TCP, 32, observe)],
    [SOCK_LOOKUP_HELPER.sk_release, skRelease],
  ];
}
