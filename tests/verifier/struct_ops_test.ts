/**
 * struct_ops programs implementing `tcp_congestion_ops` members against
 * the real kernel: for every program of runtime/struct_ops/tcp_ca.o and
 * tcp_ca_rules.o the verdict, errno, message and processed count the 6.18
 * kernel recorded (`*.oracle.json`), and for the rejected ones its whole
 * level-1 log line for line (`oracle verify --log`, kept in
 * tests/fixtures/runtime/struct_ops/logs/) — the member's prototype
 * (`func 'release' arg0 has btf_id 2953 type STRUCT 'sock'`), the
 * promotion to `trusted_ptr_tcp_sock()`, the store rule of
 * bpf_tcp_ca_btf_struct_access() and the helpers of
 * bpf_tcp_ca_get_func_proto() by member. Only the verification time
 * differs between runs and is left out.
 *
 * Also: the loader's link of program to member from the `.struct_ops`
 * maps' relocations, and the rules on their own.
 */
import assert from "node:assert/strict";
import { loadFixture } from "../elf/fixtures.ts";
import { expectKernelVerdictsAndLogs } from "./kernel_logs.ts";
import { verifyProgram } from "../../lib/verifier/verify.ts";
import {
  ctxAccess,
  tcpCaBtfStructAccess,
} from "../../lib/verifier/ctx_access/mod.ts";

const FIXTURES = [
  "runtime/struct_ops/tcp_ca.o",
  "runtime/struct_ops/tcp_ca_rules.o",
];
const LOGS = new URL("../fixtures/runtime/struct_ops/logs/", import.meta.url);

for (const fixture of FIXTURES) {
  const base = fixture.replace(/^.*\//, "").replace(/\.o$/, "");
  Deno.test(`struct_ops: bpfsim verifies ${base}.o as the 6.18 kernel does`, async (t) => {
    await expectKernelVerdictsAndLogs(t, fixture, LOGS, base);
  });
}

Deno.test("struct_ops: each program knows the member its .struct_ops map gives it", () => {
  const object = loadFixture("runtime/struct_ops/tcp_ca_rules.o");
  const member = (name: string) =>
    object.programs.find((p) => p.name === name)?.structOps;
  // from the initialisers in tcp_ca_rules.c
  assert.deepEqual(member("init_storage"), {
    map: "rules_a",
    structName: "tcp_congestion_ops",
    member: "init",
    memberIndex: 9,
  });
  assert.equal(member("release_getsockopt")?.map, "rules_b");
  assert.equal(member("release_getsockopt")?.member, "release");
  assert.equal(member("release_send_ack")?.map, "rules_c");
  assert.equal(member("get_info_prog")?.member, "get_info");
  // a struct_ops program no map refers to: libbpf loads it without a member
  const secBtf = loadFixture("sec_btf.o", { allowUnknownSections: true });
  const lone = secBtf.programs.find((p) => p.name === "struct_ops_prog")!;
  assert.equal(lone.structOps, undefined);
  const r = verifyProgram(secBtf, lone, { logLevel: 1 });
  // check_struct_ops_btf_id(): no attach_btf_id is -ENOTSUPP, logged by nobody
  assert.deepEqual([r.verdict, r.errno, r.message, r.processed], [
    "reject",
    -524,
    "",
    0,
  ]);
});

Deno.test("struct_ops: the context rule follows the member's prototype", () => {
  const opts = (member: string) => ({
    structOpsName: "tcp_congestion_ops",
    attachFuncName: member,
  });
  // cong_control(sk, u32 ack, int flag, const struct rate_sample *rs)
  const sk = ctxAccess("struct_ops", 0, 8, "read", opts("cong_control"));
  assert.ok(sk.ok);
  assert.equal(sk.regType, "PTR_TO_BTF_ID");
  assert.equal(sk.btfName, "tcp_sock"); // promoted from sock
  assert.equal(sk.trusted, true);
  const rs = ctxAccess("struct_ops", 24, 8, "read", opts("cong_control"));
  assert.ok(rs.ok);
  assert.equal(rs.btfName, "rate_sample");
  const flag = ctxAccess("struct_ops", 16, 4, "read", opts("cong_control"));
  assert.ok(flag.ok);
  assert.equal(flag.regType, "SCALAR_VALUE");
  // no return slot for a void member: btf_ctx_arg_idx() gives nr_args + 1
  // (the kernel logged "doesn't have 5-th argument" for ctx[3] of the
  // 3-argument cong_avoid, logs/tcp_ca_rules.cong_avoid_arg4.log)
  const past = ctxAccess("struct_ops", 32, 8, "read", opts("cong_control"));
  assert.deepEqual(past, {
    ok: false,
    log: ["func 'cong_control' doesn't have 6-th argument"],
  });
  // init(sk) has one argument; a type bpfsim does not model has no rule
  assert.equal(ctxAccess("struct_ops", 8, 8, "read", opts("init")).ok, false);
  assert.equal(
    ctxAccess("struct_ops", 0, 8, "read", {
      structOpsName: "sched_ext_ops",
      attachFuncName: "init",
    }).ok,
    false,
  );
});

Deno.test("struct_ops: bpf_tcp_ca_btf_struct_access() field by field", () => {
  // offsets of the 6.18 x86-64 vmlinux BTF (bpftool btf dump)
  const allowed: [number, number][] = [
    [428, 4], // sk_pacing_status
    [488, 8], // sk_pacing_rate
    [1256, 1], // icsk_ack.pending
    [1296, 8], // icsk_ca_priv[0]
    [1392, 8], // icsk_ca_priv[12]
    [1399, 1], // its last byte
    [1444, 4], // snd_cwnd
    [1492, 4], // snd_ssthresh
    [1640, 1], // ecn_flags
    [1716, 4], // app_limited
    [1932, 4], // snd_cwnd_cnt
  ];
  for (const [off, size] of allowed) {
    assert.equal(tcpCaBtfStructAccess("tcp_sock", off, size), undefined);
  }
  assert.equal(
    tcpCaBtfStructAccess("tcp_sock", 1936, 4),
    "no write support to tcp_sock at off 1936",
  );
  assert.equal(
    tcpCaBtfStructAccess("tcp_sock", 1400, 1),
    "no write support to tcp_sock at off 1400",
  );
  assert.equal(
    tcpCaBtfStructAccess("tcp_sock", 1256, 2),
    "write access at off 1256 with size 2 beyond the member of tcp_sock ended at 1257",
  );
  assert.equal(
    tcpCaBtfStructAccess("ack_sample", 0, 4),
    "only read is supported",
  );
});
