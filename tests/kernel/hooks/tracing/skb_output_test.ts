/**
 * `bpf_skb_output` / `bpf_xdp_output` (lib/kernel/hooks/tracing/tracing_skb_output.ts)
 * over the simulated kernel packet objects (lib/kernel/hooks/tracing/sim_skb.ts), run by
 * the raw tracepoint runner (lib/kernel/hooks/tracing/raw_tp.ts) and the trampoline
 * (lib/kernel/hooks/tracing/trampoline.ts) on tests/fixtures/runtime/skb_output/skb_output.c.
 * The oracle cannot run tracing programs, so every result is computed by
 * hand from the kernel function named beside it; each program run is made
 * on both engines, as loaded and as rewritten by bpfsim's verifier.
 */
import assert from "node:assert/strict";
import { loadFixture, readOracle } from "../../../elf/fixtures.ts";
import { callHelper } from "../../helper_call.ts";
import { decodeRaw } from "../../../../lib/isa/decode.ts";
import type { Insn } from "../../../../lib/isa/insn.ts";
import type { ObjectFile } from "../../../../lib/elf/types.ts";
import { ExecError } from "../../../../lib/exec/fault.ts";
import type { Engine } from "../../../../lib/exec/jit/step_jit.ts";
import { Kernel } from "../../../../lib/kernel/kernel.ts";
import { loadObjectWithRuntime } from "../../../../lib/kernel/object_runtime.ts";
import type { LoadedObject } from "../../../../lib/kernel/object_loader.ts";
import { u32Key } from "../../../../lib/kernel/maps/map.ts";
import type { PerfSample } from "../../../../lib/kernel/generic_helpers_perf.ts";
import {
  KERNEL_SK_BUFF_LAYOUT,
  KERNEL_XDP_BUFF_LAYOUT,
  netObjects,
  SIM_SKB_HEADROOM,
} from "../../../../lib/kernel/hooks/tracing/sim_skb.ts";
import {
  perfReaderHelpers,
  runRawTracepointProgram,
} from "../../../../lib/kernel/hooks/tracing/raw_tp.ts";
import { runTracingProgram } from "../../../../lib/kernel/hooks/tracing/trampoline.ts";
import { TestRunError } from "../../../../lib/kernel/test_run.ts";
import { verifyProgram } from "../../../../lib/verifier/verify.ts";

const FIXTURE = "runtime/skb_output/skb_output.o";
const ENGINES: readonly Engine[] = ["interp", "jit"];
const ENOENT = -2n, E2BIG = -7n, EFAULT = -14n, EINVAL = -22n;
const EOPNOTSUPP = -95n;
const CURRENT_CPU = 0xffffffffn;
const ctxLen = (n: number): bigint => BigInt(n) << 32n;
/** The program's `meta`: bytes 0x00 … 0x0f. */
const META = Uint8Array.from({ length: 16 }, (_, i) => i);
/** The packet of every skb / xdp_buff here: 0x40 … 0x53. */
const PACKET = Uint8Array.from({ length: 20 }, (_, i) => 0x40 + i);
const LOCATION = 0xffffffff81abcdefn; // kfree_skb's `void *location`

type Mode = "loaded" | "rewritten";

function xlatedOf(obj: ObjectFile, name: string): readonly Insn[] {
  const prog = obj.programs.find((p) => p.name === name)!;
  const v = verifyProgram(obj, prog, { logLevel: 0 });
  assert.equal(v.verdict, "accept", `${name}: ${v.message}`);
  return decodeRaw(v.xlated!);
}

/** A fresh two-CPU kernel with the object and one skb and xdp_buff of {@link PACKET}. */
function setup() {
  const obj = loadFixture(FIXTURE);
  const kernel = new Kernel({ cpus: 2 });
  const loaded = loadObjectWithRuntime(kernel, obj, { verify: false });
  const objects = netObjects(kernel);
  return {
    obj,
    loaded,
    objects,
    skb: objects.createSkb(PACKET),
    xdp: objects.createXdpBuff(PACKET),
  };
}

/** The .bss: `flags` (u64 @0), `meta_len` (u32 @8), `ret` (s64 @16). */
function bss(loaded: LoadedObject): bigint {
  const m = loaded.maps.find((m) => m.name.endsWith(".bss"))!;
  return m.map!.lookup(u32Key(0), 0)!;
}

