/**
 * libbpf's SEC() table: names → program type / expected attach type, and
 * its matching rules (`sec_def_matches()`), checked on names written down
 * from libbpf's `section_defs[]`.
 */
import assert from "node:assert/strict";
import {
  findSectionDef,
  SECTION_DEFS,
  sectionDefMatches,
} from "../../lib/elf/sections.ts";
import { ATTACH_TYPE, PROG_TYPE } from "../../lib/uapi/bpf.ts";
import { loadFixture } from "./fixtures.ts";

Deno.test("sections: names map to libbpf's program and attach types", () => {
  const cases: [string, string, string | null][] = [
    ["socket", "socket_filter", null],
    ["tc", "sched_cls", null],
    ["classifier", "sched_cls", null],
    ["tc/ingress", "sched_cls", "tcx_ingress"],
    ["tcx/egress", "sched_cls", "tcx_egress"],
    ["xdp", "xdp", "xdp"],
    ["xdp.frags", "xdp", "xdp"],
    ["xdp/devmap", "xdp", "xdp_devmap"],
    ["kprobe/do_unlinkat", "kprobe", null],
    ["kretprobe/do_unlinkat", "kprobe", null],
    ["kprobe.multi/foo*", "kprobe", "trace_kprobe_multi"],
    ["uprobe", "kprobe", null],
    ["uprobe.s//bin/sh:main", "kprobe", null],
    ["tracepoint/syscalls/sys_enter_openat", "tracepoint", null],
    ["tp/sched/sched_switch", "tracepoint", null],
    ["raw_tp/sched_switch", "raw_tracepoint", null],
    ["raw_tp.w/foo", "raw_tracepoint_writable", null],
    ["tp_btf/sched_switch", "tracing", "trace_raw_tp"],
    ["perf_event", "perf_event", null],
    ["fentry/bpf_fentry_test1", "tracing", "trace_fentry"],
    ["fexit/bpf_fentry_test1", "tracing", "trace_fexit"],
    ["fmod_ret/bpf_modify_return_test", "tracing", "modify_return"],
    ["fentry.s/foo", "tracing", "trace_fentry"],
    ["lsm/file_open", "lsm", "lsm_mac"],
    ["lsm.s/bprm_committed_creds", "lsm", "lsm_mac"],
    ["iter/task", "tracing", "trace_iter"],
    ["cgroup_skb/ingress", "cgroup_skb", "cgroup_inet_ingress"],
    ["cgroup/connect4", "cgroup_sock_addr", "cgroup_inet4_connect"],
    ["cgroup/sock", "cgroup_sock", "cgroup_inet_sock_create"],
    ["sockops", "sock_ops", "cgroup_sock_ops"],
    ["sk_skb/stream_verdict", "sk_skb", "sk_skb_stream_verdict"],
    ["struct_ops/dummy_op", "struct_ops", null],
    ["struct_ops.s/x", "struct_ops", null],
    ["syscall", "syscall", null],
    ["sk_lookup", "sk_lookup", "sk_lookup"],
    ["netfilter", "netfilter", "netfilter"],
  ];
  for (const [name, type, attach] of cases) {
    const def = findSectionDef(name);
    assert.ok(def, name);
    assert.equal(def.progType, type, name);
    assert.equal(def.attachType, attach, name);
  }
});

Deno.test("sections: exact, '+' and '/' matching", () => {
  // "kprobe+" takes "kprobe" and "kprobe/…" but not "kprobex"
  const kprobe = SECTION_DEFS.find((d) => d.pattern === "kprobe+")!;
  assert.equal(sectionDefMatches(kprobe, "kprobe"), true);
  assert.equal(sectionDefMatches(kprobe, "kprobe/foo"), true);
  assert.equal(sectionDefMatches(kprobe, "kprobex"), false);
  assert.equal(sectionDefMatches(kprobe, "kprobe.multi/foo"), false);
  // exact names take nothing after them
  for (
    const name of [
      "tcx",
      "tc/other",
      "xdp/foo",
      "socket/1",
      "syscall2",
      "classifier/x",
    ]
  ) {
    assert.equal(findSectionDef(name), undefined, name);
  }
  assert.equal(findSectionDef("no_such_type"), undefined);
  assert.equal(findSectionDef(".text"), undefined);
});

Deno.test("sections: flags of the program load", () => {
  const obj = loadFixture("sec_net.o");
  const syscall = obj.programs.find((p) => p.name === "syscall_prog")!;
  assert.equal(syscall.progFlags, 1 << 4, "syscall programs are sleepable");
  assert.equal(findSectionDef("xdp.frags")!.xdpFrags, true);
  assert.equal(findSectionDef("lsm.s/x")!.sleepable, true);
  assert.equal(findSectionDef("fentry/x")!.attachBtf, true);
  assert.equal(findSectionDef("kprobe/x")!.attachBtf, false);
});

Deno.test("sections: programs of the section fixtures", () => {
  const net = loadFixture("sec_net.o");
  assert.deepEqual(
    net.programs.map((p) => [p.name, p.type, p.expectedAttachType]),
    [
      ["sock_prog", "socket_filter", null],
      ["tc_prog", "sched_cls", null],
      ["cls_prog", "sched_cls", null],
      ["tcx_prog", "sched_cls", "tcx_ingress"],
      ["xdp_prog", "xdp", "xdp"],
      ["cgroup_skb_prog", "cgroup_skb", "cgroup_inet_ingress"],
      ["syscall_prog", "syscall", null],
      ["tc_optional", "sched_cls", null],
    ],
  );
  // SEC("?tc"): reported as "tc", but not loaded by default
  assert.deepEqual(
    net.programs.filter((p) => !p.autoload).map((p) => [p.name, p.section]),
    [["tc_optional", "tc"]],
  );
  for (const p of net.programs) {
    assert.equal(p.typeId, PROG_TYPE[p.type]);
    assert.equal(
      p.expectedAttachTypeId,
      p.expectedAttachType === null ? 0 : ATTACH_TYPE[p.expectedAttachType],
    );
  }
  assert.equal(PROG_TYPE.xdp, 6);
  assert.equal(ATTACH_TYPE.xdp, 37);
  const btfProgs = loadFixture("sec_btf.o").programs;
  assert.deepEqual(btfProgs.map((p) => p.attachTarget), [
    "bpf_fentry_test1",
    "bpf_fentry_test1",
    "bpf_modify_return_test",
    "file_open",
    "sched_switch",
    null,
  ]);
  assert.deepEqual(loadFixture("sec_trace.o").programs.map((p) => p.type), [
    "kprobe",
    "kprobe",
    "kprobe",
    "tracepoint",
    "tracepoint",
    "raw_tracepoint",
    "perf_event",
  ]);
});

Deno.test("sections: several programs share a section, in offset order", () => {
  const obj = loadFixture("multi_prog.o");
  assert.deepEqual(obj.programs.map((p) => `${p.section}:${p.name}`), [
    "xdp:xdp_first",
    "xdp:xdp_second",
    "tc:tc_first",
    "tc:tc_second",
    "tc:tc_plain",
    "tc:tc_hidden",
  ]);
  assert.equal(obj.license, "Dual BSD/GPL");
  assert.equal(obj.kernVersion, 0x060100);
  assert.equal(obj.name, "multi_prog");
});
