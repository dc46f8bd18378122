/**
 * The allocator's misuse reports: a double free, a free of something that is
 * not one of its objects, or an object still handed out when the allocator
 * is destroyed — worded like the KASAN / kmemleak reports they stand for.
 * @module
 */
import { formatAddress } from "../exec/fault.ts";

/** What kind of allocator misuse was detected. */
export type MemAllocErrorKind = "double-free" | "invalid-free" | "leak";

/** Where a {@link MemAllocError} happened and the object's history. */
export interface MemAllocErrorSites {
  /** CPU of the faulting call (-1 for leaks found by destroy). */
  readonly cpu?: number;
  /** Site of the faulting call, e.g. `prog foo insn 12`. */
  readonly site?: string;
  /** Site of the object's allocation, when known. */
  readonly allocSite?: string;
  /** Site of the earlier free, when known. */
  readonly freeSite?: string;
}

/**
 * A KASAN-style report of allocator misuse: what, at which address, on
 * which CPU, with the allocation and free sites the callers passed.
 */
export class MemAllocError extends Error {
  /** What went wrong. */
  readonly kind: MemAllocErrorKind;
  /** The pointer passed (or, for a leak, the object's address). */
  readonly address: bigint;
  /** CPU of the faulting call (-1 for leaks found by destroy). */
  readonly cpu: number;
  /** Site of the faulting call. */
  readonly site: string;
  /** Site of the object's allocation ("" when unknown). */
  readonly allocSite: string;
  /** Site of the earlier free ("" when unknown). */
  readonly freeSite: string;

  /** Builds the report; the first line reads like KASAN's. */
  constructor(
    kind: MemAllocErrorKind,
    address: bigint,
    detail: string,
    sites: MemAllocErrorSites = {},
  ) {
    const { cpu = -1, site = "", allocSite = "", freeSite = "" } = sites;
    let message = `BUG: KASAN: ${kind}${site === "" ? "" : ` in ${site}`}: ` +
      `${formatAddress(address)}${cpu >= 0 ? ` on CPU ${cpu}` : ""}: ${detail}`;
    if (allocSite !== "") message += `; allocated at ${allocSite}`;
    if (freeSite !== "") message += `; freed at ${freeSite}`;
    super(message);
    this.name = "MemAllocError";
    this.kind = kind;
    this.address = address;
    this.cpu = cpu;
    this.site = site;
    this.allocSite = allocSite;
    this.freeSite = freeSite;
  }
}
