/**
 * The dummy socket of a test skb (`skb->sk`, lib/kernel/net/packet_sock.ts) and
 * the helpers that take it (packet_sock_helpers.ts, packet_net_info.ts),
 * against hand-computed values: the `struct bpf_sock` loads
 * `bpf_sock_convert_ctx_access()` and the narrow-load fix-ups of
 * `convert_ctx_accesses()` give on a socket built from an IPv4, an IPv6 and
 * a non-IP frame, and each helper's test on it. Then the fixtures
 * tests/fixtures/runtime/sock/sk_*.o on the IPv4 / IPv6 frames below,
 * which the 6.18 kernel ran (`*.oracle-data-run.json`; the zero-frame runs
 * are compared by test_run_test.ts), on every engine.
 */
import assert from "node:assert/strict";
import { assemble } from "../../../lib/isa/asm.ts";
import { compileProgram } from "../../../lib/exec/compile.ts";
import { ExecError } from "../../../lib/exec/fault.ts";
import { step } from "../../../lib/exec/interp.ts";
import { AddressSpace } from "../../../lib/exec/memory.ts";
import { type CallContext, ExecState } from "../../../lib/exec/state.ts";
import { ENGINES } from "../../../lib/exec/jit/step_jit.ts";
import { loadObject } from "../../../lib/elf/object.ts";
import { Kernel } from "../../../lib/kernel/kernel.ts";
import { loadObjectWithRuntime } from "../../../lib/kernel/object_runtime.ts";
import { testRun } from "../../../lib/kernel/test_run.ts";
import { SkbContext } from "../../../lib/kernel/test_run_ctx.ts";
import { skbHelpers } from "../../../lib/kernel/net/packet_helpers.ts";
import { TestRunSock } from "../../../lib/kernel/net/packet_sock.ts";
import { SOCK_HELPER } from "../../../lib/kernel/net/packet_sock_helpers.ts";

const hex = (s: string) =>
  new Uint8Array(s.match(/../g)!.map((h) => parseInt(h, 16)));

/** 192.168.1.2 → 10.0.0.9, UDP, zero-padded to 64 bytes. */
const IPV4_FRAME = hex(
  "000000000000000000000000" + "0800" +
    "4500002c000000004011" + "0000" + "c0a80102" + "0a000009" +
    "00".repeat(30),
);
/** 2001:db8:0:1::2 → fe80::1122:3344:5566:7788, UDP, 64 bytes. */
const IPV6_FRAME = hex(
  "000000000000000000000000" + "86dd" + "6000000000081140" +
    "20010db8000000010000000000000002" +
    "fe800000000000001122334455667788" + "00".repeat(10),
);
/** The oracle's default input: not IP (802.2), so AF_UNSPEC. */
const ZERO_FRAME = new Uint8Array(64);

/** `__sk_buff.sk`'s offset. */
const SKB_SK = 168;

/** Runs `text` with r1 = `ctx`; returns r0, or the error that stopped it. */
function run(space: AddressSpace, ctx: bigint, text: string): bigint | Error {
  const state = new ExecState(compileProgram(assemble(text)), space);
  state.setReg(1, ctx);
  const status = step(state, 1000);
  if (status === "faulted") return state.error as Error;
  assert.equal(status, "exited");
  return state.r0;
}

function sockOf(frame: Uint8Array): TestRunSock {
  // the u32 __sk_buff.protocol of a little-endian host: bytes 12, 13 swapped
  return new TestRunSock(
    new AddressSpace(),
    frame[12] | (frame[13] << 8),
    frame.subarray(14),
  );
}

