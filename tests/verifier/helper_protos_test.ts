/**
 * Helper prototypes, per-program-type availability and map compatibility,
 * checked against the real kernel (6.18.44, recorded by `oracle verify` in
 * tests/fixtures/helpers/) and against facts read in the kernel source.
 */
import assert from "node:assert/strict";
import {
  checkGetFuncIp,
  type HelperCallOptions,
  helperChangesPktData,
  type HelperProto,
  helperProto,
  helperProtoById,
  isAcquireFunction,
  MODELLED_PROG_TYPES,
  protoBySymbol,
  resolveHelperCall,
} from "../../lib/verifier/helper_protos.ts";
import {
  checkMapArg,
  checkMapFuncCompatibility,
  mayUpdateSockmap,
} from "../../lib/verifier/map_compat.ts";
import { MAP_TYPE } from "../../lib/uapi/bpf.ts";

// ---- reading the recorded kernel verdicts ---------------------------------

interface SectionKind {
  readonly progType: string;
  readonly opts: HelperCallOptions;
}

/** libbpf 1.1's SEC() prefixes used by the fixtures → program type + options. */
function sectionKind(section: string): SectionKind {
  const [head, sub] = section.split("/");
  const at = (
    progType: string,
    attachType?: string,
    sleepable?: boolean,
  ): SectionKind => ({
    progType,
    opts: { attachType, sleepable },
  });
  const kinds: Record<string, SectionKind> = {
    socket: at("socket_filter"),
    kprobe: at("kprobe"),
    "kprobe.multi": at("kprobe", "trace_kprobe_multi"),
    tc: at("sched_cls"),
    action: at("sched_act"),
    tracepoint: at("tracepoint"),
    xdp: at("xdp", "xdp"),
    perf_event: at("perf_event"),
    cgroup_skb: at("cgroup_skb", "cgroup_inet_ingress"),
    lwt_in: at("lwt_in"),
    lwt_xmit: at("lwt_xmit"),
    lwt_seg6local: at("lwt_seg6local"),
    sockops: at("sock_ops", "cgroup_sock_ops"),
    sk_skb: at("sk_skb"),
    sk_msg: at("sk_msg", "sk_msg_verdict"),
    raw_tp: at("raw_tracepoint"),
    flow_dissector: at("flow_dissector", "flow_dissector"),
    sk_reuseport: at("sk_reuseport"),
    sk_lookup: at("sk_lookup", "sk_lookup"),
    tp_btf: at("tracing", "trace_raw_tp"),
    iter: at("tracing", "trace_iter"),
    "iter.s": at("tracing", "trace_iter", true),
    syscall: at("syscall", undefined, true),
  };
  const cgroup: Record<string, SectionKind> = {
    sock_create: at("cgroup_sock", "cgroup_inet_sock_create"),
    connect4: at("cgroup_sock_addr", "cgroup_inet4_connect"),
    bind4: at("cgroup_sock_addr", "cgroup_inet4_bind"),
    sysctl: at("cgroup_sysctl", "cgroup_sysctl"),
    getsockopt: at("cgroup_sockopt", "cgroup_getsockopt"),
    setsockopt: at("cgroup_sockopt", "cgroup_setsockopt"),
    dev: at("cgroup_device", "cgroup_device"),
  };
  const kind = head === "cgroup" ? cgroup[sub] : kinds[head];
  if (!kind) {
    throw new Error(`fixture section ${section} has no known program type`);
  }
  return kind;
}

interface OracleLine {
  readonly section: string;
  readonly program: string;
  readonly verdict: string;
  readonly message: string;
}

const FIXTURES = new URL("../fixtures/helpers/", import.meta.url);

function readOracle(prefix: string): OracleLine[] {
  const out: OracleLine[] = [];
  for (const entry of Deno.readDirSync(FIXTURES)) {
    if (
      !entry.name.startsWith(prefix) || !entry.name.endsWith(".oracle.json")
    ) continue;
    const text = Deno.readTextFileSync(new URL(entry.name, FIXTURES));
    for (const line of text.split("\n").filter((l) => l.trim() !== "")) {
      out.push(JSON.parse(line) as OracleLine);
    }
  }
  return out;
}

