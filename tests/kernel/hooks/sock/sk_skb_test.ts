// The packet and socket helpers of sk_skb programs
// (lib/kernel/hooks/sock/sk_skb_helpers.ts, sk_skb_run.ts) over
// tests/fixtures/runtime/skmsg/skb.c, on both engines. The kernel cannot
// test-run sk_skb programs: every run below is worked out by hand from
// net/core/filter.c (6.18): bpf_skb_load_bytes(), bpf_skb_store_bytes(),
// sk_skb_pull_data(), sk_skb_change_tail() / __bpf_skb_change_tail()
// (with __bpf_skb_min_len() counting only positive offsets, so 0 for an
// skb whose data is past its TCP header), sk_skb_change_head() /
// __bpf_skb_change_head(), sk_skb_adjust_room(), bpf_get_socket_uid() and
// __bpf_skc_lookup(); BPF_SKB_MAX_LEN is SKB_MAX_ALLOC, 4 pages less
// skb_shared_info: 16384 - 320 = 16064. The fixture's verdicts are the
// 6.18 kernel's (skb.oracle.json) and bpfsim's must match.
import assert from "node:assert/strict";
import { ENGINES } from "../../../../lib/exec/jit/step_jit.ts";
import { loadObject } from "../../../../lib/elf/object.ts";
import { Kernel } from "../../../../lib/kernel/kernel.ts";
import { loadObjectWithRuntime } from "../../../../lib/kernel/object_runtime.ts";
import { MsgSock } from "../../../../lib/kernel/hooks/sock/sk_msg_ctx.ts";
import { runSkSkbProgram } from "../../../../lib/kernel/hooks/sock/sk_skb_run.ts";
import { verifyObject } from "../../../../lib/verifier/mod.ts";
import { Globals, loadSkmsgFixture, pattern } from "./skmsg_env.ts";

const EINVAL = -22, EFAULT = -14, ENOMEM = -12;
const MAX_LEN = 16064;
const PAYLOAD = pattern(16);
const zeros = (n: number) => new Uint8Array(n);
const concat = (...parts: Uint8Array[]) =>
  Uint8Array.from(parts.flatMap((p) => [...p]));

/** A call: the globals set, then what ret, the data and f_* must be. */
interface Case {
  readonly name: string;
  readonly args: Readonly<Record<string, number | bigint>>;
  readonly ret: number;
  /** The payload after the run. */
  readonly data: Uint8Array;
}

const STORE_VAL = 0x8877665544332211n;
const STORED = Uint8Array.from([
  0x11,
  0x22,
  0x33,
  0x44,
  0x55,
  0x66,
  0x77,
  0x88,
]);

