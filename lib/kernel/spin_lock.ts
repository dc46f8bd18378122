/**
 * Runtime of `bpf_spin_lock` / `bpf_spin_unlock`: a lock word in BPF memory
 * (a `struct bpf_spin_lock`, 4 bytes: 0 free, 1 held) plus the bookkeeping a
 * lockdep-style checker needs — who holds each lock, on which CPU and at
 * which context level. A CPU that finds the lock taken by another CPU spins;
 * one that finds it taken by an interrupted context of its own (an NMI
 * interrupting the holder) can never get it: that is a deadlock.
 * @module
 */
import type { AddressSpace } from "../exec/memory.ts";

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

/** The locks of one simulated kernel. */
export class SpinLocks {
  private readonly holders = new Map<bigint, LockHolder>();

  /** Tries to take the lock at `addr` for `who`; never blocks by itself. */
  lock(mem: AddressSpace, addr: bigint, who: LockHolder): LockResult {
    const holder = this.holders.get(addr);
    if (holder !== undefined) {
      return holder.cpu === who.cpu
        ? { kind: "deadlock", holder }
        : { kind: "contended", holder };
    }
    // the word is the truth a BPF program could also see; keep it in step
    mem.write(addr, 4, 1n);
    this.holders.set(addr, who);
    return { kind: "acquired" };
  }

  /** Releases the lock at `addr` held by `who`. */
  unlock(
    mem: AddressSpace,
    addr: bigint,
    who: { cpu: number; level: number },
  ): UnlockResult {
    const holder = this.holders.get(addr);
    if (holder === undefined) return { kind: "not_held" };
    if (holder.cpu !== who.cpu || holder.level !== who.level) {
      return { kind: "wrong_owner", holder };
    }
    this.holders.delete(addr);
    mem.write(addr, 4, 0n);
    return { kind: "released", holder };
  }

  /** Locks held by a context, e.g. to report one still held at program exit. */
  heldBy(cpu: number, level: number): [bigint, LockHolder][] {
    return [...this.holders].filter(([, h]) =>
      h.cpu === cpu && h.level === level
    );
  }

  /** Number of locks held anywhere. */
  get heldCount(): number {
    return this.holders.size;
  }
}