/** Matrix programs are named h<id>: they call helper <id> with junk registers. */
const helperIdOf = (l: OracleLine): number => Number(l.program.slice(1));

/** The log lines check_helper_call() prints before looking at arguments. */
const CALL_CHECK =
  /cannot use helper|GPL-restricted|not allowed in probe|might sleep|invalid func/;

// ---- tests ------------------------------------------------------------------

Deno.test("prototypes mirror struct bpf_func_proto facts", async (t) => {
  await t.step("bpf_map_lookup_elem: map value or NULL from (map, key)", () => {
    const p = helperProto("sched_cls", 1)!;
    assert.equal(p.name, "bpf_map_lookup_elem");
    assert.deepEqual(p.ret, {
      base: "RET_PTR_TO_MAP_VALUE",
      flags: ["PTR_MAYBE_NULL"],
    });
    assert.deepEqual(p.args.map((a) => a.base), [
      "ARG_CONST_MAP_PTR",
      "ARG_PTR_TO_MAP_KEY",
    ]);
    assert.equal(p.pktAccess, true);
    assert.equal(p.gplOnly, false);
  });
  await t.step("bpf_trace_printk is gpl_only and reads (mem, size)", () => {
    const p = helperProto("kprobe", 6)!;
    assert.equal(p.gplOnly, true);
    assert.deepEqual(p.args, [
      { base: "ARG_PTR_TO_MEM", flags: ["MEM_RDONLY"] },
      { base: "ARG_CONST_SIZE", flags: [] },
    ]);
  });
  await t.step(
    "ringbuf reserve/submit: MEM_RINGBUF result, released by OBJ_RELEASE",
    () => {
      assert.deepEqual(helperProto("xdp", 131)!.ret, {
        base: "RET_PTR_TO_MEM",
        flags: ["PTR_MAYBE_NULL", "MEM_RINGBUF"],
      });
      assert.equal(
        helperProto("xdp", 131)!.args[1].base,
        "ARG_CONST_ALLOC_SIZE_OR_ZERO",
      );
      const submit = helperProto("xdp", 132)!;
      assert.equal(submit.ret.base, "RET_VOID");
      assert.deepEqual(submit.args[0], {
        base: "ARG_PTR_TO_RINGBUF_MEM",
        flags: ["OBJ_RELEASE"],
      });
    },
  );
  await t.step(
    "ARG_PTR_TO_UNINIT_MEM is MEM | MEM_UNINIT | MEM_WRITE (6.12+)",
    () => {
      assert.deepEqual(helperProto("sched_cls", 26)!.args[2], {
        base: "ARG_PTR_TO_MEM",
        flags: ["MEM_UNINIT", "MEM_WRITE"],
      });
    },
  );
  await t.step("former ARG_PTR_TO_LONG/INT: fixed size with arg_size", () => {
    const strtol = helperProto("xdp", 105)!;
    assert.deepEqual(strtol.args[3].flags, [
      "MEM_UNINIT",
      "MEM_FIXED_SIZE",
      "MEM_ALIGNED",
      "MEM_WRITE",
    ]);
    assert.equal(strtol.argSizes?.[3], 8);
    assert.equal(helperProto("xdp", 163)!.argSizes?.[2], 4); // check_mtu's mtu_len
  });
  await t.step("kptr_xchg, spin_lock, timers, skc_to_*, task_btf", () => {
    const xchg = helperProto("tracing", 194, { attachType: "trace_iter" })!;
    assert.equal(xchg.args[0].base, "ARG_KPTR_XCHG_DEST");
    assert.deepEqual(xchg.args[1].flags, ["PTR_MAYBE_NULL", "OBJ_RELEASE"]);
    assert.equal(xchg.ret.base, "RET_PTR_TO_BTF_ID");
    assert.equal(
      helperProto("sched_cls", 93)!.args[0].base,
      "ARG_PTR_TO_SPIN_LOCK",
    );
    assert.equal(
      helperProto("sched_cls", 169)!.args[0].base,
      "ARG_PTR_TO_TIMER",
    );
    assert.equal(
      helperProto("sched_cls", 170)!.args[1].base,
      "ARG_PTR_TO_FUNC",
    );
    const skc = helperProto("sched_cls", 137)!;
    assert.equal(skc.ret.btfId, "tcp_sock");
    assert.equal(skc.args[0].base, "ARG_PTR_TO_BTF_ID_SOCK_COMMON");
    assert.deepEqual(helperProto("kprobe", 158)!.ret, {
      base: "RET_PTR_TO_BTF_ID",
      flags: ["PTR_TRUSTED"],
      btfId: "task_struct",
    });
    assert.equal(helperProto("sched_cls", 84)!.ret.base, "RET_PTR_TO_SOCKET");
    assert.equal(helperProto("sched_cls", 86)!.args[0].flags[0], "OBJ_RELEASE");
  });
  await t.step("variants: one id, several kernel protos", () => {
    assert.equal(
      helperProto("sched_cls", 84)!.symbol,
      "bpf_sk_lookup_tcp_proto",
    );
    assert.equal(helperProto("xdp", 84)!.symbol, "bpf_xdp_sk_lookup_tcp_proto");
    assert.equal(
      helperProto("tracing", 46, { attachType: "trace_iter" })!.args[0].base,
      "ARG_PTR_TO_BTF_ID_SOCK_COMMON",
    );
    assert.equal(helperProto("sched_cls", 46)!.args[0].base, "ARG_PTR_TO_CTX");
    assert.equal(helperProtoById(1)?.symbol, "bpf_map_lookup_elem_proto");
    assert.equal(protoBySymbol("bpf_get_stackid_proto_pe")?.id, 27);
  });
});

