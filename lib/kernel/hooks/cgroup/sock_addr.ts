/**
 * cgroup sock_addr programs on the simulated kernel: {@link runSockAddrProgram}
 * plays `__cgroup_bpf_run_filter_sock_addr()` (kernel/bpf/cgroup.c) for one
 * bind(), connect(), sendmsg() … of a {@link SimTcpSock} by a task of the
 * cgroup: the program runs on one CPU with the {@link SockAddrContext} over
 * the user's address and the helpers bound to it — `bpf_bind()`,
 * `bpf_setsockopt()` / `bpf_getsockopt()`, the socket and netns cookies,
 * `bpf_get_retval()` / `bpf_set_retval()` — and the run reports r0, the
 * hook's result (the cgroup run context's retval), the user's address as
 * the program left it, and the socket's bound address and port.
 *
 * What follows the hook in the syscall (the connect, the bind of a bind
 * hook, the send) is not simulated. The socket keeps its state across
 * runs; the port table `bpf_bind()` checks is the kernel's
 * ({@link inetBindTable}) unless the run names one.
 *
 * The kernel cannot test-run cgroup_sock_addr: what these helpers return is
 * hand-derived from net/core/filter.c (cited on each).
 * @module
 */
import { ExecError } from "../../../exec/fault.ts";
import type { CallContext, HelperFn } from "../../../exec/state.ts";
import { EAFNOSUPPORT, EINVAL } from "../../../uapi/errno.ts";
import {
  cgroupProgDone,
  cgroupRetvalHelpers,
  CgroupRunCtx,
} from "./cgroup_run_ctx.ts";
import type { StateOwner } from "../../helpers.ts";
import {
  BIND,
  type BindTask,
  inet6Bind,
  inetBind,
  type InetBindTable,
  inetBindTable,
  SOCKADDR_LEN,
} from "./inet_bind.ts";
import { findProgram, type LoadedObject } from "../../object_loader.ts";
import { NETNS_COOKIE } from "../../net/packet_net_info.ts";
import { AF } from "../../net/packet_sock.ts";
import { sockGenCookie } from "../../net/packet_sock_helpers.ts";
import { skbSockLookupHelpers } from "../../net/packet_sock_lookup.ts";
import {
  decodeSockAddr,
  encodeSockAddr,
  formatIp4,
  formatIp6,
  parseIp4,
  parseIp6,
  type SockAddr,
  SockAddrContext,
} from "./sock_addr_ctx.ts";
import type { SimTcpSock } from "../sock/sock_ops_sock.ts";
import { bpfGetsockopt, bpfSetsockopt } from "../sock/sock_options.ts";
import {
  type RunContext,
  runInContext,
  TestRunError,
  type TestRunOptions,
} from "../../test_run.ts";

/** Helper ids of the sock_addr context. */
export const SOCK_ADDR_HELPER = {
  get_socket_cookie: 46,
  setsockopt: 49,
  getsockopt: 57,
  bind: 64,
  get_netns_cookie: 122,
} as const;

/** `BPF_RET_BIND_NO_CAP_NET_BIND_SERVICE`: bit 0 of a bind hook's flags. */
export const BPF_RET_BIND_NO_CAP_NET_BIND_SERVICE = 1;

/** The sock_addr attach types whose programs' r0 carries flags above bit 0. */
const FLAG_HOOKS = ["cgroup_inet4_bind", "cgroup_inet6_bind"];

/** Mirrors `bpf_bind()` for the context's socket. */
function bpfBind(
  vm: CallContext,
  ctx: SockAddrContext,
  table: InetBindTable,
  task: BindTask,
): number {
  const addrLen = vm.argLo(3) | 0;
  if (addrLen < 2) return -EINVAL; // offsetofend(struct sockaddr, sa_family)
  // the verifier checked addr_len readable bytes; the kernel reads no further
  const sa = new Uint8Array(Math.max(addrLen, SOCKADDR_LEN.in6));
  sa.set(vm.mem.readBytes(vm.arg(2), addrLen, vm.insnIndex));
  const family = sa[0] | (sa[1] << 8);
  let flags: number = BIND.FROM_BPF;
  if (sa[2] === 0 && sa[3] === 0) flags |= BIND.FORCE_ADDRESS_NO_PORT;
  try {
    if (family === AF.INET) {
      if (addrLen < SOCKADDR_LEN.in) return -EINVAL;
      return inetBind(table, ctx.sock, sa, flags, task);
    }
    if (family === AF.INET6) {
      if (addrLen < SOCKADDR_LEN.in6Rfc2133) return -EINVAL;
      return inet6Bind(table, ctx.sock, sa, addrLen, flags, task);
    }
  } catch (e) {
    if (e instanceof RangeError) throw new ExecError(vm.insnIndex, e.message);
    throw e;
  }
  return -EAFNOSUPPORT;
}

