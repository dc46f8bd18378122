/**
 * Run-time errors of the interpreter. A BPF program never makes the
 * simulator throw a plain JS exception: a bad memory access becomes a
 * {@link MemoryFault}, every other way a run can go wrong (running off the
 * end, an unknown helper, too many frames, the step limit) an
 * {@link ExecError}. Both carry the slot index of the instruction at fault.
 * @module
 */

/** Whether an access loads or stores. */
export type AccessKind = "read" | "write";

/** Why an access was refused. */
export type FaultReason =
  | "unmapped"
  | "use-after-free"
  | "double-free"
  | "out-of-bounds"
  | "not-readable"
  | "not-writable";

/** What a fault knows about the region an address fell into. */
export interface FaultRegionInfo {
  /** Region id (the upper half of the address, see `memory.ts`). */
  readonly id: number;
  /** Region kind: `stack`, `ctx`, `packet`, `map_value`, `alloc`, `mem`, … */
  readonly kind: string;
  /** Region name, e.g. `stack[0]` or `map_value:counts[3]`. */
  readonly name: string;
  /** Region size in bytes. */
  readonly size: number;
}

/** Formats a 64-bit address the way the kernel prints pointers (`%px`). */
export function formatAddress(address: bigint): string {
  return "0x" + BigInt.asUintN(64, address).toString(16).padStart(16, "0");
}

/**
 * A load or store the memory model refused: out of bounds, wrong permission,
 * unmapped, or to a freed region. Raised by the interpreter and by the
 * address-space helpers that helper functions use.
 */
export class MemoryFault extends Error {
  /** Slot index of the faulting instruction (-1 when raised outside a program). */
  readonly insnIndex: number;
  /** The 64-bit address accessed (unsigned). */
  readonly address: bigint;
  /** The address as 16 hex digits, `0x…`. */
  readonly addressHex: string;
  /** The region the address falls into, or `undefined` for unmapped memory. */
  readonly region: FaultRegionInfo | undefined;
  /** Offset of the access from the start of `region` (may be negative); 0 when unmapped. */
  readonly offset: number;
  /** Bytes accessed. */
  readonly size: number;
  /** Load or store. */
  readonly access: AccessKind;
  /** Why the access was refused. */
  readonly reason: FaultReason;

  /** Builds the fault; the message reads like a KASAN report's first line. */
  constructor(
    insnIndex: number,
    address: bigint,
    region: FaultRegionInfo | undefined,
    offset: number,
    size: number,
    access: AccessKind,
    reason: FaultReason,
  ) {
    const addressHex = formatAddress(address);
    const where = region === undefined
      ? "unmapped memory"
      : `${region.kind} region '${region.name}' (size ${region.size}) at offset ${offset}`;
    const at = insnIndex >= 0 ? `insn ${insnIndex}: ` : "";
    super(
      `${at}${reason}: ${access} of size ${size} at ${addressHex} in ${where}`,
    );
    this.name = "MemoryFault";
    this.insnIndex = insnIndex;
    this.address = BigInt.asUintN(64, address);
    this.addressHex = addressHex;
    this.region = region;
    this.offset = offset;
    this.size = size;
    this.access = access;
    this.reason = reason;
  }
}

/**
 * Any other run-time failure: running off the end, a jump out of range, an
 * unknown helper or kfunc, too deep a call stack, the step limit, an
 * instruction the interpreter cannot execute, or a helper that threw.
 */
export class ExecError extends Error {
  /** Slot index of the instruction at fault (-1 when not about one slot). */
  readonly insnIndex: number;
  /** The reason without the index, e.g. `unknown helper 99`. */
  readonly reason: string;

  /** Builds the error; the message reads `insn N: reason`. */
  constructor(insnIndex: number, reason: string, options?: ErrorOptions) {
    super(insnIndex >= 0 ? `insn ${insnIndex}: ${reason}` : reason, options);
    this.name = "ExecError";
    this.insnIndex = insnIndex;
    this.reason = reason;
  }
}