Deno.test("table invariants", async (t) => {
  const contexts: HelperCallOptions[] = [
    {},
    { sleepable: true },
    { attachType: "trace_fentry" },
    { attachType: "trace_fexit" },
    { attachType: "lsm_cgroup" },
    { attachType: "cgroup_inet4_connect" },
    { attachType: "cgroup_setsockopt" },
    { attachType: "trace_kprobe_multi" },
    { config: { kprobeOverride: true, lockdown: "none" } },
  ];
  await t.step("every chain entry names a proto of the same id", () => {
    for (const type of MODELLED_PROG_TYPES) {
      for (const opts of contexts) {
        for (let id = 0; id < 212; id++) {
          const p = helperProto(type, id, opts);
          if (p) assert.equal(p.id, id, `${type} #${id} -> ${p.symbol}`);
        }
      }
    }
  });
  await t.step(
    "arg_size exactly for MEM_FIXED_SIZE, btf ids for BTF_ID args",
    () => {
      for (const type of MODELLED_PROG_TYPES) {
        for (let id = 1; id < 212; id++) {
          for (const opts of contexts) {
            const p = helperProto(type, id, opts);
            if (!p) continue;
            assert.ok(p.args.length <= 5);
            p.args.forEach((a, i) => {
              const fixed = a.flags.includes("MEM_FIXED_SIZE");
              assert.equal(
                p.argSizes?.[i] !== undefined,
                fixed,
                `${p.symbol} arg${i + 1} size`,
              );
              if (a.base === "ARG_PTR_TO_BTF_ID" && p.id !== 194) {
                assert.ok(p.argBtfIds?.[i], `${p.symbol} arg${i + 1} btf id`);
              }
            });
          }
        }
      }
    },
  );
  await t.step("capability tiers of bpf_base_func_proto", () => {
    const none = { caps: { bpf: false, perfmon: false, sysAdmin: false } };
    const bpfOnly = { caps: { bpf: true, perfmon: false, sysAdmin: false } };
    assert.ok(helperProto("socket_filter", 1, none)); // map_lookup_elem: tier 0
    assert.equal(helperProto("socket_filter", 93, none), null); // spin_lock needs CAP_BPF
    assert.ok(helperProto("socket_filter", 93, bpfOnly));
    assert.equal(helperProto("socket_filter", 6, bpfOnly), null); // trace_printk: CAP_PERFMON
    assert.equal(helperProto("sched_cls", 137, bpfOnly), null); // skc_to_*: CAP_PERFMON
    assert.ok(helperProto("sched_cls", 160, bpfOnly)); // ktime_get_coarse_ns is not gated
  });
  await t.step("kernel config: lockdown and kprobe override", () => {
    assert.equal(helperProto("kprobe", 36), null); // oracle machine: lockdown=integrity
    assert.ok(
      helperProto("kprobe", 36, {
        config: { kprobeOverride: false, lockdown: "none" },
      }),
    );
    const conf = {
      config: { kprobeOverride: false, lockdown: "confidentiality" as const },
    };
    assert.equal(helperProto("kprobe", 113, conf), null);
    assert.ok(
      helperProto("kprobe", 58, {
        config: { kprobeOverride: true, lockdown: "none" },
      }),
    );
  });
  await t.step(
    "trampoline-only helpers (fentry/fexit not loadable on the oracle)",
    () => {
      assert.ok(helperProto("tracing", 183, { attachType: "trace_fentry" }));
      // tracing_prog_func_proto(): bpf_prog_has_trampoline() for all three
      assert.ok(helperProto("tracing", 184, { attachType: "trace_fentry" }));
      assert.ok(helperProto("tracing", 184, { attachType: "trace_fexit" }));
      assert.ok(helperProto("lsm", 184, { attachType: "lsm_mac" }));
      assert.equal(
        helperProto("tracing", 184, { attachType: "trace_raw_tp" }),
        null,
      );
      assert.equal(
        checkGetFuncIp("tracing", { attachType: "trace_fentry" }),
        null,
      );
    },
  );
  await t.step(
    "allowed() by attach target: d_path, ima, sk_storage (not loadable on the oracle)",
    () => {
      const call = (
        type: string,
        id: number,
        attachType: string,
        target: string,
        sleepable = false,
      ) =>
        resolveHelperCall(type, id, {
          attachType,
          attachTarget: target,
          sleepable,
        });
      // bpf_d_path_allowed(): LSM on a sleepable hook, sleepable or not …
      assert.ok(call("lsm", 147, "lsm_mac", "file_open").ok);
      assert.ok(call("lsm", 147, "lsm_mac", "bprm_committed_creds", true).ok);
      const notSleepable = call("lsm", 147, "lsm_mac", "task_free");
      assert.equal(notSleepable.ok, false);
      assert.match(
        notSleepable.ok ? "" : notSleepable.message,
        /helper call is not allowed in probe/,
      );
      // … trampolines on btf_allowlist_d_path, iterators
      assert.ok(call("tracing", 147, "trace_fentry", "vfs_truncate").ok);
      assert.ok(call("tracing", 147, "trace_fexit", "filp_close").ok);
      assert.equal(
        call("tracing", 147, "trace_fentry", "do_sys_openat2").ok,
        false,
      );
      assert.ok(call("tracing", 147, "trace_iter", "bpf_map_elem").ok);
      // bpf_ima_inode_hash_allowed(): a sleepable hook (and program)
      assert.ok(call("lsm", 161, "lsm_mac", "file_open", true).ok);
      assert.equal(call("lsm", 161, "lsm_mac", "task_free", true).ok, false);
      // bpf_sk_storage_tracing_allowed(): not on a bpf_sk_storage* function
      assert.ok(call("tracing", 107, "trace_fentry", "tcp_v4_connect").ok);
      assert.equal(
        call("tracing", 107, "trace_fentry", "bpf_sk_storage_free").ok,
        false,
      );
      assert.ok(call("tracing", 107, "trace_raw_tp", "").ok);
    },
  );
});

