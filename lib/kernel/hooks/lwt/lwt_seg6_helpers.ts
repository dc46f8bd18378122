/**
 * Runtime of the seg6local helpers (net/core/filter.c):
 * `bpf_lwt_seg6_store_bytes()` (74), `bpf_lwt_seg6_adjust_srh()` (75) and
 * `bpf_lwt_seg6_action()` (76), over the SRH state seg6local's End.BPF
 * action sets up before it runs the program (`seg6_bpf_srh_states`, here a
 * {@link Seg6SrhState}: see seg6local_hook.ts). The SRH may be edited
 * where the kernel lets a program edit it — flags and tag, and the TLVs —
 * and the TLV area grown or shrunk; the state is re-validated when the
 * hook or an action needs it (`seg6_bpf_has_valid_srh()`).
 *
 * What an action does past its checks always ends in a lookup in the IPv6
 * routing table (`seg6_lookup_nexthop()`), which the simulated machine does
 * not have: those paths stop the run with an ExecError. The checks before
 * them — a valid SRH, the parameter's size, an inner IPv6 header for
 * End.DT6, the SRH an End.B6 pushes — give the kernel's errnos.
 * @module
 */
import { ExecError } from "../../../exec/fault.ts";
import type { CallContext, HelperFn } from "../../../exec/state.ts";
import { seg6ValidateSrh } from "./lwt_helpers.ts";
import { hdrPop, hdrPush } from "../../net/packet_skb_room.ts";
import type { SkbContext } from "../../test_run_ctx.ts";
import { EBADMSG, EFAULT, EINVAL, ENOENT } from "../../../uapi/errno.ts";

/** Helper ids. */
export const SEG6_HELPER = {
  store_bytes: 74,
  adjust_srh: 75,
  action: 76,
} as const;
/** `enum seg6_local_action_t`: the actions a program may ask for. */
export const SEG6_LOCAL_ACTION = {
  END_X: 2,
  END_T: 3,
  END_DT6: 7,
  END_B6: 9,
  END_B6_ENCAP: 10,
} as const;
/** `NEXTHDR_*` / `IPPROTO_*` of the IPv6 extension headers walked here. */
export const NEXTHDR = {
  HOP: 0,
  IPV6: 41,
  ROUTING: 43,
  FRAGMENT: 44,
  AUTH: 51,
  NONE: 59,
  DEST: 60,
} as const;
/** `IP6_FH_F_SKIP_RH`: skip routing headers with no segment left. */
export const IP6_FH_F_SKIP_RH = 4;
const EXT_HDRS: readonly number[] = [
  NEXTHDR.HOP,
  NEXTHDR.ROUTING,
  NEXTHDR.FRAGMENT,
  NEXTHDR.AUTH,
  NEXTHDR.NONE,
  NEXTHDR.DEST,
];

/**
 * `ipv6_find_hdr(skb, &offset, target, NULL, &flags)` over `pkt` (which
 * starts at the IPv6 header): the offset of the first `target` header, or
 * a negative errno (-ENOENT not there, -EBADMSG truncated).
 */
export function ipv6FindHdr(
  pkt: Uint8Array,
  target: number,
  flags = 0,
): number {
  if (pkt.length < 40) return -EBADMSG;
  let start = 40, nexthdr = pkt[6];
  for (;;) {
    let found = nexthdr === target;
    if (!EXT_HDRS.includes(nexthdr) || nexthdr === NEXTHDR.NONE) {
      return found ? start : -ENOENT;
    }
    if (start + 2 > pkt.length) return -EBADMSG;
    let hdrlen: number;
    if (nexthdr === NEXTHDR.ROUTING) {
      if (start + 4 > pkt.length) return -EBADMSG;
      if ((flags & IP6_FH_F_SKIP_RH) && pkt[start + 3] === 0) found = false;
    }
    if (nexthdr === NEXTHDR.FRAGMENT) {
      if (start + 8 > pkt.length) return -EBADMSG;
      const fragOff = ((pkt[start + 2] << 8) | pkt[start + 3]) & ~7;
      if (fragOff !== 0 && !found) return -ENOENT; // not the first fragment
      hdrlen = 8;
    } else if (nexthdr === NEXTHDR.AUTH) {
      hdrlen = (pkt[start + 1] + 2) << 2; // ipv6_authlen()
    } else hdrlen = (pkt[start + 1] + 1) << 3; // ipv6_optlen()
    if (found) return start;
    nexthdr = pkt[start];
    start += hdrlen;
  }
}

/**
 * `struct seg6_bpf_srh_state` of the CPU: where the SRH is (an offset from
 * `data`, or null once lost), the length the program made it (`hdrlen`,
 * bytes after the fixed 8) and whether it still needs re-validating.
 */
export interface Seg6SrhState {
  /** Offset of the SRH from `skb->data`, or null. */
  srh: number | null;
  /** `(srh->hdrlen << 3)` as the program's edits changed it. */
  hdrlen: number;
  /** False after an edit of the TLVs or the length. */
  valid: boolean;
}

/**
 * `seg6_bpf_has_valid_srh()`: re-validates an edited SRH, writing its new
 * `hdrlen` into the packet first, as the kernel does.
 */
