/**
 * The generic helpers (lib/kernel/generic_helpers*.ts) called directly on
 * a loaded object's kernel, with hand-computed expectations from the
 * kernel functions they mirror; and one run through BPF_PROG_TEST_RUN to
 * check the wiring into every program's helper table.
 */
import { callHelper } from "./helper_call.ts";
import assert from "node:assert/strict";
import { loadObject } from "../../lib/elf/object.ts";
import { ExecError } from "../../lib/exec/fault.ts";
import { genericHelpers } from "../../lib/kernel/generic_helpers.ts";
import { Kernel } from "../../lib/kernel/kernel.ts";
import type { MapHelperLog } from "../../lib/kernel/map_helpers.ts";
import type { LoadedObject } from "../../lib/kernel/object_loader.ts";
import { loadObjectWithRuntime } from "../../lib/kernel/object_runtime.ts";
import { testRun } from "../../lib/kernel/test_run.ts";

const FIXTURES = new URL("../fixtures/runtime/generic/", import.meta.url);

function load(name: string): LoadedObject {
  const bytes = Deno.readFileSync(new URL(name, FIXTURES));
  return loadObjectWithRuntime(
    new Kernel({ cpus: 2 }),
    loadObject(bytes, name),
  );
}

/** The helpers of `stack.o` (it has a perf event array), calls on CPU `cpu`. */
function setup(log: MapHelperLog = { printk: [] }) {
  const loaded = load("stack.o");
  const helpers = genericHelpers({ loaded, log });
  const mem = loaded.kernel.space;
  let now = 0;
  const call = (id: number, args: bigint[] = [], cpu = 0): bigint =>
    callHelper(helpers, id, args, {
      mem,
      now: () => now,
      owner: { cpu: loaded.kernel.cpus[cpu], level: 0 },
    });
  const region = (bytes: number | Uint8Array) => mem.mapRegion("mem", bytes);
  const bytesAt = (a: bigint, n: number) => [...mem.readBytes(a, n)];
  const cstr = (s: string) => new TextEncoder().encode(s + "\0");
  return {
    loaded,
    log,
    call,
    region,
    bytesAt,
    cstr,
    mem,
    setNow: (ns: number) => (now = ns),
  };
}

const EINVAL = -22n, EFAULT = -14n, ERANGE = -34n, ENOSPC = -28n;

Deno.test("clocks: boot = monotonic, coarse = last 4 ms tick, TAI = +37 s, jiffies from INITIAL_JIFFIES at HZ 250", () => {
  const s = setup();
  s.setNow(10_123_456_789);
  assert.equal(s.call(125), 10_123_456_789n);
  assert.equal(s.call(160), 10_120_000_000n);
  assert.equal(s.call(208), 47_123_456_789n);
  // 2^32 - 300 * 250 + 10.12 s * 250
  assert.equal(s.call(118), 4294892296n + 2530n);
  assert.equal(s.call(42), 0n);
});

Deno.test("current task: pid/tgid per CPU, root uid/gid, comm padded, root cgroup", () => {
  const s = setup();
  assert.equal(s.call(14, [], 1), (1001n << 32n) | 1001n);
  assert.equal(s.call(14, [], 0), (1000n << 32n) | 1000n);
  assert.equal(s.call(15), 0n);
  const buf = s.region(10);
  s.mem.writeBytes(buf, new Uint8Array(10).fill(0x55));
  assert.equal(s.call(16, [buf, 4n]), 0n);
  assert.deepEqual(s.bytesAt(buf, 5), [98, 112, 102, 0, 0x55]); // "bpf\0"
  assert.equal(s.call(16, [buf, 10n]), 0n);
  assert.deepEqual(s.bytesAt(buf, 10), [
    98,
    112,
    102,
    115,
    105,
    109,
    0,
    0,
    0,
    0,
  ]);
  assert.equal(s.call(80), 1n);
  assert.equal(s.call(123, [0n]), 1n);
  assert.equal(s.call(123, [1n]), 0n);
  assert.equal(s.call(123, [0xffffffffn]), 0n); // level -1
  assert.equal(s.call(17), 0n);
  assert.equal(s.call(173), 0n);
  assert.equal(s.call(174), 0n);
});