Deno.test("availability agrees with the kernel for every helper × fixture type", () => {
  const lines = readOracle("matrix_");
  assert.ok(lines.length > 5000);
  const wrong: string[] = [];
  for (const l of lines) {
    const { progType, opts } = sectionKind(l.section);
    const r = resolveHelperCall(progType, helperIdOf(l), opts);
    const kernel = CALL_CHECK.test(l.message) ? l.message : "";
    if ((r.ok ? "" : r.message) !== kernel) {
      wrong.push(
        `${l.section} #${helperIdOf(l)}: model ${
          JSON.stringify(r)
        } kernel ${kernel}`,
      );
    }
  }
  assert.deepEqual(wrong, []);
});

Deno.test("gpl_only agrees with the kernel (non-GPL fixtures)", () => {
  const lines = readOracle("nogpl_");
  assert.ok(lines.length > 150);
  let restricted = 0;
  for (const l of lines) {
    const { progType, opts } = sectionKind(l.section);
    const r = resolveHelperCall(progType, helperIdOf(l), {
      ...opts,
      gplCompatible: false,
    });
    const kernelSays = l.message.includes("GPL-restricted");
    if (kernelSays) restricted++;
    assert.equal(
      !r.ok && r.message.includes("GPL-restricted"),
      kernelSays,
      l.program,
    );
  }
  assert.ok(restricted >= 30);
});

