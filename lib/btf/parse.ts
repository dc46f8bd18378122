/**
 * `.BTF` reader: header, string section, type section. Checks mirror the
 * kernel's `btf_parse_hdr()`, `btf_check_sec_info()`, `btf_parse_str_sec()`
 * and the structural part of `btf_check_all_metas()` (sizes, kinds, name
 * offsets, referenced ids); messages reuse the kernel's wording.
 * @module
 */
import { BtfError, E2BIG, ENOTSUPP } from "./errors.ts";
import { BtfStrings } from "./strings.ts";
import { Btf } from "./btf.ts";
import { checkReferences } from "./validate.ts";
import {
  BTF_KIND,
  BTF_KIND_NAMES,
  type BtfHeader,
  type BtfKindName,
  type BtfMember,
  type BtfType,
  type BtfTypeBase,
} from "./types.ts";

/** `BTF_MAGIC`, little-endian in the first two bytes. */
export const BTF_MAGIC = 0xeb9f;
/** The only BTF version there is. */
export const BTF_VERSION = 1;
/** `sizeof(struct btf_header)`. */
export const BTF_HEADER_SIZE = 24;
/** `sizeof(struct btf_type)`. */
const TYPE_HEADER_SIZE = 12;
/** Bits of `info` that mean something (`BTF_INFO_MASK`). */
const BTF_INFO_MASK = 0x9f00ffff;

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

