/**
 * The message helpers of sk_msg programs (net/core/filter.c), bound to one
 * {@link SkMsgContext}: `bpf_msg_apply_bytes` (61) and
 * `bpf_msg_cork_bytes` (62) record their byte counts and return 0;
 * `bpf_msg_pull_data` (63), `bpf_msg_push_data` (90) and
 * `bpf_msg_pop_data` (91) reshape the message as lib/kernel/hooks/sock/sk_msg.ts
 * describes and return 0 or a negative errno. Their u32 arguments are the
 * registers' low 32 bits (the kernel's `BPF_CALL_4` casts), the flags the
 * whole u64. The redirects `bpf_msg_redirect_map` (60) and
 * `bpf_msg_redirect_hash` (71) come with them (sock_redirect_helpers.ts).
 * @module
 */
import type { CallContext, HelperFn } from "../../../exec/state.ts";
import type { SkMsgContext } from "./sk_msg_ctx.ts";
import type { MapRegistry } from "../../object_loader.ts";
import { msgRedirectHelpers } from "./sock_redirect_helpers.ts";

/** Helper ids of the message helpers. */
export const SK_MSG_HELPER = {
  msg_apply_bytes: 61,
  msg_cork_bytes: 62,
  msg_pull_data: 63,
  msg_push_data: 90,
  msg_pop_data: 91,
} as const;

const u32 = (vm: CallContext, i: number): number => vm.argLo(i) >>> 0;

/**
 * The message helpers bound to `ctx`, with the redirects
 * (sock_redirect_helpers.ts) finding their maps in `registry`.
 */
export function skMsgHelpers(
  ctx: SkMsgContext,
  registry: MapRegistry,
): Map<number, HelperFn> {
  const msg = ctx.msg;
  const H = SK_MSG_HELPER;
  return new Map<number, HelperFn>([
    ...msgRedirectHelpers(registry, ctx),
    [H.msg_apply_bytes, (vm) => {
      msg.applyBytes = u32(vm, 2); // bpf_msg_apply_bytes()
      return 0;
    }],
    [H.msg_cork_bytes, (vm) => {
      msg.corkBytes = u32(vm, 2); // bpf_msg_cork_bytes()
      return 0;
    }],
    [H.msg_pull_data, (vm) => msg.pullData(u32(vm, 2), u32(vm, 3), vm.arg(4))],
    [H.msg_push_data, (vm) => msg.pushData(u32(vm, 2), u32(vm, 3), vm.arg(4))],
    [H.msg_pop_data, (vm) => msg.popData(u32(vm, 2), u32(vm, 3), vm.arg(4))],
  ]);
}
