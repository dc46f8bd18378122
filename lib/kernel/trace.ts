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

  /**
   * Hashes the fields themselves: JSON.stringify per event would cost more
   * than the instructions between two events. Each number is two FNV-1a
   * steps (its low and high 32-bit halves), written out here rather than
   * called: lock events are traced every few instructions.
   */
  private mix(
    t: number,
    cpu: number,
    ev: TraceKind,
    insn: number | undefined,
    prog: string | undefined,
    addr: string | undefined,
    detail: string | undefined,
  ): void {
    const kind = KIND_HASHES.get(ev) ?? this.hashOf(ev);
    const at = insn ?? -1;
    const p = prog === undefined ? 0 : this.hashOf(prog);
    const a = addr === undefined ? 0 : this.hashOf(addr);
    const d = detail === undefined ? 0 : this.hashOf(detail);
    let h = this.hashValue;
    h = Math.imul(Math.imul(h ^ (t >>> 0), FNV_PRIME) ^ high(t), FNV_PRIME);
    h = Math.imul(Math.imul(h ^ (cpu >>> 0), FNV_PRIME) ^ high(cpu), FNV_PRIME);
    // the hashes are u32: their high halves are 0
    h = Math.imul(Math.imul(h ^ kind, FNV_PRIME), FNV_PRIME);
    h = Math.imul(Math.imul(h ^ (at >>> 0), FNV_PRIME) ^ high(at), FNV_PRIME);
    h = Math.imul(Math.imul(h ^ p, FNV_PRIME), FNV_PRIME);
    h = Math.imul(Math.imul(h ^ a, FNV_PRIME), FNV_PRIME);
    h = Math.imul(Math.imul(h ^ d, FNV_PRIME), FNV_PRIME);
    this.hashValue = h >>> 0;
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
const KIND_HASHES: ReadonlyMap<string, number> = new Map(
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

/** The 32-bit FNV prime. */
const FNV_PRIME = 0x01000193;

/** The high 32-bit half of a safe integer (as hashed: floor(n / 2^32)). */
function high(n: number): number {
  // 0 for the usual small n: skip the float division
  return n >= 0 && n < 0x1_0000_0000 ? 0 : Math.floor(n / 0x1_0000_0000);
}

/** FNV-1a over a string's UTF-16 code units, then a separator. */
function mixString(h: number, text: string): number {
  for (let i = 0; i < text.length; i++) {
    h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  }
  return Math.imul(h ^ 0xff, 0x01000193) >>> 0;
}