const SUITES: Readonly<Record<string, readonly Case[]>> = {
  skb_store: [
    {
      name: "8 bytes at 4",
      args: { arg_off: 4, arg_val: STORE_VAL, arg_flags: 0 },
      ret: 0,
      data: concat(PAYLOAD.slice(0, 4), STORED, PAYLOAD.slice(12)),
    },
    {
      name: "the last 8 bytes, BPF_F_RECOMPUTE_CSUM | BPF_F_INVALIDATE_HASH",
      args: { arg_off: 8, arg_val: STORE_VAL, arg_flags: 3 },
      ret: 0,
      data: concat(PAYLOAD.slice(0, 8), STORED),
    },
    {
      name: "one byte past the end: bpf_try_make_writable() fails, -EFAULT",
      args: { arg_off: 9, arg_val: STORE_VAL, arg_flags: 0 },
      ret: EFAULT,
      data: PAYLOAD,
    },
    {
      name: "offset over INT_MAX: -EFAULT",
      args: { arg_off: 0x80000000, arg_val: STORE_VAL, arg_flags: 0 },
      ret: EFAULT,
      data: PAYLOAD,
    },
    {
      name: "an unknown flag: -EINVAL",
      args: { arg_off: 0, arg_val: STORE_VAL, arg_flags: 4 },
      ret: EINVAL,
      data: PAYLOAD,
    },
  ],
  skb_pull: [
    {
      name: "len 0: skb_headlen()",
      args: { arg_len: 0 },
      ret: 0,
      data: PAYLOAD,
    },
    { name: "all 16 bytes", args: { arg_len: 16 }, ret: 0, data: PAYLOAD },
    {
      name: "17 bytes: pskb_may_pull() fails, -ENOMEM",
      args: { arg_len: 17 },
      ret: ENOMEM,
      data: PAYLOAD,
    },
  ],
  skb_tail: [
    {
      name: "grow to 20: zero bytes appended",
      args: { arg_len: 20, arg_flags: 0 },
      ret: 0,
      data: concat(PAYLOAD, zeros(4)),
    },
    {
      name: "trim to 5",
      args: { arg_len: 5, arg_flags: 0 },
      ret: 0,
      data: PAYLOAD.slice(0, 5),
    },
    {
      name: "trim to 0 (the minimum length is 0)",
      args: { arg_len: 0, arg_flags: 0 },
      ret: 0,
      data: zeros(0),
    },
    {
      name: "grow to BPF_SKB_MAX_LEN",
      args: { arg_len: MAX_LEN, arg_flags: 0 },
      ret: 0,
      data: concat(PAYLOAD, zeros(MAX_LEN - 16)),
    },
    {
      name: "past BPF_SKB_MAX_LEN: -EINVAL",
      args: { arg_len: MAX_LEN + 1, arg_flags: 0 },
      ret: EINVAL,
      data: PAYLOAD,
    },
    {
      name: "a flag: -EINVAL",
      args: { arg_len: 8, arg_flags: 1 },
      ret: EINVAL,
      data: PAYLOAD,
    },
  ],
  skb_head: [
    {
      name: "4 bytes of head room: zeroes in front",
      args: { arg_len: 4, arg_flags: 0 },
      ret: 0,
      data: concat(zeros(4), PAYLOAD),
    },
    {
      name: "up to BPF_SKB_MAX_LEN",
      args: { arg_len: MAX_LEN - 16, arg_flags: 0 },
      ret: 0,
      data: concat(zeros(MAX_LEN - 16), PAYLOAD),
    },
    {
      name: "past BPF_SKB_MAX_LEN: -EINVAL",
      args: { arg_len: MAX_LEN - 15, arg_flags: 0 },
      ret: EINVAL,
      data: PAYLOAD,
    },
    {
      name: "a u32 length that wraps: -EINVAL",
      args: { arg_len: 0xffffffff, arg_flags: 0 },
      ret: EINVAL,
      data: PAYLOAD,
    },
    {
      name: "a flag: -EINVAL",
      args: { arg_len: 4, arg_flags: 1 },
      ret: EINVAL,
      data: PAYLOAD,
    },
  ],
  skb_room: [
    {
      name: "+3: zero bytes pushed at the front",
      args: { arg_diff: 3, arg_mode: 0, arg_flags: 0 },
      ret: 0,
      data: concat(zeros(3), PAYLOAD),
    },
    {
      name: "+0xfff, the most one call may add",
      args: { arg_diff: 0xfff, arg_mode: 0, arg_flags: 0 },
      ret: 0,
      data: concat(zeros(0xfff), PAYLOAD),
    },
    {
      name: "-3: bytes pulled off the front",
      args: { arg_diff: -3, arg_mode: 0, arg_flags: 0 },
      ret: 0,
      data: PAYLOAD.slice(3),
    },
    {
      name: "-16: the whole payload",
      args: { arg_diff: -16, arg_mode: 0, arg_flags: 0 },
      ret: 0,
      data: zeros(0),
    },
    {
      name: "-17: pskb_may_pull() fails, -ENOMEM",
      args: { arg_diff: -17, arg_mode: 0, arg_flags: 0 },
      ret: ENOMEM,
      data: PAYLOAD,
    },
    {
      name: "|diff| 0x1000: -EFAULT",
      args: { arg_diff: 0x1000, arg_mode: 0, arg_flags: 0 },
      ret: EFAULT,
      data: PAYLOAD,
    },
    {
      name: "-0x1000: -EFAULT",
      args: { arg_diff: -0x1000, arg_mode: 0, arg_flags: 0 },
      ret: EFAULT,
      data: PAYLOAD,
    },
    {
      name: "mode BPF_ADJ_ROOM_MAC: -EINVAL (no mode is accepted)",
      args: { arg_diff: 3, arg_mode: 1, arg_flags: 0 },
      ret: EINVAL,
      data: PAYLOAD,
    },
    {
      name: "BPF_F_ADJ_ROOM_FIXED_GSO: -EINVAL (no flag is accepted)",
      args: { arg_diff: 3, arg_mode: 0, arg_flags: 1 },
      ret: EINVAL,
      data: PAYLOAD,
    },
  ],
};

/** A receiving socket owned by uid 1000. */
class UserSock extends MsgSock {
  override readonly uid: number = 1000;
}