/** compatible_reg_types per arg base, as the kernel prints `R1 type=ctx expected=...`. */
const EXPECTED_TYPES: Record<string, string> = {
  ARG_PTR_TO_CTX: "ctx",
  ARG_PTR_TO_MAP_KEY:
    "fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_",
  ARG_PTR_TO_MAP_VALUE:
    "fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_",
  ARG_PTR_TO_FUNC: "func",
  ARG_PTR_TO_CONST_STR: "map_value",
  ARG_CONST_MAP_PTR: "map_ptr",
  ARG_PTR_TO_MEM:
    "fp, pkt, pkt_meta, map_key, map_value, mem, ringbuf_mem, buf, trusted_ptr_",
  ARG_PTR_TO_BTF_ID_SOCK_COMMON:
    "sock_common, sock, tcp_sock, xdp_sock, ptr_, trusted_ptr_",
  ARG_PTR_TO_SOCK_COMMON: "sock_common, sock, tcp_sock, xdp_sock",
  ARG_PTR_TO_TIMER: "map_value",
  ARG_PTR_TO_SPIN_LOCK: "map_value, ptr_",
  ARG_KPTR_XCHG_DEST: "map_value, ptr_",
  ARG_PTR_TO_DYNPTR: "fp, dynptr_ptr",
  ARG_PTR_TO_BTF_ID: "ptr_, trusted_ptr_, rcu_ptr_",
  ARG_PTR_TO_RINGBUF_MEM: "ringbuf_mem",
  ARG_PTR_TO_PERCPU_BTF_ID: "percpu_ptr_, percpu_rcu_ptr_, percpu_trusted_ptr_",
};

Deno.test("arg1 type and arity agree with the kernel's first complaint", () => {
  // The matrix programs call with r1 = ctx and r2..r5 unset: the kernel
  // rejects arg1 unless it takes ctx/anything, then rejects arg2 if any.
  let checked = 0;
  for (const l of readOracle("matrix_")) {
    const { progType, opts } = sectionKind(l.section);
    const r = resolveHelperCall(progType, helperIdOf(l), opts);
    if (!r.ok) continue;
    const a = r.proto.args;
    const ctxOk = a.length === 0 ||
      ["ARG_PTR_TO_CTX", "ARG_ANYTHING"].includes(a[0].base);
    const want = !ctxOk
      ? `R1 type=ctx expected=${EXPECTED_TYPES[a[0].base] ?? a[0].base}`
      : a.length >= 2
      ? "R2 !read_ok"
      : "passes";
    const got = /^R[12] /.test(l.message) ? l.message : "passes";
    assert.equal(got, want, `${l.section} ${r.proto.symbol}`);
    checked++;
  }
  assert.ok(checked > 2500);
});

Deno.test("bpf_get_func_ip: check_get_func_ip() lines", () => {
  for (const l of readOracle("matrix_").filter((l) => l.program === "h173")) {
    const { progType, opts } = sectionKind(l.section);
    if (!resolveHelperCall(progType, 173, opts).ok) continue;
    const kernel = l.message.startsWith("func bpf_get_func_ip")
      ? l.message
      : null;
    assert.equal(checkGetFuncIp(progType, opts), kernel, l.section);
  }
});

