/**
 * The tracing helpers (lib/kernel/tracing_helpers.ts) called directly on a
 * loaded object's kernel. They serve program types BPF_PROG_TEST_RUN cannot
 * run (kprobe, perf_event, tracing), so there is no oracle recording: each
 * expectation is derived by hand from the kernel function named beside it,
 * applied to the simulated machine (no user memory, no VMA, no LBR, the
 * initial pid namespace, perf event arrays as generic_helpers_perf.ts).
 */
import { callHelper } from "./helper_call.ts";
import assert from "node:assert/strict";
import { loadObject } from "../../lib/elf/object.ts";
import { MemoryFault } from "../../lib/exec/fault.ts";
import { runProgram } from "../../lib/exec/run.ts";
import { assemble } from "../../lib/isa/asm.ts";
import { Kernel } from "../../lib/kernel/kernel.ts";
import type { MapHelperLog } from "../../lib/kernel/map_helpers.ts";
import { objectHelpers } from "../../lib/kernel/object_helpers.ts";
import { loadObjectWithRuntime } from "../../lib/kernel/object_runtime.ts";
import {
  TRACING_HELPER,
  tracingHelpers,
} from "../../lib/kernel/tracing_helpers.ts";

const FIXTURE = new URL(
  "../fixtures/runtime/generic/stack.o",
  import.meta.url,
);

/** Owner overrides: the CPU, and the context (1 = NMI, or a softirq). */
interface CallAt {
  readonly cpu?: number;
  readonly level?: number;
  readonly softirq?: boolean;
}

/** The tracing helpers of `stack.o` (it has a 2-slot perf event array `events`). */
function setup(log: MapHelperLog = { printk: [] }) {
  const loaded = loadObjectWithRuntime(
    new Kernel({ cpus: 2 }),
    loadObject(Deno.readFileSync(FIXTURE), "stack.o"),
  );
  const helpers = tracingHelpers({ loaded, log });
  const mem = loaded.kernel.space;
  let now = 0;
  const call = (id: number, args: bigint[] = [], at: CallAt = {}): bigint =>
    callHelper(helpers, id, args, {
      mem,
      now: () => now,
      owner: {
        cpu: loaded.kernel.cpus[at.cpu ?? 0],
        level: at.level ?? 0,
        softirq: at.softirq,
      },
    });
  /** A writable region of `n` bytes of 0x55 (to see what a helper writes). */
  const poisoned = (n: number) => {
    const a = mem.mapRegion("mem", n);
    mem.writeBytes(a, new Uint8Array(n).fill(0x55));
    return a;
  };
  const bytesAt = (a: bigint, n: number) => [...mem.readBytes(a, n)];
  const u64s = (a: bigint, n: number) =>
    Array.from({ length: n }, (_, i) => mem.read(a + BigInt(8 * i), 8));
  const events = loaded.maps.find((m) => m.name === "events")!.address;
  return {
    loaded,
    call,
    poisoned,
    bytesAt,
    u64s,
    mem,
    events,
    setNow: (ns: number) => (now = ns),
  };
}

const H = TRACING_HELPER;
const EPERM = -1n, ENOENT = -2n, E2BIG = -7n, EFAULT = -14n, EINVAL = -22n;
const POISON = (n: number) => new Array(n).fill(0x55);
const CURRENT_CPU = 0xffffffffn;

Deno.test("probe_write_user: -EFAULT from a task (access_ok / no user page), -EPERM in interrupt context", () => {
  const s = setup();
  const src = s.poisoned(8);
  const kernelDst = s.poisoned(8);
  // bpf_probe_write_user() -> copy_to_user_nofault(): a kernel address
  // fails access_ok(), a user one has no page
  assert.equal(s.call(H.probe_write_user, [kernelDst, src, 8n]), EFAULT);
  assert.equal(s.call(H.probe_write_user, [0x400000n, src, 8n]), EFAULT);
  assert.deepEqual(s.bytesAt(kernelDst, 8), POISON(8)); // nothing written
  // in_interrupt() counts NMI and softirq: -EPERM before any access
  assert.equal(
    s.call(H.probe_write_user, [0x400000n, src, 8n], { level: 1 }),
    EPERM,
  );
  assert.equal(
    s.call(H.probe_write_user, [0x400000n, src, 8n], { softirq: true }),
    EPERM,
  );
});

Deno.test("copy_from_user_task: flags are -EINVAL untouched, size 0 is 0, else -EFAULT zeroed", () => {
  const s = setup();
  const dst = s.poisoned(16);
  const task = s.mem.mapRegion("kernel", 64); // any task: none has a VMA
  // bpf_copy_from_user_task(): flags checked before anything is written
  assert.equal(
    s.call(H.copy_from_user_task, [dst, 16n, 0x400000n, task, 1n]),
    EINVAL,
  );
  assert.deepEqual(s.bytesAt(dst, 16), POISON(16));
  assert.equal(
    s.call(H.copy_from_user_task, [dst, 0n, 0x400000n, task, 0n]),
    0n,
  );
  assert.deepEqual(s.bytesAt(dst, 16), POISON(16));
  // access_process_vm() copies 0 of 8 bytes: a partial read, memset(dst, 0, 8)
  assert.equal(
    s.call(H.copy_from_user_task, [dst, 8n, 0x400000n, task, 0n]),
    EFAULT,
  );
  assert.deepEqual(s.bytesAt(dst, 16), [...new Array(8).fill(0), ...POISON(8)]);
});