function configure(loaded: LoadedObject, flags: bigint, metaLen: number) {
  const at = bss(loaded);
  loaded.kernel.space.write(at, 8, flags);
  loaded.kernel.space.write(at + 8n, 4, BigInt(metaLen));
}

function retOf(loaded: LoadedObject): bigint {
  return BigInt.asIntN(64, loaded.kernel.space.read(bss(loaded) + 16n, 8));
}

const concat = (a: Uint8Array, b: Uint8Array): number[] => [...a, ...b];
const records = (out: readonly PerfSample[]) =>
  out.map((s) => ({ map: s.map, cpu: s.cpu, data: [...s.data] }));

interface Case {
  readonly flags: bigint;
  readonly metaLen: number;
  readonly cpu?: number;
  readonly readers?: boolean;
}

/** Runs tp_btf program `name` (kfree_skb / consume_skb args) once per engine × mode. */
function eachTpRun(
  name: string,
  c: Case,
  check: (label: string, ret: bigint, out: PerfSample[]) => void,
): void {
  for (const engine of ENGINES) {
    for (const mode of ["loaded", "rewritten"] as Mode[]) {
      const { obj, loaded, skb } = setup();
      configure(loaded, c.flags, c.metaLen);
      const out: PerfSample[] = [];
      const args = name === "consume_out"
        ? [skb.address, LOCATION]
        : [skb.address, LOCATION, 2n, 0n];
      runRawTracepointProgram(loaded, name, {
        args,
        cpu: c.cpu ?? 1,
        engine,
        rewritten: mode === "rewritten" ? xlatedOf(obj, name) : undefined,
        perfOutput: c.readers === false ? undefined : out,
      });
      check(`${name} ${engine}, ${mode}`, retOf(loaded), out);
    }
  }
}

Deno.test("bpfsim's verdicts on skb_output.c are the kernel's (xdp_out: no fentry on the oracle)", () => {
  const obj = loadFixture(FIXTURE);
  for (const o of readOracle(FIXTURE)) {
    const prog = obj.programs.find((p) => p.name === o.program)!;
    const r = verifyProgram(obj, prog, { logLevel: 0 });
    if (o.program === "xdp_out") {
      // EPERM before verification on the oracle; bpfsim judges the program
      assert.equal(
        o.message,
        "load failed before verification: Operation not permitted",
      );
      assert.equal(r.verdict, "accept", r.message);
      continue;
    }
    assert.equal(r.verdict, o.verdict, `${o.program}: ${r.message}`);
    assert.equal(r.message, o.message, o.program!);
  }
});

Deno.test("sim_skb: the sk_buff and xdp_buff are laid out at the 6.18 offsets over a linear packet", () => {
  const { loaded, skb, xdp } = setup();
  const space = loaded.kernel.space;
  const S = KERNEL_SK_BUFF_LAYOUT, X = KERNEL_XDP_BUFF_LAYOUT;
  assert.equal(space.read(skb.address + BigInt(S.len), 4), 20n);
  assert.equal(space.read(skb.address + BigInt(S.data_len), 4), 0n);
  const data = space.read(skb.address + BigInt(S.data), 8);
  assert.equal(data, space.read(skb.address + BigInt(S.head), 8) + 64n);
  assert.equal(SIM_SKB_HEADROOM, 64);
  assert.deepEqual([...space.readBytes(data, 20)], [...PACKET]);
  const xd = space.read(xdp.address + BigInt(X.data), 8);
  assert.equal(space.read(xdp.address + BigInt(X.data_end), 8), xd + 20n);
  assert.equal(space.read(xdp.address + BigInt(X.data_meta), 8), xd);
  assert.equal(
    space.read(xdp.address + BigInt(X.data_hard_start), 8),
    xd - 256n, // XDP_PACKET_HEADROOM
  );
  assert.deepEqual([...space.readBytes(xd, 20)], [...PACKET]);
  // kernel objects: a program cannot write them
  assert.throws(() => space.write(skb.address + BigInt(S.len), 4, 1n));
});

