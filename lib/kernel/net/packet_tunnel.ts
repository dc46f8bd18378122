/**
 * Tunnel metadata helpers (net/core/filter.c): `bpf_skb_set_tunnel_key()`
 * puts a metadata dst with a TX `ip_tunnel_info` on the skb,
 * `bpf_skb_set_tunnel_opt()` adds options to it, and the getters read the
 * skb's tunnel info back — as a receiver would, so the key's `remote` is
 * the info's source, which set_tunnel_key filled from `local`.
 *
 * `struct bpf_tunnel_key` (44 bytes): tunnel_id u32 @0, remote_ipv4 /
 * remote_ipv6[4] @4, tunnel_tos @20, tunnel_ttl @21, tunnel_ext /
 * tunnel_flags @22, tunnel_label @24, local_ipv4 / local_ipv6[4] @28.
 * @module
 */
import type { HelperFn } from "../../exec/state.ts";
import type { SkbContext } from "../test_run_ctx.ts";
import { EINVAL, ENOENT, ENOMEM, EPROTO } from "../../uapi/errno.ts";

/** `sizeof(struct bpf_tunnel_key)`. */
const TUNNEL_KEY_SIZE = 44;
/** `IP_TUNNEL_OPTS_MAX`. */
const IP_TUNNEL_OPTS_MAX = 252;

/** `BPF_F_*` flags of the tunnel helpers. */
const F = {
  TUNINFO_IPV6: 1n,
  ZERO_CSUM_TX: 2n,
  DONT_FRAGMENT: 4n,
  SEQ_NUMBER: 8n,
  NO_TUNNEL_KEY: 16n,
  TUNINFO_FLAGS: 16n,
} as const;

/** `IP_TUNNEL_*_BIT` flags as `ip_tunnel_flags_to_be16()` maps them (host order). */
const TUNNEL = {
  CSUM: 0x0001,
  KEY: 0x0004,
  SEQ: 0x0008,
  DONT_FRAGMENT: 0x0100,
  NOCACHE: 0x2000,
  /** `ip_tunnel_set_options_present()`: GENEVE, VXLAN, ERSPAN, GTP options. */
  OPTIONS_PRESENT: 0x0800 | 0x1000 | 0x4000 | 0x8000,
} as const;

/** The `ip_tunnel_info` of the skb's metadata dst. */
export interface TunnelInfo {
  /** `IP_TUNNEL_INFO_IPV6` set. */
  readonly ipv6: boolean;
  /** `key.tun_id` (from a u32). */
  readonly id: number;
  /** `key.u.ipv4/ipv6.src` (4 or 16 bytes, as the key stored them). */
  readonly src: Uint8Array;
  /** `key.u.ipv4/ipv6.dst`. */
  readonly dst: Uint8Array;
  /** `key.tos`. */
  readonly tos: number;
  /** `key.ttl`. */
  readonly ttl: number;
  /** `key.label` (host order, masked to the flow label). */
  readonly label: number;
  /** `key.tun_flags` as 16 host-order bits. */
  flags: number;
  /** Options (`options_len` bytes). */
  options: Uint8Array;
}

/** Offsets a deprecated, shorter `bpf_tunnel_key` may end at. */
const COMPAT_SIZES = [8, 22, 24, 28];

