/**
 * sock_ops programs on the simulated kernel: {@link runSockOpsProgram}
 * runs one callback (`tcp_call_bpf()`) of a {@link SimTcpSock} on one CPU
 * with the helpers bound to its context — `bpf_setsockopt()`,
 * `bpf_getsockopt()`, `bpf_sock_ops_cb_flags_set()`, the header-option
 * helpers and the socket and netns cookies — and reports r0, `reply`,
 * what the hook gets back (`tcp_call_bpf()`: the reply when the program
 * returned 1, else -1) and the socket, which keeps its state (options,
 * callback flags, sk storage): a scenario drives one socket through
 * several callbacks by running again with the same socket.
 *
 * The caller says which socket a callback sees, as the kernel's callers
 * do: a request socket (`TCP_NEW_SYN_RECV`) for TIMEOUT_INIT, RWND_INIT,
 * NEEDS_ECN and a SYNACK's header-option callbacks, the full socket
 * otherwise. `bpf_sock_map_update()` / `bpf_sock_hash_update()` put the
 * socket into the object's sockmaps (`sock_map_update_helpers.ts`);
 * `bpf_tcp_sock()` is not bound here.
 *
 * The kernel cannot test-run sock_ops; what these helpers return is
 * hand-derived from net/core/filter.c (cited on each).
 * @module
 */
import type { CallContext, HelperFn } from "../../../exec/state.ts";
import type { StateOwner } from "../../helpers.ts";
import { NETNS_COOKIE } from "../../net/packet_net_info.ts";
import { sockGenCookie } from "../../net/packet_sock_helpers.ts";
import {
  EINVAL,
  ENOENT,
  ENOSPC,
  EOPNOTSUPP,
  EPERM,
} from "../../../uapi/errno.ts";
import type { LoadedObject, MapRegistry } from "../../object_loader.ts";
import { sockMapUpdateHelpers } from "./sock_map_update_helpers.ts";
import {
  type RunContext,
  runInContext,
  type TestRunOptions,
} from "../../test_run.ts";
import { SOCK_OPS, SockOpsContext, type SockOpsSkb } from "./sock_ops_ctx.ts";
import type { SimTcpSock, SynHeaders } from "./sock_ops_sock.ts";
import {
  BPF_SOCK_OPS_ALL_CB_FLAGS,
  bpfGetsockopt,
  bpfSetsockopt,
  SOL,
  TCP_OPT,
} from "./sock_options.ts";
import {
  copyTcpOpt,
  loadSearchKey,
  searchTcpOpt,
  storeTcpOpt,
  TCPHDR_LEN,
} from "./tcp_hdr_opt.ts";

/** Helper ids of the sock_ops context. */
export const SOCK_OPS_HELPER = {
  get_socket_cookie: 46,
  setsockopt: 49,
  getsockopt: 57,
  sock_ops_cb_flags_set: 59,
  load_hdr_opt: 142,
  store_hdr_opt: 143,
  reserve_hdr_opt: 144,
  get_netns_cookie: 122,
} as const;

/** `BPF_LOAD_HDR_OPT_TCP_SYN`: search the SYN's options instead. */
export const BPF_LOAD_HDR_OPT_TCP_SYN = 1n;

/** The bytes of `len` at `addr` (a helper's memory argument). */
function argBytes(vm: CallContext, addr: bigint, len: number): Uint8Array {
  return len > 0 ? vm.mem.readBytes(addr, len) : new Uint8Array(0);
}

/**
 * Mirrors `bpf_sock_ops_get_syn()`: the SYN's headers from `optname`
 * (TCP_BPF_SYN: TCP; _IP: IP + TCP; _MAC: all three), from the callback's
 * `syn_skb` or else the socket's saved SYN; -ENOENT without one.
 */
function sockOpsGetSyn(
  ctx: SockOpsContext,
  optname: number,
): Uint8Array | number {
  const syn = ctx.synSkb ?? ctx.sock.savedSyn;
  if (syn === undefined) return -ENOENT;
  if (optname === TCP_OPT.BPF_SYN) return syn.tcp;
  if (optname === TCP_OPT.BPF_SYN_IP) {
    return Uint8Array.from([...syn.network, ...syn.tcp]);
  }
  // TCP_SAVE_SYN may not have saved the MAC header (a syn_skb always has one)
  if (ctx.synSkb === undefined && syn.mac.length === 0) return -ENOENT;
  return Uint8Array.from([...syn.mac, ...syn.network, ...syn.tcp]);
}

/**
 * The helpers a sock_ops program calls on `ctx`; with `registry` (the
 * object's maps), the sockmap / sockhash updates of its socket too.
 */