Deno.test("bpf_skb_output: the record is the data, then (flags >> 32) bytes of the packet", () => {
  // bpf_skb_event_output(): skb_size 20 = skb->len is allowed; bpf_skb_copy()
  // copies it from offset 0 after the 15 bytes of meta
  eachTpRun(
    "skb_out",
    { flags: CURRENT_CPU | ctxLen(20), metaLen: 15 },
    (label, ret, out) => {
      assert.equal(ret, 0n, label);
      assert.deepEqual(records(out), [
        { map: "events", cpu: 1, data: concat(META.subarray(0, 15), PACKET) },
      ], label);
    },
  );
  // ctx length 0: no frag (raw.frag.next = NULL), the data alone
  eachTpRun(
    "skb_out",
    { flags: CURRENT_CPU, metaLen: 8 },
    (label, ret, out) => {
      assert.equal(ret, 0n, label);
      assert.deepEqual(records(out), [
        { map: "events", cpu: 1, data: [...META.subarray(0, 8)] },
      ], label);
    },
  );
  // meta_size 0 (ARG_CONST_SIZE_OR_ZERO) and 3 packet bytes
  eachTpRun(
    "skb_out",
    { flags: CURRENT_CPU | ctxLen(3), metaLen: 0 },
    (label, ret, out) => {
      assert.equal(ret, 0n, label);
      assert.deepEqual(
        records(out).map((r) => r.data),
        [[0x40, 0x41, 0x42]],
        label,
      );
    },
  );
  // consume_skb: 8 bytes of meta and the 14-byte Ethernet header
  eachTpRun(
    "consume_out",
    { flags: 0n, metaLen: 0, cpu: 0 },
    (label, ret, out) => {
      assert.equal(ret, 0n, label);
      assert.deepEqual(records(out), [
        {
          map: "events",
          cpu: 0,
          data: concat(META.subarray(0, 8), PACKET.subarray(0, 14)),
        },
      ], label);
    },
  );
});

Deno.test("bpf_skb_output: -EFAULT past skb->len, -EINVAL for flags beyond BPF_F_CTXLEN_MASK | BPF_F_INDEX_MASK, checked first", () => {
  const cases: [bigint, bigint][] = [
    // skb_size 21 > skb->len 20
    [CURRENT_CPU | ctxLen(21), EFAULT],
    // the largest length the mask holds
    [CURRENT_CPU | (0xfffffn << 32n), EFAULT],
    // bit 52 is beyond BPF_F_CTXLEN_MASK: -EINVAL before the length check
    [CURRENT_CPU | (1n << 52n) | ctxLen(21), EINVAL],
    [1n << 63n, EINVAL],
  ];
  for (const [flags, want] of cases) {
    eachTpRun("skb_out", { flags, metaLen: 8 }, (label, ret, out) => {
      assert.equal(ret, want, `${label} flags 0x${flags.toString(16)}`);
      assert.deepEqual(out, [], label);
    });
  }
});

Deno.test("bpf_skb_output: BPF_F_CURRENT_CPU or an index; -EOPNOTSUPP off the slot's CPU, -E2BIG past the array, -ENOENT with no reader", () => {
  // __bpf_perf_event_output(): index 1 on CPU 1 is that CPU's reader
  eachTpRun(
    "skb_out",
    { flags: 1n | ctxLen(4), metaLen: 2 },
    (label, ret, out) => {
      assert.equal(ret, 0n, label);
      assert.deepEqual(records(out), [
        { map: "events", cpu: 1, data: [0, 1, 0x40, 0x41, 0x42, 0x43] },
      ], label);
    },
  );
  // index 0 from CPU 1: event->oncpu != cpu
  eachTpRun("skb_out", { flags: 0n, metaLen: 2 }, (label, ret, out) => {
    assert.equal(ret, EOPNOTSUPP, label);
    assert.deepEqual(out, [], label);
  });
  // max_entries 0: libbpf sizes the array to the 2 CPUs
  eachTpRun("skb_out", { flags: 2n, metaLen: 2 }, (label, ret) => {
    assert.equal(ret, E2BIG, label);
  });
  // nobody opened the events: an empty slot
  eachTpRun("skb_out", {
    flags: CURRENT_CPU | ctxLen(4),
    metaLen: 2,
    readers: false,
  }, (label, ret) => {
    assert.equal(ret, ENOENT, label);
  });
});

Deno.test("bpf_perf_event_output of a tp_btf program writes to the same readers; it takes no packet length", () => {
  eachTpRun(
    "perf_out",
    { flags: CURRENT_CPU, metaLen: 4 },
    (label, ret, out) => {
      assert.equal(ret, 0n, label);
      assert.deepEqual(records(out), [
        { map: "events", cpu: 1, data: [0, 1, 2, 3] },
      ], label);
    },
  );
  // ____bpf_perf_event_output(): any bit beyond BPF_F_INDEX_MASK is -EINVAL
  eachTpRun(
    "perf_out",
    { flags: CURRENT_CPU | ctxLen(4), metaLen: 4 },
    (label, ret) => {
      assert.equal(ret, EINVAL, label);
    },
  );
});

