// The timeline pairs a trace's events into spans per CPU and renders them.
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { renderTimeline, timelineModel } from "../../lib/scenario/timeline.ts";
import type { TraceEvent } from "../../lib/kernel/trace.ts";

const TRACE: TraceEvent[] = [
  { t: 0, cpu: 0, ev: "prog_start", prog: "a" },
  { t: 1, cpu: 1, ev: "prog_start", prog: "b" },
  { t: 2, cpu: 0, ev: "lock_acquire", prog: "a", addr: "0x10" },
  { t: 3, cpu: 1, ev: "lock_contend", prog: "b", addr: "0x10", insn: 2 },
  { t: 4, cpu: 0, ev: "nmi_enter", prog: "n" },
  { t: 6, cpu: 0, ev: "prog_exit", prog: "n" },
  { t: 6, cpu: 0, ev: "nmi_exit", prog: "n" },
  { t: 8, cpu: 0, ev: "lock_release", prog: "a", addr: "0x10" },
  { t: 9, cpu: 1, ev: "lock_acquire", prog: "b", addr: "0x10" },
  { t: 10, cpu: 0, ev: "prog_exit", prog: "a", detail: "r0=0x0" },
];

Deno.test("spans: programs, NMIs and lock hold times per CPU; unclosed ones end at the trace's end", () => {
  const m = timelineModel(TRACE, 2);
  const spans = m.spans.map((s) => [s.cpu, s.kind, s.from, s.to]).sort();
  deepEqual(spans, [
    [0, "lock", 2, 8],
    [0, "nmi", 4, 6],
    [0, "prog", 0, 10],
    [1, "lock", 9, 11],
    [1, "prog", 1, 11],
  ]);
  deepEqual(m.marks.map((k) => [k.cpu, k.kind, k.t]), [[1, "lock_contend", 3]]);
  equal(m.end, 11);
});

Deno.test("the page is self-contained HTML with one lane per CPU", () => {
  const html = renderTimeline(TRACE, 2, "two CPUs <test>");
  match(html, /^<!doctype html>/);
  ok(!/<script|<link|src=/.test(html), "nothing is fetched");
  equal((html.match(/class="lane">CPU \d/g) ?? []).length, 2);
  equal((html.match(/<rect /g) ?? []).length, 5);
  ok(html.includes("two CPUs &#60;test&#62;"), "titles are escaped");
});

Deno.test("object events: marks with program, insn, address and detail, counted in the header", () => {
  const events: TraceEvent[] = [
    ...TRACE,
    {
      t: 5,
      cpu: 1,
      ev: "alloc",
      prog: "b",
      insn: 3,
      addr: "0xffff888800000008",
      detail: "struct item (32 B)",
    },
    {
      t: 7,
      cpu: 1,
      ev: "push",
      prog: "b",
      insn: 9,
      addr: "0xffff888800000008",
      detail: "list ffff888700000010 back",
    },
  ];
  const m = timelineModel(events, 2);
  const marks = m.marks.filter((k) => k.kind === "alloc" || k.kind === "push");
  deepEqual(marks.map((k) => [k.cpu, k.kind, k.t]), [[1, "alloc", 5], [
    1,
    "push",
    7,
  ]]);
  equal(
    marks[1].label,
    "push b insn 9 0xffff888800000008 list ffff888700000010 back",
  );
  const html = renderTimeline(events, 2);
  ok(html.includes("1 alloc, 0 free, 1 push, 0 pop"));
  equal((html.match(/<circle /g) ?? []).length, 3);
});

Deno.test("a BPF timer's callback is a mark on the CPU it fired on", () => {
  const fired: TraceEvent = {
    t: 7,
    cpu: 1,
    ev: "timer",
    prog: "bpf_timer_cb",
    addr: "0x20",
    detail: "callback 0x100",
  };
  const m = timelineModel([...TRACE, fired], 2);
  const marks = m.marks.filter((k) => k.kind === "timer");
  deepEqual(marks.map((k) => [k.cpu, k.t]), [[1, 7]]);
  match(marks[0].label, /timer bpf_timer_cb 0x20 callback 0x100/);
});
