/**
 * Internet checksum arithmetic as x86-64 Linux computes it
 * (include/net/checksum.h, arch/x86/lib/csum-partial_64.c) and the skb
 * checksum helpers built on it (net/core/filter.c): `bpf_csum_diff()`,
 * `bpf_l3_csum_replace()`, `bpf_l4_csum_replace()`, `bpf_csum_update()`,
 * `bpf_csum_level()`.
 *
 * Checksums are handled in memory order: a `__sum16` or `__be32` is the
 * number a little-endian load of its bytes gives. Ones'-complement sums do
 * not care which byte order is used as long as it is the same throughout.
 * @module
 */
import type { HelperFn } from "../../exec/state.ts";
import type { SkbContext } from "../test_run_ctx.ts";
import { EACCES, EFAULT, EINVAL, ENOTSUPP } from "../../uapi/errno.ts";

/** `CHECKSUM_*` values of `skb->ip_summed`. */
export const CHECKSUM = {
  NONE: 0,
  UNNECESSARY: 1,
  COMPLETE: 2,
  PARTIAL: 3,
} as const;
/** `SKB_MAX_CSUM_LEVEL`. */
const SKB_MAX_CSUM_LEVEL = 3;

/** `csum_add()`: 32-bit ones'-complement addition (end-around carry). */
export function csumAdd(a: number, b: number): number {
  const s = (a >>> 0) + (b >>> 0);
  return s > 0xffffffff ? s - 0xffffffff : s;
}

/** `csum_sub()`: `csum_add(a, ~b)`. */
export function csumSub(a: number, b: number): number {
  return csumAdd(a, ~b >>> 0);
}

/** `csum_fold()`: the 32-bit sum folded to 16 bits, inverted. */
export function csumFold(sum: number): number {
  let s = (sum & 0xffff) + (sum >>> 16);
  s = (s & 0xffff) + (s >>> 16);
  return ~s & 0xffff;
}

/** `csum_from32to16()`: the 32-bit sum folded to 16 bits, not inverted. */
export function csumFrom32to16(sum: number): number {
  const rotated = ((sum >>> 16) | (sum << 16)) >>> 0;
  return (((sum >>> 0) + rotated) % 0x100000000) >>> 16;
}

/**
 * x86-64 `csum_partial()` of `bytes` onto `seed`: 32-bit words, then a
 * 16-bit and a byte tail, little-endian. A buffer at an odd `address`
 * is summed one byte shifted and the result byte-swapped, as the kernel
 * does for unaligned buffers.
 */
