/**
 * Runtime of the packet helpers a test run's context offers
 * (net/core/filter.c): the skb helpers of socket filters and tc programs,
 * the XDP helpers of `xdp_buff` programs, over the packet of a
 * {@link SkbContext} or {@link XdpContext}.
 * @module
 */
import type { CallContext, HelperFn } from "../../exec/state.ts";
import {
  BPF_FUNC_csum_diff,
  csumDiffHelper,
  skbCsumHelpers,
} from "./packet_csum.ts";
import { skbNetInfoHelpers, xdpNetInfoHelpers } from "./packet_net_info.ts";
import { skbRedirectHelpers } from "./packet_redirect.ts";
import { syncookieHelpers } from "./packet_syncookie.ts";
import { clearHash, skbOpsHelpers } from "./packet_skb_ops.ts";
import { skbRoomHelpers } from "./packet_skb_room.ts";
import { sockHelpers } from "./packet_sock_helpers.ts";
import { sockTcpHelpers } from "./packet_sock_tcp.ts";
import {
  skbSockLookupHelpers,
  xdpSockLookupHelpers,
} from "./packet_sock_lookup.ts";
import { skbTunnelHelpers } from "./packet_tunnel.ts";
import { skbVlanHelpers } from "./packet_vlan.ts";
import type { SkbContext, XdpContext } from "../test_run_ctx.ts";
import { EFAULT, EINVAL } from "../../uapi/errno.ts";

/** Helper ids of the packet helpers. */
export const PACKET_HELPER = {
  skb_store_bytes: 9,
  skb_load_bytes: 26,
  xdp_adjust_head: 44,
  xdp_adjust_meta: 54,
  xdp_adjust_tail: 65,
  xdp_load_bytes: 189,
  xdp_store_bytes: 190,
} as const;

/** `BPF_F_RECOMPUTE_CSUM | BPF_F_INVALIDATE_HASH`: the flags skb_store_bytes knows. */
const SKB_STORE_FLAGS = 3;
/** `BPF_F_INVALIDATE_HASH`. */
const INVALIDATE_HASH = 2n;
/** `INT_MAX`: larger offsets are refused before any length check. */
const INT_MAX = 0x7fffffffn;

/**
 * `bpf_skb_load_bytes(skb, offset, to, len)` over the linear skb data
 * `data`: -EFAULT (and `to` zeroed) for an offset over `INT_MAX` or bytes
 * past the data, else 0.
 */
export function skbLoadBytes(vm: CallContext, data: Uint8Array): number {
  const offset = vm.arg(2) & 0xffffffffn, to = vm.arg(3);
  const len = vm.argLo(4) >>> 0;
  if (offset > INT_MAX || offset + BigInt(len) > BigInt(data.length)) {
    vm.mem.writeBytes(to, new Uint8Array(len));
    return -EFAULT;
  }
  const at = Number(offset);
  vm.mem.writeBytes(to, data.slice(at, at + len));
  return 0;
}

/**
 * `bpf_skb_store_bytes(skb, offset, from, len, flags)` into the linear
 * skb data `data`: -EINVAL for an unknown flag, -EFAULT for an offset over
 * `INT_MAX` or bytes past the data (`bpf_try_make_writable()` failing),
 * else 0; `clearHash` is `skb_clear_hash()` for `BPF_F_INVALIDATE_HASH`.
 */
export function skbStoreBytes(
  vm: CallContext,
  data: Uint8Array,
  clearHash: () => void,
): number {
  const offset = vm.arg(2) & 0xffffffffn, from = vm.arg(3);
  const len = vm.argLo(4) >>> 0, flags = vm.arg(5);
  if (flags & ~BigInt(SKB_STORE_FLAGS)) return -EINVAL;
  if (offset > INT_MAX) return -EFAULT;
  // bpf_try_make_writable(skb, offset + len): u32 arithmetic
  if (((offset + BigInt(len)) & 0xffffffffn) > BigInt(data.length)) {
    return -EFAULT;
  }
  data.set(vm.mem.readBytes(from, len), Number(offset));
  if (flags & INVALIDATE_HASH) clearHash();
  return 0;
}

