/**
 * Ring buffer: record header bytes, alignment, capacity, wrap-around,
 * wakeups and the consumer, with hand-computed expectations from
 * kernel/bpf/ringbuf.c; creation errnos from the real kernel.
 */
import assert from "node:assert/strict";
import { AddressSpace } from "../../lib/exec/memory.ts";
import { MemoryFault } from "../../lib/exec/fault.ts";
import {
  BPF_RB_AVAIL_DATA,
  BPF_RB_CONS_POS,
  BPF_RB_FORCE_WAKEUP,
  BPF_RB_NO_WAKEUP,
  BPF_RB_PROD_POS,
  BPF_RB_RING_SIZE,
  createMap,
  EAGAIN,
  EINVAL,
  ENOTSUPP,
  RingBuf,
  toHex,
} from "../../lib/kernel/maps/mod.ts";
import { k32, kernelAnswers, kernelOp } from "./maps_fakes.ts";

const RINGBUF = 27;

function ringbuf(size = 4096): { rb: RingBuf; space: AddressSpace } {
  const space = new AddressSpace();
  const rb = createMap(space, {
    name: "rb",
    type: RINGBUF,
    keySize: 0,
    valueSize: 0,
    maxEntries: size,
    flags: 0,
  }) as RingBuf;
  return { rb, space };
}

Deno.test("ring buffer creation errnos match the kernel", () => {
  assert.equal(kernelOp("ringbuf 10000"), -EINVAL);
  assert.throws(() => ringbuf(10000));
  assert.throws(() => ringbuf(2048));
  assert.ok(ringbuf(8192).rb instanceof RingBuf);
});

Deno.test("records as the kernel lays them out (BPF programs, read via mmap)", () => {
  // Replays maps_probe.c's probe_ringbuf(): each step runs a program that
  // reserves SIZE bytes, stores BASE+i into byte i (SIZE <= 256), then
  // submits or discards; between steps the probe moves consumer_pos.
  const { rb, space } = ringbuf();
  const run = (size: number, discard: boolean, base: number): number => {
    const s = rb.reserve(size);
    if (s === null) return 0;
    if (size <= 256) {
      space.writeBytes(
        s,
        Uint8Array.from({ length: size }, (_, i) => base + i),
      );
    }
    if (discard) rb.discard(s);
    else rb.submit(s);
    return 1;
  };
  const script: [string, () => number][] = [
    ["reserve 5 submit", () => run(5, false, 1)],
    ["reserve 3 discard", () => run(3, true, 0x10)],
    ["reserve 4080 submit (no room)", () => run(4080, false, 0)],
    ["reserve 4080 submit", () => ((rb.consumerPos = 32), run(4080, false, 0))],
    ["reserve 1 submit (full)", () => run(1, false, 0)],
    [
      "reserve 4000 submit",
      () => ((rb.consumerPos = rb.producerPos), run(4000, false, 0)),
    ],
    [
      "reserve 200 submit (wraps)",
      () => ((rb.consumerPos = rb.producerPos), run(200, false, 0x40)),
    ],
    ["wrapped tail", () => 0],
  ];
  const expected = kernelAnswers().ringbuf;
  assert.equal(expected.length, script.length);
  script.forEach(([name, step], i) => {
    const want = expected[i];
    assert.equal(want.op, name);
    assert.equal(step(), want.result, name);
    assert.equal(rb.producerPos, want.producerPos, `${name}: producer_pos`);
    assert.equal(rb.consumerPos, want.consumerPos, `${name}: consumer_pos`);
    const from = want.from!;
    assert.equal(
      toHex(rb.data.subarray(from, from + want.bytes!.length / 2)),
      want.bytes,
      `${name}: data bytes`,
    );
  });
});

