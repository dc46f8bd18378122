/**
 * Context rules of `BPF_PROG_TYPE_XDP`, whose context is `struct xdp_md`
 * (net/core/filter.c).
 * @module
 */

import {
  type CtxAccessOptions,
  type CtxAccessResult,
  type CtxAccessType,
  type CtxRegType,
  DENIED,
  pointerAccess,
} from "./types.ts";

/** `offsetof(struct xdp_md, field)` for every field (all `__u32`). */
export const XDP_MD_OFFSETS: Readonly<Record<string, number>> = Object.freeze({
  data: 0,
  data_end: 4,
  data_meta: 8,
  ingress_ifindex: 12,
  rx_queue_index: 16,
  egress_ifindex: 20,
});

/** `sizeof(struct xdp_md)`. */
export const XDP_MD_SIZE = 24;

/** Mirrors `__is_valid_xdp_access()`: in range, aligned, and exactly a u32 (no narrow loads). */
function isValidXdpAccess(
  off: number,
  size: number,
  regType: CtxRegType,
): CtxAccessResult {
  if (off < 0 || off >= XDP_MD_SIZE) return DENIED;
  if (off % size !== 0) return DENIED;
  if (size !== 4) return DENIED;
  return pointerAccess(regType);
}

/**
 * Mirrors `xdp_is_valid_access()`. egress_ifindex only exists for devmap
 * programs (`expectedAttachType: "xdp_devmap"`); the only store is to
 * rx_queue_index, and only for device-bound programs (`devBound`).
 */
export function xdpIsValidAccess(
  off: number,
  size: number,
  type: CtxAccessType,
  opts: CtxAccessOptions = {},
): CtxAccessResult {
  const o = XDP_MD_OFFSETS;
  if (opts.expectedAttachType !== "xdp_devmap" && off === o.egress_ifindex) {
    return DENIED;
  }
  if (type === "write") {
    if (opts.devBound && off === o.rx_queue_index) {
      return isValidXdpAccess(off, size, "SCALAR_VALUE");
    }
    return DENIED;
  }
  let regType: CtxRegType = "SCALAR_VALUE";
  if (off === o.data) regType = "PTR_TO_PACKET";
  else if (off === o.data_meta) regType = "PTR_TO_PACKET_META";
  else if (off === o.data_end) regType = "PTR_TO_PACKET_END";
  // A sign-extending load of a packet pointer makes no sense (is_ldsx).
  if (regType !== "SCALAR_VALUE" && opts.isLdsx) return DENIED;
  return isValidXdpAccess(off, size, regType);
}
