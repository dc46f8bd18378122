/**
 * Packet helpers that ask about the device, route, socket or cgroup of a
 * test run's packet (net/core/filter.c), and the redirect helpers. The
 * test run's world is small: the packet arrives on the loopback device
 * (ifindex 1, MTU 65536, 14-byte header) of the caller's network
 * namespace, the skb carries a dummy socket owned by uid 0 (packet_sock.ts:
 * its cookie comes from the host's counter), and there is
 * no route (`dst`) or flow dissection. What the host decides — other
 * devices, routes, cookies — is modelled as a fresh host with only `lo`.
 * @module
 */
import type { CallContext, HelperFn } from "../../exec/state.ts";
import { SK_BUFF_OFFSETS } from "../../verifier/ctx_access/skb.ts";
import { SIM_ROOT_CGROUP_ID } from "../generic_helpers_task.ts";
import { socketCookieHelper } from "./packet_sock_helpers.ts";
import type { SkbContext, XdpContext } from "../test_run_ctx.ts";
import {
  EAFNOSUPPORT,
  EINVAL,
  ENODEV,
  EOPNOTSUPP,
  ERANGE,
} from "../../uapi/errno.ts";

const SKB = SK_BUFF_OFFSETS;
/** `lo`'s ifindex, `mtu` and `hard_header_len`. */
export const LOOPBACK = { ifindex: 1, mtu: 65536, hardHeaderLen: 14 } as const;
/**
 * The netns cookie of a fresh host's initial namespace. The kernel hands
 * cookies out from a global counter, so a real host's value depends on
 * what it created before (the oracle's host gave 3).
 */
export const NETNS_COOKIE = 1;
/** The cgroup the test run's socket belongs to: the root of cgroup v2 (id 1). */
export const ROOT_CGROUP_ID: number = SIM_ROOT_CGROUP_ID;
/** `overflowuid`: what `bpf_get_socket_uid()` says of a socket that is not full. */
export const OVERFLOW_UID = 65534;
/** `sizeof(struct bpf_fib_lookup)`. */
const FIB_LOOKUP_SIZE = 64;
/** `BPF_FIB_LOOKUP_MASK`: DIRECT, OUTPUT, SKIP_NEIGH, TBID, SRC, MARK. */
const FIB_LOOKUP_MASK = 0x3fn;
/** `BPF_FIB_LKUP_RET_NOT_FWDED`, `BPF_FIB_LKUP_RET_FWD_DISABLED`. */
const FIB_NOT_FWDED = 4, FIB_FWD_DISABLED = 3;

/** `dev_get_by_index_rcu()` in a namespace whose only device is `lo`. */
function deviceExists(ifindex: number): boolean {
  return ifindex === LOOPBACK.ifindex;
}

/** `rt6_need_strict()`: multicast, link-local or loopback. */
function needStrict(a: Uint8Array): boolean {
  if (a[0] === 0xff) return true;
  if (a[0] === 0xfe && (a[1] & 0xc0) === 0x80) return true;
  return a.subarray(0, 15).every((b) => b === 0) && a[15] === 1;
}

/**
 * `bpf_skb_fib_lookup()` / `bpf_xdp_fib_lookup()` up to the route lookup:
 * the argument checks, then the device and forwarding checks of
 * `bpf_ipv4_fib_lookup()` / `bpf_ipv6_fib_lookup()`. `lo` does not forward
 * (`net.ipv4.conf.lo.forwarding` defaults to 0).
 */
function fibLookup(params: Uint8Array, plen: number, flags: bigint): number {
  if (plen < FIB_LOOKUP_SIZE) return -EINVAL;
  if (flags & ~FIB_LOOKUP_MASK) return -EINVAL;
  const ifindex = new DataView(params.buffer, params.byteOffset).getUint32(
    8,
    true,
  );
  switch (params[0]) {
    case 2: // AF_INET
      return deviceExists(ifindex) ? FIB_FWD_DISABLED : -ENODEV;
    case 10: // AF_INET6
      if (
        needStrict(params.subarray(32, 48)) ||
        needStrict(params.subarray(16, 32))
      ) {
        return FIB_NOT_FWDED;
      }
      return deviceExists(ifindex) ? FIB_FWD_DISABLED : -ENODEV;
    default:
      return -EAFNOSUPPORT;
  }
}

/**
 * `bpf_skb_check_mtu()` / `bpf_xdp_check_mtu()` against `lo`: 0 when
 * `len` (or `*mtu_len` + header) plus `len_diff` fits, 1
 * (`BPF_MTU_CHK_RET_FRAG_NEEDED`) when not; `*mtu_len` gets the MTU.
 */