export function csumPartial(
  bytes: Uint8Array,
  seed: number,
  address = 0n,
): number {
  const odd = (address & 1n) === 1n;
  if (odd && bytes.length === 0) return seed >>> 0;
  let sum = seed >>> 0;
  let i = 0;
  if (odd) {
    sum = csumAdd(((sum >>> 8) | (sum << 24)) >>> 0, bytes[0] << 8);
    i = 1;
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (; i + 4 <= bytes.length; i += 4) {
    sum = csumAdd(sum, view.getUint32(i, true));
  }
  if (bytes.length - i >= 2) {
    sum = csumAdd(sum, view.getUint16(i, true));
    i += 2;
  }
  if (i < bytes.length) sum = csumAdd(sum, bytes[i]);
  if (odd) {
    const r = csumFrom32to16(sum);
    return ((r >> 8) & 0xff) | ((r & 0xff) << 8);
  }
  return sum;
}

/** `csum16_add()`: 16-bit ones'-complement addition. */
function csum16Add(csum: number, addend: number): number {
  const res = (csum + addend) & 0xffff;
  return (res + (res < addend ? 1 : 0)) & 0xffff;
}

/** `csum_replace4()`: `sum` with 32-bit `from` replaced by `to`. */
export function csumReplace4(sum: number, from: number, to: number): number {
  return csumFold(csumAdd(csumSub(~sum >>> 0, from), to));
}

/** `csum_replace2()`: `sum` with 16-bit `from` replaced by `to`. */
export function csumReplace2(sum: number, from: number, to: number): number {
  return ~csum16Add(csum16Add(~sum & 0xffff, ~from & 0xffff), to) & 0xffff;
}

/** `csum_replace_by_diff()`: `sum` adjusted by a 32-bit `diff`. */
export function csumReplaceByDiff(sum: number, diff: number): number {
  return csumFold(csumAdd(diff, ~sum >>> 0));
}

/**
 * `bpf_csum_diff()` (6.18, after "bpf_csum_diff: optimize and homogenize
 * for all archs"): the sum of `to` less the sum of `from` onto `seed`,
 * folded to 16 bits. No size check: the verifier bounds the memory.
 */
export function csumDiff(
  from: Uint8Array,
  to: Uint8Array,
  seed: number,
  fromAddr = 0n,
  toAddr = 0n,
): number {
  let ret = seed >>> 0;
  if (from.length && to.length) {
    ret = csumSub(csumPartial(to, ret, toAddr), csumPartial(from, 0, fromAddr));
  } else if (to.length) ret = csumPartial(to, ret, toAddr);
  else if (from.length) ret = ~csumPartial(from, ~ret >>> 0, fromAddr) >>> 0;
  return csumFrom32to16(ret);
}

/** `BPF_F_HDR_FIELD_MASK`: the size of the replaced field. */
const HDR_FIELD_MASK = 0xfn;
/** `BPF_F_PSEUDO_HDR`. */
const PSEUDO_HDR = 1n << 4n;
/** `BPF_F_MARK_MANGLED_0`. */
const MARK_MANGLED_0 = 1n << 5n;
/** `BPF_F_MARK_ENFORCE`. */
const MARK_ENFORCE = 1n << 6n;
/** `BPF_F_IPV6` (6.16+): no pseudo-header fix-up of `skb->csum` for IPv6. */
const F_IPV6 = 1n << 7n;
/** `CSUM_MANGLED_0`: how a zero UDP checksum is written. */
const CSUM_MANGLED_0 = 0xffff;

/**
 * The `__sum16` at `offset` of the skb data after the checks every
 * replace helper makes: -EFAULT for an offset over 0xffff or odd, or a
 * field past the packet (`bpf_try_make_writable()` failing).
 */
function sumField(skb: SkbContext, offset: bigint): DataView | number {
  const off = offset & 0xffffffffn;
  if (off > 0xffffn || (off & 1n) === 1n) return -EFAULT;
  const data = skb.packet.data();
  if (Number(off) + 2 > data.length) return -EFAULT;
  return new DataView(data.buffer, data.byteOffset + Number(off), 2);
}

/**
 * The new checksum for field size `size` (0: `to` is a diff), or -EINVAL
 * for a diff with a non-zero `from` or an unknown size.
 */
function replaced(sum: number, size: bigint, from: bigint, to: bigint): number {
  const from32 = Number(from & 0xffffffffn), to32 = Number(to & 0xffffffffn);
  switch (size) {
    case 0n:
      return from !== 0n ? -EINVAL : csumReplaceByDiff(sum, to32);
    case 2n:
      return csumReplace2(sum, from32 & 0xffff, to32 & 0xffff);
    case 4n:
      return csumReplace4(sum, from32, to32);
    default:
      return -EINVAL;
  }
}

/** Helper id of `bpf_csum_diff`. */
export const BPF_FUNC_csum_diff = 28;

/**
 * `bpf_csum_diff(from, from_size, to, to_size, seed)`: needs no context,
 * so skb and XDP programs share it.
 */
export const csumDiffHelper: HelperFn = (vm) => {
  const fromAddr = vm.arg(1), toAddr = vm.arg(3);
  const fromSize = vm.argLo(2) >>> 0, toSize = vm.argLo(4) >>> 0;
  const from = fromSize
    ? vm.mem.readBytes(fromAddr, fromSize)
    : new Uint8Array();
  const to = toSize ? vm.mem.readBytes(toAddr, toSize) : new Uint8Array();
  return csumDiff(from, to, vm.argLo(5), fromAddr, toAddr);
};

/** The checksum helpers of an skb program. */
export function skbCsumHelpers(skb: SkbContext): [number, HelperFn][] {
  return [
    [BPF_FUNC_csum_diff, csumDiffHelper],
    // bpf_l3_csum_replace(skb, offset, from, to, flags)
    [10, (vm) => {
      const flags = vm.arg(5);
      if (flags & ~HDR_FIELD_MASK) return -EINVAL;
      const field = sumField(skb, vm.arg(2));
      if (typeof field === "number") return field;
      const sum = replaced(
        field.getUint16(0, true),
        flags,
        vm.arg(3),
        vm.arg(4),
      );
      if (sum < 0) return sum;
      field.setUint16(0, sum, true);
      return 0;
    }],
    // bpf_l4_csum_replace(skb, offset, from, to, flags)
    [11, (vm) => {
      const flags = vm.arg(5);
      const known = MARK_MANGLED_0 | MARK_ENFORCE | PSEUDO_HDR |
        HDR_FIELD_MASK |
        F_IPV6;
      if (flags & ~known) return -EINVAL;
      const field = sumField(skb, vm.arg(2));
      if (typeof field === "number") return field;
      const mangledZero = (flags & MARK_MANGLED_0) !== 0n;
      const old = field.getUint16(0, true);
      if (mangledZero && !(flags & MARK_ENFORCE) && old === 0) return 0;
      // inet_proto_csum_replace*(): a test skb is never CHECKSUM_PARTIAL
      // nor CHECKSUM_COMPLETE, so the pseudo-header flag changes nothing
      const sum = replaced(old, flags & HDR_FIELD_MASK, vm.arg(3), vm.arg(4));
      if (sum < 0) return sum;
      field.setUint16(0, mangledZero && sum === 0 ? CSUM_MANGLED_0 : sum, true);
      return 0;
    }],
    // bpf_csum_update(skb, csum): only under CHECKSUM_COMPLETE
    [40, (vm) => {
      if (skb.ipSummed !== CHECKSUM.COMPLETE) return -ENOTSUPP;
      skb.csum = csumAdd(skb.csum, vm.argLo(2));
      return skb.csum;
    }],
    // bpf_csum_level(skb, level)
    [135, (vm) => csumLevel(skb, vm.arg(2))],
  ];
}

/** `bpf_csum_level()`: BPF_CSUM_LEVEL_QUERY (0), INC, DEC, RESET (3). */
function csumLevel(skb: SkbContext, level: bigint): number {
  const unnecessary = skb.ipSummed === CHECKSUM.UNNECESSARY;
  switch (level) {
    case 1n: // __skb_incr_checksum_unnecessary()
      if (unnecessary) {
        if (skb.csumLevel < SKB_MAX_CSUM_LEVEL) skb.csumLevel++;
      } else if (skb.ipSummed === CHECKSUM.NONE) {
        skb.ipSummed = CHECKSUM.UNNECESSARY;
        skb.csumLevel = 0;
      }
      return 0;
    case 2n: // __skb_decr_checksum_unnecessary()
      if (unnecessary) {
        if (skb.csumLevel === 0) skb.ipSummed = CHECKSUM.NONE;
        else skb.csumLevel--;
      }
      return 0;
    case 3n: // __skb_reset_checksum_unnecessary()
      resetChecksumUnnecessary(skb);
      return 0;
    case 0n:
      return unnecessary ? skb.csumLevel : -EACCES;
    default:
      return -EINVAL;
  }
}

/** `__skb_reset_checksum_unnecessary()`. */
export function resetChecksumUnnecessary(skb: SkbContext): void {
  if (skb.ipSummed === CHECKSUM.UNNECESSARY) {
    skb.ipSummed = CHECKSUM.NONE;
    skb.csumLevel = 0;
  }
}