/**
 * The helpers a sock_addr program calls on `ctx`: `bpf_bind()` against
 * `table` for `task`, the socket options, the cookies. (`bpf_get_retval()`
 * / `bpf_set_retval()` come from the hook's run context.)
 */
export function sockAddrHelpers(
  ctx: SockAddrContext,
  table: InetBindTable,
  task: BindTask = {},
): Map<number, HelperFn> {
  const H = SOCK_ADDR_HELPER;
  return new Map<number, HelperFn>([
    // mirrors bpf_get_socket_cookie_sock_addr(): __sock_gen_cookie(ctx->sk)
    [H.get_socket_cookie, (vm) => {
      const cpu = (vm.owner as Partial<StateOwner> | undefined)?.cpu?.id ?? 0;
      return sockGenCookie(ctx.sock, vm.mem, cpu);
    }],
    // mirrors bpf_get_netns_cookie_sock_addr(): the one simulated netns
    [H.get_netns_cookie, () => NETNS_COOKIE],
    // mirrors bpf_sock_addr_setsockopt(): _bpf_setsockopt(ctx->sk, …)
    [H.setsockopt, (vm) => {
      const len = vm.argLo(5);
      const optval = len > 0
        ? vm.mem.readBytes(vm.arg(4), len, vm.insnIndex)
        : new Uint8Array(0);
      return bpfSetsockopt(ctx.sock, vm.argLo(2), vm.argLo(3), optval);
    }],
    // mirrors bpf_sock_addr_getsockopt(): _bpf_getsockopt(ctx->sk, …)
    [H.getsockopt, (vm) => {
      const buf = new Uint8Array(Math.max(0, vm.argLo(5)));
      const ret = bpfGetsockopt(ctx.sock, vm.argLo(2), vm.argLo(3), buf);
      if (buf.length > 0) vm.mem.writeBytes(vm.arg(4), buf);
      return ret;
    }],
    [H.bind, (vm) => bpfBind(vm, ctx, table, task)],
  ]);
}

/** One hook invocation: {@link runSockAddrProgram}'s input. */
export interface SockAddrRun {
  /** The socket; it keeps what the program does to it (a bind, options). */
  readonly socket: SimTcpSock;
  /** The user's address: text fields, or the raw bytes the syscall copied in. */
  readonly addr: SockAddr | Uint8Array;
  /** `uaddrlen` (default: the encoded address's length). */
  readonly addrLen?: number;
  /**
   * The hook (libbpf attach type name, e.g. `cgroup_inet4_connect`);
   * default and only choice: the program's expected attach type.
   */
  readonly attachType?: string;
  /** sendmsg hooks: the message's source address (`t_ctx`; default the wildcard). */
  readonly msgSrc?: string;
  /** The calling task (`CAP_NET_BIND_SERVICE`, default held). */
  readonly task?: BindTask;
  /** The port table `bpf_bind()` checks (default: the kernel's). */
  readonly bindTable?: InetBindTable;
}

/** What {@link runSockAddrProgram} reports. */
export interface SockAddrResult {
  /** Whether the program ran (not for a socket of another family). */
  readonly ran: boolean;
  /** r0 (0 when it did not run). */
  readonly r0: bigint;
  /**
   * What `__cgroup_bpf_run_filter_sock_addr()` returns: `run_ctx.retval` —
   * 0, -EPERM after a 0 verdict, or what `bpf_set_retval()` left.
   */
  readonly retval: number;
  /** The flags above bit 0 of r0 (bind hooks only; else 0). */
  readonly flags: number;
  /** The `BIND_*` flags those give the bind that follows (`BIND_NO_CAP_NET_BIND_SERVICE`). */
  readonly bindFlags: number;
  /** The user's address after the program (rewritten in place). */
  readonly addr: SockAddr;
  /** Its bytes (`uaddrlen` of them). */
  readonly addrBytes: Uint8Array;
  /** `uaddrlen` after the hook. */
  readonly addrLen: number;
  /** sendmsg hooks: the source address after the program. */
  readonly msgSrc: string | undefined;
  /** The socket (the same object). */
  readonly socket: SimTcpSock;
  /** The socket's bound address (`rcv_saddr`, by its family) and port (`inet_num`). */
  readonly bound: { readonly ip: string; readonly port: number };
  /** Lines `bpf_trace_printk` printed. */
  readonly printk: readonly string[];
  /** Instructions retired. */
  readonly steps: number;
}

/** The sendmsg hooks: the ones with a `t_ctx` source address. */
function msgSrcFamily(attachType: string): number | undefined {
  if (attachType === "cgroup_udp4_sendmsg") return AF.INET;
  if (attachType === "cgroup_udp6_sendmsg") return AF.INET6;
  return undefined;
}

