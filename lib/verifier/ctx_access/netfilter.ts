/**
 * Context rule of `BPF_PROG_TYPE_NETFILTER` (net/netfilter/nf_bpf_link.c):
 * `struct bpf_nf_ctx { const struct nf_hook_state *state; struct sk_buff *skb; }`,
 * two trusted BTF pointers.
 * @module
 */

import {
  type CtxAccessResult,
  type CtxAccessType,
  DENIED,
  pointerAccess,
} from "./types.ts";

/** `offsetof(struct bpf_nf_ctx, field)` (kernel-internal struct, 64-bit). */
export const BPF_NF_CTX_OFFSETS: Readonly<Record<string, number>> = Object
  .freeze({
    state: 0,
    skb: 8,
  });
/** `sizeof(struct bpf_nf_ctx)`. */
export const BPF_NF_CTX_SIZE = 16;

/**
 * Mirrors `nf_is_valid_access()`: aligned whole-pointer loads of `state`
 * (PTR_TO_BTF_ID nf_hook_state) and `skb` (PTR_TO_BTF_ID sk_buff), both
 * PTR_TRUSTED; the BTF ids are vmlinux's, unknown here.
 */
export function netfilterIsValidAccess(
  off: number,
  size: number,
  type: CtxAccessType,
): CtxAccessResult {
  if (off < 0 || off >= BPF_NF_CTX_SIZE) return DENIED;
  if (off % size !== 0) return DENIED;
  if (type === "write") return DENIED;
  if (size !== 8) return DENIED;
  const r = pointerAccess("PTR_TO_BTF_ID");
  r.trusted = true;
  return r;
}
