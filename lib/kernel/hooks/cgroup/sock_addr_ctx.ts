/**
 * The context of a cgroup sock_addr program: `struct bpf_sock_addr_kern`
 * (the socket, the user's `sockaddr` and, for sendmsg, the message's
 * source address `t_ctx`) as the program sees it through
 * `struct bpf_sock_addr`. Its region is hooked (`RegionAccessHook`): a load
 * or store does what the verifier's rewrite (`sock_addr_convert_ctx_access()`)
 * does — `user_*` fields read and write the `sockaddr` bytes (so a program
 * rewrites the address the syscall goes on with), `msg_src_*` the source
 * address, `family`/`type`/`protocol` and `sk` come from the socket.
 *
 * One quirk is kept: `user_port` is a 2-byte load of `sin_port`, so a
 * 2-byte read at either half of the field gives the port, and a byte read
 * of its upper half gives 0 (`convert_ctx_accesses()` shifts the 16-bit
 * value). A store to it writes the low 16 bits.
 *
 * Also here: `sockaddr_in` / `sockaddr_in6` from and to text
 * ({@link encodeSockAddr}, {@link decodeSockAddr}).
 * @module
 */
import type { AddressSpace, RegionAccessHook } from "../../../exec/memory.ts";
import {
  BPF_SOCK_ADDR_OFFSETS,
  BPF_SOCK_ADDR_SIZE,
  sockAddrIsValidAccess,
} from "../../../verifier/ctx_access/sock.ts";
import { AF } from "../../net/packet_sock.ts";
import type { SimTcpSock } from "../sock/sock_ops_sock.ts";
import { readLe, writeLe } from "../../test_run_ctx.ts";

/** `sizeof(struct sockaddr_storage)`: the kernel's copy of the user's address. */
export const SOCKADDR_STORAGE_SIZE = 128;

const O = BPF_SOCK_ADDR_OFFSETS;
const within = (off: number, start: number, len: number) =>
  off >= start && off < start + len;

/**
 * `struct bpf_sock_addr_kern` for one hook invocation, mapped as the
 * program's ctx; also what the helpers bound to it share.
 */
export class SockAddrContext implements RegionAccessHook {
  /** `uaddr`: the user's sockaddr in a `sockaddr_storage` (rewritten in place). */
  readonly uaddr: Uint8Array = new Uint8Array(SOCKADDR_STORAGE_SIZE);
  /** `uaddrlen`. */
  uaddrlen: number;
  /** `t_ctx`: the sendmsg source address (`in_addr` / `in6_addr`), if the hook has one. */
  readonly tCtx: Uint8Array | undefined;
  /** `sk`. */
  readonly sock: SimTcpSock;
  /** The hook's attach type (libbpf name), for the verifier's access rules. */
  readonly attachType: string;
  /** Address of the ctx region (r1). */
  readonly address: bigint;
  private readonly space: AddressSpace;

  /**
   * Maps the ctx of a hook `attachType` on `sock` with the user's address
   * `uaddr` (`uaddrlen` bytes of it count) and, for sendmsg, `msgSrc`.
   */
  constructor(
    space: AddressSpace,
    sock: SimTcpSock,
    attachType: string,
    uaddr: Uint8Array,
    uaddrlen: number,
    msgSrc?: Uint8Array,
  ) {
    this.space = space;
    this.sock = sock;
    this.attachType = attachType;
    this.uaddr.set(uaddr.subarray(0, SOCKADDR_STORAGE_SIZE));
    this.uaddrlen = uaddrlen;
    this.tCtx = msgSrc === undefined ? undefined : new Uint8Array(16);
    if (msgSrc !== undefined) this.tCtx!.set(msgSrc.subarray(0, 16));
    this.address = space.mapRegion("ctx", BPF_SOCK_ADDR_SIZE, {
      name: "bpf_sock_addr",
      hook: this,
    });
  }

  /** See {@link RegionAccessHook.load}. */
  load(offset: number, size: number): bigint | undefined {
    const opts = { expectedAttachType: this.attachType };
    if (!sockAddrIsValidAccess(offset, size, "read", opts).ok) return undefined;
    const at = this.bytesAt(offset);
    if (at !== undefined) return readLe(at.bytes, at.off, size);
    if (within(offset, O.user_port, 4)) {
      const port = readLe(this.uaddr, 2, 2); // sin_port, 2 bytes
      if (size !== 1) return port;
      return (port >> BigInt(8 * (offset - O.user_port))) & 0xffn;
    }
    switch (offset) {
      case O.user_family:
        return readLe(this.uaddr, 0, 2);
      case O.family:
        return BigInt(this.sock.family);
      case O.type:
        return BigInt(this.sock.type);
      case O.protocol:
        return BigInt(this.sock.protocol);
      case O.sk:
        return this.sock.address;
    }
    return undefined; // unreachable: every readable field is above
  }

  /** See {@link RegionAccessHook.store}: the user's address and port, the message source. */
  store(offset: number, size: number, value: bigint): boolean {
    const opts = { expectedAttachType: this.attachType };
    if (!sockAddrIsValidAccess(offset, size, "write", opts).ok) return false;
    const at = this.bytesAt(offset);
    if (at !== undefined) {
      writeLe(at.bytes, at.off, size, value);
      return true;
    }
    if (within(offset, O.user_port, 4)) {
      writeLe(this.uaddr, 2, 2, value & 0xffffn); // a 2-byte store to sin_port
      return true;
    }
    return false; // unreachable: the verifier lets nothing else be written
  }