const checks = new Map(readOracle("checks").map((l) => [l.program, l]));
const kernelSaid = (program: string): string => {
  const l = checks.get(program);
  assert.ok(l, `fixture program ${program} recorded`);
  return l.message;
};

Deno.test("check_helper_call lines on well-formed calls", () => {
  const cases: [string, string, number, HelperCallOptions][] = [
    ["tc_xdp_adjust_head", "sched_cls", 44, {}],
    ["xdp_skb_load_bytes", "xdp", 26, {}],
    ["tc_helper_212", "sched_cls", 212, {}],
    ["kprobe_copy_from_user", "kprobe", 148, {}],
    ["tc_get_stackid", "sched_cls", 27, {}],
  ];
  for (const [program, type, id, opts] of cases) {
    const r = resolveHelperCall(type, id, opts);
    assert.equal(r.ok ? "" : r.message, kernelSaid(program), program);
  }
  for (
    const [program, type, id] of [
      ["tc_skb_load_bytes", "sched_cls", 26],
      ["socket_skb_load_bytes", "socket_filter", 26],
      ["xdp_adjust_head_ok", "xdp", 44],
    ] as const
  ) {
    assert.equal(checks.get(program)?.verdict, "accept");
    assert.ok(resolveHelperCall(type, id).ok, program);
  }
});

Deno.test("check_map_func_compatibility", async (t) => {
  await t.step("agrees with the kernel's recorded lines", () => {
    const cases: [string, number, number][] = [
      ["array_ringbuf_output", MAP_TYPE.array, 130],
      ["prog_array_lookup", MAP_TYPE.prog_array, 1],
      ["hash_push", MAP_TYPE.hash, 87],
      ["bloom_pop", MAP_TYPE.bloom_filter, 88],
      ["array_percpu_lookup", MAP_TYPE.array, 195],
      ["perf_array_lookup", MAP_TYPE.perf_event_array, 1],
      ["stack_trace_lookup", MAP_TYPE.stack_trace, 1],
      ["xdp_cpumap_lookup", MAP_TYPE.cpumap, 1],
      ["xdp_hash_redirect_map", MAP_TYPE.hash, 51],
    ];
    for (const [program, map, id] of cases) {
      assert.equal(
        checkMapFuncCompatibility(map, id),
        kernelSaid(program),
        program,
      );
    }
    for (
      const [program, map, id] of [
        ["bloom_push", MAP_TYPE.bloom_filter, 87],
        ["xdp_devmap_lookup", MAP_TYPE.devmap, 1],
        ["xdp_ringbuf_ok", MAP_TYPE.ringbuf, 131],
      ] as const
    ) {
      assert.equal(checks.get(program)?.verdict, "accept", program);
      assert.equal(checkMapFuncCompatibility(map, id), null, program);
    }
  });
  await t.step("map side and helper side both reject", () => {
    // The kernel reports argument errors first (a ringbuf's zero-sized key:
    // "invalid zero-sized read"), but the compatibility rule itself holds.
    assert.equal(kernelSaid("ringbuf_lookup"), "invalid zero-sized read");
    assert.equal(
      checkMapFuncCompatibility(MAP_TYPE.ringbuf, 1),
      "cannot pass map_type 27 into func bpf_map_lookup_elem#1",
    );
    assert.equal(
      checkMapFuncCompatibility(MAP_TYPE.hash, 12),
      "cannot pass map_type 1 into func bpf_tail_call#12",
    );
    assert.equal(checkMapFuncCompatibility(MAP_TYPE.hash, 1), null);
    assert.equal(checkMapFuncCompatibility(MAP_TYPE.percpu_hash, 195), null);
    assert.equal(checkMapFuncCompatibility(MAP_TYPE.sk_storage, 194), null);
  });
  await t.step("sockmap updates: may_update_sockmap()", () => {
    assert.equal(kernelSaid("sockops_sockmap_delete"), "");
    assert.equal(
      checkMapFuncCompatibility(MAP_TYPE.sockmap, 3, { progType: "sock_ops" }),
      null,
    );
    assert.equal(mayUpdateSockmap(2, { progType: "sock_ops" }), false);
    assert.equal(mayUpdateSockmap(2, { progType: "sched_cls" }), true);
    assert.equal(
      mayUpdateSockmap(2, { progType: "tracing", attachType: "trace_iter" }),
      true,
    );
    assert.equal(
      checkMapFuncCompatibility(MAP_TYPE.sockmap, 2, { progType: "kprobe" }),
      "cannot pass map_type 15 into func bpf_map_update_elem#2",
    );
  });
});