/**
 * `bpf_skb_load_bytes()` / `bpf_skb_store_bytes()` between the packet
 * (`data … data_end`) and `buf`: -EFAULT out of the packet (a failed load
 * zeroes `buf`). The test skb has no checksum to recompute (never
 * CHECKSUM_COMPLETE). With them, every skb helper of this folder: checksums,
 * reshaping, VLAN, tunnel metadata, device and socket queries, socket
 * lookups (which find no socket), the casts of `skb->sk`, the redirects
 * and cgroup queries that need no map, the raw SYN cookies.
 */
export function skbHelpers(skb: SkbContext): Map<number, HelperFn> {
  return new Map<number, HelperFn>([
    ...skbCsumHelpers(skb),
    ...skbOpsHelpers(skb),
    ...skbRoomHelpers(skb),
    ...skbVlanHelpers(skb),
    ...skbTunnelHelpers(skb),
    ...skbNetInfoHelpers(skb),
    ...skbSockLookupHelpers(),
    ...sockHelpers(skb.sock),
    ...sockTcpHelpers(skb.sock),
    ...skbRedirectHelpers(),
    ...syncookieHelpers(),
    [PACKET_HELPER.skb_load_bytes, (vm) => skbLoadBytes(vm, skb.packet.data())],
    [
      PACKET_HELPER.skb_store_bytes,
      (vm) => skbStoreBytes(vm, skb.packet.data(), () => clearHash(skb)),
    ],
  ]);
}

/**
 * The bytes `bpf_xdp_pointer()` finds at `offset` for `len`: -EFAULT for
 * sizes over 0xffff, -EINVAL past the (linear) packet.
 */
function xdpBytes(
  xdp: XdpContext,
  offset: bigint,
  len: number,
): Uint8Array | number {
  if (offset > 0xffffn || len > 0xffff) return -EFAULT;
  const data = xdp.packet.data();
  if (offset + BigInt(len) > BigInt(data.length)) return -EINVAL;
  const at = Number(offset);
  return data.subarray(at, at + len);
}

/**
 * The XDP packet helpers: head, meta and tail adjustment, load and store,
 * redirect, MTU check, FIB lookup, buffer length, the socket lookups, the
 * raw SYN cookies and `bpf_csum_diff` (`bpf_redirect_map` is an object helper: it needs the maps).
 */
export function xdpHelpers(xdp: XdpContext): Map<number, HelperFn> {
  return new Map<number, HelperFn>([
    ...xdpNetInfoHelpers(xdp),
    ...xdpSockLookupHelpers(),
    ...syncookieHelpers(),
    [BPF_FUNC_csum_diff, csumDiffHelper],
    [PACKET_HELPER.xdp_adjust_head, (vm) => xdp.adjustHead(vm.argLo(2))],
    [PACKET_HELPER.xdp_adjust_meta, (vm) => xdp.adjustMeta(vm.argLo(2))],
    [PACKET_HELPER.xdp_adjust_tail, (vm) => xdp.adjustTail(vm.argLo(2))],
    [PACKET_HELPER.xdp_load_bytes, (vm) => {
      const bytes = xdpBytes(xdp, vm.arg(2), vm.argLo(4) >>> 0);
      if (typeof bytes === "number") return bytes;
      vm.mem.writeBytes(vm.arg(3), bytes);
      return 0;
    }],
    [PACKET_HELPER.xdp_store_bytes, (vm) => {
      const len = vm.argLo(4) >>> 0;
      const bytes = xdpBytes(xdp, vm.arg(2), len);
      if (typeof bytes === "number") return bytes;
      bytes.set(vm.mem.readBytes(vm.arg(3), len));
      return 0;
    }],
  ]);
}
