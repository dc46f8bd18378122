/**
 * The packet helpers against independent expectations: checksums checked
 * with a plain RFC 1071 sum written here (big-endian 16-bit words, end-
 * around carry), header layouts computed by hand, and the reshaping helpers
 * on IPv4 / IPv6 frames the oracle fixtures cannot feed (they run on 64
 * zero bytes). Helpers are called directly with a stub call context.
 */
import assert from "node:assert/strict";
import { AddressSpace } from "../../../lib/exec/memory.ts";
import type { CallContext, HelperFn } from "../../../lib/exec/state.ts";
import {
  csumDiff,
  csumReplace2,
  csumReplace4,
  csumReplaceByDiff,
} from "../../../lib/kernel/net/packet_csum.ts";
import {
  skbHelpers,
  xdpHelpers,
} from "../../../lib/kernel/net/packet_helpers.ts";
import { SkbContext, XdpContext } from "../../../lib/kernel/test_run_ctx.ts";

/** RFC 1071: ones'-complement sum of big-endian 16-bit words, folded. */
function onesSum(bytes: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < bytes.length; i += 2) {
    sum += (bytes[i] << 8) | (bytes[i + 1] ?? 0);
  }
  while (sum > 0xffff) sum = (sum & 0xffff) + (sum >>> 16);
  return sum;
}

/** The IPv4 header checksum field value (big-endian) for `hdr` with check = 0. */
function ipChecksum(hdr: Uint8Array): number {
  const copy = hdr.slice();
  copy[10] = copy[11] = 0;
  return ~onesSum(copy) & 0xffff;
}

/** A 64-byte IPv4/UDP frame (checksum valid), 10.0.0.1 → 10.0.0.2. */
function ipv4Frame(tos = 0): Uint8Array {
  const f = new Uint8Array(64);
  f.set([0x08, 0x00], 12);
  f.set(
    [0x45, tos, 0, 50, 0, 1, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2],
    14,
  );
  const sum = ipChecksum(f.subarray(14, 34));
  f[24] = sum >> 8;
  f[25] = sum & 0xff;
  return f;
}

/** A 64-byte IPv6 frame: traffic class `tclass`, payload 0x5a bytes. */
function ipv6Frame(tclass = 0): Uint8Array {
  const f = new Uint8Array(64).fill(0x5a, 54);
  f.set([0x86, 0xdd], 12);
  f.set([0x60 | (tclass >> 4), (tclass << 4) & 0xff, 0, 0, 0, 10, 17, 64], 14);
  return f;
}

/** Calls helper `id` of `helpers` with r1–r5 = `args` (bigints taken mod 2^64). */
function call(
  helpers: Map<number, HelperFn>,
  space: AddressSpace,
  id: number,
  ...args: (number | bigint)[]
): number | bigint {
  const regs = [0n, ...args.map((a) => BigInt.asUintN(64, BigInt(a)))];
  while (regs.length < 6) regs.push(0n);
  const vm = {
    arg: (i: number) => regs[i],
    argLo: (i: number) => Number(BigInt.asIntN(32, regs[i])),
    argHi: (i: number) => Number(BigInt.asIntN(32, regs[i] >> 32n)),
    mem: space,
  } as unknown as CallContext;
  const fn = helpers.get(id);
  assert.ok(fn, `helper ${id} is wired`);
  const r = fn(vm);
  assert.notEqual(r, undefined);
  return r as number | bigint;
}

/** A tc skb over `frame` with its helpers and a 64-byte scratch buffer. */
function tcSkb(frame: Uint8Array) {
  const space = new AddressSpace();
  const skb = new SkbContext(space, frame, { isL2: true });
  const scratch = space.mapRegion("stack", 64, { name: "scratch" });
  return { space, skb, helpers: skbHelpers(skb), scratch };
}