/** What a fixture program put in r1..r5 (see tests/fixtures/helpers/call_helper.h). */
type RegKind = "ctx" | "map" | "buf16" | "const8" | "zero";

const REGS_BY_PREFIX: Record<string, readonly RegKind[]> = {
  z: ["zero", "zero", "zero", "zero", "zero"],
  c: ["ctx", "zero", "zero", "zero", "zero"],
  m: ["map", "zero", "zero", "zero", "zero"],
  b: ["buf16", "const8", "zero", "zero", "zero"],
  d: ["ctx", "buf16", "const8", "zero", "zero"],
  k: ["map", "buf16", "const8", "zero", "zero"],
  e: ["ctx", "map", "zero", "zero", "zero"],
  f: ["ctx", "map", "zero", "buf16", "const8"],
};

const SIZE_BASES = [
  "ARG_CONST_SIZE",
  "ARG_CONST_SIZE_OR_ZERO",
  "ARG_CONST_ALLOC_SIZE_OR_ZERO",
];
const STACK_OK = [
  "ARG_PTR_TO_MEM",
  "ARG_PTR_TO_MAP_KEY",
  "ARG_PTR_TO_MAP_VALUE",
  "ARG_PTR_TO_STACK",
];

/**
 * The kernel's complaint about the first argument (1-based) that the given
 * register contents do not satisfy, or null when check_func_arg() passes
 * them all. Pointers take a scalar only when PTR_MAYBE_NULL and it is 0.
 */
function firstArgComplaint(
  proto: HelperProto,
  regs: readonly RegKind[],
): string | null {
  for (let k = 1; k <= proto.args.length; k++) {
    const a = proto.args[k - 1];
    const reg = regs[k - 1];
    if (a.base === "ARG_ANYTHING") continue;
    const expected = `expected=${EXPECTED_TYPES[a.base] ?? a.base}`;
    const nullable = a.flags.includes("PTR_MAYBE_NULL");
    if (reg === "zero" || reg === "const8") {
      if (SIZE_BASES.includes(a.base)) {
        if (reg === "zero" && a.base === "ARG_CONST_SIZE") {
          return `R${k} invalid zero-sized read: u64=[0,0]`;
        }
        continue;
      }
      if (reg === "zero" && nullable) continue;
      return `R${k} type=scalar ${expected}`;
    }
    if (reg === "buf16") {
      if (!STACK_OK.includes(a.base)) return `R${k} type=fp ${expected}`;
      const size = proto.argSizes?.[k - 1];
      if (size !== undefined && size > 16) {
        return `invalid read from stack R${k} off=-16 size=${size}`;
      }
      continue;
    }
    if (reg === "ctx" && a.base === "ARG_PTR_TO_CTX") continue;
    if (reg === "map" && a.base === "ARG_CONST_MAP_PTR") continue;
    return `R${k} type=${reg === "map" ? "map_ptr" : "ctx"} ${expected}`;
  }
  return null;
}

/** Kernel lines about arguments or the map, as opposed to later checks. */
const ARG_LINE =
  /^R\d |^cannot pass map_type|^func bpf_get_func_ip|^invalid read from stack|^expected prog array/;