export function seg6BpfHasValidSrh(
  skb: SkbContext,
  state: Seg6SrhState,
): boolean {
  if (state.srh === null) return false;
  if (!state.valid) {
    if (state.hdrlen & 7) return false;
    const data = skb.packet.data();
    data[state.srh + 1] = (state.hdrlen >> 3) & 0xff;
    const len = (data[state.srh + 1] + 1) << 3;
    if (state.srh + len > data.length) return false;
    if (
      !seg6ValidateSrh(data.subarray(state.srh, state.srh + len), len, true)
    ) {
      return false;
    }
    state.valid = true;
  }
  return true;
}

/** Stops the run where the action needs the routing table. */
function routed(vm: CallContext, what: string): never {
  throw new ExecError(
    vm.insnIndex,
    `bpf_lwt_seg6_action: ${what} ends in seg6_lookup_nexthop(), a lookup ` +
      "in the IPv6 routing table, which bpfsim does not have",
  );
}

/** `bpf_lwt_seg6_store_bytes(skb, offset, from, len)`. */
function storeBytes(
  skb: SkbContext,
  state: Seg6SrhState,
  vm: CallContext,
): number {
  if (state.srh === null) return -EINVAL;
  const offset = vm.argLo(2) >>> 0, len = vm.argLo(4) >>> 0;
  const data = skb.packet.data();
  const srh = state.srh;
  // the kernel's srh_tlvs leaves out the 8 fixed bytes: mirrored as is
  const tlvs = srh + ((data[srh + 4] + 1) << 4);
  const end = srh + 8 + state.hdrlen;
  if (offset >= tlvs && offset + len <= end) state.valid = false;
  else if (offset < srh + 5 || offset + len > srh + 8) return -EFAULT;
  if (offset + len > data.length) return -EFAULT; // bpf_try_make_writable()
  const at = ipv6FindHdr(data, NEXTHDR.ROUTING);
  if (at < 0) return -EINVAL;
  state.srh = at;
  data.set(vm.mem.readBytes(vm.arg(3), len), offset);
  return 0;
}

/** `bpf_lwt_seg6_adjust_srh(skb, offset, len)`: grows or shrinks the TLVs. */
function adjustSrh(
  skb: SkbContext,
  state: Seg6SrhState,
  vm: CallContext,
): number {
  if (state.srh === null) return -EINVAL;
  const offset = vm.argLo(2) >>> 0, len = vm.argLo(3);
  const data = skb.packet.data();
  const srh = state.srh;
  const tlvs = srh + 8 + ((data[srh + 4] + 1) << 4);
  const end = srh + 8 + state.hdrlen;
  if (offset < tlvs || offset > end) return -EFAULT;
  if (len < 0 && offset - len > end) return -EFAULT;
  if (len > 0) hdrPush(skb, offset, len);
  else {
    const err = hdrPop(skb, offset, -len);
    if (err) return err;
  }
  const pkt = skb.packet.data();
  const payload = pkt.length - 40;
  pkt[4] = (payload >> 8) & 0xff;
  pkt[5] = payload & 0xff;
  const at = ipv6FindHdr(pkt, NEXTHDR.ROUTING);
  if (at < 0) return -EINVAL;
  state.srh = at;
  state.hdrlen = (state.hdrlen + len) & 0xffff; // a u16
  state.valid = false;
  return 0;
}

/** `bpf_lwt_seg6_action(skb, action, param, param_len)`. */
function action(
  skb: SkbContext,
  state: Seg6SrhState,
  vm: CallContext,
): number {
  const act = vm.argLo(2) >>> 0, paramLen = vm.argLo(4) >>> 0;
  const A = SEG6_LOCAL_ACTION;
  switch (act) {
    case A.END_X:
    case A.END_T:
    case A.END_DT6: {
      if (!seg6BpfHasValidSrh(skb, state)) return -EBADMSG;
      if (paramLen !== (act === A.END_X ? 16 : 4)) return -EINVAL;
      if (act === A.END_DT6) {
        const data = skb.packet.data();
        if (ipv6FindHdr(data, NEXTHDR.IPV6) < 0) return -EBADMSG;
        return routed(vm, "End.DT6, after decapsulating,");
      }
      return routed(vm, act === A.END_X ? "End.X" : "End.T");
    }
    case A.END_B6:
    case A.END_B6_ENCAP: {
      if (state.srh !== null && !seg6BpfHasValidSrh(skb, state)) {
        return -EBADMSG;
      }
      const srh = vm.mem.readBytes(vm.arg(3), paramLen);
      if (!seg6ValidateSrh(srh, paramLen)) return -EINVAL;
      // seg6local runs on IPv6 packets: inline mode passes its check too
      return routed(vm, act === A.END_B6 ? "End.B6" : "End.B6.Encaps");
    }
    default:
      return -EINVAL;
  }
}

/** The seg6local helpers over `skb` and the hook's SRH `state`. */
export function seg6Helpers(
  skb: SkbContext,
  state: Seg6SrhState,
): Map<number, HelperFn> {
  return new Map<number, HelperFn>([
    [SEG6_HELPER.store_bytes, (vm) => storeBytes(skb, state, vm)],
    [SEG6_HELPER.adjust_srh, (vm) => adjustSrh(skb, state, vm)],
    [SEG6_HELPER.action, (vm) => action(skb, state, vm)],
  ]);
}
