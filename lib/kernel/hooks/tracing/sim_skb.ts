/**
 * Kernel packet objects for tracing programs: a simulated `struct sk_buff`
 * and `struct xdp_buff` holding a packet, as a tracepoint or a traced
 * function hands them to a BTF-typed program (`tp_btf/kfree_skb`,
 * `fentry/xdp_do_redirect` …). They are not the uapi views a test run
 * builds (`__sk_buff` / `xdp_md` in test_run_ctx.ts): the program gets the
 * kernel object's address, reads it only through BTF, and helpers such as
 * `bpf_skb_output` find it here by that address.
 *
 * Each object is a read-only `kernel` region laid out at the offsets of the
 * 6.18 x86-64 vmlinux BTF (the oracle machine's), as far as the helpers
 * read it; its packet is a second read-only `kernel` region, the head
 * buffer. What is laid out:
 * - `struct sk_buff`: `len`, `data_len` (0: the packet is linear, no
 *   page fragments), `head` (the buffer), `data` (`head` + {@link
 *   SIM_SKB_HEADROOM}), `tail` and `end` (offsets from `head`, as
 *   `sk_buff_data_t` is on 64-bit), `truesize`;
 * - `struct xdp_buff`: `data_hard_start` (the buffer), `data` (after
 *   `XDP_PACKET_HEADROOM`), `data_end`, `data_meta` = `data` (no
 *   metadata), `frame_sz` one page, `flags` 0 (no fragments).
 * Everything else reads as zero.
 * @module
 */
import type { AddressSpace } from "../../../exec/memory.ts";
import type { Kernel } from "../../kernel.ts";
import { readLe, writeLe } from "../../test_run_ctx.ts";
import { XDP_PACKET_HEADROOM } from "../../net/packet_xdp_ctx.ts";

/** `sizeof(struct sk_buff)` and the offsets bpfsim lays out (6.18, x86-64). */
export const KERNEL_SK_BUFF_LAYOUT = {
  size: 224,
  len: 112,
  data_len: 116,
  tail: 184,
  end: 188,
  head: 192,
  data: 200,
  truesize: 208,
} as const;

/** `sizeof(struct xdp_buff)` and its members (6.18, x86-64). */
export const KERNEL_XDP_BUFF_LAYOUT = {
  size: 56,
  data: 0,
  data_end: 8,
  data_meta: 16,
  data_hard_start: 24,
  rxq: 32,
  txq: 40,
  frame_sz: 48,
  flags: 52,
} as const;

/** Headroom in front of a simulated skb's data: `NET_SKB_PAD` (64). */
export const SIM_SKB_HEADROOM = 64;
/** `frame_sz` of a simulated xdp_buff: one page. */
export const SIM_XDP_FRAME_SZ = 4096;

/** A simulated `struct sk_buff` over a linear packet. */
export class SimSkb {
  /** Its address (what a program's `struct sk_buff *` holds). */
  readonly address: bigint;
  /** Its bytes (the region's backing). */
  readonly bytes: Uint8Array;
  /** Address of the head buffer. */
  readonly head: bigint;

  /** Records what {@link NetObjects.createSkb} mapped. */
  constructor(address: bigint, bytes: Uint8Array, head: bigint) {
    this.address = address;
    this.bytes = bytes;
    this.head = head;
  }

  /** `skb->len`. */
  get len(): number {
    return Number(readLe(this.bytes, KERNEL_SK_BUFF_LAYOUT.len, 4));
  }

  /** `skb->data`. */
  get data(): bigint {
    return readLe(this.bytes, KERNEL_SK_BUFF_LAYOUT.data, 8);
  }
}

/** A simulated `struct xdp_buff` without fragments. */
export class SimXdpBuff {
  /** Its address (what a program's `struct xdp_buff *` holds). */
  readonly address: bigint;
  /** Its bytes (the region's backing). */
  readonly bytes: Uint8Array;
  /** Address of the buffer (`data_hard_start`). */
  readonly hardStart: bigint;

  /** Records what {@link NetObjects.createXdpBuff} mapped. */
  constructor(address: bigint, bytes: Uint8Array, hardStart: bigint) {
    this.address = address;
    this.bytes = bytes;
    this.hardStart = hardStart;
  }

  /** `xdp->data`. */
  get data(): bigint {
    return readLe(this.bytes, KERNEL_XDP_BUFF_LAYOUT.data, 8);
  }

