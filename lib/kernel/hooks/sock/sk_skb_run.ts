/**
 * Running an sk_skb program (`BPF_PROG_TYPE_SK_SKB`: stream parser, stream
 * verdict, skb verdict) on received bytes, as `sk_psock_verdict_recv()` /
 * `sk_psock_strp_read()` (net/core/skmsg.c) do for a socket in a sockmap:
 * the kernel cannot test-run the type, so this is the simulator's own
 * entry point, built on `runInContext()`.
 *
 * The skb is the receiving socket's: `data … data_end` is the payload
 * (writable, as sk_skb programs may write packet data), `len` its length,
 * `protocol` `ETH_P_IP` / `ETH_P_IPV6` after the socket's family, and the
 * socket fields (`family`, addresses, ports, `sk`) the receiving socket's
 * (`bpf_convert_ctx_access()` reads them through `skb->sk`); the
 * writable `tc_index` and `priority` keep what the program stores. Every
 * other field reads 0: the receive path's `pkt_type`, `hash`, `ifindex`,
 * `gso_segs` … are not modelled; `len`, `data` and `data_end` follow the
 * helpers that reshape the skb. Helpers: the object's and the kernel's,
 * the redirects `bpf_sk_redirect_map` / `_hash`, and the packet and socket
 * helpers of sk_skb_helpers.ts (load / store bytes, pull data, change
 * tail / head, adjust room, socket uid, socket lookups).
 * @module
 */
import type { AddressSpace, RegionAccessHook } from "../../../exec/memory.ts";
import {
  SK_BUFF_OFFSETS,
  SK_BUFF_SIZE,
} from "../../../verifier/ctx_access/skb.ts";
import type { LoadedObject } from "../../object_loader.ts";
import {
  programOfType,
  runInContext,
  type TestRunOptions,
  type TestRunResult,
} from "../../test_run.ts";
import { readLe, SKB_HEADROOM, writeLe } from "../../test_run_ctx.ts";
import { PacketBuffer } from "../../net/packet_buffer.ts";
import { AF } from "../../net/packet_sock.ts";
import { bpfSkStorageFree } from "../../local_storage_helpers.ts";
import { MsgSock, type SockEndpoints } from "./sk_msg_ctx.ts";
import {
  type RedirectSlot,
  skbRedirectHelpers,
  type SockRedirect,
  sockVerdict,
} from "./sock_redirect_helpers.ts";
import { skSkbHelpers } from "./sk_skb_helpers.ts";

const SKB = SK_BUFF_OFFSETS;
/** `ETH_P_IP` / `ETH_P_IPV6` as the u32 `__sk_buff.protocol` reads the `__be16`. */
const PROTO_IP_BE = 0x0008, PROTO_IPV6_BE = 0xdd86;

/** The `__sk_buff` of an sk_skb run: see the module comment. */
export class SkSkbContext implements RegionAccessHook, RedirectSlot {
  /** The shadow `__sk_buff` of the non-pointer fields. */
  readonly shadow: Uint8Array = new Uint8Array(SK_BUFF_SIZE);
  /** The skb's bytes: headroom, `data … data_end`, tailroom. */
  readonly packet: PacketBuffer;
  /** The receiving socket (`skb->sk`). */
  readonly sock: MsgSock;
  /** Address of the ctx region (r1). */
  readonly address: bigint;
  /** `skb_bpf_set_redir()`'s target, set by `bpf_sk_redirect_map()` / `_hash()`. */
  redirect: SockRedirect | undefined = undefined;
  private readonly space: AddressSpace;
  private readonly ownsSock: boolean;

  /**
   * Maps a copy of `payload` (after `SKB_HEADROOM` bytes of headroom: the
   * headers the receive path pulled past are not modelled, and no sk_skb
   * field reaches them) and the ctx; releases `sock` too when `ownsSock`.
   */
  constructor(
    space: AddressSpace,
    payload: Uint8Array,
    sock: MsgSock,
    ownsSock = true,
  ) {
    this.space = space;
    this.sock = sock;
    this.ownsSock = ownsSock;
    this.packet = new PacketBuffer(space, payload, SKB_HEADROOM, true);
    const v = new DataView(this.shadow.buffer);
    v.setUint32(
      SKB.protocol,
      sock.family === AF.INET6 ? PROTO_IPV6_BE : PROTO_IP_BE,
      true,
    );
    v.setUint32(SKB.family, sock.family, true);
    this.shadow.set(sock.daddr, SKB.remote_ip4);
    this.shadow.set(sock.rcvSaddr, SKB.local_ip4);
    this.shadow.set(sock.v6Daddr, SKB.remote_ip6);
    this.shadow.set(sock.v6RcvSaddr, SKB.local_ip6);
    // the u16 load of __be16 skc_dport, shifted up (little-endian host)
    v.setUint32(SKB.remote_port, (sock.dport << 16) >>> 0, true);
    v.setUint32(SKB.local_port, sock.num, true);
    this.address = space.mapRegion("ctx", SK_BUFF_SIZE, {
      name: "__sk_buff (sk_skb)",
      hook: this,
    });
  }

