/**
 * The one error class of `lib/btf`. It says *where* the input went wrong (a
 * byte offset into `.BTF` / `.BTF.ext`, or a type id) and, when the kernel or
 * libbpf would fail the same input, with which errno.
 * @module
 */

/** Linux errno values that BTF parsing and special-field discovery return. */
export {
  E2BIG,
  EACCES,
  EEXIST,
  EFAULT,
  EINVAL,
  ELOOP,
  ENOENT,
  ENOTSUPP,
  EOPNOTSUPP,
  ERANGE,
} from "../uapi/errno.ts";
import { EINVAL } from "../uapi/errno.ts";

/** Where a `BtfError` happened, as far as it is known. */
export interface BtfErrorLocation {
  /** Byte offset into the section being parsed (`.BTF` or `.BTF.ext`). */
  readonly offset?: number;
  /** The BTF type id concerned. */
  readonly typeId?: number;
  /** Positive errno the kernel/libbpf would return for the same input. */
  readonly errno?: number;
}

/**
 * Malformed BTF, or BTF that the kernel would refuse. The message reads
 * `BTF [id] @0xoff: reason`, with the parts that are known.
 */
export class BtfError extends Error {
  /** Byte offset into the parsed section, or -1 when not about a byte. */
  readonly offset: number;
  /** Type id concerned, or -1 when not about one type. */
  readonly typeId: number;
  /** Positive errno (`EINVAL` unless the kernel says otherwise). */
  readonly errno: number;
  /** The reason without the location prefix. */
  readonly reason: string;

  /** Builds the error; `where` gives the location and errno. */
  constructor(reason: string, where: BtfErrorLocation = {}) {
    const typeId = where.typeId ?? -1;
    const offset = where.offset ?? -1;
    let prefix = "BTF";
    if (typeId >= 0) prefix += ` [${typeId}]`;
    if (offset >= 0) prefix += ` @0x${offset.toString(16)}`;
    super(`${prefix}: ${reason}`);
    this.name = "BtfError";
    this.offset = offset;
    this.typeId = typeId;
    this.errno = where.errno ?? EINVAL;
    this.reason = reason;
  }
}
