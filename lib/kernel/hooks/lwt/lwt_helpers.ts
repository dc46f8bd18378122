/**
 * Runtime of `bpf_lwt_push_encap()` (net/core/filter.c, net/core/lwt_bpf.c)
 * on the skb of a `BPF_PROG_TEST_RUN` of an `lwt_in` or `lwt_xmit`
 * program (test_run_ctx.ts), as far as a test run reaches the kernel's
 * data path:
 * - `BPF_LWT_ENCAP_IP` from `lwt_in` (`bpf_lwt_push_ip_encap()`, ingress)
 *   checks the header, makes headroom (`skb_cow_head()`), pushes it as the
 *   new network header, fills in a zero IPv4 checksum, sets the protocol,
 *   marks the skb encapsulated and clears its hash — all modelled;
 * - from `lwt_xmit` (egress) the same checks, then the headroom is sized
 *   from `skb_dst(skb)->dev`: a test-run skb has no dst, so the kernel
 *   dereferences NULL (an oops). bpfsim stops the run with an ExecError;
 * - `BPF_LWT_ENCAP_SEG6` / `SEG6_INLINE` (`lwt_in` only;
 *   `bpf_push_seg6_encap()`): the SRH is checked (`seg6_validate_srh()`)
 *   and inline mode needs an IPv6 skb (-EBADMSG otherwise). Past those
 *   checks the kernel either takes the namespace from the missing dst
 *   (encap mode: the same NULL dereference) or, inline, routes the packet
 *   through the host's IPv6 table (`seg6_lookup_nexthop()`), which bpfsim
 *   does not have: both stop the run with an ExecError.
 * `bpf_lwt_seg6_*` (74–76) exist only for `lwt_seg6local` programs, whose
 * type the kernel cannot test-run (no `.test_run`: -ENOTSUPP, 524): they
 * run in seg6local's End.BPF hook (seg6local_hook.ts, lwt_seg6_helpers.ts).
 * @module
 */
import { ExecError } from "../../../exec/fault.ts";
import type { CallContext, HelperFn } from "../../../exec/state.ts";
import { clearHash, moveData } from "../../net/packet_skb_ops.ts";
import type { SkbContext } from "../../test_run_ctx.ts";
import { EBADMSG, EINVAL } from "../../../uapi/errno.ts";

/** `BPF_FUNC_lwt_push_encap`. */
export const BPF_FUNC_lwt_push_encap = 73;
/** `enum bpf_lwt_encap_mode`. */
export const BPF_LWT_ENCAP = { SEG6: 0, SEG6_INLINE: 1, IP: 2 } as const;
/** `LWT_BPF_MAX_HEADROOM`: the longest header `BPF_LWT_ENCAP_IP` pushes. */
export const LWT_BPF_MAX_HEADROOM = 256;
/** `IPV6_SRCRT_TYPE_4`: the routing header type of an SRH. */
const IPV6_SRCRT_TYPE_4 = 4;
/** `sizeof(struct ipv6_sr_hdr)` (without segments) and of `struct sr6_tlv`. */
const SRH_FIXED = 8, TLV_FIXED = 2;
/** `NET_SKB_PAD`: `skb_cow_head()` grows the head in multiples of it. */
const NET_SKB_PAD = 64;
const ETH_P_IP = 0x0800, ETH_P_IPV6 = 0x86dd;

/**
 * `seg6_validate_srh(srh, len, reduced)`: type 4, `(hdrlen + 1) * 8 == len`,
 * segments_left and first_segment within the segments, and TLVs that fill
 * the rest exactly.
 */
export function seg6ValidateSrh(
  srh: Uint8Array,
  len: number,
  reduced = false,
): boolean {
  // a header shorter than 8 bytes cannot match (hdrlen + 1) << 3
  if (len < SRH_FIXED || srh[2] !== IPV6_SRCRT_TYPE_4) return false;
  const hdrlen = srh[1], left = srh[3], first = srh[4];
  if ((hdrlen + 1) << 3 !== len) return false;
  if (!reduced && left > first) return false;
  if (first > (hdrlen >> 1) - 1) return false;
  if (left > first + 1) return false;
  let tlvOffset = SRH_FIXED + ((first + 1) << 4);
  let trailing = len - tlvOffset;
  if (trailing < 0) return false;
  while (trailing) {
    if (trailing < TLV_FIXED) return false;
    const tlvLen = TLV_FIXED + srh[tlvOffset + 1];
    trailing -= tlvLen;
    if (trailing < 0) return false;
    tlvOffset += tlvLen;
  }
  return true;
}

