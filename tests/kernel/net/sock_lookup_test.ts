// The socket lookup helpers (lib/kernel/net/packet_sock_lookup.ts): the
// argument checks of __bpf_skc_lookup() in the kernel's order, hand-computed
// from net/core/filter.c; the u64 (skb) against u32 (XDP) netns id; the
// helpers returning NULL through a program on every engine; bpf_sk_release
// (nothing to release: NULL is 0, anything else an error); their wiring
// into the skb and XDP test-run contexts; and the run the oracle recorded
// for verifier/calls.o ok_sk_lookup_release.
import { deepEqual, equal, ok } from "node:assert/strict";
import { assemble } from "../../../lib/isa/asm.ts";
import { runProgram } from "../../../lib/exec/run.ts";
import { ENGINES } from "../../../lib/exec/jit/step_jit.ts";
import {
  skbSockLookupHelpers,
  type SkLookupCall,
  skLookupOutcome,
  SOCK_LOOKUP_HELPER,
  xdpSockLookupHelpers,
} from "../../../lib/kernel/net/packet_sock_lookup.ts";
import {
  skbHelpers,
  xdpHelpers,
} from "../../../lib/kernel/net/packet_helpers.ts";
import { SkbContext, XdpContext } from "../../../lib/kernel/test_run_ctx.ts";
import { Kernel } from "../../../lib/kernel/kernel.ts";
import { loadObject } from "../../../lib/elf/object.ts";
import { loadObjectWithRuntime } from "../../../lib/kernel/object_runtime.ts";
import { testRun } from "../../../lib/kernel/test_run.ts";
import { ExecError } from "../../../lib/exec/fault.ts";

const AF_INET = 2, AF_INET6 = 10;
/** BPF_F_CURRENT_NETNS as the u64 a program passes. */
const CURRENT = 0xffffffffffffffffn;

Deno.test("skLookupOutcome follows __bpf_skc_lookup()'s checks in order", async (t) => {
  await t.step(
    "the tuple size picks the family; any other size is refused first",
    () => {
      deepEqual(skLookupOutcome(12, CURRENT, 0n), {
        miss: "no_socket",
        family: AF_INET,
        netns: "caller",
      });
      deepEqual(skLookupOutcome(36, CURRENT, 0n), {
        miss: "no_socket",
        family: AF_INET6,
        netns: "caller",
      });
      for (const len of [0, 1, 11, 13, 24, 35, 37, 0xffffffff]) {
        deepEqual(
          skLookupOutcome(len, CURRENT, 0n),
          { miss: "tuple_size" },
          `${len}`,
        );
      }
      // the size is tested before the flags and the netns id
      deepEqual(skLookupOutcome(13, 1n << 32n, 1n), { miss: "tuple_size" });
    },
  );
  await t.step("any flag refuses, before the netns id is looked at", () => {
    for (const flags of [1n, 2n, 1n << 63n]) {
      deepEqual(skLookupOutcome(12, CURRENT, flags), {
        miss: "flags",
        family: AF_INET,
      });
    }
    deepEqual(skLookupOutcome(36, 1n << 32n, 1n), {
      miss: "flags",
      family: AF_INET6,
    });
  });
  await t.step(
    "netns id: negative as s32 is the caller's, over S32_MAX refused, else by id",
    () => {
      const caller = { miss: "no_socket", family: AF_INET, netns: "caller" };
      // (s32)netns_id < 0: the low half has bit 31 set
      for (
        const id of [
          CURRENT,
          0x80000000n,
          0xffffffffn,
          0x1ffffffffn,
          0x7fffffffffffffffn,
        ]
      ) {
        deepEqual(skLookupOutcome(12, id, 0n), caller, id.toString(16));
      }
      // low half non-negative and the whole id over S32_MAX
      for (const id of [1n << 32n, 0xffffffff00000000n, 1n << 63n]) {
        deepEqual(
          skLookupOutcome(12, id, 0n),
          { miss: "netns_id", family: AF_INET },
          id.toString(16),
        );
      }
      // 0 … S32_MAX: get_net_ns_by_id() on a host that gave out no ids
      for (const id of [0n, 1n, 0x7fffffffn]) {
        deepEqual(
          skLookupOutcome(12, id, 0n),
          { miss: "no_netns", family: AF_INET },
          id.toString(16),
        );
      }
    },
  );
});

/** `call id` with r3 = len, r4 = netns id, r5 = flags; r2 a stack tuple. */
function lookupProgram(id: number, len: number, netns: bigint, flags: bigint) {
  return assemble([
    "r2 = r10",
    "r2 += -40",
    `r3 = ${len}`,
    `r4 = ${BigInt.asIntN(64, netns)} ll`,
    `r5 = ${BigInt.asIntN(64, flags)} ll`,
    `call ${id}`,
    "exit",
  ].join("\n"));
}

