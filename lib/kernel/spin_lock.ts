/**
 * Runtime of `bpf_spin_lock` / `bpf_spin_unlock`: a lock word in BPF memory
 * (a `struct bpf_spin_lock`, 4 bytes: 0 free, 1 held) plus the bookkeeping a
 * lockdep-style checker needs — who holds each lock, on which CPU and at
 * which context level. A CPU that finds the lock taken by another CPU spins;
 * one that finds it taken by an interrupted context of its own (an NMI
 * interrupting the holder) can never get it: that is a deadlock.
 *
 * Locks are taken and released many times per simulated microsecond, so the
 * hot entries ({@link SpinLocks.tryLock}, {@link SpinLocks.release}) take
 * the address as its two 32-bit halves, answer with a number and allocate
 * nothing: each lock's record is kept and reused.
 * @module
 */
import {
  type AddressSpace,
  PERM_WRITE,
  REGION_BASE_HI,
} from "../exec/memory.ts";
import { formatAddress } from "../exec/fault.ts";

/** Who holds a lock. */
export interface LockHolder {
  /** CPU holding it. */
  readonly cpu: number;
  /** Context level on that CPU: 0 = the task-level program, 1+ = NMI nesting. */
  readonly level: number;
  /** Program holding it. */
  readonly prog: string;
  /** Instruction of the `bpf_spin_lock` call. */
  readonly insn: number;
}

/** Outcome of a lock attempt. */
export type LockResult =
  | { readonly kind: "acquired" }
  | { readonly kind: "contended"; readonly holder: LockHolder }
  | { readonly kind: "deadlock"; readonly holder: LockHolder };

/** Outcome of an unlock. */
export type UnlockResult =
  | { readonly kind: "released"; readonly holder: LockHolder }
  | { readonly kind: "not_held" }
  | { readonly kind: "wrong_owner"; readonly holder: LockHolder };

/** {@link SpinLocks.tryLock}: the lock is now held by the caller. */
export const LOCK_ACQUIRED = 0;
/** {@link SpinLocks.tryLock}: another CPU holds it (see {@link SpinLocks.conflict}). */
export const LOCK_CONTENDED = 1;
/** {@link SpinLocks.tryLock}: the caller's own CPU holds it (see {@link SpinLocks.conflict}). */
export const LOCK_DEADLOCK = 2;
/** {@link SpinLocks.release}: released (the former holder is {@link SpinLocks.conflict}). */
export const UNLOCK_RELEASED = 0;
/** {@link SpinLocks.release}: nobody held it. */
export const UNLOCK_NOT_HELD = 1;
/** {@link SpinLocks.release}: another context holds it (see {@link SpinLocks.conflict}). */
export const UNLOCK_WRONG_OWNER = 2;

/** What the scheduler may ask of a lock a CPU spins on. */
export interface LockState {
  /** Whether some context holds it now. */
  readonly held: boolean;
  /** The CPU holding it, while {@link held}. */
  readonly cpu: number;
}

/**
 * A lock word the kernel has seen, and who holds it. Records outlive one
 * acquisition (taking a lock again allocates nothing), so their fields
 * change: hand out {@link snapshot}s, not records.
 */
class LockRecord implements LockHolder, LockState {
  held = false;
  cpu = -1;
  level = 0;
  prog = "";
  insn = 0;
  /** The next record of the same region window, if any. */
  next: LockRecord | undefined = undefined;
  /** The address as the trace shows it, once asked for. */
  text: string | undefined = undefined;
  constructor(readonly lo: number, readonly hi: number) {}

  /** The lock's 64-bit address. */
  get addr(): bigint {
    return joinAddress(this.lo, this.hi);
  }

  /** A copy of the holder that stays as it is when this record changes. */
  snapshot(): LockHolder {
    return {
      cpu: this.cpu,
      level: this.level,
      prog: this.prog,
      insn: this.insn,
    };
  }
}

/** The 64-bit address whose halves are `lo`, `hi`. */
function joinAddress(lo: number, hi: number): bigint {
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}

/** The 32-bit halves [lo, hi] of an address, as int32. */
function halves(addr: bigint): [number, number] {
  return [
    Number(addr & 0xffffffffn) | 0,
    Number((addr >> 32n) & 0xffffffffn) | 0,
  ];
}

/** Stores the lock word (4 bytes) at the address whose halves are `lo`, `hi`. */
function writeLockWord(
  mem: AddressSpace,
  lo: number,
  hi: number,
  value: number,
): void {
  const off = mem.at(lo, hi, 0, 4, PERM_WRITE, -1);
  mem.hitView.setUint32(off, value, true);
}

