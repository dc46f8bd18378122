/**
 * The context of an `sk_msg` program (`BPF_PROG_TYPE_SK_MSG`): what
 * `sk_psock_msg_verdict()` hands it when a socket in a sockmap sends — the
 * `struct sk_msg` being sent (lib/kernel/hooks/sock/sk_msg.ts) and the sending socket.
 * The kernel's verifier rewrites each `struct sk_msg_md` access into loads
 * from the `sk_msg` and its `sock` (`sk_msg_convert_ctx_access()`); here
 * the ctx is a hooked region (`RegionAccessHook`) whose loads give what
 * those rewritten loads give: `data` / `data_end` the addresses of the
 * current window, mapped as a writable `packet` region (sk_msg programs
 * may write the message directly), `size` the message's `sg.size`, the
 * address fields the socket's, `sk` the socket itself (a `struct
 * bpf_sock`, read through packet_sock.ts's conversions).
 * @module
 */
import type { AddressSpace, RegionAccessHook } from "../../../exec/memory.ts";
import { regionAddress } from "../../../exec/memory.ts";
import {
  SK_MSG_MD_OFFSETS,
  SK_MSG_MD_SIZE,
} from "../../../verifier/ctx_access/sock.ts";
import { AF, TestRunSock } from "../../net/packet_sock.ts";
import { bpfSkStorageFree } from "../../local_storage_helpers.ts";
import { sockGenCookie } from "../../net/packet_sock_helpers.ts";
import type { SockmapSocket } from "../../maps/sockmap.ts";
import type { RedirectSlot, SockRedirect } from "./sock_redirect_helpers.ts";
import type { SkMsg } from "./sk_msg.ts";
import { readLe } from "../../test_run_ctx.ts";

const MD = SK_MSG_MD_OFFSETS;
/** `TCP_ESTABLISHED`: the state of a socket sending through a sockmap. */
export const TCP_ESTABLISHED = 1;
/** `SOCK_STREAM`, `IPPROTO_TCP`. */
const SOCK_STREAM = 1, IPPROTO_TCP = 6;

/** The socket of an sk_msg or sk_skb run: addresses in network order, ports in host order. */
export interface SockEndpoints {
  /** `sk_family`: `AF_INET` (2, default) or `AF_INET6` (10). */
  readonly family?: number;
  /** `skc_rcv_saddr` (4 bytes; default 127.0.0.1). */
  readonly localIp4?: Uint8Array;
  /** `skc_daddr` (4 bytes; default 127.0.0.1). */
  readonly remoteIp4?: Uint8Array;
  /** `skc_v6_rcv_saddr` (16 bytes; default all zero). */
  readonly localIp6?: Uint8Array;
  /** `skc_v6_daddr` (16 bytes; default all zero). */
  readonly remoteIp6?: Uint8Array;
  /** `skc_num`: the local port (default 0). */
  readonly localPort?: number;
  /** The peer's port, which the socket keeps as `__be16 skc_dport` (default 0). */
  readonly remotePort?: number;
  /** `sk_state` (default `TCP_ESTABLISHED`; `TCP_LISTEN` (10) for a listener). */
  readonly state?: number;
}

/**
 * A TCP socket of the simulated host, as sk_msg and sk_skb programs and
 * sockmaps see it: the test names its family, addresses, ports and state
 * (established by default); the rest is what such a socket has
 * (`SOCK_STREAM`, `IPPROTO_TCP`, the TCP `sk_prot`). Read by programs as
 * a `struct bpf_sock` exactly as the test run's socket is
 * (packet_sock.ts); its cookie is handed out on first request.
 */
export class MsgSock extends TestRunSock implements SockmapSocket {
  /** See {@link TestRunSock.family}. */
  override readonly family: number;
  /** See {@link TestRunSock.type}. */
  override readonly type: number = SOCK_STREAM;
  /** See {@link TestRunSock.protocol}. */
  override readonly protocol: number = IPPROTO_TCP;
  /** See {@link TestRunSock.state}. */
  override readonly state: number;
  /** See {@link TestRunSock.num}. */
  override readonly num: number;
  /** See {@link TestRunSock.dport}: the `__be16` as a little-endian u16 load reads it. */
  override readonly dport: number;
  /** See {@link TestRunSock.prot}. */
  override readonly prot: "bpf_dummy" | "tcp" = "tcp";
  /** The peer's port in host order. */
  readonly remotePort: number;
  /** `sk_is_tcp()`: always, a stream socket of IPPROTO_TCP. */
  readonly isTcp: boolean = true;
  private readonly home: AddressSpace;