Deno.test("bpf_xdp_output from fentry/xdp_do_redirect: -EFAULT past xdp_get_buff_len(), -EINVAL, -ENOENT with no reader", () => {
  const DEV = 0xffff888000003000n, PROG = 0xffffc90000004000n;
  const cases: [bigint, bigint][] = [
    [CURRENT_CPU | ctxLen(21), EFAULT], // data_end - data is 20
    [CURRENT_CPU | (1n << 60n), EINVAL],
    [CURRENT_CPU | ctxLen(20), ENOENT], // trampoline runs have no readers
    [5n, E2BIG],
  ];
  for (const [flags, want] of cases) {
    for (const engine of ENGINES) {
      for (const mode of ["loaded", "rewritten"] as Mode[]) {
        const { obj, loaded, xdp } = setup();
        configure(loaded, flags, 8);
        runTracingProgram(loaded, "xdp_out", {
          args: [DEV, xdp.address, PROG],
          engine,
          rewritten: mode === "rewritten"
            ? xlatedOf(obj, "xdp_out")
            : undefined,
        });
        assert.equal(
          retOf(loaded),
          want,
          `${engine}, ${mode}, 0x${flags.toString(16)}`,
        );
      }
    }
  }
});

Deno.test("bpf_xdp_output / bpf_skb_output called directly: records, a NULL object, a freed one", () => {
  const { loaded, objects, skb, xdp } = setup();
  const space = loaded.kernel.space;
  const out: PerfSample[] = [];
  const helpers = perfReaderHelpers(loaded, out);
  const events = loaded.maps.find((m) => m.name === "events")!.address;
  const meta = space.mapRegion("kernel", META.slice(0, 5), { name: "meta" });
  const env = {
    mem: space,
    now: () => 0,
    owner: { cpu: loaded.kernel.cpus[0] },
  };
  // bpf_xdp_event_output() → bpf_xdp_copy(): 20 bytes from xdp->data
  assert.equal(
    callHelper(helpers, 121, [
      xdp.address,
      events,
      CURRENT_CPU | ctxLen(20),
      meta,
      5n,
    ], env),
    0n,
  );
  assert.deepEqual(records(out), [
    { map: "events", cpu: 0, data: concat(META.subarray(0, 5), PACKET) },
  ]);
  // `!xdp ||` / `!skb ||`: a NULL object is -EFAULT (only unverified code passes one)
  assert.equal(
    callHelper(helpers, 121, [0n, events, 0n, meta, 5n], env),
    EFAULT,
  );
  assert.equal(
    callHelper(helpers, 111, [0n, events, 0n, meta, 5n], env),
    EFAULT,
  );
  // an skb is not an xdp_buff, nor is a freed skb anything
  assert.throws(
    () => callHelper(helpers, 121, [skb.address, events, 0n, meta, 5n], env),
    (e: unknown) => e instanceof ExecError && /not an xdp_buff/.test(e.message),
  );
  objects.free(skb);
  assert.throws(
    () => callHelper(helpers, 111, [skb.address, events, 0n, meta, 5n], env),
    (e: unknown) => e instanceof ExecError && /not an sk_buff/.test(e.message),
  );
  assert.equal(out.length, 1);
});

Deno.test("runRawTracepointProgram: the tracepoint's argument count; tp_btf and raw_tp only", () => {
  const { loaded, skb } = setup();
  const refuses = (fn: () => unknown, errno: number, re: RegExp) =>
    assert.throws(
      fn,
      (e: unknown) =>
        e instanceof TestRunError && e.errno === errno && re.test(e.message),
    );
  // TP_PROTO(skb, location, reason, rx_sk): four
  refuses(
    () => runRawTracepointProgram(loaded, "skb_out", { args: [skb.address] }),
    22,
    /takes 4 arguments, 1 given/,
  );
  refuses(
    () => runRawTracepointProgram(loaded, "xdp_out", { args: [0n, 0n, 0n] }),
    524,
    /not a raw tracepoint program/,
  );
  // the arguments array is the ctx: a NULL skb reaches the helper only
  // unverified, and bpf_skb_event_output() answers -EFAULT
  configure(loaded, CURRENT_CPU, 8);
  runRawTracepointProgram(loaded, "skb_out", { args: [0n, LOCATION, 2n, 0n] });
  assert.equal(retOf(loaded), EFAULT);
});
