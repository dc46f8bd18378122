// sk_msg programs and the message helpers (lib/kernel/sk_msg*.ts), run on
// both engines over the programs of tests/fixtures/runtime/skmsg/msg.c. The
// kernel cannot test-run sk_msg programs: every expectation below is worked
// out by hand from net/core/filter.c — bpf_msg_pull_data(),
// bpf_msg_push_data(), bpf_msg_pop_data() as fixed in 6.13 (and the rsge
// offset fix of 2026), sk_msg_compute_data_pointers() (include/linux/skmsg.h)
// and sk_msg_convert_ctx_access() — with the message [100, 200, 50] (byte k
// of the message = k % 251) unless a case says otherwise. The fixtures'
// verdicts are the 6.18 kernel's (msg.oracle.json) and bpfsim's must match.
import assert from "node:assert/strict";
import { ENGINES } from "../../../../lib/exec/jit/step_jit.ts";
import {
  MAX_MSG_FRAGS,
  SkMsg,
} from "../../../../lib/kernel/hooks/sock/sk_msg.ts";
import { runSkMsgProgram } from "../../../../lib/kernel/hooks/sock/sk_msg_run.ts";
import { TestRunError } from "../../../../lib/kernel/test_run.ts";
import { verifyObject } from "../../../../lib/verifier/mod.ts";
import { loadObject } from "../../../../lib/elf/object.ts";
import {
  concat,
  cut,
  Globals,
  loadSkmsgFixture,
  pattern,
} from "./skmsg_env.ts";

const EINVAL = -22, ENOMEM = -12;
const MSG = pattern(350);
const SIZES = [100, 200, 50];
const zeros = (n: number) => new Uint8Array(n);
const b = (from: number, to: number) => MSG.slice(from, to);

/** One helper call of the pull / push / pop programs and what it must leave. */
interface Case {
  readonly name: string;
  readonly args: readonly [number, number, bigint?];
  readonly sizes?: readonly number[];
  readonly ret: number;
  readonly fragments: readonly number[];
  readonly data: Uint8Array;
  /** data_end - data and the first byte (0x100: none) the program saw after. */
  readonly window: readonly [number, number];
}

const PULL: Case[] = [
  {
    name: "inside the first element: only the window moves",
    args: [0, 10],
    ret: 0,
    fragments: SIZES,
    data: MSG,
    window: [10, 0],
  },
  {
    name: "inside the second element: the window starts 50 bytes into it",
    args: [150, 160],
    ret: 0,
    fragments: SIZES,
    data: MSG,
    window: [10, 150],
  },
  {
    name: "across the first edge: elements 0 and 1 become one of 300",
    args: [90, 110],
    ret: 0,
    fragments: [300, 50],
    data: MSG,
    window: [20, 90],
  },
  {
    name: "to the last byte: elements 1 and 2 become one of 250",
    args: [250, 350],
    ret: 0,
    fragments: [100, 250],
    data: MSG,
    window: [100, 250],
  },
  {
    name: "the whole message: one element",
    args: [0, 350],
    ret: 0,
    fragments: [350],
    data: MSG,
    window: [350, 0],
  },
  {
    name: "end one past the message: -EINVAL (bytes_sg_total > copy)",
    args: [0, 351],
    ret: EINVAL,
    fragments: SIZES,
    data: MSG,
    window: [100, 0],
  },
  {
    name: "start at the end: -EINVAL",
    args: [350, 351],
    ret: EINVAL,
    fragments: SIZES,
    data: MSG,
    window: [100, 0],
  },
  {
    name: "end == start: -EINVAL",
    args: [10, 10],
    ret: EINVAL,
    fragments: SIZES,
    data: MSG,
    window: [100, 0],
  },
  {
    name: "flags: -EINVAL",
    args: [0, 1, 1n],
    ret: EINVAL,
    fragments: SIZES,
    data: MSG,
    window: [100, 0],
  },
];

