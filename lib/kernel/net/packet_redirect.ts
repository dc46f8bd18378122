/**
 * Redirect and cgroup helpers of tc and XDP programs (net/core/filter.c,
 * kernel/trace/bpf_trace.c). A test run does not deliver a redirected
 * packet: what the helpers decide is their return value, which the program
 * returns as its verdict — so `bpf_redirect_peer()` and
 * `bpf_redirect_neigh()` reduce to their argument checks, and
 * `bpf_redirect_map()` to the lookup in the map (maps/redirect_maps.ts).
 * The cgroup tests meet cgroup arrays whose slots the simulation cannot
 * fill (maps/cgroup_array.ts).
 * @module
 */
import type { CallContext, HelperFn } from "../../exec/state.ts";
import { ExecError } from "../../exec/fault.ts";
import { EINVAL } from "../maps/map.ts";
import { CgroupArrayMap } from "../maps/cgroup_array.ts";
import { RedirectMap } from "../maps/redirect_maps.ts";
import { MAP_TYPE } from "../../uapi/bpf.ts";
import type { MapRegistry } from "../object_loader.ts";

/** `TC_ACT_SHOT` and `TC_ACT_REDIRECT`. */
export const TC_ACT = { SHOT: 2, REDIRECT: 7 } as const;
/** `XDP_ABORTED` … `XDP_REDIRECT`. */
export const XDP = {
  ABORTED: 0,
  DROP: 1,
  PASS: 2,
  TX: 3,
  REDIRECT: 4,
} as const;
/** `sizeof(struct bpf_redir_neigh)`: nh_family and a 16-byte address. */
const REDIR_NEIGH_SIZE = 20;
/** `BPF_F_BROADCAST`, `BPF_F_EXCLUDE_INGRESS`: devmap-only redirect flags. */
const F_BROADCAST = 1n << 3n, F_EXCLUDE_INGRESS = 1n << 4n;
/** `XDP_ABORTED | XDP_DROP | XDP_PASS | XDP_TX`: the action a failed lookup returns. */
const ACTION_MASK = 3n;

/** Helper ids of this module. */
export const REDIRECT_HELPER = {
  skb_under_cgroup: 33,
  current_task_under_cgroup: 37,
  redirect_map: 51,
  skb_get_xfrm_state: 66,
  skb_cgroup_classid: 151,
  redirect_neigh: 152,
  redirect_peer: 155,
} as const;

/**
 * `__bpf_xdp_redirect_map()` for `map` (the `map_redirect` of
 * `dev_map_ops`, `dev_map_hash_ops`, `cpu_map_ops`, `xsk_map_ops`): flags
 * beyond the action bits (and, for devmaps, `BPF_F_BROADCAST |
 * BPF_F_EXCLUDE_INGRESS`) abort; a failed lookup of the key's low 32 bits
 * returns the action in the flags' low bits, unless broadcasting; else
 * `XDP_REDIRECT`.
 */
export function xdpRedirectMap(
  map: RedirectMap,
  key: bigint,
  flags: bigint,
): number {
  const devmap = map.attr.type === MAP_TYPE.devmap ||
    map.attr.type === MAP_TYPE.devmap_hash;
  const allowed = ACTION_MASK |
    (devmap ? F_BROADCAST | F_EXCLUDE_INGRESS : 0n);
  if (flags & ~allowed) return XDP.ABORTED;
  if (!map.hasTarget(Number(key & 0xffffffffn)) && !(flags & F_BROADCAST)) {
    return Number(flags & ACTION_MASK);
  }
  return XDP.REDIRECT;
}

/**
 * The tc helpers that need no map: the redirects' argument checks, the
 * socket's net_cls classid, and the (absent) xfrm state.
 */
export function skbRedirectHelpers(): [number, HelperFn][] {
  return [
    // bpf_redirect_peer(ifindex, flags): any flag is refused
    [
      REDIRECT_HELPER.redirect_peer,
      (vm) => vm.arg(2) ? TC_ACT.SHOT : TC_ACT.REDIRECT,
    ],
    // bpf_redirect_neigh(ifindex, params, plen, flags): a params block
    // shorter than struct bpf_redir_neigh, or any flag, is refused
    [REDIRECT_HELPER.redirect_neigh, (vm) => {
      const plen = vm.argLo(3);
      const short = plen !== 0 && plen >= 0 && plen < REDIR_NEIGH_SIZE;
      return short || vm.arg(4) ? TC_ACT.SHOT : TC_ACT.REDIRECT;
    }],
    // bpf_skb_cgroup_classid(skb): sock_cgroup_classid() of a full skb->sk
    // (0 without one). sk_alloc() gave the test run's socket the classid of
    // the task making it (sock_update_classid()): the root net_cls
    // cgroup's, 0 — so 0 either way.
    [REDIRECT_HELPER.skb_cgroup_classid, () => 0],
    // bpf_skb_get_xfrm_state(skb, index, to, size, flags): a test skb has
    // no sec_path, so `to` is cleared and -EINVAL returned
    [REDIRECT_HELPER.skb_get_xfrm_state, (vm) => {
      vm.mem.writeBytes(vm.arg(3), new Uint8Array(vm.argLo(4) >>> 0));
      return -EINVAL;
    }],
  ];
}

/** The map `arg` points at, of `kind`, or an ExecError. */
function mapArg<T>(
  registry: MapRegistry,
  vm: CallContext,
  arg: number,
  kind: new (...args: never[]) => T,
): T {
  const map = registry.at(vm.arg(arg));
  if (!(map instanceof kind)) {
    throw new ExecError(-1, `R${arg}: ${registry.describe(vm.arg(arg))}`);
  }
  return map;
}

/**
 * The helpers that take a redirect map or a cgroup array, resolved in
 * `registry`: `bpf_redirect_map()` (XDP), `bpf_skb_under_cgroup()` (tc)
 * and `bpf_current_task_under_cgroup()` (any program with the base
 * helpers). The membership tests never get past the slot: -E2BIG past the
 * end, -EAGAIN for an empty slot. `bpf_skb_under_cgroup()` first wants a
 * full `skb->sk`, which a test run's skb always has (packet_sock.ts).
 */
export function mapRedirectHelpers(
  registry: MapRegistry,
): [number, HelperFn][] {
  return [
    // bpf_redirect_map(map, u64 key, u64 flags)
    [
      REDIRECT_HELPER.redirect_map,
      (vm) =>
        xdpRedirectMap(
          mapArg(registry, vm, 1, RedirectMap),
          vm.arg(2),
          vm.arg(3),
        ),
    ],
    // bpf_skb_under_cgroup(skb, map, u32 index)
    [
      REDIRECT_HELPER.skb_under_cgroup,
      (vm) => mapArg(registry, vm, 2, CgroupArrayMap).cgroupAt(vm.argLo(3)),
    ],
    // bpf_current_task_under_cgroup(map, u32 index)
    [
      REDIRECT_HELPER.current_task_under_cgroup,
      (vm) => mapArg(registry, vm, 1, CgroupArrayMap).cgroupAt(vm.argLo(2)),
    ],
  ];
}
