/**
 * `.BTF.ext` reader: func_info, line_info and CO-RE relocation records,
 * grouped per ELF section. Layout and checks follow libbpf's
 * `btf_ext__new()` / `btf_ext_parse_hdr()` / `btf_ext_parse_sec_info()`,
 * with their messages; strings and type ids are checked against the `.BTF`.
 * @module
 */
import type { Btf } from "./btf.ts";
import { BtfError, EOPNOTSUPP } from "./errors.ts";
import { BTF_MAGIC, BTF_VERSION } from "./parse.ts";

/** The decoded `struct btf_ext_header` (core_relo fields 0 when absent). */
export interface BtfExtHeader {
  /** `BTF_MAGIC` (0xeb9f). */
  readonly magic: number;
  /** Always 1. */
  readonly version: number;
  /** Always 0. */
  readonly flags: number;
  /** Header length; 32 when core_relo fields are present. */
  readonly hdrLen: number;
  /** func_info offset, relative to the end of the header. */
  readonly funcInfoOff: number;
  /** func_info length in bytes. */
  readonly funcInfoLen: number;
  /** line_info offset, relative to the end of the header. */
  readonly lineInfoOff: number;
  /** line_info length in bytes. */
  readonly lineInfoLen: number;
  /** core_relo offset, relative to the end of the header. */
  readonly coreReloOff: number;
  /** core_relo length in bytes. */
  readonly coreReloLen: number;
}

/** `struct bpf_func_info`: which FUNC starts at `insnOff`. */
export interface BpfFuncInfo {
  /** Byte offset of the first instruction within its ELF section. */
  readonly insnOff: number;
  /** FUNC type id. */
  readonly typeId: number;
}

/** `struct bpf_line_info`, with its strings and `line_col` decoded. */
export interface BpfLineInfo {
  /** Byte offset of the instruction within its ELF section. */
  readonly insnOff: number;
  /** String offset of the file name. */
  readonly fileNameOff: number;
  /** String offset of the source line. */
  readonly lineOff: number;
  /** Raw `line_col`: line << 10 | column. */
  readonly lineCol: number;
  /** Source file name as the compiler saw it. */
  readonly fileName: string;
  /** The source line's text. */
  readonly line: string;
  /** `BPF_LINE_INFO_LINE_NUM(line_col)`. */
  readonly lineNum: number;
  /** `BPF_LINE_INFO_LINE_COL(line_col)`. */
  readonly column: number;
}

/** `struct bpf_core_relo`. */
export interface BpfCoreRelo {
  /** Byte offset of the instruction within its ELF section. */
  readonly insnOff: number;
  /** Local root type id. */
  readonly typeId: number;
  /** String offset of the access string. */
  readonly accessStrOff: number;
  /** Access string such as `0:1:2`. */
  readonly accessStr: string;
  /** `BPF_CORE_*` relocation kind. */
  readonly kind: number;
}

/** The records of one kind for one ELF section. */
export interface BtfExtSection<T> {
  /** String offset of the section name. */
  readonly secNameOff: number;
  /** ELF section name, e.g. `tc` or `.text`. */
  readonly secName: string;
  /** The records, in file order. */
  readonly records: readonly T[];
}

/** Parsed `.BTF.ext`. */
export interface BtfExt {
  /** The decoded header. */
  readonly header: BtfExtHeader;
  /** Record sizes as encoded (at least 8, 16, 16). */
  readonly funcInfoRecSize: number;
  /** Encoded line_info record size (at least 16). */
  readonly lineInfoRecSize: number;
  /** Encoded core_relo record size (at least 16). */
  readonly coreReloRecSize: number;
  /** func_info records per ELF section. */
  readonly funcInfo: readonly BtfExtSection<BpfFuncInfo>[];
  /** line_info records per ELF section. */
  readonly lineInfo: readonly BtfExtSection<BpfLineInfo>[];
  /** CO-RE relocation records per ELF section. */
  readonly coreRelo: readonly BtfExtSection<BpfCoreRelo>[];
}

/** The records of `secName` in one of `BtfExt`'s lists ([] if none). */
export function extRecordsFor<T>(
  list: readonly BtfExtSection<T>[],
  secName: string,
): readonly T[] {
  return list.filter((s) => s.secName === secName).flatMap((s) => s.records);
}

interface InfoKind<T> {
  readonly desc: string;
  readonly off: number;
  readonly len: number;
  readonly minRecSize: number;
  readonly read: (at: number) => T;
}