const PUSH: Case[] = [
  {
    name: "at 0: a new first element",
    args: [0, 8],
    ret: 0,
    fragments: [8, 100, 200, 50],
    data: concat(zeros(8), MSG),
    window: [8, 0],
  },
  {
    name: "at an element's start: inserted before it",
    args: [100, 5],
    ret: 0,
    fragments: [100, 5, 200, 50],
    data: concat(b(0, 100), zeros(5), b(100, 350)),
    window: [100, 0],
  },
  {
    name: "inside the second element: split around the new one",
    args: [150, 10],
    ret: 0,
    fragments: [100, 50, 10, 150, 50],
    data: concat(b(0, 150), zeros(10), b(150, 350)),
    window: [100, 0],
  },
  {
    name: "at the end (6.13+): appended",
    args: [350, 4],
    ret: 0,
    fragments: [100, 200, 50, 4],
    data: concat(MSG, zeros(4)),
    window: [100, 0],
  },
  {
    name: "past the end: -EINVAL",
    args: [351, 4],
    ret: EINVAL,
    fragments: SIZES,
    data: MSG,
    window: [100, 0],
  },
  {
    name: "len 0: 0, nothing changes",
    args: [10, 0],
    ret: 0,
    fragments: SIZES,
    data: MSG,
    window: [100, 0],
  },
  {
    name: "flags: -EINVAL",
    args: [0, 4, 2n],
    ret: EINVAL,
    fragments: SIZES,
    data: MSG,
    window: [100, 0],
  },
  {
    name: "more than alloc_pages() gives (order > MAX_PAGE_ORDER): -ENOMEM",
    args: [0, (4096 << 10) + 1],
    ret: ENOMEM,
    fragments: SIZES,
    data: MSG,
    window: [100, 0],
  },
];

const POP: Case[] = [
  {
    name: "the head of the first element",
    args: [0, 10],
    ret: 0,
    fragments: [90, 200, 50],
    data: b(10, 350),
    window: [90, 10],
  },
  {
    name: "inside the second element: its tail becomes an element",
    args: [150, 10],
    ret: 0,
    fragments: [100, 50, 140, 50],
    data: concat(b(0, 150), b(160, 350)),
    window: [100, 0],
  },
  {
    name: "across the first edge (a = start - offset, 6.13+)",
    args: [90, 20],
    ret: 0,
    fragments: [90, 190, 50],
    data: concat(b(0, 90), b(110, 350)),
    window: [90, 0],
  },
  {
    name: "exactly the second element",
    args: [100, 200],
    ret: 0,
    fragments: [100, 50],
    data: concat(b(0, 100), b(300, 350)),
    window: [100, 0],
  },
  {
    name: "from inside the first to the end",
    args: [50, 300],
    ret: 0,
    fragments: [50],
    data: b(0, 50),
    window: [50, 0],
  },
  {
    name: "the whole message (6.13+): no element, an empty window",
    args: [0, 350],
    ret: 0,
    fragments: [],
    data: zeros(0),
    window: [0, 0x100],
  },
  {
    name: "one past the end: -EINVAL",
    args: [0, 351],
    ret: EINVAL,
    fragments: SIZES,
    data: MSG,
    window: [100, 0],
  },
  {
    name: "start at the end: -EINVAL",
    args: [350, 1],
    ret: EINVAL,
    fragments: SIZES,
    data: MSG,
    window: [100, 0],
  },
  {
    name: "flags: -EINVAL",
    args: [0, 1, 1n],
    ret: EINVAL,
    fragments: SIZES,
    data: MSG,
    window: [100, 0],
  },
];

// A ring of 17 (full) or 16 (one free slot) elements of 10 bytes.
const RING17 = Array.from({ length: MAX_MSG_FRAGS }, () => 10);
const RING16 = RING17.slice(1);
const TENS = (n: number) => Array.from({ length: n }, () => 10);

const RING_PUSH: Case[] = [
  {
    name: "full ring, inside the first element: copied with the gap inside",
    sizes: RING17,
    args: [5, 3],
    ret: 0,
    fragments: [13, ...TENS(16)],
    data: concat(b(0, 5), zeros(3), b(5, 170)),
    window: [13, 0],
  },
  {
    name:
      "full ring, at an element's start: that element copied behind the gap",
    sizes: RING17,
    args: [10, 3],
    ret: 0,
    fragments: [10, 13, ...TENS(15)],
    data: concat(b(0, 10), zeros(3), b(10, 170)),
    window: [10, 0],
  },
  {
    name: "one free slot, inside an element (a split needs two): copied",
    sizes: RING16,
    args: [5, 3],
    ret: 0,
    fragments: [13, ...TENS(15)],
    data: concat(b(0, 5), zeros(3), b(5, 160)),
    window: [13, 0],
  },
  {
    name: "one free slot, at an element's start: inserted, the ring is full",
    sizes: RING16,
    args: [10, 3],
    ret: 0,
    fragments: [10, 3, ...TENS(15)],
    data: concat(b(0, 10), zeros(3), b(10, 160)),
    window: [10, 0],
  },
  {
    name: "one free slot, at the end: appended",
    sizes: RING16,
    args: [160, 3],
    ret: 0,
    fragments: [...TENS(16), 3],
    data: concat(b(0, 160), zeros(3)),
    window: [10, 0],
  },
  {
    name: "full ring, at the end: -ENOMEM (6.18 would overrun its ring)",
    sizes: RING17,
    args: [170, 3],
    ret: ENOMEM,
    fragments: RING17,
    data: b(0, 170),
    window: [10, 0],
  },
];