export function sockOpsHelpers(
  ctx: SockOpsContext,
  registry?: MapRegistry,
): Map<number, HelperFn> {
  const H = SOCK_OPS_HELPER;
  const updates = registry === undefined
    ? []
    : sockMapUpdateHelpers(registry, () => ({ sock: ctx.sock, op: ctx.op }));
  return new Map<number, HelperFn>([
    ...updates,
    // mirrors bpf_get_socket_cookie_sock_ops(): __sock_gen_cookie(ctx->sk)
    [H.get_socket_cookie, (vm) => {
      const cpu = (vm.owner as Partial<StateOwner> | undefined)?.cpu?.id ?? 0;
      return sockGenCookie(ctx.sock, vm.mem, cpu);
    }],
    // mirrors bpf_get_netns_cookie_sock_ops(): the one simulated netns
    [H.get_netns_cookie, () => NETNS_COOKIE],
    // mirrors bpf_sock_ops_setsockopt()
    [H.setsockopt, (vm) => {
      if (!ctx.lockedTcpSockOps) return -EOPNOTSUPP;
      const optval = argBytes(vm, vm.arg(4), vm.argLo(5));
      return bpfSetsockopt(ctx.sock, vm.argLo(2), vm.argLo(3), optval);
    }],
    // mirrors bpf_sock_ops_getsockopt()
    [H.getsockopt, (vm) => {
      if (!ctx.lockedTcpSockOps) return -EOPNOTSUPP;
      const level = vm.argLo(2), optname = vm.argLo(3);
      const buf = new Uint8Array(Math.max(0, vm.argLo(5)));
      let ret: number;
      if (
        level === SOL.TCP && optname >= TCP_OPT.BPF_SYN &&
        optname <= TCP_OPT.BPF_SYN_MAC
      ) {
        const syn = sockOpsGetSyn(ctx, optname);
        ret = typeof syn === "number" ? syn : syn.length;
        if (typeof syn !== "number") {
          // copy what fits; the unused tail stays zero
          buf.set(syn.subarray(0, Math.min(syn.length, buf.length)));
          if (buf.length < syn.length) ret = -ENOSPC;
        }
      } else {
        ret = bpfGetsockopt(ctx.sock, level, optname, buf);
      }
      if (buf.length > 0) vm.mem.writeBytes(vm.arg(4), buf);
      return ret;
    }],
    // mirrors bpf_sock_ops_cb_flags_set(): the bits it could not set come back
    [H.sock_ops_cb_flags_set, (vm) => {
      if (!ctx.lockedTcpSockOps) return -EOPNOTSUPP;
      if (!ctx.sock.fullsock) return -EINVAL;
      const argval = vm.argLo(2);
      ctx.sock.bpfSockOpsCbFlags = argval & BPF_SOCK_OPS_ALL_CB_FLAGS;
      return argval & ~BPF_SOCK_OPS_ALL_CB_FLAGS;
    }],
    [H.load_hdr_opt, (vm) => loadHdrOpt(ctx, vm)],
    // mirrors bpf_sock_ops_store_hdr_opt()
    [H.store_hdr_opt, (vm) => {
      if (ctx.op !== SOCK_OPS.WRITE_HDR_OPT_CB) return -EPERM;
      const len = vm.argLo(3);
      if (len < 2 || vm.arg(4) !== 0n) return -EINVAL;
      const skb = ctx.skb;
      if (skb === undefined) return -EINVAL; // the kernel always has one here
      const from = argBytes(vm, vm.arg(2), len);
      const { ret, used } = storeTcpOpt(skb, ctx.remainingOptLen, from);
      ctx.remainingOptLen -= used;
      return ret;
    }],
    // mirrors bpf_sock_ops_reserve_hdr_opt()
    [H.reserve_hdr_opt, (vm) => {
      if (ctx.op !== SOCK_OPS.HDR_OPT_LEN_CB) return -EPERM;
      const len = vm.argLo(2) >>> 0;
      if (vm.arg(3) !== 0n || len < 2) return -EINVAL;
      if (len > ctx.remainingOptLen) return -ENOSPC;
      ctx.remainingOptLen -= len;
      return 0;
    }],
  ]);
}

/** Mirrors `bpf_sock_ops_load_hdr_opt()`. */
function loadHdrOpt(ctx: SockOpsContext, vm: CallContext): number {
  if (!ctx.lockedTcpSockOps) return -EOPNOTSUPP;
  const len = vm.argLo(3) >>> 0, flags = vm.arg(4);
  if (len < 2 || (flags & ~BPF_LOAD_HDR_OPT_TCP_SYN) !== 0n) return -EINVAL;
  const out = argBytes(vm, vm.arg(2), len);
  const key = loadSearchKey(out);
  if (typeof key === "number") return key;
  let bytes: Uint8Array, end: number;
  if (flags & BPF_LOAD_HDR_OPT_TCP_SYN) {
    const syn = sockOpsGetSyn(ctx, TCP_OPT.BPF_SYN);
    if (typeof syn === "number") return syn;
    bytes = syn;
    end = syn.length;
  } else {
    if (ctx.skb === undefined || ctx.op === SOCK_OPS.HDR_OPT_LEN_CB) {
      return -EPERM; // this callback cannot call the helper
    }
    bytes = ctx.skb.bytes;
    end = ctx.skb.dataEnd;
  }
  const found = searchTcpOpt(bytes, TCPHDR_LEN, end, key.kind, key.magic);
  if (!("at" in found)) return found.err;
  const ret = copyTcpOpt(bytes, found.at, out);
  vm.mem.writeBytes(vm.arg(2), out);
  return ret;
}

