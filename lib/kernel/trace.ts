/**
 * What the simulated kernel did, as events: program start/exit, lock
 * contention/acquire/release, NMI enter/exit, faults and deadlocks. Written
 * as JSON lines and hashed so two runs can be compared exactly.
 * @module
 */

/** Kinds of trace events. */
export type TraceKind =
  | "prog_start"
  | "prog_exit"
  | "lock_contend"
  | "lock_acquire"
  | "lock_release"
  | "nmi_enter"
  | "nmi_exit"
  | "alloc"
  | "free"
  | "push"
  | "pop"
  | "rcu_gp"
  | "fault"
  | "deadlock";

/** One event: when (global step), where (CPU), what, and details. */
export interface TraceEvent {
  /** Global scheduler step at which it happened. */
  readonly t: number;
  /** CPU it happened on. */
  readonly cpu: number;
  /** What happened. */
  readonly ev: TraceKind;
  /** Program name, when a program was involved. */
  readonly prog?: string;
  /** Instruction index, when one was involved. */
  readonly insn?: number;
  /** Address (hex), for locks and memory events. */
  readonly addr?: string;
  /** Free text: return value, fault message, … */
  readonly detail?: string;
}

/** An append-only event log with a running FNV-1a hash over every event's fields. */
export class Trace {
  /** Events in order (kept only when `keep` is true). */
  readonly events: TraceEvent[] = [];
  /** Events recorded so far. */
  count = 0;
  private hashValue = 0x811c9dc5;
  private readonly stringHashes = new Map<string, number>();
  private recentA = "";
  private recentHashA: number = mixString(0x811c9dc5, "");
  private recentB = "";
  private recentHashB: number = this.recentHashA;
  private readonly keep: boolean;

  /** `keep: false` hashes and counts events without storing them (long runs). */
  constructor(keep = true) {
    this.keep = keep;
  }

  /** Records an event. */
  emit(event: TraceEvent): void {
    this.count++;
    if (this.keep) this.events.push(event);
    this.mix(
      event.t,
      event.cpu,
      event.ev,
      event.insn,
      event.prog,
      event.addr,
      event.detail,
    );
  }

  /**
   * Records an event given field by field: the same as {@link emit}, but
   * builds the event object only when events are kept (hot paths: lock
   * helpers, the graph runtime).
   */
  record(
    t: number,
    cpu: number,
    ev: TraceKind,
    prog?: string,
    insn?: number,
    addr?: string,
    detail?: string,
  ): void {
    this.count++;
    if (this.keep) this.events.push({ t, cpu, ev, prog, insn, addr, detail });
    this.mix(t, cpu, ev, insn, prog, addr, detail);
  }

  /** Hashes the fields themselves: JSON.stringify per event would cost more than the instructions between two events. */
  private mix(
    t: number,
    cpu: number,
    ev: TraceKind,
    insn: number | undefined,
    prog: string | undefined,
    addr: string | undefined,
    detail: string | undefined,
  ): void {
    let h = mixNumber(this.hashValue, t);
    h = mixNumber(h, cpu);
    h = mixNumber(h, KIND_HASHES[ev] ?? this.hashOf(ev));
    h = mixNumber(h, insn ?? -1);
    h = mixNumber(h, prog === undefined ? 0 : this.hashOf(prog));
    h = mixNumber(h, addr === undefined ? 0 : this.hashOf(addr));
    this.hashValue = mixNumber(
      h,
      detail === undefined ? 0 : this.hashOf(detail),
    );
  }

  /**
   * FNV-1a of a string, remembered: the same program names and lock
   * addresses recur in almost every event, and hashing them char by char
   * each time cost more than the instructions between two events. The
   * last two strings are compared first (mostly the same objects, so a
   * pointer comparison), then the table is asked.
   */
  private hashOf(text: string): number {
    if (text === this.recentA) return this.recentHashA;
    if (text === this.recentB) return this.recentHashB;
    let v = this.stringHashes.get(text);
    if (v === undefined) {
      v = mixString(0x811c9dc5, text);
      if (this.stringHashes.size < STRING_HASHES_KEPT) {
        this.stringHashes.set(text, v);
      }
    }
    this.recentB = this.recentA;
    this.recentHashB = this.recentHashA;
    this.recentA = text;
    this.recentHashA = v;
    return v;
  }

  /** The hash of every event so far, as 8 hex digits: equal runs have equal hashes. */
  hash(): string {
    return this.hashValue.toString(16).padStart(8, "0");
  }

  /** The kept events as JSON lines. */
  toJsonLines(): string {
    return this.events.map((e) => JSON.stringify(e)).join("\n");
  }
}

/** Every kind's hash, computed once (kinds are in every event). */
const KIND_HASHES: Readonly<Record<string, number>> = Object.fromEntries(
  [
    "prog_start",
    "prog_exit",
    "lock_contend",
    "lock_acquire",
    "lock_release",
    "nmi_enter",
    "nmi_exit",
    "alloc",
    "free",
    "push",
    "pop",
    "rcu_gp",
    "fault",
    "deadlock",
  ].map((kind) => [kind, mixString(0x811c9dc5, kind)]),
);

/** Most distinct strings a trace remembers the hash of. */
const STRING_HASHES_KEPT = 4096;

/** FNV-1a step over the 32-bit halves of a safe integer. */
function mixNumber(h: number, n: number): number {
  h = Math.imul(h ^ (n >>> 0), 0x01000193);
  // the high half is 0 for the usual small n: skip the float division
  const high = n >= 0 && n < 0x1_0000_0000 ? 0 : Math.floor(n / 0x1_0000_0000);
  return Math.imul(h ^ high, 0x01000193) >>> 0;
}

/** FNV-1a over a string's UTF-16 code units, then a separator. */
function mixString(h: number, text: string): number {
  for (let i = 0; i < text.length; i++) {
    h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  }
  return Math.imul(h ^ 0xff, 0x01000193) >>> 0;
}