/** Checks `name` can attach as `run` asks; returns its attach type. */
function hookOf(loaded: LoadedObject, name: string, run: SockAddrRun): string {
  const prog = findProgram(loaded, name);
  if (prog.type !== "cgroup_sock_addr") {
    throw new TestRunError(
      `program '${name}' of type ${prog.type} is not a cgroup sock_addr program`,
      EINVAL,
    );
  }
  const expected = prog.expectedAttachType ?? "";
  const attachType = run.attachType ?? expected;
  if (attachType !== expected) {
    // bpf_prog_attach_check_attach_type()
    throw new TestRunError(
      `program '${name}' expects ${
        expected || "no attach type"
      }, not ${attachType}`,
      EINVAL,
    );
  }
  return attachType;
}

/**
 * Runs cgroup sock_addr program `name` of `loaded` for one hook
 * invocation, as `__cgroup_bpf_run_filter_sock_addr()` does: nothing for
 * a socket that is not AF_INET, AF_INET6 or AF_UNIX; else the program
 * runs once with retval starting at 0, and a 0 verdict makes it -EPERM
 * unless it already holds an error. Throws TestRunError (EINVAL) for a
 * program that cannot attach there, and what stops the program.
 *
 * @example
 * ```ts
 * const sk = unboundSock(loaded.kernel.space, AF.INET);
 * const r = runSockAddrProgram(loaded, "connect4_rewrite", {
 *   socket: sk, addr: { family: AF.INET, ip: "10.0.0.1", port: 80 },
 * });
 * r.addr; // { family: 2, ip: "127.0.0.1", port: 8080 }
 * ```
 */
export function runSockAddrProgram(
  loaded: LoadedObject,
  name: string,
  run: SockAddrRun,
  opts: Pick<TestRunOptions, "cpu" | "maxSteps" | "engine" | "kfuncs"> = {},
): SockAddrResult {
  const attachType = hookOf(loaded, name, run);
  const sk = run.socket;
  const uaddr = run.addr instanceof Uint8Array
    ? run.addr
    : encodeSockAddr(run.addr);
  const srcFamily = msgSrcFamily(attachType);
  const msgSrc = srcFamily === undefined
    ? undefined
    : srcFamily === AF.INET
    ? parseIp4(run.msgSrc ?? "0.0.0.0")
    : parseIp6(run.msgSrc ?? "::");
  const ctx = new SockAddrContext(
    loaded.kernel.space,
    sk,
    attachType,
    uaddr,
    run.addrLen ?? uaddr.length,
    msgSrc,
  );
  const runCtx = new CgroupRunCtx(0);
  let r0 = 0n, flags = 0, printk: readonly string[] = [], steps = 0;
  const inet = sk.family === AF.INET || sk.family === AF.INET6 ||
    sk.family === AF.UNIX;
  if (inet) {
    const table = run.bindTable ?? inetBindTable(loaded.kernel);
    const helpers = new Map([
      // the lookups search the same empty socket tables as skb programs'
      // (packet_sock_lookup.ts): sockets bound here are not in them
      ...skbSockLookupHelpers(),
      ...sockAddrHelpers(ctx, table, run.task),
      ...cgroupRetvalHelpers(runCtx),
    ]);
    const result = runInContext(
      loaded,
      name,
      {
        r1: ctx.address,
        helpers,
        release: () => ctx.release(),
      } satisfies RunContext,
      { ...opts, repeat: 1 },
    );
    r0 = result.r0;
    flags = cgroupProgDone(runCtx, r0, FLAG_HOOKS.includes(attachType));
    printk = result.printk;
    steps = result.steps;
  } else {
    ctx.release();
  }
  const addrBytes = ctx.uaddr.slice(0, ctx.uaddrlen);
  return {
    ran: inet,
    r0,
    retval: runCtx.retval,
    flags,
    bindFlags: flags & BPF_RET_BIND_NO_CAP_NET_BIND_SERVICE
      ? BIND.NO_CAP_NET_BIND_SERVICE
      : 0,
    addr: decodeSockAddr(ctx.uaddr),
    addrBytes,
    addrLen: ctx.uaddrlen,
    msgSrc: ctx.tCtx === undefined
      ? undefined
      : srcFamily === AF.INET
      ? formatIp4(ctx.tCtx)
      : formatIp6(ctx.tCtx),
    socket: sk,
    bound: {
      ip: sk.family === AF.INET6
        ? formatIp6(sk.v6RcvSaddr)
        : formatIp4(sk.rcvSaddr),
      port: sk.num,
    },
    printk,
    steps,
  };
}
