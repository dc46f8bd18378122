/**
 * The context of an sk_reuseport program (`BPF_PROG_TYPE_SK_REUSEPORT`):
 * the `struct sk_reuseport_kern` that `bpf_init_reuseport_kern()`
 * (net/core/filter.c) fills when a packet (or a migrating request) meets
 * a reuseport group — the skb, the socket the lookup found (`sk`), the
 * migrating socket, the flow hash, the group's `reuseport_id` and
 * `bind_inany`, and `selected_sk`, which `bpf_sk_select_reuseport()`
 * sets. The kernel's verifier rewrites each `struct sk_reuseport_md`
 * load into loads from it (`sk_reuseport_convert_ctx_access()`); here
 * the ctx is a hooked region whose loads give what those rewritten loads
 * give, narrow loads included.
 *
 * The skb is a received Ethernet frame at the point of the socket lookup:
 * `data` is at the transport header (after the IPv4 header's `ihl` words
 * or IPv6's fixed 40 bytes), `len` counts from there, `eth_protocol` is
 * the frame's EtherType (`skb->protocol`), and the MAC and network headers
 * stay where they were, for `bpf_skb_load_bytes_relative()`. The packet
 * region is read-only, as the verifier makes it for this type. A
 * migration without an skb runs on `alloc_skb(0)`'s: empty, protocol 0,
 * no MAC header.
 *
 * Helpers bound here (`sk_reuseport_func_proto()`):
 * `bpf_sk_select_reuseport` (82), `bpf_skb_load_bytes` (26) and
 * `bpf_skb_load_bytes_relative` (68) on this skb, and
 * `bpf_get_socket_cookie` (46) of a socket pointer
 * (`bpf_get_socket_ptr_cookie`); the rest are the object's and kernel's.
 * @module
 */
import { ExecError } from "../../../exec/fault.ts";
import type { AddressSpace, RegionAccessHook } from "../../../exec/memory.ts";
import { regionAddress } from "../../../exec/memory.ts";
import type { CallContext, HelperFn } from "../../../exec/state.ts";
import {
  SK_REUSEPORT_MD_OFFSETS,
  SK_REUSEPORT_MD_SIZE,
  skReuseportIsValidAccess,
} from "../../../verifier/ctx_access/sk_select.ts";
import { EFAULT, EINVAL, ENOENT } from "../../../uapi/errno.ts";
import type { MapRegistry } from "../../object_loader.ts";
import { ReuseportArray } from "../../maps/reuseport_array.ts";
import { SockMap } from "../../maps/sockmap.ts";
import { cpuOf } from "../../generic_helpers_task.ts";
import type { TestRunSock } from "../../net/packet_sock.ts";
import { sockGenCookie } from "../../net/packet_sock_helpers.ts";
import { type ReuseportGroup, ReuseportSock } from "./sk_reuseport_group.ts";
import { EAFNOSUPPORT, EBADFD, EPROTOTYPE } from "../../../uapi/errno.ts";
export { EBADFD, EPROTOTYPE } from "../../../uapi/errno.ts";

const MD = SK_REUSEPORT_MD_OFFSETS;
/** `ETH_HLEN`, EtherTypes of IPv4 / IPv6, `INT_MAX`. */
const ETH_HLEN = 14, ETH_P_IP = 0x0800, ETH_P_IPV6 = 0x86dd;
const INT_MAX = 0x7fffffffn;

/** Helper ids bound to an sk_reuseport context. */
export const SK_REUSEPORT_HELPER = {
  skb_load_bytes: 26,
  get_socket_cookie: 46,
  skb_load_bytes_relative: 68,
  sk_select_reuseport: 82,
} as const;

/** What `bpf_init_reuseport_kern()` is given. */
export interface SkReuseportKernInit {
  /** The group (`reuse`): its `reuseport_id` and `bind_inany`. */
  readonly group: ReuseportGroup;
  /** `reuse_kern->sk`: the socket the lookup found (or the closed listener). */
  readonly sk: ReuseportSock;
  /** The received Ethernet frame; undefined for `alloc_skb(0)`'s empty skb. */
  readonly frame: Uint8Array | undefined;
  /** `reuse_kern->hash`. */
  readonly hash: number;
  /** `reuse_kern->migrating_sk`, if a request migrates. */
  readonly migrating?: TestRunSock;
}

/** The `sk_reuseport_md` of one run: see the module comment. */
export class SkReuseportContext implements RegionAccessHook {
  /** `reuse_kern->selected_sk`, set by `bpf_sk_select_reuseport()`. */
  selected: ReuseportSock | undefined = undefined;
  /** Address of the ctx region (r1). */
  readonly address: bigint;
  /** Region id of the packet (`data … data_end`). */
  readonly packetRegion: number;
  /** The init values. */
  readonly kern: SkReuseportKernInit;
  /** The frame's bytes (empty for `alloc_skb(0)`). */
  private readonly frame: Uint8Array;
  /** Offset of the MAC header (-1: not set), network header and `data`. */
  private readonly macOff: number;
  private readonly netOff: number;
  private readonly dataOff: number;
  private readonly space: AddressSpace;