/** `ip_fast_csum()` of the `words32`-word IPv4 header at `at`, as stored (big-endian). */
function ipFastCsum(buf: Uint8Array, at: number, words32: number): number {
  let sum = 0;
  for (let i = 0; i < words32 * 4; i += 2) {
    sum += (buf[at + i] << 8) | buf[at + i + 1];
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return ~sum & 0xffff;
}

/** Stops the run where the kernel would oops or reach what bpfsim lacks. */
function unreachable(vm: CallContext, why: string): never {
  throw new ExecError(vm.insnIndex, `bpf_lwt_push_encap: ${why}`);
}

/** `bpf_lwt_push_ip_encap(skb, hdr, len, ingress)`. */
function pushIpEncap(
  skb: SkbContext,
  vm: CallContext,
  hdr: Uint8Array,
  ingress: boolean,
): number {
  const len = hdr.length;
  if (len < 20 || len > LWT_BPF_MAX_HEADROOM) return -EINVAL;
  const version = hdr[0] >> 4;
  if (version === 4) {
    if (len < (hdr[0] & 0xf) * 4) return -EINVAL;
  } else if (version === 6) {
    if (len < 40) return -EINVAL;
  } else return -EINVAL;
  if (!ingress) {
    unreachable(
      vm,
      "lwt_xmit sizes the headroom from skb_dst(skb)->dev, and a test-run " +
        "skb has no dst: the kernel dereferences NULL here",
    );
  }
  const p = skb.packet;
  // skb_cow_head(skb, len + skb->mac_len): mac_len is 0 in a test skb
  if (len > p.headroom) {
    const delta = len - p.headroom;
    const grow = Math.ceil(delta / NET_SKB_PAD) * NET_SKB_PAD;
    skb.shift(p.reserve(p.headroom + grow, 0));
  }
  skb.encapsulation = true;
  moveData(skb, -len); // skb_push()
  skb.netOff = p.dataOff; // skb_reset_network_header()
  p.buf.set(hdr, p.dataOff);
  clearHash(skb);
  if (version === 4) {
    skb.protocol = ETH_P_IP;
    const at = p.dataOff;
    if (p.buf[at + 10] === 0 && p.buf[at + 11] === 0) {
      const check = ipFastCsum(p.buf, at, hdr[0] & 0xf);
      p.buf[at + 10] = check >> 8;
      p.buf[at + 11] = check & 0xff;
    }
  } else skb.protocol = ETH_P_IPV6;
  p.remap(); // bpf_compute_data_pointers()
  return 0;
}

/** `bpf_push_seg6_encap(skb, type, hdr, len)`, as far as a test run gets. */
function pushSeg6Encap(
  skb: SkbContext,
  vm: CallContext,
  type: number,
  srh: Uint8Array,
): number {
  if (!seg6ValidateSrh(srh, srh.length)) return -EINVAL;
  if (type === BPF_LWT_ENCAP.SEG6_INLINE) {
    if (skb.protocol !== ETH_P_IPV6) return -EBADMSG;
    unreachable(
      vm,
      "after inserting the SRH the kernel routes the packet through the " +
        "host's IPv6 table (seg6_lookup_nexthop()), which bpfsim does not have",
    );
  }
  unreachable(
    vm,
    "seg6_do_srh_encap() takes the namespace from skb_dst(skb), and a " +
      "test-run skb has no dst: the kernel dereferences NULL here",
  );
}

/**
 * `bpf_lwt_push_encap(skb, type, hdr, len)` on `skb`: `ingress` for
 * `lwt_in` (`bpf_lwt_in_push_encap()`: IP and SEG6 types), else `lwt_xmit`
 * (`bpf_lwt_xmit_push_encap()`: IP only). See the module comment.
 */
export function lwtHelpers(
  skb: SkbContext,
  ingress: boolean,
): Map<number, HelperFn> {
  return new Map<number, HelperFn>([
    [BPF_FUNC_lwt_push_encap, (vm) => {
      const type = vm.argLo(2) >>> 0, len = vm.argLo(4) >>> 0;
      const hdr = vm.mem.readBytes(vm.arg(3), len);
      if (type === BPF_LWT_ENCAP.IP) return pushIpEncap(skb, vm, hdr, ingress);
      if (
        ingress &&
        (type === BPF_LWT_ENCAP.SEG6 || type === BPF_LWT_ENCAP.SEG6_INLINE)
      ) {
        return pushSeg6Encap(skb, vm, type, hdr);
      }
      return -EINVAL;
    }],
  ]);
}
