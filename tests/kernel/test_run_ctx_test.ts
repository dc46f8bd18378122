/**
 * The contexts of BPF_PROG_TEST_RUN against hand-computed layouts: the
 * `__sk_buff` / `xdp_md` field values a 64-byte frame gives (offsets from
 * include/uapi/linux/bpf.h, values from net/bpf/test_run.c and
 * eth_type_trans()), read by real loads through the ctx region hook.
 */
import assert from "node:assert/strict";
import { assemble } from "../../lib/isa/asm.ts";
import { compileProgram } from "../../lib/exec/compile.ts";
import { MemoryFault } from "../../lib/exec/fault.ts";
import { step } from "../../lib/exec/interp.ts";
import { AddressSpace } from "../../lib/exec/memory.ts";
import { ExecState } from "../../lib/exec/state.ts";
import {
  ethTypeTrans,
  PACKET,
  SkbContext,
  XdpContext,
} from "../../lib/kernel/test_run_ctx.ts";

/** Runs `text` with r1 = `ctx`; returns r0 or the fault. */
function run(
  space: AddressSpace,
  ctx: bigint,
  text: string,
): bigint | MemoryFault {
  const state = new ExecState(compileProgram(assemble(text)), space);
  state.setReg(1, ctx);
  const status = step(state, 1000);
  if (status === "faulted") {
    assert.ok(state.error instanceof MemoryFault);
    return state.error;
  }
  assert.equal(status, "exited");
  return state.r0;
}

/** A 64-byte IPv4 frame: dest MAC `dest`, 10.0.0.1 → 10.0.0.2. */
function ipv4Frame(dest: number[]): Uint8Array {
  const f = new Uint8Array(64);
  f.set(dest, 0);
  f.set([0x08, 0x00], 12);
  f[14] = 0x45;
  f.set([10, 0, 0, 1], 14 + 12);
  f.set([10, 0, 0, 2], 14 + 16);
  return f;
}

Deno.test("eth_type_trans on the loopback device", () => {
  // 64 zero bytes: type 0 < ETH_P_802_3_MIN, payload not 0xffff → ETH_P_802_2
  assert.deepEqual(ethTypeTrans(new Uint8Array(64)), {
    protocol: 0x0400, // htons(0x0004) read as a little-endian u32
    pktType: PACKET.HOST,
  });
  const raw = new Uint8Array(64);
  raw.set([0x05, 0xdc, 0xff, 0xff], 12); // length 1500, then 0xffff: raw 802.3
  assert.equal(ethTypeTrans(raw).protocol, 0x0100);
  assert.deepEqual(
    ethTypeTrans(ipv4Frame([0xff, 0xff, 0xff, 0xff, 0xff, 0xff])),
    {
      protocol: 0x0008,
      pktType: PACKET.BROADCAST,
    },
  );
  assert.equal(
    ethTypeTrans(ipv4Frame([1, 0, 0x5e, 0, 0, 1])).pktType,
    PACKET.MULTICAST,
  );
  assert.equal(
    ethTypeTrans(ipv4Frame([2, 0, 0, 0, 0, 1])).pktType,
    PACKET.OTHERHOST,
  );
});

Deno.test("tc skb: fields and packet pointers", async (t) => {
  const space = new AddressSpace();
  const frame = ipv4Frame([0xff, 0xff, 0xff, 0xff, 0xff, 0xff]);
  const skb = new SkbContext(space, frame, { isL2: true });
  await t.step("len, protocol, pkt_type, ifindex, family, addresses", () => {
    assert.equal(run(space, skb.address, "r0 = *(u32 *)(r1 + 0)\nexit"), 64n);
    assert.equal(
      run(space, skb.address, "r0 = *(u32 *)(r1 + 16)\nexit"),
      0x0008n,
    );
    assert.equal(
      run(space, skb.address, "r0 = *(u16 *)(r1 + 16)\nexit"),
      0x0008n,
    );
    assert.equal(run(space, skb.address, "r0 = *(u32 *)(r1 + 4)\nexit"), 1n);
    assert.equal(run(space, skb.address, "r0 = *(u32 *)(r1 + 40)\nexit"), 1n);
    assert.equal(run(space, skb.address, "r0 = *(u32 *)(r1 + 88)\nexit"), 2n);
    // sk_rcv_saddr = iph->saddr (10.0.0.1) is local_ip4, in network order
    assert.equal(
      run(space, skb.address, "r0 = *(u32 *)(r1 + 96)\nexit"),
      0x0100000an,
    );
    assert.equal(
      run(space, skb.address, "r0 = *(u32 *)(r1 + 92)\nexit"),
      0x0200000an,
    );
  });
  await t.step(
    "data_end - data = len, data_meta = data, loads through data",
    () => {
      const span =
        "r2 = *(u32 *)(r1 + 76)\nr3 = *(u32 *)(r1 + 80)\nr0 = r3\nr0 -= r2\nexit";
      assert.equal(run(space, skb.address, span), 64n);
      const meta =
        "r2 = *(u32 *)(r1 + 76)\nr3 = *(u32 *)(r1 + 140)\nr0 = r2\nr0 -= r3\nexit";
      assert.equal(run(space, skb.address, meta), 0n);
      const ethType = "r2 = *(u32 *)(r1 + 76)\nr0 = *(u16 *)(r2 + 12)\nexit";
      assert.equal(run(space, skb.address, ethType), 0x0008n);
    },
  );
  await t.step("stores to writable fields land; to len they fault", () => {
    assert.equal(
      run(
        space,
        skb.address,
        "*(u32 *)(r1 + 8) = 77\nr0 = *(u32 *)(r1 + 8)\nexit",
      ),
      77n,
    );
    assert.equal(
      run(
        space,
        skb.address,
        "r2 = -1\n*(u8 *)(r1 + 48) = r2\nr0 = *(s8 *)(r1 + 48)\nexit",
      ),
      0xffffffffffffffffn,
    );
    const fault = run(space, skb.address, "*(u32 *)(r1 + 0) = 1\nexit");
    assert.ok(fault instanceof MemoryFault);
    assert.equal(fault.reason, "not-writable");
    assert.equal(fault.region?.kind, "ctx");
  });
  await t.step("a write through data shows in the data out", () => {
    run(
      space,
      skb.address,
      "r2 = *(u32 *)(r1 + 76)\n*(u8 *)(r2 + 63) = 9\nr0 = 0\nexit",
    );
    assert.equal(skb.dataOut().length, 64);
    assert.equal(skb.dataOut()[63], 9);
  });
});

