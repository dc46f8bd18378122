/**
 * A self-contained HTML timeline of a trace: one lane per CPU, programs as
 * bars, lock hold times and NMIs as bars inside them, contention, faults and
 * deadlocks as marks. No scripts or styles are fetched: the file opens
 * anywhere.
 * @module
 */
import type { TraceEvent } from "../kernel/trace.ts";

/** A horizontal bar in a CPU's lane. */
export interface TimelineSpan {
  /** CPU lane. */
  readonly cpu: number;
  /** Row inside the lane: 0 programs, 1 NMIs, 2 locks. */
  readonly row: number;
  /** Start and end time. */
  readonly from: number;
  /** End time (exclusive). */
  readonly to: number;
  /** What it is: `prog`, `nmi`, `lock`. */
  readonly kind: "prog" | "nmi" | "lock";
  /** Tooltip text. */
  readonly label: string;
}

/** A point event drawn as a mark. */
export interface TimelineMark {
  /** CPU lane. */
  readonly cpu: number;
  /** When. */
  readonly t: number;
  /** What: contention, fault, deadlock, alloc/free, push/pop … */
  readonly kind: string;
  /** Tooltip text. */
  readonly label: string;
}

/** Spans and marks computed from a trace (exported for tests and other renderers). */
export interface TimelineModel {
  /** Number of CPU lanes. */
  readonly cpus: number;
  /** Last time in the trace. */
  readonly end: number;
  /** Bars. */
  readonly spans: TimelineSpan[];
  /** Point events. */
  readonly marks: TimelineMark[];
}

const MARKED = new Set([
  "lock_contend",
  "fault",
  "deadlock",
  "alloc",
  "free",
  "push",
  "pop",
  "rcu_gp",
  "timer",
]);

/** Pairs start/end events per CPU into spans; unclosed spans end at the trace's end. */
export function timelineModel(
  events: readonly TraceEvent[],
  cpus: number,
): TimelineModel {
  const end = events.reduce((m, e) => Math.max(m, e.t), 0) + 1;
  const spans: TimelineSpan[] = [];
  const marks: TimelineMark[] = [];
  const open = new Map<string, TraceEvent>();
  const close = (
    key: string,
    e: TraceEvent,
    kind: TimelineSpan["kind"],
    row: number,
  ) => {
    const start = open.get(key);
    if (start === undefined) return;
    open.delete(key);
    const label = `${start.prog ?? ""} ${kind} t=${start.t}…${e.t}${
      e.detail ? ` ${e.detail}` : ""
    }`;
    spans.push({
      cpu: e.cpu,
      row,
      from: start.t,
      to: Math.max(e.t, start.t + 1),
      kind,
      label,
    });
  };
  for (const e of events) {
    switch (e.ev) {
      case "prog_start":
        open.set(`prog:${e.cpu}`, e);
        break;
      case "nmi_enter":
        open.set(`nmi:${e.cpu}`, e);
        break;
      case "prog_exit":
        // an NMI handler's exit closes the NMI bar at nmi_exit instead
        if (!open.has(`nmi:${e.cpu}`)) close(`prog:${e.cpu}`, e, "prog", 0);
        break;
      case "nmi_exit":
        close(`nmi:${e.cpu}`, e, "nmi", 1);
        break;
      case "lock_acquire":
        open.set(`lock:${e.cpu}:${e.addr}`, e);
        break;
      case "lock_release":
        close(`lock:${e.cpu}:${e.addr}`, e, "lock", 2);
        break;
      default:
        if (MARKED.has(e.ev)) {
          marks.push({
            cpu: e.cpu,
            t: e.t,
            kind: e.ev,
            label: `${e.ev} ${e.prog ?? ""}${
              e.insn !== undefined ? ` insn ${e.insn}` : ""
            }${e.addr !== undefined ? ` ${e.addr}` : ""} ${e.detail ?? ""}`,
          });
        }
    }
  }
  const fake = (cpu: number): TraceEvent => ({
    t: end,
    cpu,
    ev: "prog_exit",
    detail: "(still running)",
  });
  for (const [key, start] of [...open]) {
    const kind = key.split(":")[0] as TimelineSpan["kind"];
    close(
      key,
      fake(start.cpu),
      kind,
      kind === "prog" ? 0 : kind === "nmi" ? 1 : 2,
    );
  }
  return { cpus, end, spans, marks };
}