  /** Maps the packet (read-only) and the ctx. */
  constructor(space: AddressSpace, kern: SkReuseportKernInit) {
    this.space = space;
    this.kern = kern;
    this.frame = kern.frame?.slice() ?? new Uint8Array(0);
    if (kern.frame === undefined) {
      this.macOff = -1; // alloc_skb(): mac_header unset, network_header 0
      this.netOff = this.dataOff = 0;
    } else {
      this.macOff = 0;
      this.netOff = Math.min(ETH_HLEN, this.frame.length);
      this.dataOff = Math.min(this.transportOffset(), this.frame.length);
    }
    this.packetRegion = space.mapRegionId(
      "packet",
      this.frame.subarray(this.dataOff),
      { name: "sk_reuseport data", write: false },
    );
    this.address = space.mapRegion("ctx", SK_REUSEPORT_MD_SIZE, {
      name: "sk_reuseport_md",
      hook: this,
    });
  }

  /** Where the transport header starts: after the IPv4 / IPv6 header. */
  private transportOffset(): number {
    const f = this.frame;
    if (this.ethType === ETH_P_IP && f.length > ETH_HLEN) {
      return ETH_HLEN + (f[ETH_HLEN] & 0xf) * 4;
    }
    if (this.ethType === ETH_P_IPV6) return ETH_HLEN + 40;
    return ETH_HLEN;
  }

  /** The frame's EtherType (host order), 0 without a frame. */
  private get ethType(): number {
    return this.frame.length >= ETH_HLEN
      ? (this.frame[12] << 8) | this.frame[13]
      : 0;
  }

  /** `skb->len`: bytes from `data` on (all linear). */
  get len(): number {
    return this.frame.length - this.dataOff;
  }

  /** The packet bytes `data … data_end`. */
  data(): Uint8Array {
    return this.frame.subarray(this.dataOff);
  }

  /** See {@link RegionAccessHook.load}: `convert_ctx_accesses()` over this ctx. */
  load(offset: number, size: number): bigint | undefined {
    const access = skReuseportIsValidAccess(offset, size, "read");
    if (!access.ok) return undefined;
    const recorded = access.ctxFieldSize;
    const narrow = size < recorded;
    const base = narrow ? offset & ~(recorded - 1) : offset;
    const { value, width } = this.convert(base);
    // the fix-up shifts and masks only a load narrower than the field read
    if (!narrow || size >= width) return value;
    const shift = BigInt((offset & (recorded - 1)) * 8);
    return (BigInt.asUintN(32, value) >> shift) &
      ((1n << BigInt(8 * size)) - 1n);
  }

  /**
   * Mirrors `sk_reuseport_convert_ctx_access()` at `off`: the value and
   * the width of the kernel field loaded (`target_size`).
   */
  private convert(off: number): { value: bigint; width: number } {
    const k = this.kern;
    const data = regionAddress(this.packetRegion);
    switch (off) {
      case MD.data:
        return { value: data, width: 8 };
      case MD.data_end:
        return { value: data + BigInt(this.len), width: 8 };
      case MD.len:
        return { value: BigInt(this.len), width: 4 };
      case MD.eth_protocol: { // the __be16 as a little-endian u16 load reads it
        const t = this.ethType;
        return { value: BigInt(((t & 0xff) << 8) | (t >> 8)), width: 2 };
      }
      case MD.ip_protocol: // sk->sk_protocol (u16)
        return { value: BigInt(k.sk.protocol), width: 2 };
      case MD.bind_inany: // bool
        return { value: k.group.bindInany ? 1n : 0n, width: 1 };
      case MD.hash:
        return { value: BigInt(k.hash >>> 0), width: 4 };
      case MD.sk:
        return { value: k.sk.address, width: 8 };
      case MD.migrating_sk:
        return { value: k.migrating?.address ?? 0n, width: 8 };
    }
    throw new Error(`sk_reuseport_md offset ${off} has no conversion`); // unreachable
  }

  /** `sk_reuseport_is_valid_access()` refuses every write. */
  store(): boolean {
    return false;
  }

  /**
   * `____bpf_skb_load_bytes()`: `len` bytes at `offset` from `data`;
   * -EFAULT (and `to` zeroed) past `skb->len` or past `INT_MAX`.
   */
  loadBytes(offset: bigint, len: number): Uint8Array | number {
    if (offset > INT_MAX || offset + BigInt(len) > BigInt(this.len)) {
      return -EFAULT;
    }
    const at = this.dataOff + Number(offset);
    return this.frame.slice(at, at + len);
  }

  /**
   * `____bpf_skb_load_bytes_relative()`: from the MAC header (0, -EFAULT
   * when unset) or the network header (1), up to the tail; offsets past
   * 0xffff and other starts -EFAULT.
   */
  loadBytesRelative(
    offset: number,
    len: number,
    start: bigint,
  ): Uint8Array | number {
    if (offset > 0xffff) return -EFAULT;
    let from: number;
    if (start === 0n && this.macOff >= 0) from = this.macOff;
    else if (start === 1n) from = this.netOff;
    else return -EFAULT;
    const at = from + offset;
    if (at + len > this.frame.length) return -EFAULT;
    return this.frame.slice(at, at + len);
  }