/** `bpf_skb_set_tunnel_key()`. */
function setKey(skb: SkbContext, from: Uint8Array, flags: bigint): number {
  const known = F.TUNINFO_IPV6 | F.ZERO_CSUM_TX | F.DONT_FRAGMENT |
    F.SEQ_NUMBER | F.NO_TUNNEL_KEY;
  if (flags & ~known) return -EINVAL;
  if (from.length !== TUNNEL_KEY_SIZE && !COMPAT_SIZES.includes(from.length)) {
    return -EINVAL;
  }
  const key = new Uint8Array(TUNNEL_KEY_SIZE);
  key.set(from);
  const v = new DataView(key.buffer);
  const ipv6 = (flags & F.TUNINFO_IPV6) !== 0n;
  if ((!ipv6 && v.getUint32(24, true)) || v.getUint16(22, true)) return -EINVAL;
  let tunFlags = TUNNEL.NOCACHE;
  if (flags & F.DONT_FRAGMENT) tunFlags |= TUNNEL.DONT_FRAGMENT;
  if (!(flags & F.ZERO_CSUM_TX)) tunFlags |= TUNNEL.CSUM;
  if (flags & F.SEQ_NUMBER) tunFlags |= TUNNEL.SEQ;
  if (!(flags & F.NO_TUNNEL_KEY)) tunFlags |= TUNNEL.KEY;
  const width = ipv6 ? 16 : 4;
  skb.tunnel = {
    ipv6,
    id: v.getUint32(0, true),
    dst: key.slice(4, 4 + width), // remote
    src: key.slice(28, 28 + width), // local
    tos: key[20],
    ttl: key[21],
    label: ipv6 ? v.getUint32(24, true) & 0xfffff : 0,
    flags: tunFlags,
    options: new Uint8Array(),
  };
  return 0;
}

/** `bpf_skb_get_tunnel_key()`: the key image, or an errno (the buffer is then zeroed). */
function getKey(
  skb: SkbContext,
  size: number,
  flags: bigint,
): Uint8Array | number {
  const info = skb.tunnel;
  if (!info || (flags & ~(F.TUNINFO_IPV6 | F.TUNINFO_FLAGS))) return -EINVAL;
  const ipv6 = (flags & F.TUNINFO_IPV6) !== 0n;
  if (info.ipv6 !== ipv6) return -EPROTO;
  if (size !== TUNNEL_KEY_SIZE) {
    if (size === 8 ? info.ipv6 : !COMPAT_SIZES.includes(size)) return -EINVAL;
  }
  const key = new Uint8Array(TUNNEL_KEY_SIZE);
  const v = new DataView(key.buffer);
  v.setUint32(0, info.id, true);
  key[20] = info.tos;
  key[21] = info.ttl;
  if (flags & F.TUNINFO_FLAGS) {
    v.setUint16(22, ((info.flags & 0xff) << 8) | (info.flags >> 8), true);
  }
  key.set(info.src, 4); // the receiver's remote is the sender's source
  key.set(info.dst, 28);
  if (ipv6) v.setUint32(24, info.label, true);
  return key.subarray(0, size);
}

/** The tunnel helpers of a tc skb. */
export function skbTunnelHelpers(skb: SkbContext): [number, HelperFn][] {
  return [
    // bpf_skb_get_tunnel_key(skb, key, size, flags)
    [20, (vm) => {
      const size = vm.argLo(3) >>> 0;
      const key = getKey(skb, size, vm.arg(4));
      vm.mem.writeBytes(
        vm.arg(2),
        typeof key === "number" ? new Uint8Array(size) : key,
      );
      return typeof key === "number" ? key : 0;
    }],
    // bpf_skb_set_tunnel_key(skb, key, size, flags)
    [
      21,
      (vm) =>
        setKey(skb, vm.mem.readBytes(vm.arg(2), vm.argLo(3) >>> 0), vm.arg(4)),
    ],
    // bpf_skb_get_tunnel_opt(skb, opt, size)
    [29, (vm) => {
      const size = vm.argLo(3) >>> 0, info = skb.tunnel;
      const out = new Uint8Array(size);
      let ret: number;
      if (!info || !(info.flags & TUNNEL.OPTIONS_PRESENT)) ret = -ENOENT;
      else if (size < info.options.length) ret = -ENOMEM;
      else {
        out.set(info.options); // the rest of the buffer is zeroed
        ret = info.options.length;
      }
      vm.mem.writeBytes(vm.arg(2), out);
      return ret;
    }],
    // bpf_skb_set_tunnel_opt(skb, opt, size)
    [30, (vm) => {
      const size = vm.argLo(3) >>> 0, info = skb.tunnel;
      if (!info || size & 3) return -EINVAL;
      if (size > IP_TUNNEL_OPTS_MAX) return -ENOMEM;
      info.options = vm.mem.readBytes(vm.arg(2), size).slice();
      if (size > 0) info.flags |= TUNNEL.OPTIONS_PRESENT;
      return 0;
    }],
  ];
}
