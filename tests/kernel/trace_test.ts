// The trace hash: FNV-1a (32-bit) over each event's fields, in the order
// t, cpu, kind, insn (-1 when none), prog, addr, detail (0 when none) —
// t as its low then high 32-bit halves, the others as their low 32 bits,
// strings as the FNV-1a of their UTF-16 code units and a 0xff separator. The reference below computes
// it from that description with bigint arithmetic; the Trace's cached,
// number-only version must agree on every kind of event.
import { equal, notEqual } from "node:assert/strict";
import { Trace, type TraceEvent } from "../../lib/kernel/trace.ts";

const PRIME = 0x01000193n;
const OFFSET = 0x811c9dc5n;

function fnvStep(h: bigint, word: bigint): bigint {
  return ((h ^ BigInt.asUintN(32, word)) * PRIME) & 0xffffffffn;
}

function refString(text: string): bigint {
  let h = OFFSET;
  for (let i = 0; i < text.length; i++) {
    h = fnvStep(h, BigInt(text.charCodeAt(i)));
  }
  return fnvStep(h, 0xffn);
}

function refNumber(h: bigint, n: number): bigint {
  const v = BigInt(n);
  const low = BigInt.asUintN(32, v);
  const high = (v - low) / (1n << 32n); // floor(n / 2^32), exact
  return fnvStep(fnvStep(h, low), high);
}

function refHash(events: readonly TraceEvent[]): string {
  let h = OFFSET;
  for (const e of events) {
    h = refNumber(h, e.t);
    h = fnvStep(h, BigInt(e.cpu));
    h = fnvStep(h, refString(e.ev));
    h = fnvStep(h, BigInt(e.insn ?? -1));
    for (const s of [e.prog, e.addr, e.detail]) {
      h = fnvStep(h, s === undefined ? 0n : refString(s));
    }
  }
  return h.toString(16).padStart(8, "0");
}

const EVENTS: TraceEvent[] = [
  { t: 0, cpu: 0, ev: "prog_start", prog: "produce" },
  {
    t: 5,
    cpu: 1,
    ev: "lock_acquire",
    prog: "produce",
    insn: 4,
    addr: "0xffff888100000000",
  },
  {
    t: 6,
    cpu: 2,
    ev: "lock_contend",
    prog: "consume",
    insn: 9,
    addr: "0xffff888100000000",
    detail: "held by CPU 1",
  },
  {
    t: 7,
    cpu: 1,
    ev: "lock_release",
    prog: "produce",
    insn: 12,
    addr: "0xffff888100000000",
  },
  // three strings in turn: past the two most recent the table answers
  {
    t: 8,
    cpu: 3,
    ev: "alloc",
    prog: "third",
    addr: "0xffff888200000010",
    detail: "size 16",
  },
  {
    t: 9,
    cpu: 2,
    ev: "lock_acquire",
    prog: "consume",
    insn: 4,
    addr: "0xffff888100000000",
  },
  // large times (high half non-zero), an exit with a detail, a fault
  {
    t: 2 ** 32 + 3,
    cpu: 0,
    ev: "prog_exit",
    prog: "produce",
    detail: "r0=0x0",
  },
  {
    t: 2 ** 40,
    cpu: 63,
    ev: "fault",
    prog: "bad",
    insn: 0,
    detail: "é — non-ASCII",
  },
  { t: 2 ** 40 + 1, cpu: 1, ev: "nmi_enter", prog: "nmi" },
  { t: 2 ** 40 + 2, cpu: 1, ev: "nmi_exit", prog: "nmi" },
  { t: 2 ** 40 + 3, cpu: 0, ev: "rcu_gp" },
  {
    t: 2 ** 40 + 4,
    cpu: 0,
    ev: "deadlock",
    prog: "nmi",
    insn: 3,
    addr: "0x0000000000001000",
    detail: "",
  },
];

Deno.test("the trace hash is FNV-1a over the fields, whether emitted or recorded", async (t) => {
  await t.step("emit (event objects)", () => {
    const trace = new Trace();
    for (const e of EVENTS) trace.emit(e);
    equal(trace.hash(), refHash(EVENTS));
    equal(trace.count, EVENTS.length);
  });
  await t.step("record (fields), events not kept", () => {
    const trace = new Trace(false);
    for (const e of EVENTS) {
      trace.record(e.t, e.cpu, e.ev, e.prog, e.insn, e.addr, e.detail);
    }
    equal(trace.hash(), refHash(EVENTS));
    equal(trace.events.length, 0);
  });
  await t.step("every prefix agrees too (the hash is running)", () => {
    const trace = new Trace(false);
    for (let i = 0; i < EVENTS.length; i++) {
      const e = EVENTS[i];
      trace.record(e.t, e.cpu, e.ev, e.prog, e.insn, e.addr, e.detail);
      equal(trace.hash(), refHash(EVENTS.slice(0, i + 1)), `after ${i + 1}`);
    }
  });
});

Deno.test("equal strings built apart hash alike; a changed field changes the hash", () => {
  const a = new Trace(false), b = new Trace(false);
  const prog = ["pro", "duce"].join("");
  a.record(1, 0, "prog_start", "produce");
  b.record(1, 0, "prog_start", prog);
  equal(a.hash(), b.hash());
  b.record(2, 0, "prog_exit", prog);
  a.record(2, 0, "prog_exit", "produce", 0);
  notEqual(a.hash(), b.hash());
});