function checkMtu(
  vm: Parameters<HelperFn>[0],
  len: number,
  flagsOk: (flags: bigint, mtuIn: number, lenDiff: number) => boolean,
): number {
  const ifindex = vm.argLo(2) >>> 0, mtuAddr = vm.arg(3), lenDiff = vm.argLo(4);
  const mtuIn = new DataView(vm.mem.readBytes(mtuAddr, 4).buffer).getUint32(
    0,
    true,
  );
  if (!flagsOk(vm.arg(5), mtuIn, lenDiff)) return -EINVAL;
  if (ifindex !== 0 && !deviceExists(ifindex)) return -ENODEV;
  const devLen = LOOPBACK.mtu + LOOPBACK.hardHeaderLen;
  const pktLen = (mtuIn ? mtuIn + LOOPBACK.hardHeaderLen : len) + lenDiff;
  const out = new Uint8Array(4);
  new DataView(out.buffer).setUint32(0, LOOPBACK.mtu, true);
  vm.mem.writeBytes(mtuAddr, out);
  return pktLen <= devLen ? 0 : 1;
}

/** The device, route, socket and cgroup helpers of an skb program. */
export function skbNetInfoHelpers(skb: SkbContext): [number, HelperFn][] {
  return [
    // bpf_redirect(ifindex, flags): TC_ACT_REDIRECT, TC_ACT_SHOT on bad flags
    [23, (vm) => (vm.arg(2) & ~1n) ? 2 : 7],
    // bpf_clone_redirect(skb, ifindex, flags): the clone goes out on lo
    [13, (vm) => {
      if (vm.arg(3) & ~1n) return -EINVAL;
      if (!deviceExists(vm.argLo(2) >>> 0)) return -EINVAL;
      // __bpf_redirect_common(): a link-layer header must be carried
      return skb.macOff >= skb.netOff ? -ERANGE : 0;
    }],
    // bpf_skb_check_mtu(skb, ifindex, mtu_len, len_diff, flags)
    [
      163,
      (vm) =>
        checkMtu(
          vm,
          skb.len,
          (flags, mtuIn, lenDiff) =>
            !(flags & ~1n) && !((flags & 1n) && (lenDiff || mtuIn)),
        ),
    ],
    // bpf_skb_fib_lookup(skb, params, plen, flags)
    [69, fibLookupHelper],
    // bpf_get_route_realm(skb): dst_tclassid(), no route
    [24, () => 0],
    // bpf_get_cgroup_classid(skb): task_get_classid() outside softirq, no net_cls
    [17, () => 0],
    // bpf_skb_cgroup_id(skb): skb->sk's cgroup, 0 if not a full socket
    [79, () => skb.sock.fullsock ? ROOT_CGROUP_ID : 0],
    // bpf_skb_ancestor_cgroup_id(skb, int level): only the root (level 0) exists
    [
      83,
      (vm) => skb.sock.fullsock && vm.argLo(2) === 0 ? ROOT_CGROUP_ID : 0,
    ],
    // bpf_get_socket_uid(skb): sock_init_data(NULL, sk) gave skb->sk uid 0
    [47, () => skb.sock.fullsock ? skb.sock.uid : OVERFLOW_UID],
    // bpf_get_socket_cookie(skb): skb->sk is never NULL in a test run
    [46, socketCookieHelper(skb.sock)],
    // bpf_get_netns_cookie(ctx or NULL): the caller's netns (or init_net)
    [122, () => NETNS_COOKIE],
    // bpf_skb_set_tstamp(skb, tstamp, tstamp_type)
    [192, (vm) => setTstamp(skb, vm.arg(2), vm.argLo(3) >>> 0)],
  ];
}

/** `bpf_skb_set_tstamp()`: IP packets only; MONOTONIC (1) and TAI (2) need a time. */
function setTstamp(skb: SkbContext, tstamp: bigint, type: number): number {
  const proto = skb.protocol;
  if (proto !== 0x0800 && proto !== 0x86dd) return -EOPNOTSUPP;
  if (type > 2 || (type !== 0 && tstamp === 0n)) return -EINVAL;
  skb.setField(SKB.tstamp, 8, tstamp);
  skb.setField(SKB.tstamp_type, 1, type);
  return 0;
}

/** The XDP counterparts: redirect, MTU check, FIB lookup, buffer length. */
export function xdpNetInfoHelpers(xdp: XdpContext): [number, HelperFn][] {
  return [
    // bpf_xdp_redirect(ifindex, flags): XDP_REDIRECT, XDP_ABORTED on any flag
    [23, (vm) => vm.arg(2) ? 0 : 4],
    // bpf_xdp_check_mtu(xdp, ifindex, mtu_len, len_diff, flags): no flags
    [
      163,
      (vm) =>
        checkMtu(
          vm,
          xdp.packet.len,
          (flags) => flags === 0n,
        ),
    ],
    // bpf_xdp_fib_lookup(xdp, params, plen, flags)
    [69, fibLookupHelper],
    // bpf_xdp_get_buff_len(xdp): linear only, no frags in a test run
    [188, () => xdp.packet.len],
  ];
}

/** `bpf_skb_fib_lookup()` / `bpf_xdp_fib_lookup()` (ctx, params, plen, flags): the same lookup. */
function fibLookupHelper(vm: CallContext): number {
  const plen = vm.argLo(3);
  const params = vm.mem.readBytes(vm.arg(2), Math.max(0, Math.min(plen, 64)));
  return fibLookup(params, plen, vm.arg(4) & 0xffffffffn);
}
