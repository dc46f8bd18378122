/**
 * Test-only `.BTF` writer: strings and raw type words in, section bytes
 * out, so tests can build exactly the malformed input they need.
 * @module
 */

/** Builds a `.BTF` blob from raw 32-bit words per type. */
export class BtfBuilder {
  readonly #strings: number[] = [0];
  readonly #types: number[] = [];

  /** Adds `s` to the string section; returns its offset. */
  str(s: string): number {
    const off = this.#strings.length;
    for (const b of new TextEncoder().encode(s)) this.#strings.push(b);
    this.#strings.push(0);
    return off;
  }

  /** Appends raw words (a `btf_type` and its trailing data). */
  words(...w: number[]): this {
    this.#types.push(...w);
    return this;
  }

  /** `info` word: kind, vlen, kflag. */
  static info(kind: number, vlen = 0, kflag = false): number {
    return ((kflag ? 1 : 0) << 31 | kind << 24 | vlen) >>> 0;
  }

  /** An INT type: name, size, bits (signed when `signed`). */
  int(name: string, size: number, signed = true): this {
    const enc = signed ? 1 : 0;
    return this.words(
      this.str(name),
      BtfBuilder.info(1),
      size,
      (enc << 24) | (size * 8),
    );
  }

  /** The whole section: header, types, strings. */
  build(): Uint8Array {
    const typeLen = this.#types.length * 4;
    const out = new Uint8Array(24 + typeLen + this.#strings.length);
    const v = new DataView(out.buffer);
    v.setUint16(0, 0xeb9f, true);
    out[2] = 1;
    v.setUint32(4, 24, true);
    v.setUint32(8, 0, true);
    v.setUint32(12, typeLen, true);
    v.setUint32(16, typeLen, true);
    v.setUint32(20, this.#strings.length, true);
    this.#types.forEach((w, i) => v.setUint32(24 + i * 4, w, true));
    out.set(this.#strings, 24 + typeLen);
    return out;
  }
}