Deno.test("argument kinds 1..5 agree with the kernel (calls with known registers)", () => {
  const lines = readOracle("deep_");
  assert.ok(lines.length > 330);
  let compared = 0;
  for (const l of lines) {
    const { progType, opts } = sectionKind(l.section);
    const id = helperIdOf(l);
    const r = resolveHelperCall(progType, id, opts);
    if (!r.ok) {
      assert.equal(l.message, r.message, l.program);
      continue;
    }
    const regs = REGS_BY_PREFIX[l.program[0]];
    const afterArgs = regs.includes("map")
      ? checkMapArg(MAP_TYPE.array, id) ??
        checkMapFuncCompatibility(MAP_TYPE.array, id)
      : id === 173
      ? checkGetFuncIp(progType, opts)
      : null;
    const want = firstArgComplaint(r.proto, regs) ?? afterArgs;
    const got = ARG_LINE.test(l.message) ? l.message : null;
    assert.equal(got, want, `${l.section} ${l.program} ${r.proto.symbol}`);
    compared++;
  }
  assert.ok(compared > 320);
});

Deno.test("bpf_helper_changes_pkt_data agrees with the kernel", () => {
  // pkt_data.c: programs named <type>_<id>_<what> keep a packet pointer
  // across one call; the kernel refuses the read after it iff invalidated.
  const lines = readOracle("pkt_data");
  assert.equal(lines.length, 13);
  for (const l of lines) {
    const id = Number(l.program.split("_")[1]);
    const invalidated = /^R\d invalid mem access 'scalar'$/.test(l.message);
    assert.equal(invalidated || l.verdict === "accept", true, l.program);
    assert.equal(helperChangesPktData(id), invalidated, l.program);
  }
});

Deno.test("acquire functions: the kernel demands a release", () => {
  // Programs whose arguments all passed either exit cleanly or, after an
  // acquiring helper (sk_lookup_tcp …), leak the reference.
  const leak = "BPF_EXIT instruction in main prog would lead to reference leak";
  const lines = readOracle("deep_");
  const leaked = lines.filter((l) => l.message === leak).map(helperIdOf);
  assert.deepEqual([...new Set(leaked)].sort((a, b) => a - b), [84, 85, 99]);
  for (const id of leaked) assert.ok(isAcquireFunction(id), `#${id}`);
  for (const l of lines.filter((l) => l.verdict === "accept")) {
    assert.ok(!isAcquireFunction(helperIdOf(l)), l.program);
  }
  assert.ok(
    isAcquireFunction(1, MAP_TYPE.sockmap) &&
      !isAcquireFunction(1, MAP_TYPE.hash),
  );
});

/** The register type the kernel prints for R0 after a call returning `ret`. */
function retRegTypeName(ret: HelperProto["ret"]): string | null {
  const nullable = ret.flags.includes("PTR_MAYBE_NULL");
  const names: Record<string, string> = {
    RET_INTEGER: "scalar",
    RET_PTR_TO_SOCKET: "sock",
    RET_PTR_TO_SOCK_COMMON: "sock_common",
    RET_PTR_TO_MAP_VALUE: "map_value",
  };
  // A trusted BTF pointer may be read directly: no complaint.
  if (ret.base === "RET_PTR_TO_BTF_ID" && ret.flags.includes("PTR_TRUSTED")) {
    return null;
  }
  const name = names[ret.base];
  if (!name) throw new Error(`no fixture reads through ${ret.base}`);
  return nullable ? `${name}_or_null` : name;
}

Deno.test("return types agree with the kernel (read through R0)", () => {
  const lines = readOracle("rets_");
  assert.ok(lines.length > 90);
  for (const l of lines) {
    // rets_ programs are named r<variant><id>: the variant of call_helper.h.
    const id = Number(l.program.slice(2));
    const { progType, opts } = sectionKind(l.section);
    const r = resolveHelperCall(progType, id, opts);
    if (!r.ok) {
      assert.equal(l.message, r.message, l.program);
      continue;
    }
    const m = /^R\d invalid mem access '([^']+)'$/.exec(l.message);
    assert.equal(
      m ? m[1] : null,
      retRegTypeName(r.proto.ret),
      `${l.program} ${r.proto.symbol}`,
    );
  }
});