Deno.test("find_vma: flags -EINVAL, NULL task or an mm without VMAs -ENOENT", () => {
  const s = setup();
  const task = s.mem.mapRegion("kernel", 64);
  // bpf_find_vma(): flags first, then !task, then find_vma() finds nothing
  assert.equal(s.call(H.find_vma, [task, 0x400000n, 0n, 0n, 1n]), EINVAL);
  assert.equal(s.call(H.find_vma, [0n, 0x400000n, 0n, 0n, 1n]), EINVAL);
  assert.equal(s.call(H.find_vma, [0n, 0x400000n, 0n, 0n, 0n]), ENOENT);
  assert.equal(s.call(H.find_vma, [task, 0x400000n, 0n, 0n, 0n]), ENOENT);
});

Deno.test("branch records: no LBR — flags checked, then -ENOENT, buffer left alone", () => {
  const s = setup();
  const buf = s.poisoned(48);
  // bpf_get_branch_snapshot(): perf_snapshot_branch_stack returns 0 entries
  assert.equal(s.call(H.get_branch_snapshot, [buf, 48n, 0n]), ENOENT);
  assert.equal(s.call(H.get_branch_snapshot, [buf, 48n, 1n]), EINVAL);
  assert.equal(s.call(H.get_branch_snapshot, [buf, 0n, 0n]), ENOENT);
  // bpf_read_branch_records(): only BPF_F_GET_BRANCH_RECORDS_SIZE (1) is a
  // flag; the sample has no PERF_SAMPLE_BRANCH_STACK
  assert.equal(s.call(H.read_branch_records, [0n, buf, 48n, 2n]), EINVAL);
  assert.equal(s.call(H.read_branch_records, [0n, buf, 48n, 3n]), EINVAL);
  assert.equal(s.call(H.read_branch_records, [0n, buf, 48n, 1n]), ENOENT);
  assert.equal(s.call(H.read_branch_records, [0n, buf, 24n, 0n]), ENOENT);
  assert.deepEqual(s.bytesAt(buf, 48), POISON(48));
});

Deno.test("task_pt_regs: one zero-filled, read-only 168-byte pt_regs per task", () => {
  const s = setup();
  const t0 = s.mem.mapRegion("kernel", 64), t1 = s.mem.mapRegion("kernel", 64);
  const r0 = BigInt.asUintN(64, s.call(H.task_pt_regs, [t0]));
  assert.equal(
    BigInt.asUintN(64, s.call(H.task_pt_regs, [t0], { cpu: 1 })),
    r0,
  );
  const r1 = BigInt.asUintN(64, s.call(H.task_pt_regs, [t1]));
  assert.notEqual(r0, r1);
  // sizeof(struct pt_regs) on x86-64: 21 unsigned longs
  assert.deepEqual(s.bytesAt(r0, 168), new Array(168).fill(0));
  assert.throws(() => s.mem.readBytes(r0 + 168n, 1), MemoryFault);
  assert.throws(() => s.mem.write(r1, 8, 1n));
});

Deno.test("get_ns_current_pid_tgid: the initial pid namespace (dev 0:4, ino 0xeffffffc)", () => {
  const s = setup();
  const info = s.poisoned(8);
  const DEV = 4n, INO = 0xeffffffcn;
  // bpf_get_ns_current_pid_tgid(): task_pid_nr_ns() / task_tgid_nr_ns() of
  // CPU 1's task, pid = tgid = 1001 = 0x3e9
  assert.equal(
    s.call(H.get_ns_current_pid_tgid, [DEV, INO, info, 8n], { cpu: 1 }),
    0n,
  );
  assert.deepEqual(s.bytesAt(info, 8), [0xe9, 3, 0, 0, 0xe9, 3, 0, 0]);
  // each failure is -EINVAL with nsdata zeroed: wrong size, a dev beyond
  // dev_t, another namespace's inode or device
  const fails: bigint[][] = [
    [DEV, INO, info, 4n],
    [DEV | (1n << 32n), INO, info, 8n],
    [DEV, INO + 1n, info, 8n],
    [DEV + 1n, INO, info, 8n],
  ];
  for (const args of fails) {
    s.mem.writeBytes(info, new Uint8Array(8).fill(0x55));
    assert.equal(s.call(H.get_ns_current_pid_tgid, args), EINVAL, `${args}`);
    const size = Number(args[3]);
    assert.deepEqual(s.bytesAt(info, 8), [
      ...new Array(size).fill(0),
      ...POISON(8 - size),
    ]);
  }
});