const COLORS: Record<string, string> = {
  prog: "#7aa6da",
  nmi: "#e78c45",
  lock: "#c82829",
  lock_contend: "#eab700",
  fault: "#000000",
  deadlock: "#8959a8",
  alloc: "#718c00",
  free: "#3e999f",
  push: "#4271ae",
  pop: "#f5871f",
  rcu_gp: "#999999",
  timer: "#3e6b2f",
};

// object events sit a little above the others: a push and a contention at
// the same step both stay visible
const MARK_ROW: Record<string, number> = { alloc: 5, free: 5, push: 5, pop: 5 };

function escape(text: string): string {
  return text.replace(/[&<>"]/g, (c) => `&#${c.charCodeAt(0)};`);
}

/** Renders the trace as a standalone HTML page with an SVG timeline. */
export function renderTimeline(
  events: readonly TraceEvent[],
  cpus: number,
  title = "bpfsim timeline",
): string {
  const model = timelineModel(events, cpus);
  const width = 1200;
  const laneHeight = 54;
  const left = 60;
  const scale = (width - left - 10) / model.end;
  const x = (t: number) => (left + t * scale).toFixed(1);
  const parts: string[] = [];
  for (let cpu = 0; cpu < cpus; cpu++) {
    const y = 20 + cpu * laneHeight;
    parts.push(
      `<text x="4" y="${y + 22}" class="lane">CPU ${cpu}</text>`,
      `<line x1="${left}" x2="${width - 10}" y1="${y + laneHeight - 4}" y2="${
        y + laneHeight - 4
      }" stroke="#ddd"/>`,
    );
  }
  for (const s of model.spans) {
    const y = 20 + s.cpu * laneHeight + s.row * 14;
    const w = Math.max(1, (s.to - s.from) * scale).toFixed(1);
    parts.push(
      `<rect x="${x(s.from)}" y="${y}" width="${w}" height="12" fill="${
        COLORS[s.kind]
      }">` +
        `<title>${escape(s.label)}</title></rect>`,
    );
  }
  for (const m of model.marks) {
    const y = 20 + m.cpu * laneHeight + 42 - (MARK_ROW[m.kind] ?? 0);
    parts.push(
      `<circle cx="${x(m.t)}" cy="${y}" r="3.5" fill="${
        COLORS[m.kind] ?? "#555"
      }">` +
        `<title>${escape(m.label)}</title></circle>`,
    );
  }
  const legend = Object.entries(COLORS).map(([k, c]) =>
    `<span><i style="background:${c}"></i>${k}</span>`
  ).join(" ");
  const height = 30 + cpus * laneHeight;
  const counts = Object.keys(COLORS).filter((k) => k in MARK_ROW).map((k) =>
    `${events.filter((e) => e.ev === k).length} ${k}`
  ).join(", ");
  return `<!doctype html>
<html><head><meta charset="utf-8"><title>${escape(title)}</title>
<style>body{font:13px sans-serif;margin:16px}.lane{font:12px monospace}
.legend span{margin-right:12px}.legend i{display:inline-block;width:10px;height:10px;margin-right:4px}</style>
</head><body><h1>${escape(title)}</h1>
<p>${events.length} events over ${model.end} steps; rows per CPU: programs, NMIs, locks held; marks below: ${counts}. Hover for details.</p>
<p class="legend">${legend}</p>
<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}">${
    parts.join("")
  }</svg>
</body></html>
`;
}