Deno.test("struct bpf_sock loads on the dummy socket", async (t) => {
  const v4 = sockOf(IPV4_FRAME), v6 = sockOf(IPV6_FRAME);
  const none = sockOf(ZERO_FRAME);
  await t.step("family, state 7 (TCP_CLOSE), zeroed fields", () => {
    assert.equal(v4.load(4, 4), 2n);
    assert.equal(v6.load(4, 4), 10n);
    assert.equal(none.load(4, 4), 0n);
    assert.equal(v4.load(4, 1), 2n);
    assert.equal(v6.load(72, 4), 7n);
    assert.equal(v6.load(72, 1), 7n);
    for (const off of [0, 8, 12, 16, 20, 44, 48]) {
      assert.equal(v4.load(off, 4), 0n, `offset ${off}`);
    }
    assert.equal(v4.load(48, 2), 0n); // dst_port as its __be16
  });
  await t.step("addresses from the IP header, each family its own", () => {
    // the u32 loads of network-order bytes c0 a8 01 02 and 0a 00 00 09
    assert.equal(v4.load(24, 4), 0x0201a8c0n);
    assert.equal(v4.load(52, 4), 0x0900000an);
    assert.equal(v4.load(28, 4), 0n); // no IPv6 address on an IPv4 socket
    assert.equal(v6.load(24, 4), 0n);
    assert.equal(v6.load(28, 4), 0xb80d0120n); // 20 01 0d b8
    assert.equal(v6.load(40, 4), 0x02000000n); // 00 00 00 02
    assert.equal(v6.load(56, 4), 0x000080fen); // fe 80 00 00
    assert.equal(v6.load(68, 4), 0x88776655n); // 55 66 77 88
  });
  await t.step("narrow loads of the addresses: byte semantics", () => {
    assert.equal(v4.load(25, 1), 0xa8n);
    assert.equal(v4.load(26, 2), 0x0201n);
    assert.equal(v4.load(55, 1), 0x09n);
    assert.equal(v6.load(66, 2), 0x4433n); // daddr bytes 10, 11
    assert.equal(v6.load(29, 1), 0x01n);
  });
  await t.step("rx_queue_mapping: the conversion's MOV64 -1", () => {
    // u32 and u16 are no narrower than the u16 field: the 64-bit -1 stays
    assert.equal(none.load(76, 4), 0xffffffffffffffffn);
    assert.equal(none.load(76, 2), 0xffffffffffffffffn);
    // a u8 is: ALU32 AND 0xff
    assert.equal(none.load(76, 1), 0xffn);
  });
  await t.step("what the verifier refuses faults; stores never land", () => {
    assert.equal(v4.load(50, 2), undefined); // padding after dst_port
    assert.equal(v4.load(0, 8), undefined);
    assert.equal(v4.load(1, 1), undefined); // bound_dev_if is u32 only
    assert.equal(v4.load(80, 4), undefined);
    assert.equal(v4.store(), false);
  });
});

Deno.test("__sk_buff.sk points at the socket, read through real loads", () => {
  const space = new AddressSpace();
  const skb = new SkbContext(space, IPV4_FRAME, { isL2: true });
  const sk = run(space, skb.address, `r0 = *(u64 *)(r1 + ${SKB_SK})\nexit`);
  assert.equal(typeof sk, "bigint");
  assert.equal(sk, skb.sock.address);
  assert.ok(
    run(space, skb.address, `r0 = *(u32 *)(r1 + ${SKB_SK})\nexit`) instanceof
      Error,
  );
  const text = (insn: string) => `r1 = *(u64 *)(r1 + ${SKB_SK})\n${insn}\nexit`;
  assert.equal(
    run(space, skb.address, text("r0 = *(u32 *)(r1 + 24)")),
    0x0201a8c0n,
  );
  assert.equal(
    run(space, skb.address, text("r0 = *(u16 *)(r1 + 76)")),
    0xffffffffffffffffn,
  );
  assert.ok(
    run(space, skb.address, text("*(u32 *)(r1 + 16) = r0")) instanceof Error,
  );
  // a socket filter gets the same socket (its data starts after the MAC header)
  const filter = new SkbContext(space, IPV6_FRAME, { isL2: false });
  assert.equal(filter.sock.family, 10);
  assert.equal(filter.field(88), 10); // __sk_buff.family reads skb->sk
  skb.release();
  filter.release();
  assert.ok(
    run(space, skb.address, "r0 = *(u32 *)(r1 + 0)\nexit") instanceof Error,
  );
  assert.ok(space.regionAt(sk as bigint)?.live === false);
});

/** A call of helper `id` on `args` (r1…), on CPU `cpu`. */
function call(
  helpers: ReturnType<typeof skbHelpers>,
  space: AddressSpace,
  id: number,
  args: bigint[],
  cpu = 0,
): bigint {
  const vm = {
    arg: (i: number) => args[i - 1] ?? 0n,
    argLo: (i: number) => Number(BigInt.asIntN(32, args[i - 1] ?? 0n)),
    mem: space,
    insnIndex: 3,
    owner: { cpu: { id: cpu }, level: 0 },
  } as unknown as CallContext;
  return BigInt(helpers.get(id)!(vm) as number | bigint);
}