Deno.test("current task: one fake task_struct per CPU, zero-filled and read-only", () => {
  const s = setup();
  const t0 = s.call(35, [], 0), t1 = s.call(158, [], 1);
  assert.equal(BigInt.asUintN(64, s.call(158, [], 0)), BigInt.asUintN(64, t0));
  assert.notEqual(t0, t1);
  assert.equal(s.mem.read(BigInt.asUintN(64, t0) + 16376n, 8), 0n);
  assert.throws(() => s.mem.write(BigInt.asUintN(64, t1), 8, 1n));
});

Deno.test("send_signal: sig 0 checks only, > 64 is -EINVAL, others recorded", () => {
  const s = setup();
  assert.equal(s.call(109, [0n]), 0n);
  assert.equal(s.call(109, [65n]), EINVAL);
  assert.equal(s.call(117, [0x1_0000_0009n]), 0n); // the sig is a u32
  assert.equal(s.call(109, [10n], 1), 0n);
  assert.deepEqual(s.log.signals, [
    { cpu: 0, pid: 1000, sig: 9, target: "thread" },
    { cpu: 1, pid: 1001, sig: 10, target: "process" },
  ]);
});

Deno.test("probe_read_kernel / _user / compat: -ERANGE below kernel space, -EFAULT unmapped, dst zeroed", () => {
  const s = setup();
  const src = s.region(Uint8Array.from({ length: 16 }, (_, i) => i + 1));
  const dst = s.region(8);
  assert.equal(s.call(113, [dst, 8n, src + 4n]), 0n);
  assert.deepEqual(s.bytesAt(dst, 8), [5, 6, 7, 8, 9, 10, 11, 12]);
  // past the region's end: the whole copy fails and dst is zeroed
  assert.equal(s.call(113, [dst, 8n, src + 12n]), EFAULT);
  assert.deepEqual(s.bytesAt(dst, 8), [0, 0, 0, 0, 0, 0, 0, 0]);
  s.mem.writeBytes(dst, new Uint8Array(8).fill(9));
  assert.equal(s.call(113, [dst, 8n, 0n]), ERANGE);
  assert.deepEqual(s.bytesAt(dst, 8), [0, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(s.call(113, [dst, 8n, 0x0000_8000_0000_0000n]), ERANGE); // TASK_SIZE_MAX + PAGE_SIZE
  assert.equal(s.call(113, [dst, 8n, 0x0001_0000_0000_0000n]), ERANGE); // not canonical
  assert.equal(s.call(113, [dst, 0n, src]), 0n);
  // user reads: every region is kernel memory, no user page is mapped
  s.mem.writeBytes(dst, new Uint8Array(8).fill(9));
  assert.equal(s.call(112, [dst, 8n, src]), EFAULT);
  assert.deepEqual(s.bytesAt(dst, 8), [0, 0, 0, 0, 0, 0, 0, 0]);
  assert.equal(s.call(112, [dst, 8n, 0x1000n]), EFAULT);
  assert.equal(s.call(112, [dst, 0n, 0x1000n]), 0n);
  assert.equal(s.call(148, [dst, 8n, src]), EFAULT);
  // empty reads may pass NULL buffers: copy_from_user() of 0 bytes succeeds
  // anywhere, a kernel read still checks the address, a user one access_ok()
  assert.equal(s.call(148, [0n, 0n, src]), 0n);
  assert.equal(s.call(113, [0n, 0n, 0n]), ERANGE);
  assert.equal(s.call(112, [0n, 0n, src]), EFAULT);
  // bpf_probe_read: user below TASK_SIZE, kernel above
  assert.equal(s.call(4, [dst, 2n, src]), 0n);
  assert.deepEqual(s.bytesAt(dst, 2), [1, 2]);
  assert.equal(s.call(4, [dst, 2n, 0x1000n]), EFAULT);
  assert.equal(s.call(4, [dst, 2n, 0x7fff_ffff_f000n]), ERANGE); // kernel read of the guard page
});

Deno.test("probe_read_*_str: NUL-terminated copies, truncation keeps the terminator", () => {
  const s = setup();
  const src = s.region(s.cstr("hello"));
  const dst = s.region(10);
  assert.equal(s.call(115, [dst, 10n, src]), 6n);
  assert.deepEqual(s.bytesAt(dst, 6), [104, 101, 108, 108, 111, 0]);
  assert.equal(s.call(115, [dst, 4n, src]), 4n);
  assert.deepEqual(s.bytesAt(dst, 4), [104, 101, 108, 0]);
  assert.equal(s.call(115, [dst, 0n, src]), 0n);
  const unterminated = s.region(new TextEncoder().encode("abc"));
  s.mem.writeBytes(dst, new Uint8Array(10).fill(7));
  assert.equal(s.call(115, [dst, 10n, unterminated]), EFAULT);
  assert.deepEqual(s.bytesAt(dst, 10), new Array(10).fill(0));
  assert.equal(s.call(115, [dst, 10n, 0n]), ERANGE);
  assert.equal(s.call(114, [dst, 10n, src]), EFAULT);
  assert.equal(s.call(114, [dst, 0n, src]), 0n);
  assert.equal(s.call(45, [dst, 3n, src]), 3n);
  assert.equal(s.call(45, [dst, 3n, 0n]), EFAULT);
});

Deno.test("per_cpu_ptr / this_cpu_ptr: copy c at ptr + c × size / nr_cpus, NULL past nr_cpu_ids", () => {
  const s = setup();
  const obj = s.region(32); // 2 CPUs × 16 bytes
  assert.equal(s.call(153, [obj, 0n]), BigInt.asIntN(64, obj));
  assert.equal(s.call(153, [obj, 1n]), BigInt.asIntN(64, obj + 16n));
  assert.equal(s.call(153, [obj, 2n]), 0n);
  assert.equal(
    s.call(153, [obj, 0x1_0000_0001n]),
    BigInt.asIntN(64, obj + 16n),
  ); // cpu is a u32
  assert.equal(s.call(154, [obj], 1), BigInt.asIntN(64, obj + 16n));
  assert.equal(s.call(154, [obj], 0), BigInt.asIntN(64, obj));
  assert.throws(() => s.call(153, [s.region(15), 0n]), ExecError);
});

Deno.test("strtol / strtoul: __bpf_strtoull's parsing, errors and the 63-byte window", () => {
  const s = setup();
  const res = s.region(8);
  const parse = (id: number, text: string | Uint8Array, flags = 0n) => {
    const bytes = typeof text === "string"
      ? new TextEncoder().encode(text)
      : text;
    const buf = s.region(bytes);
    s.mem.write(res, 8, 0x5555n);
    const r = s.call(id, [buf, BigInt(bytes.length), flags, res]);
    return [r, BigInt.asIntN(64, s.mem.read(res, 8))];
  };
  assert.deepEqual(parse(105, "\t -42z"), [5n, -42n]);
  assert.deepEqual(parse(105, Uint8Array.of(0xa0, 0x31)), [2n, 1n]); // NBSP is a space
  assert.deepEqual(parse(105, "ff", 16n), [2n, 255n]);
  assert.deepEqual(parse(105, "0xff", 16n), [4n, 255n]);
  assert.deepEqual(parse(105, "0XfG", 0n), [3n, 15n]);
  assert.deepEqual(parse(105, "019", 0n), [2n, 1n]); // octal stops at 9
  assert.deepEqual(parse(105, "0x", 0n), [1n, 0n]);
  assert.deepEqual(parse(105, "0x", 16n), [EINVAL, 0n]);
  assert.deepEqual(parse(105, "  ", 0n), [EINVAL, 0n]);
  assert.deepEqual(parse(105, "-", 0n), [EINVAL, 0n]);
  assert.deepEqual(parse(105, "1", 2n), [EINVAL, 0n]);
  assert.deepEqual(parse(105, "1", 0x2an), [EINVAL, 0n]);
  assert.deepEqual(parse(105, "9223372036854775807"), [
    19n,
    9223372036854775807n,
  ]);
  assert.deepEqual(parse(105, "9223372036854775808"), [ERANGE, 0n]);
  assert.deepEqual(parse(105, "-9223372036854775808"), [
    20n,
    -9223372036854775808n,
  ]);
  assert.deepEqual(parse(105, "-9223372036854775809"), [ERANGE, 0n]);
  assert.deepEqual(parse(106, "18446744073709551615"), [20n, -1n]);
  assert.deepEqual(parse(106, "18446744073709551616"), [ERANGE, 0n]);
  assert.deepEqual(parse(106, "-1"), [EINVAL, 0n]);
  // only 63 bytes after the sign are parsed
  assert.deepEqual(parse(106, " " + "0".repeat(70) + "1", 10n), [64n, 0n]);
});

Deno.test("strncmp: lib/string.c's -1 / 0 / 1 on unsigned bytes", () => {
  const s = setup();
  const a = s.region(s.cstr("abc\xff"));
  const b = s.region(s.cstr("abd"));
  const c = s.region(new TextEncoder().encode("ab\0"));
  assert.equal(s.call(182, [a, 3n, b]), -1n);
  assert.equal(s.call(182, [a, 2n, b]), 0n);
  assert.equal(s.call(182, [b, 3n, a]), 1n);
  assert.equal(s.call(182, [c, 3n, s.region(s.cstr("ab"))]), 0n);
  const hi = s.region(Uint8Array.of(0xff, 0));
  assert.equal(s.call(182, [hi, 1n, b]), 1n); // 0xff > 'a' unsigned
});

Deno.test("snprintf: bstr_printf's output, truncation and return value", () => {
  const s = setup();
  const out = s.region(64);
  const snprintf = (fmt: string, args: bigint[], size = 64) => {
    const f = s.region(s.cstr(fmt));
    const a = s.region(Math.max(8, args.length * 8));
    args.forEach((v, i) => s.mem.write(a + BigInt(8 * i), 8, v));
    const r = s.call(165, [out, BigInt(size), f, a, BigInt(args.length * 8)]);
    const bytes = s.bytesAt(out, size);
    const text = String.fromCharCode(...bytes.slice(0, bytes.indexOf(0)));
    return [r, text] as const;
  };
  assert.deepEqual(
    snprintf("%d %ld %u %x", [0xffffffffn, -2n, 0xffffffffn, 0x1_0000_00abn]),
    [
      20n,
      "-1 -2 4294967295 ab",
    ],
  );
  assert.deepEqual(snprintf("[%-5d|%05d|%+05d|% 3i]", [-3n, -3n, 3n, 7n]), [
    24n,
    "[-3   |-0003|+0003|  7]",
  ]);
  assert.deepEqual(snprintf("%llX %4c|%-3c|", [0xabcdefn, 0x41n, 0x42n]), [
    17n,
    "ABCDEF    A|B  |",
  ]);
  const ip6 = s.region(
    Uint8Array.from(
      { length: 16 },
      (_, i) => (i === 15 ? 1 : i === 0 ? 0xfe : 0),
    ),
  );
  const ip4 = s.region(Uint8Array.of(192, 168, 0, 7));
  assert.deepEqual(snprintf("%pi4 %pI4", [ip4, ip4]), [
    28n,
    "192.168.000.007 192.168.0.7",
  ]);
  assert.deepEqual(snprintf("%pI6", [ip6]), [
    40n,
    "fe00:0000:0000:0000:0000:0000:0000:0001",
  ]);
  assert.deepEqual(snprintf("%pi6", [ip6]), [
    33n,
    "fe000000000000000000000000000001",
  ]);
  assert.deepEqual(snprintf("%px", [0xffff888000001000n]), [
    17n,
    "ffff888000001000",
  ]);
  assert.deepEqual(snprintf("%s,%s.", [0n, s.region(s.cstr("x"))]), [
    4n,
    ",x.",
  ]);
  assert.deepEqual(snprintf("%d%%", [12345n], 4), [7n, "123"]);
  assert.equal(snprintf("nothing", [], 0)[0], 8n);
});

Deno.test("snprintf / trace_vprintk: bpf_bprintf_prepare's refusals", () => {
  const s = setup();
  const out = s.region(16);
  const args = s.region(8 * 13);
  const fmtOf = (t: string) => s.region(s.cstr(t));
  const snprintf = (fmt: string, n: number, a = args) =>
    s.call(165, [out, 16n, fmtOf(fmt), a, BigInt(n * 8)]);
  assert.equal(snprintf("%q", 1), EINVAL);
  assert.equal(snprintf("%sa", 1), EINVAL); // %s must end the word
  assert.equal(snprintf("%#x", 1), EINVAL);
  assert.equal(snprintf("%d %d", 1), EINVAL); // more conversions than arguments
  assert.equal(snprintf("a\x01", 0), EINVAL); // control characters
  assert.equal(snprintf("%", 1), EINVAL);
  assert.equal(snprintf("%pZ", 1), EINVAL);
  assert.equal(snprintf("%d", 13), EINVAL); // > MAX_BPRINTF_VARARGS
  assert.equal(snprintf("%d", 1, 0n), EINVAL); // data_len without args
  assert.equal(s.call(165, [out, 16n, fmtOf("%d"), args, 12n]), EINVAL);
  // spaces and bytes >= 0x80 pass
  const latin = s.region(Uint8Array.of(0x61, 9, 0x62, 0xe9, 0));
  assert.equal(s.call(165, [out, 16n, latin, 0n, 0n]), 5n);
  // three 300-byte strings overflow the 512-byte argument buffer
  const long = s.region(s.cstr("y".repeat(300)));
  [0, 1, 2].forEach((i) => s.mem.write(args + BigInt(8 * i), 8, long));
  assert.equal(snprintf("%s%s", 2), 511n); // 301 + 211 bytes: the 2nd truncated to 210
  assert.equal(snprintf("%s%s%s", 3), ENOSPC);
  // trace_vprintk: the NUL must lie within fmt_size
  const f = fmtOf("ab%d");
  s.mem.write(args, 8, 7n);
  assert.equal(s.call(177, [f, 4n, args, 8n]), EINVAL);
  assert.equal(s.call(177, [f, 5n, args, 8n]), 3n);
  assert.deepEqual(s.log.printk, ["ab7"]);
});

Deno.test("stacks: no call chain to walk — buffers zeroed, 0 or -EFAULT, flags checked first", () => {
  const s = setup();
  const buf = s.region(32);
  s.mem.writeBytes(buf, new Uint8Array(32).fill(1));
  assert.equal(s.call(67, [0n, buf, 32n, 0n]), 0n);
  assert.deepEqual(s.bytesAt(buf, 32), new Array(32).fill(0));
  assert.equal(s.call(67, [0n, buf, 32n, 1n]), EFAULT); // skip 1 > nr 0
  assert.equal(s.call(67, [0n, buf, 12n, 0n]), EINVAL);
  assert.equal(s.call(67, [0n, buf, 32n, 1n << 11n]), EINVAL); // build id of the kernel stack
  assert.equal(s.call(67, [0n, buf, 32n, (1n << 11n) | (1n << 8n)]), 0n); // 32 = one build id
  assert.equal(s.call(67, [0n, buf, 16n, (1n << 11n) | (1n << 8n)]), EINVAL);
  assert.equal(s.call(141, [0n, buf, 32n, 0n]), 0n);
  assert.equal(s.call(27, [0n, 0n, 0n]), EFAULT);
  assert.equal(s.call(27, [0n, 0n, 1n << 10n]), EFAULT);
  assert.equal(s.call(27, [0n, 0n, 1n << 11n]), EINVAL);
});

Deno.test("perf_event_output: empty slots by default, per-CPU readers when the log has perfOutput", () => {
  const log: MapHelperLog = { printk: [] };
  const s = setup(log);
  const events = s.loaded.maps.find((m) => m.name === "events")!.address;
  const data = s.region(Uint8Array.of(1, 2, 3));
  const CURRENT = 0xffffffffn;
  assert.equal(s.call(25, [0n, events, CURRENT, data, 3n], 1), -2n); // -ENOENT
  assert.equal(s.call(25, [0n, events, 2n, data, 3n]), -7n); // -E2BIG: 2 slots
  assert.equal(s.call(25, [0n, events, 1n << 32n, data, 3n]), EINVAL);
  log.perfOutput = [];
  assert.equal(s.call(25, [0n, events, CURRENT, data, 3n], 1), 0n);
  assert.equal(s.call(25, [0n, events, 0n, data, 2n], 1), -95n); // -EOPNOTSUPP: CPU 0's event
  assert.equal(s.call(25, [0n, events, 0n, data, 2n], 0), 0n);
  assert.deepEqual(log.perfOutput.map((p) => [p.map, p.cpu, [...p.data]]), [
    ["events", 1, [1, 2, 3]],
    ["events", 0, [1, 2]],
  ]);
});

Deno.test("the helpers are in every program's table: a test run prints through bpf_trace_vprintk", () => {
  const loaded = load("string.o");
  const r = testRun(loaded, "trace_vprintk_len");
  assert.equal(r.retval, 13);
  assert.deepEqual(r.printk, ["vprintk 1 two"]);
  assert.equal(testRun(load("string.o"), "snprintf_formats").retval, 48);
});
