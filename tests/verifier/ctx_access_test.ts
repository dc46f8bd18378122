/**
 * Context access rules (lib/verifier/ctx_access) against the real kernel.
 *
 * tests/fixtures/ctx/*.c hold one program per (offset, size, load/store)
 * fact, named <family>_<r|w|x>_<u|s><bits>_<offset>; *.oracle.json record
 * what Linux 6.18 said about each. Every record must agree with the model:
 * the verdict, and for a refusal the kernel's message. The comment beside
 * each program carries what the oracle's verdict line does not: the
 * register type of a pointer load (`// accept: PTR_TO_PACKET`, hand-traced
 * from net/core/filter.c, bpf_trace.c and btf.c) and btf_ctx_access()'s own
 * log line (`// reject: func '…' … / invalid bpf_context access …`, read
 * off `oracle verify --log`).
 */
import { strict as assert } from "node:assert";
import * as ctx from "../../lib/verifier/ctx_access/mod.ts";
import type {
  BtfCtxArg,
  CtxAccessOptions,
  CtxAccessResult,
  SockPtrType,
} from "../../lib/verifier/ctx_access/mod.ts";

const FIXTURES = new URL("../fixtures/ctx/", import.meta.url);
const FILES = [
  "skb",
  "xdp",
  "sock",
  "cgroup",
  "select",
  "tracing",
  "syscall",
  "sockptr",
];

const structPtr = (typeName: string): BtfCtxArg => ({
  kind: "ptr",
  pointsToStruct: true,
  typeName,
});
/** tp_btf targets' TP_PROTO()s (without `void *__data`), from the kernel headers. */
const TP_BTF: Record<string, BtfCtxArg[]> = {
  sched_switch: [
    { kind: "int", typeName: "bool" },
    structPtr("task_struct"),
    structPtr("task_struct"),
    { kind: "int", typeName: "unsigned int" },
  ],
  sys_enter: [structPtr("pt_regs"), { kind: "int", typeName: "long" }],
};
const tpBtf = (tp: string): [string, CtxAccessOptions] => [
  "tracing",
  {
    expectedAttachType: "trace_raw_tp",
    btfCtxArgs: TP_BTF[tp],
    attachFuncName: tp,
  },
];
const attach = (progType: string, at: string): [string, CtxAccessOptions] => [
  progType,
  { expectedAttachType: at },
];

/** libbpf's section (or its first component) → program type and expected attach type. */
const SECTIONS: Record<string, [string, CtxAccessOptions?]> = {
  tc: ["sched_cls"],
  action: ["sched_act"],
  socket: ["socket_filter"],
  "cgroup_skb/ingress": attach("cgroup_skb", "cgroup_inet_ingress"),
  "cgroup_skb/egress": attach("cgroup_skb", "cgroup_inet_egress"),
  sk_skb: attach("sk_skb", "sk_skb_stream_verdict"),
  lwt_in: ["lwt_in"],
  lwt_out: ["lwt_out"],
  lwt_xmit: ["lwt_xmit"],
  lwt_seg6local: ["lwt_seg6local"],
  flow_dissector: attach("flow_dissector", "flow_dissector"),
  xdp: attach("xdp", "xdp"),
  "xdp/devmap": attach("xdp", "xdp_devmap"),
  "cgroup/sock_create": attach("cgroup_sock", "cgroup_inet_sock_create"),
  "cgroup/sock_release": attach("cgroup_sock", "cgroup_inet_sock_release"),
  "cgroup/post_bind4": attach("cgroup_sock", "cgroup_inet4_post_bind"),
  "cgroup/post_bind6": attach("cgroup_sock", "cgroup_inet6_post_bind"),
  "cgroup/connect4": attach("cgroup_sock_addr", "cgroup_inet4_connect"),
  "cgroup/connect6": attach("cgroup_sock_addr", "cgroup_inet6_connect"),
  "cgroup/sendmsg4": attach("cgroup_sock_addr", "cgroup_udp4_sendmsg"),
  "cgroup/sendmsg6": attach("cgroup_sock_addr", "cgroup_udp6_sendmsg"),
  "cgroup/dev": attach("cgroup_device", "cgroup_device"),
  "cgroup/sysctl": attach("cgroup_sysctl", "cgroup_sysctl"),
  "cgroup/getsockopt": attach("cgroup_sockopt", "cgroup_getsockopt"),
  "cgroup/setsockopt": attach("cgroup_sockopt", "cgroup_setsockopt"),
  sockops: attach("sock_ops", "cgroup_sock_ops"),
  sk_msg: attach("sk_msg", "sk_msg_verdict"),
  sk_reuseport: attach("sk_reuseport", "sk_reuseport_select"),
  "sk_reuseport/migrate": attach(
    "sk_reuseport",
    "sk_reuseport_select_or_migrate",
  ),
  sk_lookup: attach("sk_lookup", "sk_lookup"),
  syscall: ["syscall"],
  kprobe: ["kprobe"],
  tp: ["tracepoint"],
  raw_tp: ["raw_tracepoint"],
  "raw_tp.w": ["raw_tracepoint_writable"],
  perf_event: ["perf_event"],
  "tp_btf/sched_switch": tpBtf("sched_switch"),
  "tp_btf/sys_enter": tpBtf("sys_enter"),
};

