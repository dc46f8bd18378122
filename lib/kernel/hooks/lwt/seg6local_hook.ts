/**
 * seg6local's End.BPF action (`input_action_end_bpf()`,
 * net/ipv6/seg6_local.c) on the simulated kernel: the one place an
 * `lwt_seg6local` program runs — the kernel has no `BPF_PROG_TEST_RUN` for
 * the type (-ENOTSUPP) — so {@link runSeg6local} builds what the route
 * gives the program and runs it with `runInContext()`:
 * - the received packet, an Ethernet frame carrying IPv6: the skb starts
 *   at its network header (the MAC header before it, as on input);
 * - `get_and_validate_srh()`: the first routing header with segments
 *   left, a valid SRH (`seg6_validate_srh()`, reduced form allowed) and no
 *   HMAC TLV — the simulated namespace has no HMAC keys, so one fails —
 *   else the packet is dropped (-EINVAL) without running the program;
 * - `advance_nextseg()`: segments_left decremented, the destination set to
 *   the next segment;
 * - the per-CPU SRH state the seg6 helpers use (lwt_seg6_helpers.ts);
 * - after the run: BPF_OK and BPF_REDIRECT go on, anything else drops; an
 *   edited SRH must validate again. What happens next — the route lookup
 *   (`seg6_lookup_nexthop()`, skipped for BPF_REDIRECT) and `dst_input()` —
 *   needs the routing table bpfsim does not have: the result stops there.
 * @module
 */
import { findProgram, type LoadedObject } from "../../object_loader.ts";
import {
  type RunContext,
  runInContext,
  TestRunError,
  type TestRunOptions,
  type TestRunResult,
} from "../../test_run.ts";
import { ETH_HLEN, SkbContext } from "../../test_run_ctx.ts";
import { skbHelpers } from "../../net/packet_helpers.ts";
import {
  IP6_FH_F_SKIP_RH,
  ipv6FindHdr,
  NEXTHDR,
  seg6BpfHasValidSrh,
  seg6Helpers,
  type Seg6SrhState,
} from "./lwt_seg6_helpers.ts";
import { seg6ValidateSrh } from "./lwt_helpers.ts";
import { EINVAL } from "../../../uapi/errno.ts";

/** `BPF_OK`, `BPF_DROP`, `BPF_REDIRECT`: what an LWT program returns. */
export const BPF_LWT_RET = { OK: 0, DROP: 2, REDIRECT: 7 } as const;
/** `SR6_FLAG1_HMAC` and `SR6_TLV_HMAC`: the SRH carries an HMAC. */
const SR6_FLAG1_HMAC = 1 << 3, SR6_TLV_HMAC = 5;
/** `sizeof(struct sr6_tlv_hmac)`. */
const HMAC_TLV_SIZE = 40;

/** Where End.BPF leaves the packet. */
export type Seg6localVerdict =
  /** Dropped before the program ran: no usable SRH (the action returns -EINVAL). */
  | "no_srh"
  /** The program returned BPF_DROP or an unknown value. */
  | "drop"
  /** The program's SRH edits do not validate. */
  | "bad_srh"
  /** BPF_OK: routed by the (new) destination, `seg6_lookup_nexthop()`. */
  | "lookup"
  /** BPF_REDIRECT: the program's own next hop stands, straight to `dst_input()`. */
  | "redirect";

/** What {@link runSeg6local} reports. */
export interface Seg6localResult {
  /** Where the packet goes next. */
  readonly verdict: Seg6localVerdict;
  /** The run (absent when the packet was dropped before it). */
  readonly run?: TestRunResult;
  /** The packet from its IPv6 header, after the action. */
  readonly packet: Uint8Array;
}

/** The HMAC TLV `seg6_get_tlv_hmac()` finds, which no key validates here. */
function hasHmac(srh: Uint8Array): boolean {
  if (srh[1] < HMAC_TLV_SIZE >> 3 || !(srh[5] & SR6_FLAG1_HMAC)) return false;
  const tlv = srh.length - HMAC_TLV_SIZE;
  return srh[tlv] === SR6_TLV_HMAC && srh[tlv + 1] === HMAC_TLV_SIZE - 2;
}

/**
 * `get_and_validate_srh()` and `advance_nextseg()` on `pkt`: the SRH's
 * offset, or null when the action drops the packet.
 */
function takeSrh(pkt: Uint8Array): number | null {
  const at = ipv6FindHdr(pkt, NEXTHDR.ROUTING, IP6_FH_F_SKIP_RH);
  if (at < 0 || at + 8 > pkt.length) return null;
  const len = (pkt[at + 1] + 1) << 3;
  if (at + len > pkt.length) return null;
  const srh = pkt.subarray(at, at + len);
  if (!seg6ValidateSrh(srh, len, true) || hasHmac(srh)) return null;
  const left = --srh[3];
  pkt.copyWithin(24, at + 8 + 16 * left, at + 8 + 16 * (left + 1));
  return at;
}

/**
 * Runs `lwt_seg6local` program `name` of `loaded` as End.BPF does on
 * `frame` (an Ethernet frame of an IPv6 packet). See the module comment.
 * Throws {@link TestRunError} (-EINVAL) for another program type or a
 * frame that is not IPv6.
 */
export function runSeg6local(
  loaded: LoadedObject,
  name: string,
  frame: Uint8Array,
  opts: Omit<TestRunOptions, "data" | "repeat"> = {},
): Seg6localResult {
  const type = findProgram(loaded, name).type;
  if (type !== "lwt_seg6local") {
    throw new TestRunError(
      `End.BPF runs lwt_seg6local programs, not ${type}`,
      EINVAL,
    );
  }
  if (
    frame.length < ETH_HLEN + 40 || frame[12] !== 0x86 || frame[13] !== 0xdd
  ) {
    throw new TestRunError("End.BPF needs an IPv6 packet", EINVAL);
  }
  const skb = new SkbContext(loaded.kernel.space, frame, { isL2: false });
  try {
    const srh = takeSrh(skb.packet.data());
    if (srh === null) {
      return { verdict: "no_srh", packet: skb.packet.data().slice() };
    }
    const data = skb.packet.data();
    const state: Seg6SrhState = {
      srh,
      hdrlen: data[srh + 1] << 3,
      valid: true,
    };
    const helpers = skbHelpers(skb);
    for (const [id, fn] of seg6Helpers(skb, state)) helpers.set(id, fn);
    const ctx: RunContext = {
      r1: skb.address,
      packetRegion: skb.packet.regionId,
      helpers,
      onPacketRemap: (listener) => skb.packet.onRemap = listener,
      release: () => {}, // the skb outlives the run: released below
    };
    const run = runInContext(loaded, name, ctx, opts);
    let verdict: Seg6localVerdict;
    if (run.retval !== BPF_LWT_RET.OK && run.retval !== BPF_LWT_RET.REDIRECT) {
      verdict = "drop";
    } else if (state.srh !== null && !seg6BpfHasValidSrh(skb, state)) {
      verdict = "bad_srh";
    } else {
      verdict = run.retval === BPF_LWT_RET.REDIRECT ? "redirect" : "lookup";
    }
    return { verdict, run, packet: skb.packet.data().slice() };
  } finally {
    skb.release();
  }
}
