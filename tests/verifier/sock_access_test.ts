/**
 * Loads and stores through socket pointers (lib/verifier/sock_access.ts,
 * check_sock_access()) and BTF-typed tracing contexts whose target
 * prototype comes from lib/verifier/ctx_access/btf_targets.ts, checked
 * against Linux 6.18 (the oracle, 6.18.44-fc): the recorded verdicts of
 * tests/fixtures/ctx/sockptr.o and ctx/tracing.o, and hand-written programs
 * whose verdicts were read off `oracle verify` on a throwaway object.
 */
import assert from "node:assert/strict";
import { loadFixture, readOracle } from "../elf/fixtures.ts";
import { verifyProgram } from "../../lib/verifier/verify.ts";
import { knownBtfTarget } from "../../lib/verifier/ctx_access/btf_targets.ts";
import { typeIsSkPointer } from "../../lib/verifier/sock_access.ts";
import {
  PTR_MAYBE_NULL,
  PTR_TO_CTX,
  PTR_TO_SOCK_COMMON,
  PTR_TO_SOCKET,
  PTR_TO_TCP_SOCK,
  PTR_TO_XDP_SOCK,
} from "../../lib/verifier/reg_types.ts";
import { verifyText } from "./program.ts";

/** Every program of `path` whose name passes `keep` agrees with the oracle. */
async function agreesWithOracle(
  t: Deno.TestContext,
  path: string,
  keep: (name: string) => boolean,
): Promise<void> {
  const obj = loadFixture(path, { allowUnknownSections: true });
  let checked = 0;
  for (const o of readOracle(path)) {
    if (o.program === null || !keep(o.program)) continue;
    const prog = obj.programs.find((p) => p.name === o.program);
    assert.ok(prog, o.program);
    await t.step(`${o.program}: ${o.verdict} ${o.message}`, () => {
      const r = verifyProgram(obj, prog, { logLevel: 1 });
      assert.equal(r.verdict, o.verdict, r.log);
      if (o.verdict === "reject") assert.equal(r.message, o.message, r.log);
    });
    checked++;
  }
  assert.ok(checked > 0, `no programs of ${path} checked`);
}

Deno.test("sock pointers: ctx/sockptr.o agrees with the kernel", async (t) => {
  await agreesWithOracle(t, "ctx/sockptr.o", () => true);
});

Deno.test("tp_btf contexts: ctx/tracing.o agrees with the kernel", async (t) => {
  await agreesWithOracle(t, "ctx/tracing.o", (n) => n.startsWith("tp"));
});

// skb->sk (PTR_TO_SOCK_COMMON_OR_NULL) in R1, NULL-checked unless said
const SKC = (load: string, check = true) =>
  `r1 = *(u64 *)(r1 + 168)\n${check ? "if r1 == 0 goto +1\n" : ""}${load}\n` +
  "r0 = 0\nexit";
// bpf_sk_fullsock (95) / bpf_tcp_sock (96) of skb->sk in R0, NULL-checked
const VIA = (helper: number, load: string) =>
  `r1 = *(u64 *)(r1 + 168)\nif r1 == 0 goto +3\ncall ${helper}\n` +
  `if r0 == 0 goto +1\n${load}\nr0 = 0\nexit`;

/** [name, program, null (accept) or the kernel's message] from `oracle verify`. */
const HAND_WRITTEN: [string, string, string | null][] = [
  [
    "sock_common_or_null is not dereferenceable",
    SKC("r0 = *(u32 *)(r1 + 4)", false),
    "R1 invalid mem access 'sock_common_or_null'",
  ],
  ["sock_common src_ip4", SKC("r0 = *(u32 *)(r1 + 24)"), null],
  ["sock_common dst_port as u16", SKC("r0 = *(u16 *)(r1 + 48)"), null],
  ["sock_common rx_queue_mapping", SKC("r0 = *(u32 *)(r1 + 76)"), null],
  ["sock dst_port high byte", VIA(95, "r0 = *(u8 *)(r0 + 49)"), null],
  ["sock dst_port as u32", VIA(95, "r0 = *(u32 *)(r0 + 48)"), null],
  ["sock dst_ip6 byte", VIA(95, "r0 = *(u8 *)(r0 + 57)"), null],
  [
    "sock dst_ip6 as u64",
    VIA(95, "r0 = *(u64 *)(r0 + 56)"),
    "R0 invalid sock access off=56 size=8",
  ],
  [
    "sock misaligned u32",
    VIA(95, "r0 = *(u32 *)(r0 + 2)"),
    "R0 invalid sock access off=2 size=4",
  ],
  ["tcp_sock bytes_acked", VIA(96, "r0 = *(u64 *)(r0 + 88)"), null],
  ["tcp_sock icsk_retransmits", VIA(96, "r0 = *(u32 *)(r0 + 108)"), null],
  [
    "tcp_sock negative offset",
    VIA(96, "r0 = *(u32 *)(r0 - 4)"),
    "R0 invalid tcp_sock access off=-4 size=4",
  ],
];

Deno.test("sock pointers: hand-written programs", async (t) => {
  for (const [name, text, message] of HAND_WRITTEN) {
    await t.step(name, () => {
      const r = verifyText(text, "sched_cls");
      if (message === null) assert.equal(r.verdict, "accept", r.log);
      else {
        assert.equal(r.verdict, "reject", r.log);
        assert.equal(r.message, message, r.log);
      }
    });
  }
});

Deno.test("typeIsSkPointer: the four exact socket types only", () => {
  for (const t of [PTR_TO_SOCK_COMMON, PTR_TO_SOCKET, PTR_TO_TCP_SOCK]) {
    assert.equal(typeIsSkPointer(t), true);
    assert.equal(typeIsSkPointer(t | PTR_MAYBE_NULL), false);
  }
  assert.equal(typeIsSkPointer(PTR_TO_XDP_SOCK), true);
  assert.equal(typeIsSkPointer(PTR_TO_CTX), false);
});

Deno.test("knownBtfTarget: listed prototypes by attach type", async (t) => {
  await t.step("sched_switch has TP_PROTO's four arguments", () => {
    const p = knownBtfTarget("trace_raw_tp", "sched_switch");
    assert.deepEqual(p?.args.map((a) => a.kind), ["int", "ptr", "ptr", "int"]);
    assert.equal(p?.ret.kind, "void");
  });
  await t.step("fexit target has an int return slot", () => {
    const p = knownBtfTarget("trace_fexit", "bpf_fentry_test1");
    assert.equal(p?.args.length, 1);
    assert.equal(p?.ret.kind, "int");
  });
  await t.step("a tracepoint name is not a function target", () => {
    assert.equal(knownBtfTarget("trace_fentry", "sched_switch"), undefined);
  });
  await t.step("unknown names and Object.prototype keys", () => {
    assert.equal(knownBtfTarget("trace_raw_tp", "no_such_tp"), undefined);
    assert.equal(knownBtfTarget("trace_raw_tp", "constructor"), undefined);
    assert.equal(knownBtfTarget(undefined, "sched_switch"), undefined);
  });
});