  /** The bytes a `user_ip*` / `msg_src_ip*` access at `off` reaches directly. */
  private bytesAt(
    off: number,
  ): { bytes: Uint8Array; off: number } | undefined {
    if (within(off, O.user_ip4, 4)) return { bytes: this.uaddr, off }; // sin_addr at 4
    if (within(off, O.user_ip6, 16)) return { bytes: this.uaddr, off }; // sin6_addr at 8
    if (this.tCtx === undefined) return undefined;
    if (within(off, O.msg_src_ip4, 4)) {
      return { bytes: this.tCtx, off: off - O.msg_src_ip4 };
    }
    if (within(off, O.msg_src_ip6, 16)) {
      return { bytes: this.tCtx, off: off - O.msg_src_ip6 };
    }
    return undefined;
  }

  /** Unmaps the ctx (the socket outlives the hook). */
  release(): void {
    this.space.unmapRegion(this.address);
  }
}

/** A socket address as text: what a test passes and a run reports. */
export interface SockAddr {
  /** `AF_INET`, `AF_INET6`, or another family (then only `family` is encoded). */
  readonly family: number;
  /** Dotted IPv4 or RFC 5952 IPv6 text (default: the wildcard). */
  readonly ip?: string;
  /** Port, host order (default 0). */
  readonly port?: number;
  /** `sin6_flowinfo` (host order) and `sin6_scope_id`. */
  readonly flowinfo?: number;
  /** See {@link flowinfo}. */
  readonly scopeId?: number;
}

/** Parses dotted-quad IPv4 text into its 4 network-order bytes. */
export function parseIp4(text: string): Uint8Array {
  const parts = text.split(".").map((p) => Number(p));
  if (
    parts.length !== 4 ||
    parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)
  ) {
    throw new RangeError(`not an IPv4 address: '${text}'`);
  }
  return Uint8Array.from(parts);
}

/** Parses IPv6 text (`::` compression, a trailing dotted quad) into 16 bytes. */
export function parseIp6(text: string): Uint8Array {
  const bad = () => new RangeError(`not an IPv6 address: '${text}'`);
  const words: number[][] = text.split("::").map((half) => {
    if (half === "") return [];
    const out: number[] = [];
    for (const g of half.split(":")) {
      if (g.includes(".")) {
        const v4 = parseIp4(g);
        out.push((v4[0] << 8) | v4[1], (v4[2] << 8) | v4[3]);
      } else if (/^[0-9a-fA-F]{1,4}$/.test(g)) out.push(parseInt(g, 16));
      else throw bad();
    }
    return out;
  });
  if (words.length > 2) throw bad();
  const [head, tail] = words;
  const fill = words.length === 2 ? 8 - head.length - tail.length : 0;
  if (words.length === 2 ? fill < 1 : head.length !== 8) throw bad();
  const all = [...head, ...new Array(fill).fill(0), ...(tail ?? [])];
  const bytes = new Uint8Array(16);
  all.forEach((w, i) => bytes.set([w >> 8, w & 0xff], 2 * i));
  return bytes;
}

/** Dotted-quad text of 4 network-order bytes. */
export function formatIp4(bytes: Uint8Array): string {
  return [...bytes.subarray(0, 4)].join(".");
}

/** RFC 5952 text of 16 bytes (v4-mapped as `::ffff:a.b.c.d`). */
export function formatIp6(bytes: Uint8Array): string {
  const mapped = bytes.subarray(0, 10).every((b) => b === 0) &&
    bytes[10] === 0xff && bytes[11] === 0xff;
  if (mapped) return `::ffff:${formatIp4(bytes.subarray(12, 16))}`;
  const words = Array.from(
    { length: 8 },
    (_, i) => (bytes[2 * i] << 8) | bytes[2 * i + 1],
  );
  // the longest run of two or more zero words (the first of equals) becomes ::
  let best = -1, bestLen = 1;
  for (let i = 0; i < 8;) {
    let j = i;
    while (j < 8 && words[j] === 0) j++;
    if (j - i > bestLen) [best, bestLen] = [i, j - i];
    i = j === i ? i + 1 : j;
  }
  const hex = (ws: number[]) => ws.map((w) => w.toString(16)).join(":");
  if (best < 0) return hex(words);
  return `${hex(words.slice(0, best))}::${hex(words.slice(best + bestLen))}`;
}

/**
 * The bytes of `addr` as the syscall copies them in: a 16-byte
 * `sockaddr_in`, a 28-byte `sockaddr_in6`, or for another family a
 * 16-byte `sockaddr` holding only the family.
 */
export function encodeSockAddr(addr: SockAddr): Uint8Array {
  const six = addr.family === AF.INET6;
  const out = new Uint8Array(six ? 28 : 16);
  const view = new DataView(out.buffer);
  view.setUint16(0, addr.family, true);
  if (addr.family !== AF.INET && !six) return out;
  view.setUint16(2, addr.port ?? 0, false);
  if (six) {
    view.setUint32(4, addr.flowinfo ?? 0, false);
    out.set(parseIp6(addr.ip ?? "::"), 8);
    view.setUint32(24, addr.scopeId ?? 0, true);
  } else {
    out.set(parseIp4(addr.ip ?? "0.0.0.0"), 4);
  }
  return out;
}

/** Reads back what {@link encodeSockAddr} writes (IPv4 and IPv6; else the family). */
export function decodeSockAddr(bytes: Uint8Array): SockAddr {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.length);
  const family = view.getUint16(0, true);
  if (family === AF.INET) {
    return {
      family,
      ip: formatIp4(bytes.subarray(4, 8)),
      port: view.getUint16(2, false),
    };
  }
  if (family === AF.INET6) {
    return {
      family,
      ip: formatIp6(bytes.subarray(8, 24)),
      port: view.getUint16(2, false),
      flowinfo: view.getUint32(4, false),
      scopeId: view.getUint32(24, true),
    };
  }
  return { family };
}