Deno.test("checksum arithmetic agrees with a plain RFC 1071 sum", async (t) => {
  await t.step(
    "csum_diff of a 4-byte change equals the sums' difference",
    () => {
      const from = new Uint8Array([10, 0, 0, 1]),
        to = new Uint8Array([192, 168, 1, 1]);
      const d = csumDiff(from, to, 0);
      // little-endian words: the 16-bit sum of byte-swapped words, mod 0xffff
      const swap = (b: Uint8Array) => new Uint8Array([b[1], b[0], b[3], b[2]]);
      const expected = (onesSum(swap(to)) - onesSum(swap(from)) + 0xffff) %
        0xffff;
      assert.equal(d % 0xffff, expected);
      assert.ok(d > 0 && d <= 0xffff);
    },
  );
  await t.step(
    "by hand: {01020304, 0a0b0c0d} → {11223344, ffffffff} is 0x482a",
    () => {
      const from = new Uint8Array([1, 2, 3, 4, 10, 11, 12, 13]);
      const to = new Uint8Array([
        0x11,
        0x22,
        0x33,
        0x44,
        0xff,
        0xff,
        0xff,
        0xff,
      ]);
      // to: 0x44332211 + 0xffffffff ≡ 0x44332211; from: 0x110f0d0b;
      // 0x44332211 + ~0x110f0d0b = 0x33241506 (carry folded); 0x3324 + 0x1506
      assert.equal(csumDiff(from, to, 0), 0x482a);
    },
  );
  await t.step(
    "csum_diff with an odd size sums the tail words (6 bytes: 3)",
    () => {
      assert.equal(
        csumDiff(new Uint8Array(), new Uint8Array([1, 0, 0, 0, 2, 0]), 0),
        3,
      );
    },
  );
  await t.step(
    "replace4 / replace2 / by_diff give the recomputed header sum",
    () => {
      const f = ipv4Frame();
      const hdr = f.slice(14, 34);
      const le16 = (b: Uint8Array, o: number) => b[o] | (b[o + 1] << 8);
      const le32 = (b: Uint8Array, o: number) =>
        (b[o] | (b[o + 1] << 8) | (b[o + 2] << 16) | (b[o + 3] << 24)) >>> 0;
      const next = hdr.slice();
      next.set([192, 168, 1, 1], 12);
      next[3] = 30; // tot_len 50 → 30
      const want = ipChecksum(next);
      const wantLe = ((want & 0xff) << 8) | (want >> 8);
      let sum = le16(hdr, 10);
      sum = csumReplace4(sum, le32(hdr, 12), le32(next, 12));
      sum = csumReplace2(sum, le16(hdr, 2), le16(next, 2));
      assert.equal(sum, wantLe);
      const diff = csumDiff(hdr.subarray(12, 16), next.subarray(12, 16), 0);
      const viaDiff = csumReplace2(
        csumReplaceByDiff(le16(hdr, 10), diff),
        le16(hdr, 2),
        le16(next, 2),
      );
      assert.equal(viaDiff, wantLe);
    },
  );
});

Deno.test("l3/l4_csum_replace on a tc skb keep the IPv4 header valid", () => {
  const { space, skb, helpers, scratch } = tcSkb(ipv4Frame());
  const newAddr = new Uint8Array([172, 16, 0, 9]);
  space.writeBytes(scratch, newAddr);
  const oldLe = 0x0100000a, newLe = 0x090010ac;
  assert.equal(call(helpers, space, 9, skb.address, 26, scratch, 4, 0), 0);
  assert.equal(call(helpers, space, 10, skb.address, 24, oldLe, newLe, 4), 0);
  const hdr = skb.packet.data().subarray(14, 34);
  assert.equal(onesSum(hdr), 0xffff, "header sums to all ones");
  // l4 with a zero checksum and MARK_MANGLED_0: left alone
  assert.equal(call(helpers, space, 11, skb.address, 40, 1, 2, 0x20 | 2), 0);
  assert.deepEqual([...skb.packet.data().subarray(40, 42)], [0, 0]);
  // errors: odd offset, past the end, unknown flag, diff with a from
  assert.equal(call(helpers, space, 10, skb.address, 25, 0, 0, 2), -14);
  assert.equal(call(helpers, space, 10, skb.address, 64, 0, 0, 2), -14);
  assert.equal(call(helpers, space, 11, skb.address, 40, 0, 0, 1 << 9), -22);
  assert.equal(call(helpers, space, 11, skb.address, 40, 1, 0, 0), -22);
});

Deno.test("ecn_set_ce marks ECT(0) IPv4 and keeps its checksum valid", () => {
  const { space, skb, helpers } = tcSkb(ipv4Frame(2));
  assert.equal(call(helpers, space, 97, skb.address), 1);
  const hdr = skb.packet.data().subarray(14, 34);
  assert.equal(hdr[1], 3);
  assert.equal(onesSum(hdr), 0xffff);
  const v6 = tcSkb(ipv6Frame(0x02));
  assert.equal(call(v6.helpers, v6.space, 97, v6.skb.address), 1);
  assert.equal(v6.skb.packet.data()[15], 0x30, "traffic class CE in byte 1");
  const notEct = tcSkb(ipv6Frame(0));
  assert.equal(call(notEct.helpers, notEct.space, 97, notEct.skb.address), 0);
});