Deno.test("perf_event_read / _value: empty slots by default, checks in get_map_perf_counter() order", () => {
  const s = setup();
  const buf = s.poisoned(24);
  // get_map_perf_counter(): flags, then index vs max_entries (2), then the slot
  assert.equal(s.call(H.perf_event_read, [s.events, 1n << 32n]), EINVAL);
  assert.equal(s.call(H.perf_event_read, [s.events, 2n]), E2BIG);
  assert.equal(
    s.call(H.perf_event_read, [s.events, CURRENT_CPU], { cpu: 1 }),
    ENOENT,
  );
  assert.equal(s.call(H.perf_event_read, [s.events, 0n]), ENOENT);
  // bpf_perf_event_read_value(): size first, every error zeroes buf
  assert.equal(
    s.call(H.perf_event_read_value, [s.events, 0n, buf, 16n]),
    EINVAL,
  );
  assert.deepEqual(s.bytesAt(buf, 24), [
    ...new Array(16).fill(0),
    ...POISON(8),
  ]);
  s.mem.writeBytes(buf, new Uint8Array(24).fill(0x55));
  assert.equal(
    s.call(H.perf_event_read_value, [s.events, 5n, buf, 24n]),
    E2BIG,
  );
  assert.deepEqual(s.bytesAt(buf, 24), new Array(24).fill(0));
  s.mem.writeBytes(buf, new Uint8Array(24).fill(0x55));
  assert.equal(
    s.call(H.perf_event_read_value, [s.events, 0n, buf, 24n]),
    ENOENT,
  );
  assert.deepEqual(s.bytesAt(buf, 24), new Array(24).fill(0));
});

Deno.test("perf_event_read / _value: per-CPU BPF-output events when the log has perfOutput", () => {
  const s = setup({ printk: [], perfOutput: [] });
  s.setNow(5_000_000);
  const buf = s.poisoned(24);
  // perf_event_read_local(): a BPF-output event counts nothing
  assert.equal(
    s.call(H.perf_event_read, [s.events, CURRENT_CPU], { cpu: 1 }),
    0n,
  );
  assert.equal(s.call(H.perf_event_read, [s.events, 0n]), 0n);
  // ... and refuses another CPU's per-CPU event
  assert.equal(s.call(H.perf_event_read, [s.events, 0n], { cpu: 1 }), EINVAL);
  assert.equal(
    s.call(H.perf_event_read_value, [s.events, 1n, buf, 24n], { cpu: 1 }),
    0n,
  );
  // counter 0, enabled = running = 5 ms since boot
  assert.deepEqual(s.u64s(buf, 3), [0n, 5_000_000n, 5_000_000n]);
  assert.equal(
    s.call(H.perf_event_read_value, [s.events, 1n, buf, 24n]),
    EINVAL,
  );
  assert.deepEqual(s.u64s(buf, 3), [0n, 0n, 0n]);
});

Deno.test("perf_prog_read_value: the cpu-clock event counts ns since boot; wrong size -EINVAL zeroed", () => {
  const s = setup();
  s.setNow(123_456);
  const buf = s.poisoned(32);
  // bpf_perf_prog_read_value(): perf_event_read_local() of ctx->event
  assert.equal(s.call(H.perf_prog_read_value, [0n, buf, 24n], { cpu: 1 }), 0n);
  assert.deepEqual(s.u64s(buf, 3), [123_456n, 123_456n, 123_456n]);
  assert.deepEqual(s.bytesAt(buf + 24n, 8), POISON(8));
  assert.equal(s.call(H.perf_prog_read_value, [0n, buf, 32n]), EINVAL);
  assert.deepEqual(s.bytesAt(buf, 32), new Array(32).fill(0));
});

Deno.test("the helpers are in every program's table: a run reads its task's pt_regs and a branch snapshot", () => {
  const loaded = loadObjectWithRuntime(
    new Kernel({ cpus: 2 }),
    loadObject(Deno.readFileSync(FIXTURE), "stack.o"),
  );
  const helpers = objectHelpers(loaded);
  for (const id of Object.values(H)) assert.ok(helpers.has(id), `helper ${id}`);
  // r6 = *(u64 *)(task_pt_regs(get_current_task()) + 160) (ss, zero) +
  // get_branch_snapshot(r10 - 24, 24, 0) (-ENOENT)
  const prog = assemble(`
    call 35
    r1 = r0
    call 175
    r6 = *(u64 *)(r0 + 160)
    r1 = r10
    r1 += -24
    r2 = 24
    r3 = 0
    call 176
    r0 += r6
    exit
  `);
  const r = runProgram(prog, { helpers, space: loaded.kernel.space });
  assert.equal(BigInt.asIntN(64, r.r0), ENOENT);
});