const RING_POP: Case[] = [
  {
    name: "full ring, inside an element: head and tail copied into one",
    sizes: RING17,
    args: [3, 4],
    ret: 0,
    fragments: [6, ...TENS(16)],
    data: concat(b(0, 3), b(7, 170)),
    window: [6, 0],
  },
  {
    name: "one free slot, inside an element: the tail takes the slot",
    sizes: RING16,
    args: [3, 4],
    ret: 0,
    fragments: [3, 3, ...TENS(15)],
    data: concat(b(0, 3), b(7, 160)),
    window: [3, 0],
  },
];

function runCases(prog: string, cases: readonly Case[]) {
  for (const engine of ENGINES) {
    Deno.test(`${prog} (${engine})`, async (t) => {
      const loaded = loadSkmsgFixture("msg.o");
      const g = new Globals(loaded);
      for (const c of cases) {
        await t.step(c.name, () => {
          const sizes = c.sizes ?? SIZES;
          const total = sizes.reduce((n, s) => n + s, 0);
          g.set("arg_a", c.args[0]);
          g.set("arg_b", c.args[1]);
          g.set("arg_flags", c.args[2] ?? 0n);
          const r = runSkMsgProgram(loaded, prog, {
            fragments: cut(pattern(total), sizes),
          }, { engine });
          assert.equal(r.retval, 1);
          assert.equal(g.signed("ret"), c.ret);
          assert.deepEqual(r.fragments, c.fragments);
          assert.deepEqual(r.data, c.data);
          assert.equal(r.size, c.data.length);
          assert.equal(g.get("seen_size"), BigInt(c.data.length));
          assert.deepEqual(
            [Number(g.get("seen_len")), Number(g.get("seen_first"))],
            c.window,
          );
        });
      }
    });
  }
}

runCases("pull", PULL);
runCases("push", [...PUSH, ...RING_PUSH]);
runCases("pop", [...POP, ...RING_POP]);

