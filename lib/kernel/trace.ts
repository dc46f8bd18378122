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
  | "deadlock"
  | "timer";

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

/**
 * An append-only event log with a running FNV-1a hash over every event's
 * fields: `t` as its low and high 32-bit halves, then `cpu`, the kind,
 * `insn` (-1 when none), and `prog`, `addr`, `detail` (0 when none), each
 * as its low 32 bits — strings by their own FNV-1a hash (UTF-16 code units
 * and a 0xff separator).
 */
export class Trace {
  /** Events in order (kept only when `keep` is true). */
  readonly events: TraceEvent[] = [];
  /** Events recorded so far. */
  count = 0;
  private hashValue = 0x811c9dc5;
  // one cache per field: each field's strings recur (the program, the
  // lock), and a shared cache would evict one field's string for another's
  private readonly table = new Map<string, number>();
  private readonly progs = new StringHashes(this.table);
  private readonly addrs = new StringHashes(this.table);
  private readonly details = new StringHashes(this.table);
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
   * than the instructions between two events. One FNV-1a step per field
   * (its low 32 bits), two for `t` (its high half too: long runs pass
   * 2^32 steps); the other numbers are small. Written out here rather than
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
    const p = prog === undefined ? 0 : this.progs.hash(prog);
    const a = addr === undefined ? 0 : this.addrs.hash(addr);
    const d = detail === undefined ? 0 : this.details.hash(detail);
    const tHigh = t < 0x1_0000_0000 ? 0 : Math.floor(t / 0x1_0000_0000);
    let h = this.hashValue;
    h = Math.imul(Math.imul(h ^ t, FNV_PRIME) ^ tHigh, FNV_PRIME);
    h = Math.imul(h ^ cpu, FNV_PRIME);
    h = Math.imul(h ^ kindHash(ev), FNV_PRIME);
    h = Math.imul(h ^ (insn ?? -1), FNV_PRIME);
    h = Math.imul(h ^ p, FNV_PRIME);
    h = Math.imul(h ^ a, FNV_PRIME);
    h = Math.imul(h ^ d, FNV_PRIME);
    this.hashValue = h >>> 0;
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

/**
 * The FNV-1a hash of a kind's name, known in advance: a `switch` over the
 * literal names compares pointers, where a table would hash the string.
 */
function kindHash(kind: TraceKind): number {
  switch (kind) {
    case "prog_start":
      return KIND_HASH[0];
    case "prog_exit":
      return KIND_HASH[1];
    case "lock_contend":
      return KIND_HASH[2];
    case "lock_acquire":
      return KIND_HASH[3];
    case "lock_release":
      return KIND_HASH[4];
    case "nmi_enter":
      return KIND_HASH[5];
    case "nmi_exit":
      return KIND_HASH[6];
    case "alloc":
      return KIND_HASH[7];
    case "free":
      return KIND_HASH[8];
    case "push":
      return KIND_HASH[9];
    case "pop":
      return KIND_HASH[10];
    case "rcu_gp":
      return KIND_HASH[11];
    case "fault":
      return KIND_HASH[12];
    case "deadlock":
      return KIND_HASH[13];
    case "timer":
      return KIND_HASH[14];
  }
  return mixString(0x811c9dc5, kind);
}

/** {@link kindHash}'s answers, in its order. */
const KIND_HASH: Int32Array = Int32Array.from(
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
    "timer",
  ],
  (kind) => mixString(0x811c9dc5, kind),
);

/**
 * FNV-1a of strings, remembered: the same program names and lock addresses
 * recur in almost every event, and hashing them char by char each time cost
 * more than the instructions between two events. The last three strings
 * are compared first (mostly the very same objects, so a pointer
 * comparison), then the table shared by a trace's caches is asked.
 */
class StringHashes {
  private a = "";
  private hashA: number = mixString(0x811c9dc5, "");
  private b = "";
  private hashB: number = this.hashA;
  private c = "";
  private hashC: number = this.hashA;

  constructor(private readonly table: Map<string, number>) {}

  /** The FNV-1a hash of `text` (as {@link mixString} from the offset basis). */
  hash(text: string): number {
    if (text === this.a) return this.hashA;
    if (text === this.b) return this.hashB;
    if (text === this.c) return this.hashC;
    let v = this.table.get(text);
    if (v === undefined) {
      v = mixString(0x811c9dc5, text);
      if (this.table.size < STRING_HASHES_KEPT) this.table.set(text, v);
    }
    this.c = this.b;
    this.hashC = this.hashB;
    this.b = this.a;
    this.hashB = this.hashA;
    this.a = text;
    this.hashA = v;
    return v;
  }
}

/** Most distinct strings a trace remembers the hash of. */
const STRING_HASHES_KEPT = 4096;

/** The 32-bit FNV prime. */
const FNV_PRIME = 0x01000193;

/** FNV-1a over a string's UTF-16 code units, then a separator. */
function mixString(h: number, text: string): number {
  for (let i = 0; i < text.length; i++) {
    h = Math.imul(h ^ text.charCodeAt(i), 0x01000193);
  }
  return Math.imul(h ^ 0xff, 0x01000193) >>> 0;
}