const ACQUIRED: LockResult = { kind: "acquired" };
const NOT_HELD: UnlockResult = { kind: "not_held" };
/**
 * Records kept before released ones are dropped: objects with a lock of
 * their own come and go, and their records must not pile up.
 */
const RECORDS_KEPT = 4096;

/** The locks of one simulated kernel. */
export class SpinLocks {
  /**
   * Records by region window (`hi` − REGION_BASE_HI: a small integer, which
   * V8 hashes fastest), chained by offset within the window.
   */
  private readonly byWindow = new Map<number, LockRecord>();
  private records = 0;
  /**
   * The held records, in the order they were taken: the first
   * {@link heldLength} entries (the array is never cut, so taking and
   * releasing a lock allocates nothing).
   */
  private readonly held: LockRecord[] = [];
  private heldLength = 0;
  /** The record of the last lock operation: the same lock recurs. */
  private last: LockRecord | undefined = undefined;
  /**
   * The holder the last {@link tryLock} or {@link release} ran into (or
   * released): valid until the next lock operation, as records change.
   */
  conflict: LockHolder | undefined = undefined;

  /** The record of the lock at `hi:lo`, created on first sight when `create`. */
  private find(
    lo: number,
    hi: number,
    create: boolean,
  ): LockRecord | undefined {
    const last = this.last;
    if (last !== undefined && last.lo === lo && last.hi === hi) return last;
    const window = (hi - REGION_BASE_HI) | 0;
    const first = this.byWindow.get(window);
    for (let r = first; r !== undefined; r = r.next) {
      if (r.lo === lo) return this.last = r;
    }
    if (!create) return undefined;
    const record = new LockRecord(lo, hi);
    record.next = first;
    this.byWindow.set(window, record);
    this.records++;
    return this.last = record;
  }

  /** Drops a released record once too many are kept. */
  private forget(record: LockRecord): void {
    const window = (record.hi - REGION_BASE_HI) | 0;
    let r = this.byWindow.get(window);
    if (r === record) {
      if (record.next === undefined) this.byWindow.delete(window);
      else this.byWindow.set(window, record.next);
    } else {
      while (r !== undefined && r.next !== record) r = r.next;
      if (r !== undefined) r.next = record.next;
    }
    this.records--;
    if (this.last === record) this.last = undefined;
  }

  /**
   * Tries to take the lock at `hi:lo` for context (`cpu`, `level`) running
   * `prog` at slot `insn`; never blocks by itself. Returns
   * {@link LOCK_ACQUIRED}, {@link LOCK_CONTENDED} or {@link LOCK_DEADLOCK}
   * (the holder in {@link conflict}). Allocates nothing once warm.
   */
  tryLock(
    mem: AddressSpace,
    lo: number,
    hi: number,
    cpu: number,
    level: number,
    prog: string,
    insn: number,
  ): number {
    const found = this.find(lo, hi, false);
    if (found !== undefined && found.held) {
      this.conflict = found;
      return found.cpu === cpu ? LOCK_DEADLOCK : LOCK_CONTENDED;
    }
    // the word is the truth a BPF program could also see; keep it in step
    // (and an address no region holds faults here, before any record)
    writeLockWord(mem, lo, hi, 1);
    const record = found ?? this.find(lo, hi, true) as LockRecord;
    record.held = true;
    record.cpu = cpu;
    record.level = level;
    record.prog = prog;
    record.insn = insn;
    this.held[this.heldLength++] = record;
    this.conflict = undefined;
    return LOCK_ACQUIRED;
  }

  /**
   * Releases the lock at `hi:lo` held by context (`cpu`, `level`). Returns
   * {@link UNLOCK_RELEASED}, {@link UNLOCK_NOT_HELD} or
   * {@link UNLOCK_WRONG_OWNER}; {@link conflict} is the (former) holder.
   */
  release(
    mem: AddressSpace,
    lo: number,
    hi: number,
    cpu: number,
    level: number,
  ): number {
    const record = this.find(lo, hi, false);
    if (record === undefined || !record.held) {
      this.conflict = undefined;
      return UNLOCK_NOT_HELD;
    }
    this.conflict = record;
    if (record.cpu !== cpu || record.level !== level) {
      return UNLOCK_WRONG_OWNER;
    }
    writeLockWord(mem, lo, hi, 0);
    record.held = false;
    const held = this.held, n = this.heldLength - 1;
    let at = n;
    while (held[at] !== record) at--;
    for (let i = at; i < n; i++) held[i] = held[i + 1];
    this.heldLength = n;
    if (this.records > RECORDS_KEPT) this.forget(record);
    return UNLOCK_RELEASED;
  }

