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
