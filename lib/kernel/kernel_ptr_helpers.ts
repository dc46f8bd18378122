/**
 * Helpers that take a pointer to a kernel object — a socket, an
 * `xdp_buff` — for program types whose context does not bind them: the
 * socket casts and `bpf_get_socket_cookie` of tracing, syscall and XDP
 * programs, XDP's SYN cookie helpers (given a socket from a lookup), and
 * `bpf_xdp_get_buff_len` on a BTF `struct xdp_buff *`, and
 * `bpf_get_netns_cookie` (the simulated host has one network namespace). They act on
 * whichever simulated object the pointer names (a test run's socket, a
 * sock_ops or sk_msg run's, an `xdp_buff` of `sim_skb.ts`), exactly as
 * the context-bound versions act on theirs; a pointer that names none —
 * only a program that was not verified can pass one, e.g. an XDP program
 * (its lookups find no socket) — stops the program. A context's own table
 * (skb test runs, sock_ops …) is merged over this one.
 * @module
 */
import { ExecError } from "../exec/fault.ts";
import type { HelperFn } from "../exec/state.ts";
import { cpuOf } from "./generic_helpers_task.ts";
import type { ObjectHelperEnv } from "./object_helpers.ts";
import {
  anySockHelpers,
  registeredSockArg,
  sockGenCookie,
} from "./net/packet_sock_helpers.ts";
import { anySockSyncookieHelpers } from "./net/packet_sock_tcp.ts";
import { netObjects } from "./hooks/tracing/sim_skb.ts";
import { NETNS_COOKIE } from "./net/packet_net_info.ts";

/** `bpf_get_socket_cookie` (46), `bpf_get_netns_cookie` (122), `bpf_xdp_get_buff_len` (188). */
const BPF_FUNC_get_socket_cookie = 46,
  BPF_FUNC_get_netns_cookie = 122,
  BPF_FUNC_xdp_get_buff_len = 188;

/** The object-wide kernel-pointer helpers (see the module comment). */
export function kernelPtrHelpers(env: ObjectHelperEnv): Map<number, HelperFn> {
  const kernel = env.loaded.kernel;
  return new Map<number, HelperFn>([
    ...anySockHelpers(),
    ...anySockSyncookieHelpers(),
    // bpf_get_socket_ptr_cookie(): __sock_gen_cookie(sk), 0 for NULL
    [
      BPF_FUNC_get_socket_cookie,
      (vm) =>
        vm.arg(1) === 0n
          ? 0
          : sockGenCookie(registeredSockArg(vm, 1), vm.mem, cpuOf(vm)),
    ],
    // every variant names the one simulated network namespace
    [BPF_FUNC_get_netns_cookie, () => NETNS_COOKIE],
    // bpf_xdp_get_buff_len_trace(): xdp_get_buff_len() of a BTF xdp_buff
    [BPF_FUNC_xdp_get_buff_len, (vm) => {
      const xdp = netObjects(kernel).xdpBuffAt(vm.arg(1));
      if (xdp === undefined) {
        throw new ExecError(
          vm.insnIndex,
          `xdp_buff pointer 0x${
            vm.arg(1).toString(16)
          } names no simulated xdp_buff`,
        );
      }
      return xdp.len;
    }],
  ]);
}