/** Parses `.BTF.ext` bytes against the object's `btf`. Throws `BtfError`. */
export function parseBtfExt(data: Uint8Array, btf: Btf): BtfExt {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const u32 = (at: number) => view.getUint32(at, true);
  const header = parseExtHeader(data, view);
  const str = (off: number, at: number, what: string): string => {
    if (!btf.isValidStringOffset(off)) {
      throw new BtfError(`.BTF.ext ${what} string offset ${off} out of range`, {
        offset: at,
      });
    }
    return btf.stringAt(off);
  };
  const typeId = (id: number, at: number): number => {
    if (id >= btf.typeCount) {
      throw new BtfError(`.BTF.ext type id ${id} out of range`, {
        offset: at,
        typeId: id,
      });
    }
    return id;
  };
  const base = header.hdrLen;
  const parse = <T>(k: InfoKind<T>) => parseInfo(data, view, base, k, str);
  const funcInfo = parse<BpfFuncInfo>({
    desc: "func_info",
    off: header.funcInfoOff,
    len: header.funcInfoLen,
    minRecSize: 8,
    read: (at) => ({ insnOff: u32(at), typeId: typeId(u32(at + 4), at + 4) }),
  });
  const lineInfo = parse<BpfLineInfo>({
    desc: "line_info",
    off: header.lineInfoOff,
    len: header.lineInfoLen,
    minRecSize: 16,
    read: (at) => {
      const lineCol = u32(at + 12);
      return {
        insnOff: u32(at),
        fileNameOff: u32(at + 4),
        lineOff: u32(at + 8),
        lineCol,
        fileName: str(u32(at + 4), at + 4, "file name"),
        line: str(u32(at + 8), at + 8, "line"),
        lineNum: lineCol >>> 10,
        column: lineCol & 0x3ff,
      };
    },
  });
  const coreRelo = parse<BpfCoreRelo>({
    desc: "core_relo",
    off: header.coreReloOff,
    len: header.coreReloLen,
    minRecSize: 16,
    read: (at) => ({
      insnOff: u32(at),
      typeId: typeId(u32(at + 4), at + 4),
      accessStrOff: u32(at + 8),
      accessStr: str(u32(at + 8), at + 8, "access"),
      kind: u32(at + 12),
    }),
  });
  return {
    header,
    funcInfoRecSize: funcInfo.recSize,
    lineInfoRecSize: lineInfo.recSize,
    coreReloRecSize: coreRelo.recSize,
    funcInfo: funcInfo.sections,
    lineInfo: lineInfo.sections,
    coreRelo: coreRelo.sections,
  };
}

/** Mirrors `btf_ext_parse_hdr()` plus `btf_ext__new()`'s length rules. */
function parseExtHeader(data: Uint8Array, view: DataView): BtfExtHeader {
  const u32 = (at: number) => view.getUint32(at, true);
  if (data.length < 8 || data.length < u32(4)) {
    throw new BtfError("BTF.ext header not found", { offset: 0 });
  }
  const magic = view.getUint16(0, true);
  if (magic !== BTF_MAGIC) {
    throw new BtfError(`Invalid BTF.ext magic:${magic.toString(16)}`, {
      offset: 0,
    });
  }
  const version = data[2];
  if (version !== BTF_VERSION) {
    throw new BtfError(`Unsupported BTF.ext version:${version}`, {
      offset: 2,
      errno: EOPNOTSUPP,
    });
  }
  if (data[3] !== 0) {
    throw new BtfError(`Unsupported BTF.ext flags:${data[3].toString(16)}`, {
      offset: 3,
      errno: EOPNOTSUPP,
    });
  }
  const hdrLen = u32(4);
  if (data.length === hdrLen) {
    throw new BtfError("BTF.ext has no data", { offset: 4 });
  }
  if (hdrLen < 24) {
    throw new BtfError(`BTF.ext hdr_len ${hdrLen} lacks line_info`, {
      offset: 4,
    });
  }
  const hasCore = hdrLen >= 32;
  return {
    magic,
    version,
    flags: 0,
    hdrLen,
    funcInfoOff: u32(8),
    funcInfoLen: u32(12),
    lineInfoOff: u32(16),
    lineInfoLen: u32(20),
    coreReloOff: hasCore ? u32(24) : 0,
    coreReloLen: hasCore ? u32(28) : 0,
  };
}

/** Mirrors `btf_ext_parse_sec_info()`, then reads every record. */
function parseInfo<T>(
  data: Uint8Array,
  view: DataView,
  base: number,
  k: InfoKind<T>,
  str: (off: number, at: number, what: string) => string,
): { recSize: number; sections: BtfExtSection<T>[] } {
  const sections: BtfExtSection<T>[] = [];
  if (k.len === 0) return { recSize: k.minRecSize, sections };
  const start = base + k.off;
  const fail = (reason: string, at: number): never => {
    throw new BtfError(reason, { offset: at });
  };
  if (k.off & 3) {
    fail(`.BTF.ext ${k.desc} section is not aligned to 4 bytes`, start);
  }
  if (start + k.len > data.length) {
    fail(
      `${k.desc} section (off:${k.off} len:${k.len}) is beyond the end of the ELF section .BTF.ext`,
      start,
    );
  }
  if (k.len < 4) fail(`.BTF.ext ${k.desc} record size not found`, start);
  const recSize = view.getUint32(start, true);
  if (recSize < k.minRecSize || recSize & 3) {
    fail(
      `${k.desc} section in .BTF.ext has invalid record size ${recSize}`,
      start,
    );
  }
  let pos = start + 4;
  const end = start + k.len;
  if (pos === end) fail(`${k.desc} section in .BTF.ext has no records`, pos);
  while (pos < end) {
    if (end - pos < 8) {
      fail(`${k.desc} section header is not found in .BTF.ext`, pos);
    }
    const secNameOff = view.getUint32(pos, true);
    const num = view.getUint32(pos + 4, true);
    if (num === 0 || end - pos - 8 < num * recSize) {
      fail(`${k.desc} section has incorrect num_records in .BTF.ext`, pos + 4);
    }
    const secName = str(secNameOff, pos, "section name");
    const records: T[] = [];
    for (let i = 0; i < num; i++) records.push(k.read(pos + 8 + i * recSize));
    sections.push({ secNameOff, secName, records });
    pos += 8 + num * recSize;
  }
  return { recSize, sections };
}