  /** The sockets a program can hold a pointer to here. */
  sockets(): TestRunSock[] {
    const k = this.kern;
    const all: TestRunSock[] = [k.sk, ...k.group.sockets, ...k.group.closed];
    if (k.migrating) all.push(k.migrating);
    return all;
  }

  /** Unmaps the ctx and the packet. */
  release(): void {
    this.space.unmapRegion(regionAddress(this.packetRegion));
    this.space.unmapRegion(this.address);
  }
}

/**
 * Mirrors `sk_select_reuseport()`: looks `key` up in `map` (a reuseport
 * array, sockmap or sockhash; flags are not looked at) — -ENOENT for no
 * socket; a socket in no group -ENOENT from a reuseport array (it was
 * unhashed), -EINVAL from a sockmap; a socket of another group (another
 * `reuseport_id`) -EPROTOTYPE for another protocol than `reuse_kern->sk`,
 * -EAFNOSUPPORT for another family, else -EBADFD. Otherwise the socket
 * becomes `selected_sk` and the helper returns 0.
 */
export function skSelectReuseport(
  ctx: SkReuseportContext,
  map: ReuseportArray | SockMap,
  key: Uint8Array,
): number {
  const isSockarray = map instanceof ReuseportArray;
  const selected = map.sockAt(key);
  if (selected === undefined) return -ENOENT;
  const reuse = selected instanceof ReuseportSock
    ? selected.reuseportCb
    : undefined;
  if (reuse === undefined) return isSockarray ? -ENOENT : -EINVAL;
  if (reuse.reuseportId !== ctx.kern.group.reuseportId) {
    const sk = ctx.kern.sk, other = selected as ReuseportSock;
    if (sk.protocol !== other.protocol) return -EPROTOTYPE;
    if (sk.family !== other.family) return -EAFNOSUPPORT;
    return -EBADFD; // likely bound to another address
  }
  ctx.selected = selected as ReuseportSock;
  return 0;
}

/** The map argument (r2): a reuseport array, sockmap or sockhash, as the verifier guarantees. */
function selectMapArg(
  registry: MapRegistry,
  vm: CallContext,
): ReuseportArray | SockMap {
  const address = vm.arg(2);
  const map = registry.at(address);
  if (map instanceof ReuseportArray || map instanceof SockMap) return map;
  throw new ExecError(
    vm.insnIndex,
    `bpf_sk_select_reuseport map argument: ${registry.describe(address)}`,
  );
}

/** Writes `bytes`, or zeroes `len` bytes at `to` and returns the errno. */
function copyOrClear(
  vm: CallContext,
  to: bigint,
  len: number,
  bytes: Uint8Array | number,
): number {
  if (typeof bytes === "number") {
    vm.mem.writeBytes(to, new Uint8Array(len));
    return bytes;
  }
  vm.mem.writeBytes(to, bytes);
  return 0;
}

/** The helpers of `sk_reuseport_func_proto()` bound to `ctx`: see the module comment. */
export function skReuseportHelpers(
  ctx: SkReuseportContext,
  registry: MapRegistry,
): Map<number, HelperFn> {
  const H = SK_REUSEPORT_HELPER;
  return new Map<number, HelperFn>([
    [H.sk_select_reuseport, (vm) => {
      const map = selectMapArg(registry, vm);
      const key = vm.mem.readBytes(vm.arg(3), map.attr.keySize, vm.insnIndex);
      return skSelectReuseport(ctx, map, key);
    }],
    [H.skb_load_bytes, (vm) => {
      const len = vm.argLo(4) >>> 0;
      const bytes = ctx.loadBytes(vm.arg(2) & 0xffffffffn, len);
      return copyOrClear(vm, vm.arg(3), len, bytes);
    }],
    [H.skb_load_bytes_relative, (vm) => {
      const len = vm.argLo(4) >>> 0;
      const bytes = ctx.loadBytesRelative(
        vm.argLo(2) >>> 0,
        len,
        vm.arg(5) & 0xffffffffn,
      );
      return copyOrClear(vm, vm.arg(3), len, bytes);
    }],
    // bpf_get_socket_ptr_cookie(): sk ? sock_gen_cookie(sk) : 0
    [H.get_socket_cookie, (vm) => {
      const address = vm.arg(1);
      if (address === 0n) return 0n;
      const sk = ctx.sockets().find((s) => s.is(address));
      if (sk === undefined) {
        throw new ExecError(
          vm.insnIndex,
          `bpf_get_socket_cookie: 0x${
            address.toString(16)
          } is no socket of this reuseport run`,
        );
      }
      return sockGenCookie(sk, vm.mem, cpuOf(vm));
    }],
  ]);
}
