/**
 * `.BTF` reader: header, string section, type section. Checks mirror the
 * kernel's `btf_parse_hdr()`, `btf_check_sec_info()`, `btf_parse_str_sec()`
 * and the structural part of `btf_check_all_metas()` (sizes, kinds, name
 * offsets, referenced ids); messages reuse the kernel's wording. The header
 * and section checks live in `parse_header.ts`, the type decoding in
 * `parse_types.ts`.
 * @module
 */
import { BtfStrings } from "./strings.ts";
import { Btf } from "./btf.ts";
import { checkReferences } from "./validate.ts";
import { checkStrings, parseHeader } from "./parse_header.ts";
import { parseTypes } from "./parse_types.ts";

export { BTF_HEADER_SIZE, BTF_MAGIC, BTF_VERSION } from "./parse_header.ts";

/** Parses and checks a `.BTF` section. Throws `BtfError` on bad input. */
export function parseBtf(data: Uint8Array): Btf {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const header = parseHeader(data, view);
  const secBase = header.hdrLen;
  const strings = new BtfStrings(
    data.subarray(
      secBase + header.strOff,
      secBase + header.strOff + header.strLen,
    ),
    secBase + header.strOff,
  );
  checkStrings(strings);
  const types = parseTypes(
    view,
    secBase + header.typeOff,
    header.typeLen,
    strings,
  );
  checkReferences(types);
  return new Btf(header, types, strings);
}
