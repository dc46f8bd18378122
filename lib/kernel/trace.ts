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
  private readonly keep: boolean;

  /** `keep: false` hashes and counts events without storing them (long runs). */
  constructor(keep = true) {
    this.keep = keep;
  }

  /** Records an event. */
  emit(event: TraceEvent): void {
    this.count++;
    if (this.keep) this.events.push(event);
    // hash the fields themselves: JSON.stringify per event would cost more
    // than the instructions between two events
    let h = mixNumber(this.hashValue, event.t);
    h = mixNumber(h, event.cpu);
    h = mixString(h, event.ev);
    h = mixNumber(h, event.insn ?? -1);
    h = mixString(h, event.prog ?? "");
    h = mixString(h, event.addr ?? "");
    this.hashValue = mixString(h, event.detail ?? "");
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

/** FNV-1a step over the 32-bit halves of a safe integer. */
function mixNumber(h: number, n: number): number {
  h = Math.imul(h ^ (n >>> 0), 0x01000193);
  return Math.imul(h ^ Math.floor(n / 0x1_0000_0000), 0x01000193) >>> 0;
}

/** FNV-1a over a string's UTF-16 code units, then a separator. */
function mixString(h: number, text: string): number {
  for (let i = 0; i < text.length; i++) {
    h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  }
  return Math.imul(h ^ 0xff, 0x01000193) >>> 0;
}