/** sockptr.c families: the pointer type dereferenced and the register holding it. */
const SOCK_FAMILIES: Record<string, [SockPtrType, number]> = {
  skc: ["PTR_TO_SOCK_COMMON", 1],
  sk: ["PTR_TO_SOCKET", 0],
  tcp: ["PTR_TO_TCP_SOCK", 0],
  xsk: ["PTR_TO_XDP_SOCK", 0],
};

interface Fact {
  program: string;
  section: string;
  family: string;
  access: "read" | "write";
  isLdsx: boolean;
  size: number;
  off: number;
  accepted: boolean;
  message: string;
  /** the fixture comment after `accept: ` / `reject: ` */
  note: string;
}

/** The names the fixture macros give their programs, from one source line. */
const ACCESS_LINE =
  /^(LD|ST|LDSX32|SKC_LD|SKC_ST|SK_LD|SK_ST|TCP_LD|FK_LD|FK_ST|XSK_LD|XSK_ST)\((?:(\w+), "[^"]*", )?(?:([us]\d+), )?(\d+)\) \/\/ (accept|reject)(?:: (.*))?$/;

function fixtureComments(file: string): Map<string, [string, string]> {
  const notes = new Map<string, [string, string]>();
  for (
    const line of Deno.readTextFileSync(new URL(`${file}.c`, FIXTURES)).split(
      "\n",
    )
  ) {
    const m = ACCESS_LINE.exec(line);
    if (!m) continue;
    const [, macro, fam, type, off, verdict, note = ""] = m;
    const family = fam ?? macro.split("_")[0].toLowerCase();
    const op = macro === "LDSX32" ? "x" : macro.endsWith("ST") ? "w" : "r";
    notes.set(`${family}_${op}_${type ?? "s32"}_${off}`, [verdict, note]);
  }
  return notes;
}

function loadFacts(): Fact[] {
  const facts: Fact[] = [];
  for (const file of FILES) {
    const notes = fixtureComments(file);
    const text = Deno.readTextFileSync(
      new URL(`${file}.oracle.json`, FIXTURES),
    );
    for (const line of text.split("\n").filter((l) => l.trim() !== "")) {
      const r = JSON.parse(line);
      const m = /^([a-z0-9]+)_([rwx])_[us](\d+)_(\d+)$/.exec(r.program);
      const note = notes.get(r.program);
      if (!m || !note) {
        throw new Error(`${file}: no fixture line for ${r.program}`);
      }
      // the comment was written from this verdict: the two files must agree
      assert.equal(note[0], r.verdict, r.program);
      facts.push({
        program: r.program,
        section: r.section,
        family: m[1],
        access: m[2] === "w" ? "write" : "read",
        isLdsx: m[2] === "x",
        size: Number(m[3]) / 8,
        off: Number(m[4]),
        accepted: r.verdict === "accept",
        message: r.message,
        note: note[1],
      });
    }
  }
  return facts;
}

/** What the model says about a fact, and the line the verifier would print on refusal. */
function model(
  f: Fact,
): { result: CtxAccessResult; message: string; progType: string } {
  const sock = SOCK_FAMILIES[f.family];
  if (sock) {
    return {
      result: ctx.sockPtrAccess(sock[0], f.off, f.size, f.access),
      message: ctx.sockAccessMessage(sock[1], sock[0], f.off, f.size, f.access),
      progType: sock[0],
    };
  }
  if (f.family === "fk") {
    const ok = ctx.flowKeysAccessOk(f.off, f.size);
    return {
      result: ok
        ? { ok, regType: "SCALAR_VALUE", ctxFieldSize: 0, narrowAllowed: false }
        : { ok },
      message: ctx.flowKeysAccessMessage(f.off, f.size),
      progType: "PTR_TO_FLOW_KEYS",
    };
  }
  const entry = SECTIONS[f.section] ?? SECTIONS[f.section.split("/")[0]];
  if (!entry) throw new Error(`section ${f.section} has no mapping`);
  const [progType, opts = {}] = entry;
  return {
    result: ctx.ctxAccess(progType, f.off, f.size, f.access, {
      ...opts,
      isLdsx: f.isLdsx,
    }),
    message: ctx.invalidCtxAccessMessage(f.off, f.size),
    progType,
  };
}

Deno.test("the model agrees with the kernel on every fixture fact", async (t) => {
  const facts = loadFacts();
  assert.ok(facts.length >= 400, `only ${facts.length} facts recorded`);
  for (const f of facts) {
    await t.step(`${f.program} (${f.section})`, () => {
      const { result, message } = model(f);
      assert.equal(result.ok, f.accepted);
      if (result.ok) {
        // loads state their pointer type in the fixture; stores and scalars say nothing
        assert.equal(result.regType, f.note || "SCALAR_VALUE");
      } else {
        assert.equal(f.message, message);
        const btfLines = f.note.includes(" / ") ? [f.note.split(" / ")[0]] : [];
        assert.deepEqual(result.log ?? [], btfLines);
      }
    });
  }
});

Deno.test("the fixtures give every modelled type both verdicts", () => {
  const byType = new Map<string, Set<boolean>>();
  for (const f of loadFacts()) {
    const p = model(f).progType;
    byType.set(p, (byType.get(p) ?? new Set()).add(f.accepted));
  }
  // netfilter and the BTF trampolines cannot be loaded on the oracle
  // machine, nor lirc_mode2 (no CONFIG_RC_CORE): hooks_test.ts checks its
  // one-field rule (lirc_mode2_is_valid_access())
  const unverifiable = ["netfilter", "lsm", "lirc_mode2"];
  for (
    const p of ctx.CTX_ACCESS_PROG_TYPES.filter((p) =>
      !unverifiable.includes(p)
    )
  ) {
    assert.ok(byType.has(p), `no fixture for ${p}`);
  }
  // the siblings share their rule with a family that has both verdicts
  const siblings = ["sched_act", "lwt_out", "lwt_xmit", "lwt_seg6local"];
  for (const [p, verdicts] of byType) {
    if (!siblings.includes(p)) assert.equal(verdicts.size, 2, p);
  }
});

function hasGcc(): boolean {
  try {
    const cmd = new Deno.Command("gcc", {
      args: ["--version"],
      stdout: "null",
      stderr: "null",
    });
    return cmd.outputSync().success;
  } catch {
    return false;
  }
}

Deno.test({
  name: "hard-coded layouts match the machine's linux/bpf.h (gcc offsetof)",
  ignore: !hasGcc(),
  fn: () => {
    // [C struct, our offsets, our sizeof (undefined: newer than the header)]
    const layouts: [
      string,
      Readonly<Record<string, number>>,
      number | undefined,
    ][] = [
      ["__sk_buff", ctx.SK_BUFF_OFFSETS, ctx.SK_BUFF_SIZE],
      ["xdp_md", ctx.XDP_MD_OFFSETS, ctx.XDP_MD_SIZE],
      [
        "bpf_perf_event_data",
        ctx.PERF_EVENT_DATA_OFFSETS,
        ctx.PERF_EVENT_DATA_SIZE,
      ],
      ["bpf_sock", ctx.BPF_SOCK_OFFSETS, ctx.BPF_SOCK_SIZE],
      ["bpf_sock_addr", ctx.BPF_SOCK_ADDR_OFFSETS, ctx.BPF_SOCK_ADDR_SIZE],
      ["bpf_sock_ops", ctx.BPF_SOCK_OPS_OFFSETS, undefined],
      ["sk_msg_md", ctx.SK_MSG_MD_OFFSETS, ctx.SK_MSG_MD_SIZE],
      [
        "bpf_cgroup_dev_ctx",
        ctx.CGROUP_DEV_CTX_OFFSETS,
        ctx.CGROUP_DEV_CTX_SIZE,
      ],
      ["bpf_sysctl", ctx.BPF_SYSCTL_OFFSETS, ctx.BPF_SYSCTL_SIZE],
      ["bpf_sockopt", ctx.BPF_SOCKOPT_OFFSETS, ctx.BPF_SOCKOPT_SIZE],
      [
        "sk_reuseport_md",
        ctx.SK_REUSEPORT_MD_OFFSETS,
        ctx.SK_REUSEPORT_MD_SIZE,
      ],
      ["bpf_sk_lookup", ctx.BPF_SK_LOOKUP_OFFSETS, ctx.BPF_SK_LOOKUP_SIZE],
      ["bpf_tcp_sock", { bytes_received: 80, bytes_acked: 88 }, undefined],
      ["bpf_flow_keys", {}, ctx.BPF_FLOW_KEYS_SIZE],
    ];
    const lines = [
      "#include <stdio.h>",
      "#include <stddef.h>",
      "#include <linux/bpf.h>",
    ];
    lines.push("#include <linux/bpf_perf_event.h>", "int main(void) {");
    const ours: Record<string, number> = {};
    const emit = (key: string, expr: string, value: number) => {
      lines.push(`  printf("%s %zu\\n", "${key}", (size_t)(${expr}));`);
      ours[key] = value;
    };
    for (const [struct, offsets, size] of layouts) {
      for (const [f, v] of Object.entries(offsets)) {
        // skb_hwtstamp (6.2) is newer than Debian's header: it starts where that struct ends
        const expr = f === "skb_hwtstamp"
          ? `sizeof(struct ${struct})`
          : `offsetof(struct ${struct}, ${f})`;
        emit(`${struct}.${f}`, expr, v);
      }
      if (size !== undefined) {
        emit(`${struct}.sizeof`, `sizeof(struct ${struct})`, size);
      }
    }
    emit("tcp_sock.end", "offsetofend_tcp", ctx.BPF_TCP_SOCK_END);
    lines.push("  return 0;", "}");
    const dir = Deno.makeTempDirSync({ prefix: "ctx_layout" });
    try {
      const src = lines.join("\n").replace(
        "offsetofend_tcp",
        "offsetof(struct bpf_tcp_sock, icsk_retransmits) + 4",
      );
      Deno.writeTextFileSync(`${dir}/layout.c`, src);
      const cc = new Deno.Command("gcc", {
        args: [
          "-I/usr/include/x86_64-linux-gnu",
          "-o",
          `${dir}/layout`,
          `${dir}/layout.c`,
        ],
      }).outputSync();
      assert.ok(cc.success, new TextDecoder().decode(cc.stderr));
      const out = new TextDecoder().decode(
        new Deno.Command(`${dir}/layout`).outputSync().stdout,
      );
      const measured = Object.fromEntries(
        out.trim().split("\n").map((l) => l.split(" ")).map((
          [k, v],
        ) => [k, Number(v)]),
      );
      assert.deepEqual(ours, measured);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});

Deno.test("invariants over every modelled program type", async (t) => {
  for (const progType of ctx.CTX_ACCESS_PROG_TYPES) {
    await t.step(progType, () => {
      const limit = ctx.ctxSize(progType);
      assert.ok(limit > 0);
      const end = progType === "syscall" ? 512 : limit + 16; // the syscall buffer only near its start
      let allowed = 0;
      for (let off = 0; off < end; off++) {
        for (const size of [1, 2, 4, 8]) {
          for (const access of ["read", "write"] as const) {
            const r = ctx.ctxAccess(progType, off, size, access);
            if (!r.ok) continue;
            allowed++;
            // natural alignment, inside the context, stores never yield pointers,
            // narrow loads only of a wider recorded field
            assert.equal(
              off % size,
              0,
              `${progType} ${access} off=${off} size=${size}`,
            );
            assert.ok(
              off + size <= limit,
              `${progType} off=${off} size=${size}`,
            );
            if (access === "write") assert.equal(r.regType, "SCALAR_VALUE");
            if (r.narrowAllowed) assert.ok(size <= r.ctxFieldSize);
          }
        }
      }
      assert.ok(allowed > 0);
    });
  }
  // struct_ops: no rule without a modelled struct (tests/verifier/struct_ops_test.ts)
  assert.equal(ctx.ctxAccess("struct_ops", 0, 8, "read").ok, false);
  assert.equal(ctx.ctxSize("struct_ops"), 96);
});

Deno.test("narrow loads record the field size bpf_ctx_narrow_access_ok() checked", () => {
  assert.deepEqual(
    [[0, 1, 4], [0, 4, 4], [0, 8, 4], [0, 3, 4]].map(([o, s, d]) =>
      ctx.narrowAccessOk(o, s, d)
    ),
    [true, true, false, false],
  );
  const len = ctx.ctxAccess("sched_cls", 1, 1, "read"); // __sk_buff->len as a byte
  assert.deepEqual(len, {
    ok: true,
    regType: "SCALAR_VALUE",
    ctxFieldSize: 4,
    narrowAllowed: true,
  });
  const cb = ctx.ctxAccess("sched_cls", 48, 8, "read"); // cb[] is scratch: nothing recorded
  assert.ok(cb.ok && cb.ctxFieldSize === 0 && !cb.narrowAllowed);
  const sp = ctx.ctxAccess("perf_event", 170, 2, "read"); // sample_period (u64) as u16
  assert.ok(sp.ok && sp.ctxFieldSize === 8 && sp.narrowAllowed);
  const ip6 = ctx.ctxAccess("cgroup_sock_addr", 8, 8, "read", {
    expectedAttachType: "cgroup_inet6_connect",
  });
  assert.ok(ip6.ok && ip6.ctxFieldSize === 4 && !ip6.narrowAllowed); // a wide load, not a narrow one
});

Deno.test("options the oracle cannot exercise (hand-traced from the kernel source)", () => {
  const fexit = { expectedAttachType: "trace_fexit", attachFuncName: "f" };
  const twoArgs: BtfCtxArg[] = [{ kind: "int" }, { kind: "ptr" }];
  const lsm = (args: BtfCtxArg[]): CtxAccessOptions => ({
    expectedAttachType: "lsm_mac",
    btfCtxArgs: args,
    btfCtxRet: { kind: "int" },
  });
  // [progType, off, size, access, options, expected answer (fields compared)]
  const cases: [
    string,
    number,
    number,
    "read" | "write",
    CtxAccessOptions,
    Partial<ctx.CtxAccessAllowed> | ctx.CtxAccessDenied,
  ][] = [
    // cgroup_skb without bpf_capable(): no packet pointers, no tstamp stores
    ["cgroup_skb", 76, 4, "read", { bpfCapable: false }, { ok: false }],
    ["cgroup_skb", 152, 8, "write", { bpfCapable: false }, { ok: false }],
    ["cgroup_skb", 8, 4, "write", { bpfCapable: false }, { ok: true }],
    // a device-bound XDP program may store rx_queue_index, nothing else
    ["xdp", 16, 4, "write", { devBound: true }, { ok: true }],
    ["xdp", 12, 4, "write", { devBound: true }, { ok: false }],
    // no prototype: five scalar slots, plus the return slot for fexit
    ["tracing", 32, 8, "read", { expectedAttachType: "trace_fentry" }, {
      ok: true,
    }],
    ["tracing", 40, 8, "read", { expectedAttachType: "trace_fentry" }, {
      ok: false,
      log: ["func '' doesn't have 6-th argument"],
    }],
    ["tracing", 40, 8, "read", { expectedAttachType: "trace_fexit" }, {
      ok: true,
    }],
    ["tracing", 40, 8, "read", { expectedAttachType: "modify_return" }, {
      ok: false,
    }],
    // (int, void *) -> int: the return follows the args; void returns have no slot
    ["tracing", 16, 8, "read", {
      ...fexit,
      btfCtxArgs: twoArgs,
      btfCtxRet: { kind: "int" },
    }, {
      ok: true,
    }],
    ["tracing", 24, 8, "read", {
      ...fexit,
      btfCtxArgs: twoArgs,
      btfCtxRet: { kind: "int" },
    }, {
      ok: false,
      log: ["func 'f' doesn't have 4-th argument"],
    }],
    ["tracing", 16, 8, "read", { ...fexit, btfCtxArgs: twoArgs }, {
      ok: false,
      log: ["func 'f' doesn't have 4-th argument"],
    }],
    ["tracing", 16, 8, "read", {
      ...fexit,
      expectedAttachType: "modify_return",
      btfCtxArgs: twoArgs,
      btfCtxRet: { kind: "ptr" },
    }, { ok: false, log: ["ret type PTR not allowed for fmod_ret"] }],
    // void * is a scalar but still loaded whole; a float is neither scalar nor pointer
    ["tracing", 8, 8, "read", { ...fexit, btfCtxArgs: twoArgs }, {
      ok: true,
      regType: "SCALAR_VALUE",
    }],
    ["tracing", 8, 4, "read", { ...fexit, btfCtxArgs: twoArgs }, {
      ok: false,
      log: ["func 'f' size 4 must be 8"],
    }],
    ["tracing", 0, 8, "read", {
      ...fexit,
      btfCtxArgs: [{ kind: "other", typeName: "double" }],
    }, {
      ok: false,
      log: [
        "func 'f' arg0 'double' has type FLOAT. Only pointer access is allowed",
      ],
    }],
    // a 16-byte struct by value takes two slots (btf_ctx_arg_idx)
    ["tracing", 8, 8, "read", {
      btfCtxArgs: [{ kind: "struct", size: 16 }, structPtr("sock")],
    }, {
      ok: true,
      regType: "SCALAR_VALUE",
    }],
    ["tracing", 16, 8, "read", {
      btfCtxArgs: [{ kind: "struct", size: 16 }, structPtr("sock")],
    }, {
      ok: true,
      regType: "PTR_TO_BTF_ID",
      trusted: undefined,
    }],
    // tp_btf and LSM arguments are trusted; __nullable ones may be NULL; lsm_mac marks the retval
    ["tracing", 8, 8, "read", tpBtf("sched_switch")[1], {
      ok: true,
      trusted: true,
    }],
    ["lsm", 0, 8, "read", lsm([{ ...structPtr("file"), nullable: true }]), {
      ok: true,
      regType: "PTR_TO_BTF_ID_OR_NULL",
      trusted: true,
    }],
    ["lsm", 8, 8, "read", lsm([structPtr("file")]), {
      ok: true,
      isRetval: true,
    }],
    // freplace follows its target's rule; without a target nothing is allowed
    ["ext", 76, 4, "read", { targetProgType: "sched_cls" }, {
      ok: true,
      regType: "PTR_TO_PACKET",
    }],
    ["ext", 76, 4, "read", {}, { ok: false }],
  ];
  for (const [progType, off, size, access, opts, expected] of cases) {
    const got = ctx.ctxAccess(
      progType,
      off,
      size,
      access,
      opts,
    ) as unknown as Record<string, unknown>;
    for (const [k, v] of Object.entries(expected)) {
      assert.deepEqual(
        got[k],
        v,
        `${progType} off=${off} size=${size} ${access}: ${k}`,
      );
    }
  }
});