for (const engine of ENGINES) {
  Deno.test(`sk_msg ctx fields and programs that write the message (${engine})`, async (t) => {
    const loaded = loadSkmsgFixture("msg.o");
    const g = new Globals(loaded);
    await t.step("sk_msg_md fields: sk_msg_convert_ctx_access() loads", () => {
      const remoteIp6 = Uint8Array.from({ length: 16 }, (_, i) => 0x20 + i);
      const localIp6 = Uint8Array.from({ length: 16 }, (_, i) => 0x40 + i);
      const r = runSkMsgProgram(loaded, "fields", {
        fragments: cut(MSG, SIZES),
        family: 2,
        localIp4: new Uint8Array([10, 0, 0, 1]),
        remoteIp4: new Uint8Array([10, 0, 0, 2]),
        localIp6,
        remoteIp6,
        localPort: 8080,
        remotePort: 443,
      }, { engine });
      assert.equal(r.retval, 1);
      assert.equal(g.get("f_family"), 2n);
      assert.equal(g.get("f_remote_ip4"), 0x0200000an); // bytes 10.0.0.2, a LE u32
      assert.equal(g.get("f_local_ip4"), 0x0100000an);
      assert.equal(g.get("f_remote_ip6_3"), 0x2f2e2d2cn);
      assert.equal(g.get("f_local_ip6_0"), 0x43424140n);
      // remote_port: u16 load of __be16 skc_dport, then `<<= 16`: ntohl() gives 443
      assert.equal(g.get("f_remote_port"), 0xbb010000n);
      assert.equal(g.get("f_local_port"), 8080n); // skc_num, host order
      assert.equal(g.get("f_sk_state"), 1n); // TCP_ESTABLISHED
      assert.equal(g.get("f_sk_dst_port"), 0xbb01n); // bpf_sock.dst_port: __be16
      assert.equal(g.get("seen_size"), 350n);
      assert.equal(g.get("seen_len"), 100n);
    });
    await t.step("apply / cork bytes are recorded; SK_DROP when both 0", () => {
      g.set("arg_a", 5);
      g.set("arg_b", 7);
      let r = runSkMsgProgram(loaded, "apply_cork", {
        fragments: [MSG],
      }, { engine });
      assert.deepEqual([r.retval, r.applyBytes, r.corkBytes], [1, 5, 7]);
      assert.equal(g.signed("ret"), 0);
      g.set("arg_a", 0);
      g.set("arg_b", 0);
      r = runSkMsgProgram(loaded, "apply_cork", { fragments: [MSG] }, {
        engine,
      });
      assert.deepEqual([r.retval, r.applyBytes, r.corkBytes], [0, 0, 0]);
    });
    await t.step("rewrite: pulls 4 bytes over an edge and writes them", () => {
      const text = new TextEncoder().encode("hello wo");
      let r = runSkMsgProgram(loaded, "rewrite", {
        fragments: cut(text, [2, 6]),
      }, { engine });
      assert.equal(r.retval, 1);
      assert.deepEqual(r.fragments, [8]); // pull_data merged both
      assert.equal(new TextDecoder().decode(r.data), "BPF!o wo");
      // 3 bytes: the pull fails (-EINVAL), SK_DROP, nothing written
      r = runSkMsgProgram(
        loaded,
        "rewrite",
        { fragments: [text.slice(0, 3)] },
        {
          engine,
        },
      );
      assert.deepEqual([r.retval, r.fragments, r.data], [
        0,
        [3],
        text.slice(0, 3),
      ]);
      // 6 bytes in one element: written in place, SK_DROP for size < 8
      r = runSkMsgProgram(
        loaded,
        "rewrite",
        { fragments: [text.slice(0, 6)] },
        {
          engine,
        },
      );
      assert.equal(r.retval, 0);
      assert.equal(new TextDecoder().decode(r.data), "BPF!o ");
    });
    await t.step("push_fill: the pushed bytes, pulled and written", () => {
      g.set("arg_a", 150);
      g.set("arg_b", 8);
      let r = runSkMsgProgram(loaded, "push_fill", {
        fragments: cut(MSG, SIZES),
      }, { engine });
      assert.equal(r.retval, 1);
      // push splits element 1; the pull finds [150, 154) inside the new one
      assert.deepEqual(r.fragments, [100, 50, 8, 150, 50]);
      const fill = new Uint8Array([0xab, 0xab, 0xab, 0xab, 0, 0, 0, 0]);
      assert.deepEqual(r.data, concat(b(0, 150), fill, b(150, 350)));
      assert.deepEqual([g.get("seen_len"), g.get("seen_first")], [4n, 0xabn]);
      g.set("arg_a", 350);
      r = runSkMsgProgram(loaded, "push_fill", {
        fragments: cut(MSG, SIZES),
      }, { engine });
      assert.deepEqual(r.fragments, [100, 200, 50, 8]);
      assert.deepEqual(r.data, concat(MSG, fill));
    });
  });
}

Deno.test("sk_msg runs refuse other program types and bad messages", () => {
  const loaded = loadSkmsgFixture("msg.o");
  assert.throws(
    () => runSkMsgProgram(loaded, "bad_skb_msg_helper", { fragments: [MSG] }),
    TestRunError,
  );
  assert.throws(() => new SkMsg([]), RangeError);
  assert.throws(() => new SkMsg(TENS(18).map(zeros)), RangeError);
  assert.throws(() => new SkMsg([MSG, zeros(0)]), RangeError);
});

Deno.test("bpfsim's verdicts on msg.o are the 6.18 kernel's (msg.oracle.json)", () => {
  const dir = new URL("../../../fixtures/runtime/skmsg/", import.meta.url);
  const object = loadObject(
    Deno.readFileSync(new URL("msg.o", dir)),
    "msg.o",
  );
  const recorded = Deno.readTextFileSync(new URL("msg.oracle.json", dir))
    .trim().split("\n").map((l) => JSON.parse(l));
  const ours = verifyObject(object);
  for (const k of recorded) {
    const v = ours.find((o) => o.program === k.program);
    assert.ok(v, k.program);
    assert.equal(v.verdict, k.verdict, k.program);
    if (k.verdict === "reject") assert.equal(v.message, k.message, k.program);
  }
});
