/**
 * The BTF string section: NUL-terminated names addressed by byte offset.
 * Names are decoded once and cached, since a type section refers to the same
 * few offsets (`int`, member names) again and again.
 * @module
 */
import { BtfError } from "./errors.ts";

const utf8 = new TextDecoder("utf-8", { fatal: false });
const latin1 = new TextDecoder("latin1");

/** Read-only view of a string section with cached decoding. */
export class BtfStrings {
  /** The raw section bytes (first and last byte are NUL). */
  readonly bytes: Uint8Array;
  /** Absolute offset of the section in the `.BTF` data, for error messages. */
  readonly baseOffset: number;
  readonly #cache = new Map<number, string>();
  /** The section as one string, one char per byte, so offsets carry over. */
  readonly #text: string;
  /** True when some byte is >= 0x80 and names may need UTF-8 decoding. */
  readonly #hasNonAscii: boolean;

  /** Wraps `bytes`; `baseOffset` is where they sit in the whole `.BTF`. */
  constructor(bytes: Uint8Array, baseOffset: number) {
    this.bytes = bytes;
    this.baseOffset = baseOffset;
    this.#text = latin1.decode(bytes);
    // deno-lint-ignore no-control-regex
    this.#hasNonAscii = /[^\x00-\x7f]/.test(this.#text);
  }

  /** Section length in bytes. */
  get length(): number {
    return this.bytes.length;
  }

  /** True when `off` points inside the section (`btf_name_offset_valid`). */
  isValidOffset(off: number): boolean {
    return off >= 0 && off < this.bytes.length;
  }

  /**
   * The string at `off`. Throws `BtfError` when `off` is outside the
   * section; `typeId` (when given) names the type that referred to it.
   */
  at(off: number, typeId = -1): string {
    const cached = this.#cache.get(off);
    if (cached !== undefined) return cached;
    if (!this.isValidOffset(off)) {
      throw new BtfError(
        `Invalid name_offset:${off} (string section is ${this.bytes.length} bytes)`,
        { typeId, offset: this.baseOffset },
      );
    }
    const s = this.#decode(off);
    this.#cache.set(off, s);
    return s;
  }

  #decode(off: number): string {
    // The section ends in NUL (checked at parse time), so there is an end.
    let end = this.#text.indexOf("\0", off);
    if (end < 0) end = this.#text.length;
    if (this.#hasNonAscii) return utf8.decode(this.bytes.subarray(off, end));
    return this.#text.slice(off, end);
  }
}
