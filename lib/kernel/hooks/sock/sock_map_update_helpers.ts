/**
 * `bpf_sock_map_update` (53) and `bpf_sock_hash_update` (70)
 * (net/core/sock_map.c), the helpers of sock_ops programs that put the
 * socket being operated on into a sockmap / sockhash. A sock_ops context
 * binds them with a function giving its socket and its current `op`:
 * outside the callbacks `sock_map_op_okay()` accepts (active or passive
 * established, listen) they return -EOPNOTSUPP; otherwise they are
 * `sock_map_update_common()` / `sock_hash_update_common()` with the key
 * the program points at (no socket-state check on this path).
 * @module
 */
import { ExecError } from "../../../exec/fault.ts";
import type { CallContext, HelperFn } from "../../../exec/state.ts";
import { EOPNOTSUPP } from "../../../uapi/errno.ts";
import type { MapRegistry } from "../../object_loader.ts";
import { SockMap, type SockmapSocket } from "../../maps/sockmap.ts";

/** Helper ids of the sock_ops map updates. */
export const SOCK_MAP_UPDATE_HELPER = {
  sock_map_update: 53,
  sock_hash_update: 70,
} as const;

/**
 * `BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB`, `…_PASSIVE_ESTABLISHED_CB`,
 * `…_TCP_LISTEN_CB`: the ops `sock_map_op_okay()` accepts.
 */
export const SOCK_MAP_UPDATE_OPS: readonly number[] = [4, 5, 11];

/** The socket a sock_ops program runs on and the op it runs for. */
export interface SockOpsUpdateSource {
  /** `sops->sk`. */
  readonly sock: SockmapSocket;
  /** `sops->op`. */
  readonly op: number;
}

/**
 * The two helpers, finding maps in `registry` and the socket and op
 * through `current` (asked at each call: the op is the running callback's).
 */
export function sockMapUpdateHelpers(
  registry: MapRegistry,
  current: () => SockOpsUpdateSource,
): [number, HelperFn][] {
  const update: HelperFn = (vm: CallContext) => {
    const address = vm.arg(2);
    const map = registry.at(address);
    if (!(map instanceof SockMap)) {
      throw new ExecError(
        vm.insnIndex,
        `sock map update: ${registry.describe(address)}`,
      );
    }
    const { sock, op } = current();
    if (!SOCK_MAP_UPDATE_OPS.includes(op)) return -EOPNOTSUPP;
    const key = vm.mem.readBytes(vm.arg(3), map.attr.keySize, vm.insnIndex);
    const flags = vm.arg(4); // u64: any value past BPF_EXIST is refused
    return map.updateCommon(
      key,
      sock,
      Number(flags > 0xffffn ? 0xffffn : flags),
    );
  };
  const H = SOCK_MAP_UPDATE_HELPER;
  return [[H.sock_map_update, update], [H.sock_hash_update, update]];
}