  /** Tries to take the lock at `addr` for `who`; never blocks by itself. */
  lock(mem: AddressSpace, addr: bigint, who: LockHolder): LockResult {
    const [lo, hi] = halves(addr);
    return this.lockAt(mem, lo, hi, addr, who);
  }

  /** {@link lock} with the address's 32-bit halves at hand. */
  lockAt(
    mem: AddressSpace,
    lo: number,
    hi: number,
    _addr: bigint,
    who: LockHolder,
  ): LockResult {
    const code = this.tryLock(
      mem,
      lo,
      hi,
      who.cpu,
      who.level,
      who.prog,
      who.insn,
    );
    if (code === LOCK_ACQUIRED) return ACQUIRED;
    const holder = (this.conflict as LockRecord).snapshot();
    return code === LOCK_DEADLOCK
      ? { kind: "deadlock", holder }
      : { kind: "contended", holder };
  }

  /** Releases the lock at `addr` held by `who`. */
  unlock(
    mem: AddressSpace,
    addr: bigint,
    who: { cpu: number; level: number },
  ): UnlockResult {
    const [lo, hi] = halves(addr);
    return this.unlockAt(mem, lo, hi, addr, who);
  }

  /** {@link unlock} with the address's 32-bit halves at hand. */
  unlockAt(
    mem: AddressSpace,
    lo: number,
    hi: number,
    _addr: bigint,
    who: { cpu: number; level: number },
  ): UnlockResult {
    const code = this.release(mem, lo, hi, who.cpu, who.level);
    if (code === UNLOCK_NOT_HELD) return NOT_HELD;
    const holder = (this.conflict as LockRecord).snapshot();
    return code === UNLOCK_RELEASED
      ? { kind: "released", holder }
      : { kind: "wrong_owner", holder };
  }

  /** Locks held by a context, e.g. to report one still held at program exit. */
  heldBy(cpu: number, level: number): [bigint, LockHolder][] {
    const out: [bigint, LockHolder][] = [];
    for (const held of this.heldRecords()) {
      if (held.cpu === cpu && held.level === level) {
        out.push([held.addr, held.snapshot()]);
      }
    }
    return out;
  }

  /** Whether context (`cpu`, `level`) holds any lock (without building a list). */
  holdsAny(cpu: number, level: number): boolean {
    const held = this.held;
    for (let i = 0; i < this.heldLength; i++) {
      if (held[i].cpu === cpu && held[i].level === level) return true;
    }
    return false;
  }

  /**
   * True when context (`cpu`, `level`) holds a lock in the region (the
   * allocation: map value, data section, object) that `address` is in.
   */
  holdsInRegionOf(
    mem: AddressSpace,
    cpu: number,
    level: number,
    address: bigint,
  ): boolean {
    if (this.heldLength === 0) return false;
    const region = mem.regionAt(address);
    for (const held of this.heldRecords()) {
      if (
        held.cpu === cpu && held.level === level &&
        mem.regionAt(held.addr) === region
      ) {
        return true;
      }
    }
    return false;
  }

  /** Who holds the lock at `addr`, if anyone. */
  holderOf(addr: bigint): LockHolder | undefined {
    const [lo, hi] = halves(addr);
    const record = this.find(lo, hi, false);
    return record?.held ? record.snapshot() : undefined;
  }

  /**
   * The live state of the lock at `hi:lo` (whether held, and by which CPU),
   * for a scheduler that polls a lock a CPU spins on. Once released, a
   * record may be dropped (when thousands of locks were seen) and a new one
   * made for the address: the old one then says "free" while the lock may
   * be held again — a poller takes "free" as "retry {@link tryLock}", which
   * tells the truth.
   */
  stateOf(lo: number, hi: number): LockState | undefined {
    return this.find(lo, hi, false);
  }

  /**
   * The address `hi:lo` as the trace shows it (`formatAddress`), kept on
   * the lock's record: every lock event names its lock.
   */
  textOf(lo: number, hi: number): string {
    const record = this.find(lo, hi, false);
    if (record === undefined) return formatAddress(joinAddress(lo, hi));
    return record.text ??= formatAddress(joinAddress(lo, hi));
  }

  /** The held records, in the order they were taken. */
  private heldRecords(): LockRecord[] {
    return this.held.slice(0, this.heldLength);
  }

  /** Number of locks held anywhere. */
  get heldCount(): number {
    return this.heldLength;
  }
}
