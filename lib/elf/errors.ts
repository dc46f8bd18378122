/**
 * The one error class of the ELF loader. Every failure names the file and,
 * as far as it is known, the ELF section and the byte offset it is about, so
 * a user can open the object in `llvm-readelf` and look at the right place.
 * @module
 */

/** Where in an object a load failure happened. */
export interface LoadErrorLocation {
  /** The object's name as given to `loadObject` (usually its path). */
  readonly file: string;
  /** ELF section name, when the failure is about one section. */
  readonly section?: string;
  /** Byte offset: within the file, or within `section` when one is named. */
  readonly offset?: number;
}

/**
 * An object that cannot be loaded the way libbpf would load it. The message
 * reads `FILE: section 'NAME' (offset 0xOFF): reason`; `reason` alone is kept
 * for callers that print their own location. A wrapped error (for example a
 * BTF parse failure) is kept as `cause`.
 */
export class LoadError extends Error {
  /** The object's name as given to `loadObject`. */
  readonly file: string;
  /** ELF section name, if the failure is about one section. */
  readonly section: string | undefined;
  /** Byte offset (in the section when `section` is set, else in the file). */
  readonly offset: number | undefined;
  /** The reason without the location. */
  readonly reason: string;

  /** Builds the error; see the class comment for the message format. */
  constructor(
    where: LoadErrorLocation,
    reason: string,
    options?: { cause?: unknown },
  ) {
    super(`${describeLocation(where)}: ${reason}`, options);
    this.name = "LoadError";
    this.file = where.file;
    this.section = where.section;
    this.offset = where.offset;
    this.reason = reason;
  }
}

/** `0x1f` style hex for offsets in messages. */
export function hex(value: number | bigint): string {
  return `0x${value.toString(16)}`;
}

function describeLocation(where: LoadErrorLocation): string {
  let text = where.file;
  if (where.section !== undefined) text += `: section '${where.section}'`;
  if (where.offset !== undefined) {
    text += where.section !== undefined
      ? ` (offset ${hex(where.offset)})`
      : `: offset ${hex(where.offset)}`;
  }
  return text;
}