  /** `xdp_get_buff_len()`: `data_end - data` (no fragments). */
  get len(): number {
    const end = readLe(this.bytes, KERNEL_XDP_BUFF_LAYOUT.data_end, 8);
    return Number(end - this.data);
  }
}

/** The simulated packet objects of one kernel, found by address. */
export class NetObjects {
  private readonly space: AddressSpace;
  private readonly byAddress = new Map<bigint, SimSkb | SimXdpBuff>();

  /** The objects of `kernel` (use {@link netObjects}: one set per kernel). */
  constructor(kernel: Kernel) {
    this.space = kernel.space;
  }

  /** An skb whose linear data is a copy of `packet` (`__alloc_skb()` + `skb_put_data()`). */
  createSkb(packet: Uint8Array): SimSkb {
    const L = KERNEL_SK_BUFF_LAYOUT;
    const buffer = new Uint8Array(SIM_SKB_HEADROOM + packet.length);
    buffer.set(packet, SIM_SKB_HEADROOM);
    const head = this.map(buffer, `skb head (${packet.length} bytes)`);
    const bytes = new Uint8Array(L.size);
    writeLe(bytes, L.len, 4, BigInt(packet.length));
    writeLe(bytes, L.tail, 4, BigInt(buffer.length));
    writeLe(bytes, L.end, 4, BigInt(buffer.length));
    writeLe(bytes, L.head, 8, head);
    writeLe(bytes, L.data, 8, head + BigInt(SIM_SKB_HEADROOM));
    writeLe(bytes, L.truesize, 4, BigInt(L.size + buffer.length));
    const address = this.map(bytes, "sk_buff");
    const skb = new SimSkb(address, bytes, head);
    this.byAddress.set(address, skb);
    return skb;
  }

  /** An xdp_buff over a copy of `packet` (`xdp_init_buff()` + `xdp_prepare_buff()`). */
  createXdpBuff(packet: Uint8Array): SimXdpBuff {
    const L = KERNEL_XDP_BUFF_LAYOUT;
    const buffer = new Uint8Array(XDP_PACKET_HEADROOM + packet.length);
    buffer.set(packet, XDP_PACKET_HEADROOM);
    const start = this.map(buffer, `xdp frame (${packet.length} bytes)`);
    const data = start + BigInt(XDP_PACKET_HEADROOM);
    const bytes = new Uint8Array(L.size);
    writeLe(bytes, L.data, 8, data);
    writeLe(bytes, L.data_end, 8, data + BigInt(packet.length));
    writeLe(bytes, L.data_meta, 8, data);
    writeLe(bytes, L.data_hard_start, 8, start);
    writeLe(bytes, L.frame_sz, 4, BigInt(SIM_XDP_FRAME_SZ));
    const address = this.map(bytes, "xdp_buff");
    const xdp = new SimXdpBuff(address, bytes, start);
    this.byAddress.set(address, xdp);
    return xdp;
  }

  /** The live skb starting at `address`, if any. */
  skbAt(address: bigint): SimSkb | undefined {
    const o = this.byAddress.get(address);
    return o instanceof SimSkb ? o : undefined;
  }

  /** The live xdp_buff starting at `address`, if any. */
  xdpBuffAt(address: bigint): SimXdpBuff | undefined {
    const o = this.byAddress.get(address);
    return o instanceof SimXdpBuff ? o : undefined;
  }

  /** Frees `obj` and its buffer: a program still holding it would fault. */
  free(obj: SimSkb | SimXdpBuff): void {
    if (this.byAddress.get(obj.address) !== obj) {
      throw new TypeError(`0x${obj.address.toString(16)} is not live`);
    }
    this.byAddress.delete(obj.address);
    this.space.unmapRegion(obj.address);
    this.space.unmapRegion(obj instanceof SimSkb ? obj.head : obj.hardStart);
  }

  /** Maps `bytes` as a read-only kernel region named `name`. */
  private map(bytes: Uint8Array, name: string): bigint {
    return this.space.mapRegion("kernel", bytes, { name, write: false });
  }
}

const OBJECTS = new WeakMap<Kernel, NetObjects>();

/** The packet objects of `kernel` (created empty on first use). */
export function netObjects(kernel: Kernel): NetObjects {
  let objs = OBJECTS.get(kernel);
  if (objs === undefined) OBJECTS.set(kernel, objs = new NetObjects(kernel));
  return objs;
}