for (const engine of ENGINES) {
  Deno.test(`sk_skb packet and socket helpers (${engine})`, async (t) => {
    const loaded = loadSkmsgFixture("skb.o");
    const g = new Globals(loaded);
    const run = (prog: string, payload = PAYLOAD, sock?: MsgSock) =>
      runSkSkbProgram(loaded, prog, { payload, sock }, { engine });

    for (const [prog, cases] of Object.entries(SUITES)) {
      for (const c of cases) {
        await t.step(`${prog}: ${c.name}`, () => {
          for (const [k, v] of Object.entries(c.args)) g.set(k, v);
          const r = run(prog);
          assert.equal(r.retval, 1); // SK_PASS
          assert.equal(g.signed("ret"), c.ret);
          assert.deepEqual(r.data, c.data);
          // skb->len, and data_end - data re-read after the call
          assert.equal(g.get("f_len"), BigInt(c.data.length));
          assert.equal(g.get("f_span"), BigInt(c.data.length));
          assert.equal(g.get("f_first"), BigInt(c.data[0] ?? 0x100));
        });
      }
    }

    const loads: [string, number, number, bigint][] = [
      ["the first 8 bytes", 0, 0, 0x0706050403020100n],
      ["the last 8 bytes", 8, 0, 0x0f0e0d0c0b0a0908n],
      ["one byte past the end: -EFAULT, buffer zeroed", 9, EFAULT, 0n],
      ["offset over INT_MAX: -EFAULT, buffer zeroed", 0x80000000, EFAULT, 0n],
    ];
    for (const [name, off, ret, out] of loads) {
      await t.step(`skb_load: ${name}`, () => {
        g.set("arg_off", off);
        const r = run("skb_load");
        assert.equal(g.signed("ret"), ret);
        assert.equal(g.get("out8"), out);
        assert.deepEqual(r.data, PAYLOAD);
      });
    }

    // bpf_skb_grow_rcsum() and sk_skb_adjust_room() memset() what they
    // add: bytes a trim or pull left behind do not come back
    const twice: [string, Record<string, number>, Uint8Array][] = [
      [
        "skb_tail_twice",
        { arg_len: 4, arg_off: 16 },
        concat(PAYLOAD.slice(0, 4), zeros(12)),
      ],
      [
        "skb_room_twice",
        { arg_diff: -3 },
        concat(zeros(3), PAYLOAD.slice(3)),
      ],
      ["skb_room_twice", { arg_diff: 3 }, PAYLOAD],
    ];
    for (const [prog, args, data] of twice) {
      await t.step(`${prog}: ${JSON.stringify(args)}`, () => {
        for (const [k, v] of Object.entries(args)) g.set(k, v);
        const r = run(prog);
        assert.equal(g.get("out8"), 0n);
        assert.equal(g.signed("ret"), 0);
        assert.deepEqual(r.data, data);
        assert.equal(g.get("f_span"), BigInt(data.length));
      });
    }

    await t.step("bpf_get_socket_uid: the receiving socket's uid", () => {
      run("skb_uid", PAYLOAD, new UserSock(loaded.kernel.space));
      assert.equal(g.get("ret"), 1000n);
      run("skb_uid");
      assert.equal(g.get("ret"), 0n); // sock_init_data()'s root
    });
    await t.step("bpf_get_socket_uid: no full socket gives overflowuid", () => {
      const timeWait = new MsgSock(loaded.kernel.space, { state: 6 });
      run("skb_uid", PAYLOAD, timeWait);
      assert.equal(g.get("ret"), 65534n);
    });
    await t.step("socket lookups find no socket (empty tables)", () => {
      g.set("ret", 0);
      run("skb_lookup");
      assert.equal(g.get("ret"), 0b1111n);
    });
    await t.step("a stream parser reads the length header", () => {
      assert.equal(run("parse_len").retval, 2 + 0x0001);
      const hdr = Uint8Array.from([0x01, 0x02, 9, 9]);
      assert.equal(run("parse_len", hdr).retval, 2 + 0x0102);
      assert.equal(run("parse_len", Uint8Array.from([1])).retval, 0);
    });
  });
}

Deno.test("a packet pointer taken before a reshape faults after it (verifier off)", () => {
  const object = loadObject(
    Deno.readFileSync(
      new URL("../../../fixtures/runtime/skmsg/skb.o", import.meta.url),
    ),
    "skb.o",
  );
  const loaded = loadObjectWithRuntime(new Kernel({ cpus: 1 }), object, {
    verify: false,
  });
  assert.throws(
    () => runSkSkbProgram(loaded, "bad_stale_pkt_ptr", { payload: PAYLOAD }),
    (e: Error) => e.constructor.name === "MemoryFault",
  );
});

Deno.test("bpfsim's verdicts on skb.o are the 6.18 kernel's (skb.oracle.json)", () => {
  const dir = new URL("../../../fixtures/runtime/skmsg/", import.meta.url);
  const object = loadObject(Deno.readFileSync(new URL("skb.o", dir)), "skb.o");
  const recorded = Deno.readTextFileSync(new URL("skb.oracle.json", dir))
    .trim().split("\n").map((l) => JSON.parse(l));
  const ours = verifyObject(object);
  assert.equal(ours.length, recorded.length);
  for (const k of recorded) {
    const v = ours.find((o) => o.program === k.program);
    assert.ok(v, k.program);
    assert.equal(v.verdict, k.verdict, k.program);
    if (k.verdict === "reject") assert.equal(v.message, k.message, k.program);
  }
});
