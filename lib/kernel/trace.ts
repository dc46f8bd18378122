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
  // one cache per field: each field's strings recur (the program, the lock,
  // the two or three kinds of a lock-heavy stretch), and a shared cache
  // would evict one field's string for another's
  private readonly table = new Map<string, number>();
  private readonly kinds = new StringHashes(this.table);
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
   * than the instructions between two events. Each number is two FNV-1a
   * steps (its low and high 32-bit halves; XOR takes the low half of any
   * number as it is), written out here rather than called: lock events are
   * traced every few instructions.
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
    const kind = this.kinds.hash(ev);
    const at = insn ?? -1;
    const p = prog === undefined ? 0 : this.progs.hash(prog);
    const a = addr === undefined ? 0 : this.addrs.hash(addr);
    const d = detail === undefined ? 0 : this.details.hash(detail);
    let h = this.hashValue;
    h = Math.imul(Math.imul(h ^ t, FNV_PRIME) ^ high(t), FNV_PRIME);
    h = Math.imul(Math.imul(h ^ cpu, FNV_PRIME) ^ high(cpu), FNV_PRIME);
    // the hashes are u32: their high halves are 0
    h = Math.imul(Math.imul(h ^ kind, FNV_PRIME), FNV_PRIME);
    h = Math.imul(Math.imul(h ^ at, FNV_PRIME) ^ high(at), FNV_PRIME);
    h = Math.imul(Math.imul(h ^ p, FNV_PRIME), FNV_PRIME);
    h = Math.imul(Math.imul(h ^ a, FNV_PRIME), FNV_PRIME);
    h = Math.imul(Math.imul(h ^ d, FNV_PRIME), FNV_PRIME);
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