Deno.test("socket filter skb: data after the MAC header, which comes back zeroed", () => {
  const space = new AddressSpace();
  const frame = ipv4Frame([2, 0, 0, 0, 0, 1]);
  const skb = new SkbContext(space, frame, { isL2: false });
  assert.equal(run(space, skb.address, "r0 = *(u32 *)(r1 + 0)\nexit"), 50n);
  assert.equal(
    run(space, skb.address, "r0 = *(u32 *)(r1 + 4)\nexit"),
    BigInt(PACKET.OTHERHOST),
  );
  const out = skb.dataOut();
  assert.equal(out.length, 64);
  assert.deepEqual(out.subarray(0, 14), new Uint8Array(14));
  assert.deepEqual(out.subarray(14), frame.subarray(14));
});

Deno.test("xdp_md: pointers, loopback queue 0, adjust_head bounds", () => {
  const space = new AddressSpace();
  const frame = new Uint8Array(64).map((_, i) => i);
  const xdp = new XdpContext(space, frame);
  const span =
    "r2 = *(u32 *)(r1 + 0)\nr3 = *(u32 *)(r1 + 4)\nr0 = r3\nr0 -= r2\nexit";
  assert.equal(run(space, xdp.address, span), 64n);
  assert.equal(run(space, xdp.address, "r0 = *(u32 *)(r1 + 12)\nexit"), 1n);
  assert.equal(run(space, xdp.address, "r0 = *(u32 *)(r1 + 16)\nexit"), 0n);
  assert.ok(
    run(space, xdp.address, "r0 = *(u16 *)(r1 + 0)\nexit") instanceof
      MemoryFault,
  );
  // headroom 256, of which sizeof(struct xdp_frame) = 40 must stay free
  assert.equal(xdp.adjustHead(-217), -22);
  assert.equal(xdp.adjustHead(64 - 13), -22); // would leave < ETH_HLEN bytes
  assert.equal(xdp.adjustHead(-16), 0);
  assert.equal(run(space, xdp.address, span), 80n);
  assert.equal(xdp.dataOut().length, 80);
  assert.deepEqual(xdp.dataOut().subarray(16), frame);
  assert.equal(xdp.adjustHead(50), 0);
  assert.equal(run(space, xdp.address, span), 30n);
});

Deno.test("xdp_md: adjust_meta and adjust_tail bounds", () => {
  const space = new AddressSpace();
  const xdp = new XdpContext(space, new Uint8Array(64).fill(7));
  const meta =
    "r2 = *(u32 *)(r1 + 0)\nr3 = *(u32 *)(r1 + 8)\nr0 = r2\nr0 -= r3\nexit";
  assert.equal(xdp.adjustMeta(-6), -13); // not a multiple of 4
  assert.equal(xdp.adjustMeta(-36), -13); // over 32 bytes
  assert.equal(xdp.adjustMeta(4), -22); // past data
  assert.equal(xdp.adjustMeta(-8), 0);
  assert.equal(run(space, xdp.address, meta), 8n);
  assert.equal(xdp.dataOut().length, 72); // the test run copies data_meta … data_end
  // tail: one page less 320 bytes of skb_shared_info, 256 of headroom
  assert.equal(xdp.adjustTail(4096 - 320 - 256 - 64 + 1), -22);
  assert.equal(xdp.adjustTail(-(64 - 13)), -22);
  assert.equal(xdp.adjustTail(-10), 0);
  assert.equal(xdp.adjustTail(6), 0);
  const out = xdp.dataOut();
  assert.equal(out.length, 8 + 60);
  assert.deepEqual(out.subarray(8 + 54), new Uint8Array(6)); // grown bytes are zero
  assert.equal(out[8 + 53], 7);
});