Deno.test("record layout: header len|BUSY, pg_off, 8-byte alignment", async (t) => {
  const { rb, space } = ringbuf();
  const a = rb.reserve(5)!;
  await t.step(
    "reserved: BUSY bit set, pg_off 3 (data starts after 3 meta pages)",
    () => {
      assert.equal(toHex(rb.data.subarray(0, 8)), "05000080" + "03000000");
      assert.equal(space.regionAt(a)!.kind, "ringbuf");
      assert.equal(space.regionAt(a)!.size, 5);
      assert.equal(rb.producerPos, 16, "round_up(5 + 8, 8)");
    },
  );
  await t.step("the sample is written in place, right after the header", () => {
    space.writeBytes(a, new Uint8Array([1, 2, 3, 4, 5]));
    assert.equal(toHex(rb.data.subarray(8, 13)), "0102030405");
    assert.throws(() => space.write(a + 5n, 1, 0n), MemoryFault);
  });
  const b = rb.reserve(3)!;
  await t.step("a busy record stops the consumer", () => {
    assert.equal(toHex(rb.data.subarray(16, 24)), "03000080" + "03000000");
    rb.submit(b);
    assert.deepEqual(rb.consume(), []);
  });
  await t.step(
    "submit clears BUSY; discard sets DISCARD; consume skips discards",
    () => {
      rb.discard(a);
      assert.equal(toHex(rb.data.subarray(0, 4)), "05000040");
      assert.equal(toHex(rb.data.subarray(16, 20)), "03000000");
      const got = rb.consume();
      assert.equal(got.length, 1);
      assert.equal(got[0].length, 3);
      assert.equal(rb.consumerPos, 32);
      assert.equal(rb.query(BPF_RB_AVAIL_DATA), 0n);
    },
  );
  await t.step("a committed sample's pointer faults afterwards", () => {
    assert.throws(
      () => space.read(a, 1),
      (e: unknown) => e instanceof MemoryFault && e.reason === "use-after-free",
    );
  });
});

Deno.test("capacity: a record may use at most size - 1 bytes with its header", () => {
  const { rb } = ringbuf();
  assert.equal(rb.reserve(4081), null, "round_up(4081 + 8, 8) = 4096 > mask");
  const s = rb.reserve(4080);
  assert.notEqual(s, null, "4088 bytes fit");
  assert.equal(rb.reserve(1), null, "full until consumed");
  rb.submit(s!);
  assert.equal(rb.output(new Uint8Array(1)), -EAGAIN);
  assert.equal(rb.consume().length, 1);
  assert.equal(rb.output(new Uint8Array(1)), 0);
  assert.equal(rb.output(new Uint8Array(1), 4), -EINVAL);
});

Deno.test("a record crossing the end of the data area reads back intact", () => {
  const { rb, space } = ringbuf();
  rb.submit(rb.reserve(4000)!); // len 4008
  rb.consume();
  const s = rb.reserve(200)!; // header at 4008, sample 4016..4216 wraps
  const bytes = Uint8Array.from({ length: 200 }, (_, i) => i);
  space.writeBytes(s, bytes);
  rb.submit(s);
  assert.equal(rb.data[4095], 79);
  assert.equal(rb.data[0], 80);
  assert.deepEqual(rb.consume(), [bytes]);
  assert.equal(rb.query(BPF_RB_CONS_POS), 4216n);
  assert.equal(rb.query(BPF_RB_PROD_POS), 4216n);
  assert.equal(rb.query(BPF_RB_RING_SIZE), 4096n);
});

Deno.test("wakeups: only when the consumer waits at this record, unless forced", () => {
  const { rb } = ringbuf();
  const a = rb.reserve(8)!, b = rb.reserve(8)!;
  rb.submit(b); // rec_pos 16, consumer at 0
  assert.equal(rb.wakeups, 0);
  rb.submit(a, BPF_RB_NO_WAKEUP); // consumer at 0 but NO_WAKEUP
  assert.equal(rb.wakeups, 0);
  rb.output(new Uint8Array(4), BPF_RB_FORCE_WAKEUP);
  assert.equal(rb.wakeups, 1);
  rb.consume();
  rb.output(new Uint8Array(4));
  assert.equal(rb.wakeups, 2);
});

Deno.test("ring buffers have no elements", () => {
  const { rb } = ringbuf();
  assert.equal(rb.lookup(k32(0), 0), null);
  assert.equal(rb.lookupValueCopy(new Uint8Array(0)), -ENOTSUPP);
  assert.equal(
    rb.update(new Uint8Array(0), new Uint8Array(0), 0, 0),
    -ENOTSUPP,
  );
  assert.equal(rb.getNextKey(null), -ENOTSUPP);
  assert.deepEqual(rb.dump(), []);
});
