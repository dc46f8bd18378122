/**
 * The `.BTF` header and sections: `btf_parse_hdr()`, `btf_check_sec_info()`
 * and `btf_parse_str_sec()`, with the kernel's messages.
 * @module
 */
import { BtfError, E2BIG, ENOTSUPP } from "./errors.ts";
import type { BtfStrings } from "./strings.ts";
import type { BtfHeader } from "./types.ts";

/** `BTF_MAGIC`, little-endian in the first two bytes. */
export const BTF_MAGIC = 0xeb9f;
/** The only BTF version there is. */
export const BTF_VERSION = 1;
/** `sizeof(struct btf_header)`. */
export const BTF_HEADER_SIZE = 24;
/** Mirrors `btf_parse_hdr()` + `btf_check_sec_info()`. */
export function parseHeader(data: Uint8Array, view: DataView): BtfHeader {
  if (data.length < 8) {
    throw new BtfError(`hdr_len not found (${data.length} bytes)`, {
      offset: 0,
    });
  }
  const magic = view.getUint16(0, true);
  if (magic !== BTF_MAGIC) {
    throw new BtfError(`Invalid magic 0x${magic.toString(16)}`, { offset: 0 });
  }
  const version = view.getUint8(2);
  const flags = view.getUint8(3);
  const hdrLen = view.getUint32(4, true);
  if (data.length < hdrLen || hdrLen < BTF_HEADER_SIZE) {
    throw new BtfError(
      `btf_header not found (hdr_len ${hdrLen}, ${data.length} bytes)`,
      {
        offset: 4,
      },
    );
  }
  for (let i = BTF_HEADER_SIZE; i < hdrLen; i++) {
    if (data[i] !== 0) {
      throw new BtfError("Unsupported btf_header", { offset: i, errno: E2BIG });
    }
  }
  if (version !== BTF_VERSION) {
    throw new BtfError(`Unsupported version ${version}`, {
      offset: 2,
      errno: ENOTSUPP,
    });
  }
  if (flags !== 0) {
    throw new BtfError(`Unsupported flags 0x${flags.toString(16)}`, {
      offset: 3,
      errno: ENOTSUPP,
    });
  }
  if (data.length === hdrLen) throw new BtfError("No data", { offset: hdrLen });
  const header: BtfHeader = {
    magic,
    version,
    flags,
    hdrLen,
    typeOff: view.getUint32(8, true),
    typeLen: view.getUint32(12, true),
    strOff: view.getUint32(16, true),
    strLen: view.getUint32(20, true),
  };
  checkSections(header, data.length - hdrLen);
  return header;
}

/** Mirrors `btf_check_sec_info()`: sections tile the data, no gaps, no overlap. */
function checkSections(h: BtfHeader, expectedTotal: number): void {
  const secs = [
    { name: "type", off: h.typeOff, len: h.typeLen, at: 8 },
    { name: "string", off: h.strOff, len: h.strLen, at: 16 },
  ].sort((a, b) => a.off - b.off);
  let total = 0;
  for (const s of secs) {
    const where = { offset: s.at };
    if (expectedTotal < s.off) {
      throw new BtfError(
        `Invalid section offset (${s.name} section at ${s.off})`,
        where,
      );
    }
    if (total < s.off) throw new BtfError("Unsupported section found", where);
    if (total > s.off) throw new BtfError("Section overlap found", where);
    if (expectedTotal - total < s.len) {
      throw new BtfError(
        `Total section length too long (${s.name} section)`,
        where,
      );
    }
    total += s.len;
  }
  if (expectedTotal !== total) {
    throw new BtfError("Unsupported section found", {
      offset: h.hdrLen + total,
    });
  }
  if (h.typeOff % 4 !== 0) {
    throw new BtfError("Unaligned type_off", { offset: 8 });
  }
  if (h.typeLen === 0) throw new BtfError("No type found", { offset: 12 });
}

/** Mirrors `btf_parse_str_sec()`: non-empty, starts and ends with NUL. */
export function checkStrings(s: BtfStrings): void {
  const b = s.bytes;
  if (b.length === 0 || b[0] !== 0 || b[b.length - 1] !== 0) {
    throw new BtfError("Invalid string section", { offset: s.baseOffset });
  }
}