Deno.test("socket helpers on skb->sk", async (t) => {
  const space = new AddressSpace();
  const skb = new SkbContext(space, IPV6_FRAME, { isL2: true });
  const h = skbHelpers(skb);
  const sk = skb.sock.address, ctx = skb.address;
  await t.step("bpf_sk_fullsock gives it back, every other cast NULL", () => {
    assert.equal(call(h, space, SOCK_HELPER.sk_fullsock, [sk]), sk);
    for (
      const id of [96, 98, 136, 137, 138, 139, 140, 178, 196]
    ) assert.equal(call(h, space, id, [sk]), 0n, `helper ${id}`);
  });
  await t.step("cgroup ids: the root (1), level 0 only (an int)", () => {
    assert.equal(call(h, space, SOCK_HELPER.sk_cgroup_id, [sk]), 1n);
    assert.equal(call(h, space, 129, [sk, 0n]), 1n);
    assert.equal(call(h, space, 129, [sk, 1n]), 0n);
    assert.equal(call(h, space, 129, [sk, 1n << 32n]), 1n); // (int)level is 0
    assert.equal(call(h, space, 79, [ctx]), 1n);
    assert.equal(call(h, space, 83, [ctx, 1n << 32n]), 1n);
  });
  await t.step("a pointer that is not the socket stops the program", () => {
    assert.throws(
      () => call(h, space, SOCK_HELPER.sk_fullsock, [ctx]),
      (e) => e instanceof ExecError && e.insnIndex === 3,
    );
  });
  await t.step("uid 0; cookies per socket, from per-CPU batches", () => {
    assert.equal(call(h, space, 47, [ctx]), 0n);
    // a fresh host: CPU 0 takes cookies 1…4096, the next CPU 4097…
    assert.equal(call(h, space, 46, [ctx]), 1n);
    assert.equal(call(h, space, 46, [ctx], 1), 1n); // the socket keeps it
    const second = skbHelpers(
      new SkbContext(space, ZERO_FRAME, { isL2: true }),
    );
    assert.equal(call(second, space, 46, [ctx], 1), 4097n);
    const third = skbHelpers(new SkbContext(space, ZERO_FRAME, { isL2: true }));
    assert.equal(call(third, space, 46, [ctx], 0), 2n);
    // another host counts on its own
    const other = new AddressSpace();
    const fresh = skbHelpers(new SkbContext(other, ZERO_FRAME, { isL2: true }));
    assert.equal(call(fresh, other, 46, [0n]), 1n);
  });
});

interface DataRun {
  readonly program: string;
  readonly retval: number;
  readonly data_in_hex: string;
  readonly data_out_hex: string;
}

/** What each fixture program returns on the IPv4 and IPv6 frames, by hand. */
const EXPECTED: Record<string, [number, number]> = {
  tc_common: [0x20702, 0x2070a],
  sock_common: [0x20702, 0x2070a],
  tc_src_ip4: [0x0201a8c0, 0],
  tc_dst_ip4: [0x0900000a, 0],
  tc_src_ip6_0: [0, 0xb80d0120],
  tc_src_ip6_3: [0, 0x02000000],
  tc_dst_ip6_0: [0, 0x000080fe],
  tc_dst_ip6_3: [0, 0x88776655],
  tc_narrow_ip: [0xa8, 0x443300],
  tc_rx_queue_sizes: [0xff03, 0xff03],
  tc_fullsock: [0x07021000, 0x070a1000],
  tc_casts: [0x1ff, 0x1ff],
  sock_casts: [0x1f, 0x1f],
  tc_cookie_uid: [7, 7],
  sock_cookie_uid: [7, 7],
  tc_cgroup_ids: [7, 7],
};

Deno.test("sk_*.o on IPv4 and IPv6 frames agree with the 6.18 kernel's runs", async (t) => {
  const dir = new URL("../../fixtures/runtime/sock/", import.meta.url);
  let compared = 0;
  for (const name of ["sk_fields", "sk_helpers"]) {
    const obj = loadObject(
      Deno.readFileSync(new URL(`${name}.o`, dir)),
      `${name}.o`,
    );
    const runs = Deno.readTextFileSync(
      new URL(`${name}.oracle-data-run.json`, dir),
    ).split("\n").filter((l) => l.trim()).map((l) => JSON.parse(l) as DataRun);
    for (const run of runs) {
      const v6 = run.data_in_hex.slice(24, 28) === "86dd";
      await t.step(`${name}.o ${run.program} ${v6 ? "IPv6" : "IPv4"}`, () => {
        // the recorded run is the one the fixture's comment expects
        assert.equal(run.retval, EXPECTED[run.program][v6 ? 1 : 0]);
        assert.equal(run.data_in_hex, toHex(v6 ? IPV6_FRAME : IPV4_FRAME));
        for (const engine of ENGINES) {
          const loaded = loadObjectWithRuntime(new Kernel({ cpus: 2 }), obj);
          const result = testRun(loaded, run.program, {
            data: hex(run.data_in_hex),
            engine,
          });
          assert.equal(result.retval, run.retval, engine);
          assert.equal(toHex(result.dataOut!), run.data_out_hex, engine);
        }
      });
      compared++;
    }
  }
  assert.equal(compared, 2 * Object.keys(EXPECTED).length);
});

function toHex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}
