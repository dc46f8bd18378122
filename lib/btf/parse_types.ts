/**
 * The `.BTF` type section: each `struct btf_type` and its kind-specific data,
 * checked as the structural part of `btf_check_all_metas()` checks them
 * (sizes, `info` bits, kinds), with the kernel's messages.
 * @module
 */
import { BtfError } from "./errors.ts";
import type { BtfStrings } from "./strings.ts";
import {
  BTF_KIND,
  BTF_KIND_NAMES,
  type BtfKindName,
  type BtfMember,
  type BtfType,
  type BtfTypeBase,
} from "./types.ts";

/** `sizeof(struct btf_type)`. */
const TYPE_HEADER_SIZE = 12;
/** Bits of `info` that mean something (`BTF_INFO_MASK`). */
const BTF_INFO_MASK = 0x9f00ffff;

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

/**
 * Decodes the type section (`len` bytes from `start`) into types by id, id 0
 * being `void`; mirrors the structural part of `btf_check_all_metas()`.
 */
export function parseTypes(
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