/** One callback to run: {@link runSockOpsProgram}'s input. */
export interface SockOpsRun {
  /** `BPF_SOCK_OPS_*` ({@link SOCK_OPS}). */
  readonly op: number;
  /** The socket; it keeps the state the program leaves. */
  readonly socket: SimTcpSock;
  /** `args[0..3]` the callback passes (u32s; `reply` starts as `args[0]`). */
  readonly args?: readonly number[];
  /**
   * The callback's skb from its TCP header on: PARSE_HDR_OPT_CB's received
   * segment (`skb_data_end` after its options), WRITE_HDR_OPT_CB's header
   * with the kernel's options so far (`skb_data_end` where the program's
   * options go), HDR_OPT_LEN_CB's segment not yet written (`dataEnd` 0).
   */
  readonly skb?: {
    readonly bytes: Uint8Array;
    /** `skb_data_end` offset (default: all of `bytes`). */
    readonly dataEnd?: number;
    readonly len?: number;
    readonly tcpFlags?: number;
    readonly hwtstamp?: bigint;
  };
  /** `remaining_opt_len` (HDR_OPT_LEN_CB: room left; WRITE_HDR_OPT_CB: room reserved). */
  readonly remainingOptLen?: number;
  /** `syn_skb`: the SYN a SYNACK answers. */
  readonly synSkb?: SynHeaders;
}

/** What {@link runSockOpsProgram} reports. */
export interface SockOpsResult {
  /** r0 (the verifier keeps it 0 or 1). */
  readonly r0: bigint;
  /** `bpf_sock_ops.reply` after the run (signed). */
  readonly reply: number;
  /** What `tcp_call_bpf()` returns to TCP: `reply` if r0 was 1, else -1. */
  readonly hookResult: number;
  /** The socket (the same object, changed by the run). */
  readonly socket: SimTcpSock;
  /** The skb's bytes up to `skb_data_end` after the run (stored options included). */
  readonly skbOut: Uint8Array | undefined;
  /** `remaining_opt_len` after the run. */
  readonly remainingOptLen: number;
  /** Lines `bpf_trace_printk` printed. */
  readonly printk: readonly string[];
}

/**
 * Runs sock_ops program `name` of `loaded` for one callback on a socket,
 * as `tcp_call_bpf()` does (once, on CPU `opts.cpu`).
 */
export function runSockOpsProgram(
  loaded: LoadedObject,
  name: string,
  run: SockOpsRun,
  opts: TestRunOptions = {},
): SockOpsResult {
  const space = loaded.kernel.space;
  const remaining = run.remainingOptLen ?? 0;
  let skb: SockOpsSkb | undefined = undefined;
  if (run.skb !== undefined) {
    const dataEnd = run.skb.dataEnd ?? run.skb.bytes.length;
    // room behind skb_data_end for the options a WRITE_HDR_OPT_CB stores
    const bytes = new Uint8Array(
      Math.max(run.skb.bytes.length, dataEnd + remaining),
    );
    bytes.set(run.skb.bytes);
    skb = {
      bytes,
      dataEnd,
      len: run.skb.len ?? run.skb.bytes.length,
      tcpFlags: run.skb.tcpFlags ?? 0,
      hwtstamp: run.skb.hwtstamp ?? 0n,
    };
  }
  const ctx = new SockOpsContext(space, run.op, run.socket, {
    args: run.args,
    skb,
    synSkb: run.synSkb,
    remainingOptLen: remaining,
  });
  const runCtx: RunContext = {
    r1: ctx.address,
    helpers: sockOpsHelpers(ctx, loaded.registry),
    release: () => ctx.release(),
  };
  const result = runInContext(loaded, name, runCtx, { ...opts, repeat: 1 });
  const reply = ctx.reply;
  return {
    r0: result.r0,
    reply,
    hookResult: (result.r0 & 1n) === 1n ? reply : -1,
    socket: run.socket,
    skbOut: skb?.bytes.slice(0, skb.dataEnd),
    remainingOptLen: ctx.remainingOptLen,
    printk: result.printk,
  };
}