  /** Region id of the packet (`data … data_end`), new after each reshape. */
  get packetRegion(): number {
    return this.packet.regionId;
  }

  /** `skb->len`: bytes from `data` to `data_end` (the skb is linear). */
  get len(): number {
    return this.packet.len;
  }

  /**
   * See {@link RegionAccessHook.load}: `data_end` is `data + len` at each
   * read, as `bpf_convert_data_end_access()` computes it for sk_skb.
   */
  load(offset: number, size: number): bigint | undefined {
    const p = this.packet;
    switch (offset) {
      case SKB.data:
        return size === 4 ? p.address(p.dataOff) : undefined;
      case SKB.data_end:
        return size === 4 ? p.address(p.endOff) : undefined;
      case SKB.sk:
        return size === 8 ? this.sock.address : undefined;
    }
    if (offset < SKB.len + 4) {
      writeLe(this.shadow, SKB.len, 4, BigInt(this.len));
    }
    return readLe(this.shadow, offset, size);
  }

  /** See {@link RegionAccessHook.store}: `tc_index` and `priority` only. */
  store(offset: number, size: number, value: bigint): boolean {
    const ok = [SKB.tc_index, SKB.priority].some((at) =>
      offset >= at && offset + size <= at + 4
    );
    if (ok) writeLe(this.shadow, offset, size, value);
    return ok;
  }

  /** Unmaps the ctx, the payload and an owned socket. */
  release(): void {
    this.packet.release();
    if (this.ownsSock) {
      bpfSkStorageFree(this.sock);
      this.sock.release();
    }
    this.space.unmapRegion(this.address);
  }
}

/** The bytes and socket of {@link runSkSkbProgram}. */
export interface SkSkbInput extends SockEndpoints {
  /** The received bytes (the skb's data). */
  readonly payload: Uint8Array;
  /** The receiving socket, when the test made it; else one from the endpoint fields. */
  readonly sock?: MsgSock;
}

/** What {@link runSkSkbProgram} reports. */
export interface SkSkbRunResult {
  /** r0 as a u32. */
  readonly retval: number;
  /** The full r0. */
  readonly r0: bigint;
  /** Instructions retired. */
  readonly steps: number;
  /** The payload after the run. */
  readonly data: Uint8Array;
  /** What `sk_psock_map_verd()` makes of r0 and the redirect. */
  readonly verdict: "pass" | "drop" | "redirect";
  /** The redirect recorded, if any. */
  readonly redirect: SockRedirect | undefined;
  /** Lines `bpf_trace_printk` printed. */
  readonly printk: readonly string[];
}

/**
 * Runs sk_skb program `name` of `loaded` once over `input.payload`.
 * Throws `TestRunError` (EINVAL) for a program of another type.
 */
export function runSkSkbProgram(
  loaded: LoadedObject,
  name: string,
  input: SkSkbInput,
  opts: Omit<TestRunOptions, "data" | "repeat"> = {},
): SkSkbRunResult {
  programOfType(loaded, name, "sk_skb");
  const space = loaded.kernel.space;
  const sock = input.sock ?? new MsgSock(space, input);
  const ctx = new SkSkbContext(
    space,
    input.payload,
    sock,
    input.sock === undefined,
  );
  const run: TestRunResult = runInContext(loaded, name, {
    r1: ctx.address,
    helpers: new Map([
      ...skSkbHelpers(ctx),
      ...skbRedirectHelpers(loaded.registry, ctx),
    ]),
    dataOut: () => ctx.packet.data().slice(),
    release: () => ctx.release(),
  }, { ...opts, repeat: 1 });
  return {
    retval: run.retval,
    r0: run.r0,
    steps: run.steps,
    data: run.dataOut ?? new Uint8Array(),
    verdict: sockVerdict(run.retval, ctx.redirect),
    redirect: ctx.redirect,
    printk: run.printk,
  };
}