Deno.test("change_proto and adjust_room move the bytes after the MAC header", async (t) => {
  await t.step("IPv6 → IPv4 pops 20 bytes after the MAC header", () => {
    const frame = ipv6Frame();
    const { space, skb, helpers } = tcSkb(frame);
    assert.equal(call(helpers, space, 31, skb.address, 0x0008, 0), 0);
    assert.equal(skb.len, 44);
    assert.equal(skb.protocol, 0x0800);
    const out = skb.dataOut();
    assert.deepEqual([...out.subarray(0, 14)], [...frame.subarray(0, 14)]);
    assert.deepEqual([...out.subarray(14)], [...frame.subarray(34)]);
  });
  await t.step("IPv4 NET grow inserts zeros after the 20-byte header", () => {
    const frame = ipv4Frame();
    const { space, skb, helpers } = tcSkb(frame);
    assert.equal(call(helpers, space, 50, skb.address, 6, 0, 0), 0);
    const out = skb.dataOut();
    assert.equal(out.length, 70);
    assert.deepEqual([...out.subarray(0, 34)], [...frame.subarray(0, 34)]);
    assert.deepEqual([...out.subarray(34, 40)], [0, 0, 0, 0, 0, 0]);
    assert.deepEqual([...out.subarray(40)], [...frame.subarray(34)]);
  });
  await t.step("MAC-mode shrink larger than the room left is -ENOTSUPP", () => {
    const { space, skb, helpers } = tcSkb(ipv4Frame());
    // len_cur = 50; shrinking by 31 leaves 19 < sizeof(iphdr)
    assert.equal(call(helpers, space, 50, skb.address, -31, 1, 0), -524);
    assert.equal(call(helpers, space, 50, skb.address, -30, 1, 0), 0);
    assert.equal(skb.len, 34);
  });
});

Deno.test("VLAN push/pop and change_head keep ld_abs on the packet", () => {
  const frame = ipv4Frame();
  const { space, skb, helpers } = tcSkb(frame);
  const regions: number[] = [];
  skb.packet.onRemap = (id) => regions.push(id);
  call(helpers, space, 18, skb.address, 0x0081, 10);
  call(helpers, space, 18, skb.address, 0x0081, 20);
  assert.equal(skb.len, 68);
  assert.deepEqual([...skb.packet.data().subarray(12, 18)], [
    0x81,
    0,
    0,
    10,
    8,
    0,
  ]);
  call(helpers, space, 19, skb.address);
  call(helpers, space, 19, skb.address);
  assert.deepEqual([...skb.dataOut()], [...frame]);
  assert.equal(skb.protocol, 0x0800);
  assert.equal(call(helpers, space, 43, skb.address, 100, 0), 0);
  assert.equal(skb.len, 164, "headroom grown past the 64 bytes of a test skb");
  assert.deepEqual([...skb.dataOut().subarray(100)], [...frame]);
  assert.equal(
    regions.at(-1),
    skb.packet.regionId,
    "the last remap was reported",
  );
});

Deno.test("tunnel key round trip swaps remote and local", () => {
  const { space, skb, helpers, scratch } = tcSkb(new Uint8Array(64));
  const key = new Uint8Array(44);
  new DataView(key.buffer).setUint32(0, 42, true);
  key.set([1, 0, 0, 10], 4); // remote_ipv4 = 0x0a000001
  key.set([2, 0, 0, 10], 28); // local_ipv4 = 0x0a000002
  key[21] = 64;
  space.writeBytes(scratch, key);
  assert.equal(call(helpers, space, 21, skb.address, scratch, 44, 0), 0);
  assert.equal(call(helpers, space, 20, skb.address, scratch, 44, 0), 0);
  const back = space.readBytes(scratch, 44);
  assert.equal(new DataView(back.buffer).getUint32(0, true), 42);
  assert.deepEqual([...back.subarray(4, 8)], [2, 0, 0, 10]);
  assert.deepEqual([...back.subarray(28, 32)], [1, 0, 0, 10]);
  assert.equal(back[21], 64);
  assert.equal(call(helpers, space, 20, skb.address, scratch, 44, 1), -71);
});

Deno.test("xdp: buffer length, MTU and redirect", () => {
  const space = new AddressSpace();
  const xdp = new XdpContext(space, new Uint8Array(100));
  const helpers = xdpHelpers(xdp);
  const mtu = space.mapRegion("stack", 4, { name: "mtu" });
  assert.equal(call(helpers, space, 188, xdp.address), 100);
  assert.equal(call(helpers, space, 163, xdp.address, 0, mtu, 0, 0), 0);
  assert.equal(
    new DataView(space.readBytes(mtu, 4).buffer).getUint32(0, true),
    65536,
  );
  // *mtu_len (now 65536) + 14 is the length when set: fits, one more does not
  assert.equal(call(helpers, space, 163, xdp.address, 1, mtu, 0, 0), 0);
  assert.equal(call(helpers, space, 163, xdp.address, 1, mtu, 1, 0), 1);
  // from the packet: 100 + 65450 = 65550 fits, 65551 exceeds 65536 + 14
  space.writeBytes(mtu, new Uint8Array(4));
  assert.equal(call(helpers, space, 163, xdp.address, 1, mtu, 65450, 0), 0);
  space.writeBytes(mtu, new Uint8Array(4));
  assert.equal(call(helpers, space, 163, xdp.address, 1, mtu, 65451, 0), 1);
  assert.equal(call(helpers, space, 163, xdp.address, 2, mtu, 0, 0), -19);
  assert.equal(call(helpers, space, 23, 1, 0), 4);
  assert.equal(call(helpers, space, 23, 1, 1), 0);
});