/** Mirrors `btf_parse_hdr()` + `btf_check_sec_info()`. */
function parseHeader(data: Uint8Array, view: DataView): BtfHeader {
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
function checkStrings(s: BtfStrings): void {
  const b = s.bytes;
  if (b.length === 0 || b[0] !== 0 || b[b.length - 1] !== 0) {
    throw new BtfError("Invalid string section", { offset: s.baseOffset });
  }
}

/** Bytes of kind-specific data after the 12-byte `btf_type`. */
function extraSize(kind: number, vlen: number): number {
  switch (kind) {
    case BTF_KIND.INT:
    case BTF_KIND.VAR:
    case BTF_KIND.DECL_TAG:
      return 4;
    case BTF_KIND.ARRAY:
      return 12;
    case BTF_KIND.STRUCT:
    case BTF_KIND.UNION:
    case BTF_KIND.DATASEC:
    case BTF_KIND.ENUM64:
      return vlen * 12;
    case BTF_KIND.ENUM:
    case BTF_KIND.FUNC_PROTO:
      return vlen * 8;
    default:
      return 0;
  }
}

function parseTypes(
  view: DataView,
  start: number,
  len: number,
  strings: BtfStrings,
): BtfType[] {
  const types: BtfType[] = [{
    id: 0,
    kind: "VOID",
    name: "",
    nameOff: 0,
    kflag: false,
    vlen: 0,
    offset: -1,
  }];
  const end = start + len;
  let pos = start;
  while (pos < end) {
    const id = types.length;
    const left = end - pos;
    if (left < TYPE_HEADER_SIZE) {
      throw new BtfError(`meta_left:${left} meta_needed:${TYPE_HEADER_SIZE}`, {
        typeId: id,
        offset: pos,
      });
    }
    const nameOff = view.getUint32(pos, true);
    const info = view.getUint32(pos + 4, true);
    const kindNum = (info >>> 24) & 0x1f;
    const vlen = info & 0xffff;
    if ((info & ~BTF_INFO_MASK) !== 0) {
      throw new BtfError(`Invalid btf_info:${info.toString(16)}`, {
        typeId: id,
        offset: pos + 4,
      });
    }
    if (kindNum === BTF_KIND.UNKN || kindNum > BTF_KIND.ENUM64) {
      throw new BtfError(`Invalid kind:${kindNum}`, {
        typeId: id,
        offset: pos + 4,
      });
    }
    const need = extraSize(kindNum, vlen);
    if (left - TYPE_HEADER_SIZE < need) {
      throw new BtfError(
        `meta_left:${left - TYPE_HEADER_SIZE} meta_needed:${need}`,
        {
          typeId: id,
          offset: pos,
        },
      );
    }
    const base: BtfTypeBase = {
      id,
      name: strings.at(nameOff, id),
      nameOff,
      kflag: (info >>> 31) === 1,
      vlen,
      offset: pos,
    };
    types.push(decodeBody(view, pos, kindNum, base, strings));
    pos += TYPE_HEADER_SIZE + need;
  }
  return types;
}

/** Decodes the kind-specific part of the type at `pos`. */
function decodeBody(
  view: DataView,
  pos: number,
  kindNum: number,
  base: BtfTypeBase,
  strings: BtfStrings,
): BtfType {
  const u32 = (at: number) => view.getUint32(at, true);
  const sizeOrType = u32(pos + 8);
  const body = pos + TYPE_HEADER_SIZE;
  const kind = BTF_KIND_NAMES[kindNum] as BtfKindName;
  const name = (off: number) => strings.at(off, base.id);
  switch (kindNum) {
    case BTF_KIND.INT: {
      const v = u32(body);
      return {
        ...base,
        kind: "INT",
        size: sizeOrType,
        encoding: (v >>> 24) & 0x0f,
        bitsOffset: (v >>> 16) & 0xff,
        nrBits: v & 0xff,
      };
    }
    case BTF_KIND.PTR:
    case BTF_KIND.TYPEDEF:
    case BTF_KIND.VOLATILE:
    case BTF_KIND.CONST:
    case BTF_KIND.RESTRICT:
    case BTF_KIND.TYPE_TAG:
      return {
        ...base,
        kind: kind as "PTR",
        type: sizeOrType,
      };
    case BTF_KIND.ARRAY:
      return {
        ...base,
        kind: "ARRAY",
        type: u32(body),
        indexType: u32(body + 4),
        nelems: u32(body + 8),
      };
    case BTF_KIND.STRUCT:
    case BTF_KIND.UNION: {
      const members: BtfMember[] = [];
      for (let i = 0; i < base.vlen; i++) {
        const at = body + i * 12;
        const rawOffset = u32(at + 8);
        members.push({
          name: name(u32(at)),
          nameOff: u32(at),
          type: u32(at + 4),
          // BTF_MEMBER_BIT_OFFSET / BTF_MEMBER_BITFIELD_SIZE apply under kflag only.
          bitOffset: base.kflag ? rawOffset & 0xffffff : rawOffset,
          bitfieldSize: base.kflag ? rawOffset >>> 24 : 0,
          rawOffset,
        });
      }
      return {
        ...base,
        kind: kind as "STRUCT",
        size: sizeOrType,
        members,
      };
    }
    case BTF_KIND.ENUM:
    case BTF_KIND.ENUM64: {
      const is64 = kindNum === BTF_KIND.ENUM64;
      const stride = is64 ? 12 : 8;
      const values = [];
      for (let i = 0; i < base.vlen; i++) {
        const at = body + i * stride;
        let value: bigint;
        if (is64) {
          const lo = BigInt(u32(at + 4));
          const hi = BigInt(u32(at + 8));
          const raw = (hi << 32n) | lo;
          value = base.kflag ? BigInt.asIntN(64, raw) : raw;
        } else {
          value = base.kflag
            ? BigInt(view.getInt32(at + 4, true))
            : BigInt(u32(at + 4));
        }
        values.push({ name: name(u32(at)), nameOff: u32(at), value });
      }
      return {
        ...base,
        kind: kind as "ENUM",
        size: sizeOrType,
        signed: base.kflag,
        values,
      };
    }
    case BTF_KIND.FWD:
      return {
        ...base,
        kind: "FWD",
        fwdKind: base.kflag ? "union" : "struct",
      };
    case BTF_KIND.FUNC:
      return {
        ...base,
        kind: "FUNC",
        type: sizeOrType,
        linkage: base.vlen,
      };
    case BTF_KIND.FUNC_PROTO: {
      const params = [];
      for (let i = 0; i < base.vlen; i++) {
        const at = body + i * 8;
        params.push({
          name: name(u32(at)),
          nameOff: u32(at),
          type: u32(at + 4),
        });
      }
      return {
        ...base,
        kind: "FUNC_PROTO",
        returnType: sizeOrType,
        params,
      };
    }
    case BTF_KIND.VAR:
      return {
        ...base,
        kind: "VAR",
        type: sizeOrType,
        linkage: u32(body),
      };
    case BTF_KIND.DATASEC: {
      const vars = [];
      for (let i = 0; i < base.vlen; i++) {
        const at = body + i * 12;
        vars.push({ type: u32(at), offset: u32(at + 4), size: u32(at + 8) });
      }
      return {
        ...base,
        kind: "DATASEC",
        size: sizeOrType,
        vars,
      };
    }
    case BTF_KIND.FLOAT:
      return {
        ...base,
        kind: "FLOAT",
        size: sizeOrType,
      };
    default: // DECL_TAG, the last kind left after parseTypes' range check
      return {
        ...base,
        kind: "DECL_TAG",
        type: sizeOrType,
        componentIdx: view.getInt32(body, true),
      };
  }
}