  /** The socket `ends` describes, in `space`. */
  constructor(space: AddressSpace, ends: SockEndpoints = {}) {
    super(space, 0, new Uint8Array());
    this.home = space;
    this.state = ends.state ?? TCP_ESTABLISHED;
    this.family = ends.family ?? AF.INET;
    this.num = (ends.localPort ?? 0) & 0xffff;
    this.remotePort = (ends.remotePort ?? 0) & 0xffff;
    this.dport = ((this.remotePort & 0xff) << 8) | (this.remotePort >> 8);
    this.rcvSaddr.set(ends.localIp4 ?? LOOPBACK4);
    this.daddr.set(ends.remoteIp4 ?? LOOPBACK4);
    if (ends.localIp6) this.v6RcvSaddr.set(ends.localIp6);
    if (ends.remoteIp6) this.v6Daddr.set(ends.remoteIp6);
  }

  /** `__sock_gen_cookie()` on `cpu`: the socket keeps the first cookie given. */
  genCookie(cpu: number): bigint {
    return sockGenCookie(this, this.home, cpu);
  }
}

const LOOPBACK4 = new Uint8Array([127, 0, 0, 1]);

/**
 * The ctx of an sk_msg run: the `sk_msg_md` region (r1) over the message
 * `msg` sent by `sock`, and the `packet` region over `data … data_end`,
 * remapped whenever a helper moves the window.
 */
export class SkMsgContext implements RegionAccessHook, RedirectSlot {
  /** The message. */
  readonly msg: SkMsg;
  /** `msg->sk_redir` and `msg->flags`: set by `bpf_msg_redirect_map()` / `_hash()`. */
  redirect: SockRedirect | undefined = undefined;
  /** The sending socket (`msg->sk`). */
  readonly sock: MsgSock;
  /** Address of the ctx region (r1). */
  readonly address: bigint;
  /** Region id of the current window, 0 before the first map. */
  windowRegion = 0;
  private readonly space: AddressSpace;
  private readonly ownsSock: boolean;

  /**
   * Maps the ctx and the first window of `msg`; {@link release} releases
   * `sock` too when `ownsSock` (a socket made for this run alone).
   */
  constructor(
    space: AddressSpace,
    msg: SkMsg,
    sock: MsgSock,
    ownsSock = true,
  ) {
    this.space = space;
    this.msg = msg;
    this.sock = sock;
    this.ownsSock = ownsSock;
    this.address = space.mapRegion("ctx", SK_MSG_MD_SIZE, {
      name: "sk_msg_md",
      hook: this,
    });
    this.remapWindow();
    msg.onWindowChange = () => this.remapWindow();
  }

  /** (Re)maps the `packet` region over the message's window. */
  private remapWindow(): void {
    if (this.windowRegion !== 0) {
      this.space.unmapRegion(regionAddress(this.windowRegion));
    }
    const w = this.msg.window;
    const bytes = w.element < 0
      ? new Uint8Array(0)
      : this.msg.elementBytes(w.element).subarray(w.start, w.end);
    this.windowRegion = this.space.mapRegionId("packet", bytes, {
      name: "sk_msg data",
    });
  }

  /** `msg->data`. */
  get data(): bigint {
    return regionAddress(this.windowRegion);
  }

  /** `msg->data_end`. */
  get dataEnd(): bigint {
    const w = this.msg.window;
    return this.data + BigInt(w.end - w.start);
  }

  /** See {@link RegionAccessHook.load}: `sk_msg_convert_ctx_access()`. */
  load(offset: number, size: number): bigint | undefined {
    const s = this.sock;
    if (size === 8) {
      switch (offset) {
        case MD.data:
          return this.data;
        case MD.data_end:
          return this.dataEnd;
        case MD.sk:
          return s.address;
      }
      return undefined;
    }
    if (size !== 4) return undefined; // sk_msg_is_valid_access(): whole fields
    if (offset >= MD.remote_ip6 && offset < MD.remote_ip6 + 16) {
      return readLe(s.v6Daddr, offset - MD.remote_ip6, 4);
    }
    if (offset >= MD.local_ip6 && offset < MD.local_ip6 + 16) {
      return readLe(s.v6RcvSaddr, offset - MD.local_ip6, 4);
    }
    switch (offset) {
      case MD.family:
        return BigInt(s.family);
      case MD.remote_ip4:
        return readLe(s.daddr, 0, 4);
      case MD.local_ip4:
        return readLe(s.rcvSaddr, 0, 4);
      case MD.remote_port: // the u16 load of skc_dport, shifted up (little-endian)
        return BigInt((s.dport << 16) >>> 0);
      case MD.local_port:
        return BigInt(s.num);
      case MD.size:
        return BigInt(this.msg.size);
    }
    return undefined;
  }

  /** `sk_msg_is_valid_access()` refuses every write. */
  store(): boolean {
    return false;
  }

  /** Unmaps the ctx, the window and an owned socket (its storage goes with it). */
  release(): void {
    this.msg.onWindowChange = undefined;
    if (this.windowRegion !== 0) {
      this.space.unmapRegion(regionAddress(this.windowRegion));
      this.windowRegion = 0;
    }
    if (this.ownsSock) {
      bpfSkStorageFree(this.sock);
      this.sock.release();
    }
    this.space.unmapRegion(this.address);
  }
}
