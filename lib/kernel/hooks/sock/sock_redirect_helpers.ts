/**
 * The sockmap redirects (net/core/sock_map.c): `bpf_msg_redirect_map` (60)
 * and `bpf_msg_redirect_hash` (71) of sk_msg programs,
 * `bpf_sk_redirect_map` (52) and `bpf_sk_redirect_hash` (72) of sk_skb
 * programs. Each returns `SK_DROP` (0) for flags other than
 * `BPF_F_INGRESS`, for a key with no socket and for a socket
 * `sock_map_redirect_allowed()` refuses (a listening TCP socket); the msg
 * variants also drop an egress redirect to a socket that is not TCP.
 * Otherwise they record the target (`msg->sk_redir` and `msg->flags`,
 * `skb_bpf_set_redir()`) and return `SK_PASS` (1). A refused redirect
 * leaves an earlier recorded one in place, as the kernel's does.
 * @module
 */
import { ExecError } from "../../../exec/fault.ts";
import type { CallContext, HelperFn } from "../../../exec/state.ts";
import type { MapRegistry } from "../../object_loader.ts";
import {
  SockMap,
  sockMapRedirectAllowed,
  type SockmapSocket,
} from "../../maps/sockmap.ts";

/** Helper ids of the sockmap redirects. */
export const SOCK_REDIRECT_HELPER = {
  sk_redirect_map: 52,
  msg_redirect_map: 60,
  msg_redirect_hash: 71,
  sk_redirect_hash: 72,
} as const;
/** `BPF_F_INGRESS`: deliver to the target's receive queue, not send from it. */
export const BPF_F_INGRESS = 1n;
const SK_DROP = 0, SK_PASS = 1;

/** A recorded redirect: the target socket and the flags it was asked with. */
export interface SockRedirect {
  /** The socket the map held. */
  readonly sock: SockmapSocket;
  /** `BPF_F_INGRESS` set: to the target's ingress. */
  readonly ingress: boolean;
}

/** Where a context keeps its redirect (`msg->sk_redir`, the skb's `bpf_redirect`). */
export interface RedirectSlot {
  /** The last redirect a helper recorded, if any. */
  redirect: SockRedirect | undefined;
}

/** The map argument (r2): a sockmap / sockhash, as the verifier guarantees. */
function sockMapArg(registry: MapRegistry, vm: CallContext): SockMap {
  const address = vm.arg(2);
  const map = registry.at(address);
  if (!(map instanceof SockMap)) {
    throw new ExecError(
      vm.insnIndex,
      `redirect map argument: ${registry.describe(address)}`,
    );
  }
  return map;
}

/** One redirect helper: finds the socket, checks it and records it. */
function redirectHelper(
  registry: MapRegistry,
  slot: RedirectSlot,
  byHash: boolean,
  isMsg: boolean,
): HelperFn {
  return (vm) => {
    const flags = vm.arg(4);
    if (flags & ~BPF_F_INGRESS) return SK_DROP;
    const map = sockMapArg(registry, vm);
    const sk = byHash
      ? map.sockAt(vm.mem.readBytes(vm.arg(3), map.attr.keySize, vm.insnIndex))
      : map.sockAtIndex(vm.argLo(3));
    if (sk === undefined || !sockMapRedirectAllowed(sk)) return SK_DROP;
    const ingress = (flags & BPF_F_INGRESS) !== 0n;
    if (isMsg && !ingress && !sk.isTcp) return SK_DROP;
    slot.redirect = { sock: sk, ingress };
    return SK_PASS;
  };
}

/** `bpf_msg_redirect_map` / `_hash`, recording into `slot` (the message's). */
export function msgRedirectHelpers(
  registry: MapRegistry,
  slot: RedirectSlot,
): [number, HelperFn][] {
  const H = SOCK_REDIRECT_HELPER;
  return [
    [H.msg_redirect_map, redirectHelper(registry, slot, false, true)],
    [H.msg_redirect_hash, redirectHelper(registry, slot, true, true)],
  ];
}

/** `bpf_sk_redirect_map` / `_hash`, recording into `slot` (the skb's). */
export function skbRedirectHelpers(
  registry: MapRegistry,
  slot: RedirectSlot,
): [number, HelperFn][] {
  const H = SOCK_REDIRECT_HELPER;
  return [
    [H.sk_redirect_map, redirectHelper(registry, slot, false, false)],
    [H.sk_redirect_hash, redirectHelper(registry, slot, true, false)],
  ];
}

/**
 * Mirrors `sk_psock_map_verd()`: `SK_PASS` with a recorded redirect is a
 * redirect, `SK_PASS` alone a pass, anything else a drop.
 */
export function sockVerdict(
  retval: number,
  redirect: SockRedirect | undefined,
): "pass" | "drop" | "redirect" {
  if (retval !== SK_PASS) return "drop";
  return redirect === undefined ? "pass" : "redirect";
}