Deno.test("the helpers return NULL and pass the skb's u64 or XDP's u32 netns id", async (t) => {
  const cases: {
    id: number;
    len: number;
    netns: bigint;
    flags: bigint;
    skb: Omit<SkLookupCall, "proto">;
    xdp: Omit<SkLookupCall, "proto">;
  }[] = [
    // 2^32: over S32_MAX for skb; id 0 once XDP keeps the low half
    {
      id: SOCK_LOOKUP_HELPER.sk_lookup_tcp,
      len: 12,
      netns: 1n << 32n,
      flags: 0n,
      skb: { miss: "netns_id", family: AF_INET },
      xdp: { miss: "no_netns", family: AF_INET },
    },
    // 0x1ffffffff: low half -1 on both
    {
      id: SOCK_LOOKUP_HELPER.sk_lookup_udp,
      len: 36,
      netns: 0x1ffffffffn,
      flags: 0n,
      skb: { miss: "no_socket", family: AF_INET6, netns: "caller" },
      xdp: { miss: "no_socket", family: AF_INET6, netns: "caller" },
    },
    // 0xffffffff00000005: refused for skb; id 5 (unknown) for XDP
    {
      id: SOCK_LOOKUP_HELPER.skc_lookup_tcp,
      len: 12,
      netns: 0xffffffff00000005n,
      flags: 0n,
      skb: { miss: "netns_id", family: AF_INET },
      xdp: { miss: "no_netns", family: AF_INET },
    },
    // flags are u64 on both
    {
      id: SOCK_LOOKUP_HELPER.sk_lookup_tcp,
      len: 12,
      netns: CURRENT,
      flags: 1n << 40n,
      skb: { miss: "flags", family: AF_INET },
      xdp: { miss: "flags", family: AF_INET },
    },
  ];
  const protoOf = (id: number) =>
    id === SOCK_LOOKUP_HELPER.sk_lookup_udp ? 17 : 6;
  for (const engine of ENGINES) {
    await t.step(engine, () => {
      for (const c of cases) {
        const program = lookupProgram(c.id, c.len, c.netns, c.flags);
        for (const kind of ["skb", "xdp"] as const) {
          const seen: SkLookupCall[] = [];
          const helpers = kind === "skb"
            ? skbSockLookupHelpers((call) => seen.push(call))
            : xdpSockLookupHelpers((call) => seen.push(call));
          const r = runProgram(program, { engine, helpers: new Map(helpers) });
          equal(r.r0, 0n, `${kind} ${c.id}`);
          deepEqual(
            seen,
            [{ ...c[kind], proto: protoOf(c.id) }],
            `${kind} ${c.id}`,
          );
        }
      }
    });
  }
});

Deno.test("bpf_sk_release: NULL returns 0; a socket no lookup acquired fails the call", async (t) => {
  // bpf_sk_release(): `if (sk && sk_is_refcounted(sk)) sock_gen_put(sk)`
  const release = new Map(skbSockLookupHelpers()).get(
    SOCK_LOOKUP_HELPER.sk_release,
  );
  ok(release);
  for (const engine of ENGINES) {
    await t.step(engine, () => {
      const nul = runProgram(assemble("r1 = 0\ncall 86\nr0 += 7\nexit"), {
        helpers: new Map([[SOCK_LOOKUP_HELPER.sk_release, release]]),
        engine,
      });
      equal(nul.r0, 7n); // returned 0, then 7 added
      try {
        // r1 = the stack pointer: no lookup returned it (only unverified code can)
        runProgram(assemble("r1 = r10\nr1 += -8\ncall 86\nexit"), {
          helpers: new Map([[SOCK_LOOKUP_HELPER.sk_release, release]]),
          engine,
        });
        throw new Error("the release did not fail");
      } catch (e) {
        ok(e instanceof ExecError, String(e));
        equal(e.insnIndex, 2);
        ok(e.reason.startsWith("bpf_sk_release of 0x"), e.reason);
        ok(e.reason.includes("holds no socket reference"), e.reason);
      }
    });
  }
});

Deno.test("the skb and XDP test-run contexts offer the three lookups and the release", () => {
  const kernel = new Kernel({ cpus: 1 });
  const packet = new Uint8Array(64);
  const skb = skbHelpers(new SkbContext(kernel.space, packet, { isL2: true }));
  const xdp = xdpHelpers(new XdpContext(kernel.space, packet));
  for (const id of Object.values(SOCK_LOOKUP_HELPER)) {
    ok(skb.has(id), `skb ${id}`);
    ok(xdp.has(id), `xdp ${id}`);
  }
});

Deno.test("verifier/calls.o ok_sk_lookup_release runs as the kernel's did (retval 0)", () => {
  const fixtures = new URL("../../fixtures/verifier/", import.meta.url);
  const record = Deno.readTextFileSync(
    new URL("calls.oracle-run.json", fixtures),
  )
    .split("\n").filter((l) => l.includes('"ok_sk_lookup_release"'))
    .map((l) => JSON.parse(l) as { retval: number; data_out_hex: string });
  equal(record.length, 1);
  const object = loadObject(
    Deno.readFileSync(new URL("calls.o", fixtures)),
    "verifier/calls.o",
  );
  for (const engine of ENGINES) {
    const loaded = loadObjectWithRuntime(new Kernel({ cpus: 2 }), object);
    const result = testRun(loaded, "ok_sk_lookup_release", { engine });
    equal(result.retval, record[0].retval, engine);
    const out = [...(result.dataOut ?? [])].map((b) =>
      b.toString(16).padStart(2, "0")
    ).join("");
    equal(out, record[0].data_out_hex, engine);
  }
});
