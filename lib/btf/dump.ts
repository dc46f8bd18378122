/**
 * `bpftool btf dump file X.o` (raw format) printer, byte-for-byte as
 * bpftool v7 prints it (`dump_btf_type()` in tools/bpf/bpftool/btf.c).
 * @module
 */
import type { Btf } from "./btf.ts";
import {
  BTF_INT_BOOL,
  BTF_INT_CHAR,
  BTF_INT_SIGNED,
  type BtfType,
} from "./types.ts";

/** Every type from id 1 on, one `[id] KIND 'name' …` block each. */
export function dumpBtf(btf: Btf): string {
  let out = "";
  for (let id = 1; id < btf.typeCount; id++) out += dumpBtfType(btf, id);
  return out;
}

/** One type in bpftool's raw format, with its trailing newline. */
export function dumpBtfType(btf: Btf, id: number): string {
  const t = btf.typeById(id);
  let s = `[${id}] ${kindName(t)} '${quoted(t.nameOff, t.name)}'`;
  switch (t.kind) {
    case "INT":
      s += ` size=${t.size} bits_offset=${t.bitsOffset} nr_bits=${t.nrBits}` +
        ` encoding=${intEncoding(t.encoding)}`;
      break;
    case "PTR":
    case "CONST":
    case "VOLATILE":
    case "RESTRICT":
    case "TYPEDEF":
    case "TYPE_TAG":
      s += ` type_id=${t.type}`;
      break;
    case "ARRAY":
      s +=
        ` type_id=${t.type} index_type_id=${t.indexType} nr_elems=${t.nelems}`;
      break;
    case "STRUCT":
    case "UNION":
      s += ` size=${t.size} vlen=${t.vlen}`;
      for (const m of t.members) {
        s += `\n\t'${
          quoted(m.nameOff, m.name)
        }' type_id=${m.type} bits_offset=${m.bitOffset}`;
        if (m.bitfieldSize) s += ` bitfield_size=${m.bitfieldSize}`;
      }
      break;
    case "ENUM":
    case "ENUM64": {
      s += ` encoding=${
        t.signed ? "SIGNED" : "UNSIGNED"
      } size=${t.size} vlen=${t.vlen}`;
      const suffix = t.kind === "ENUM64" ? (t.signed ? "LL" : "ULL") : "";
      for (const v of t.values) {
        s += `\n\t'${quoted(v.nameOff, v.name)}' val=${v.value}${suffix}`;
      }
      break;
    }
    case "FWD":
      s += ` fwd_kind=${t.fwdKind}`;
      break;
    case "FUNC":
      s += ` type_id=${t.type} linkage=${funcLinkage(t.linkage)}`;
      break;
    case "FUNC_PROTO":
      s += ` ret_type_id=${t.returnType} vlen=${t.vlen}`;
      for (const p of t.params) {
        s += `\n\t'${quoted(p.nameOff, p.name)}' type_id=${p.type}`;
      }
      break;
    case "VAR":
      s += ` type_id=${t.type}, linkage=${varLinkage(t.linkage)}`;
      break;
    case "DATASEC":
      s += ` size=${t.size} vlen=${t.vlen}`;
      for (const v of t.vars) {
        const vt = btf.typeById(v.type);
        s += `\n\ttype_id=${v.type} offset=${v.offset} size=${v.size}` +
          ` (${kindName(vt)} '${quoted(vt.nameOff, vt.name)}')`;
      }
      break;
    case "FLOAT":
      s += ` size=${t.size}`;
      break;
    case "DECL_TAG":
      s += ` type_id=${t.type} component_idx=${t.componentIdx}`;
      break;
    case "VOID":
      break;
  }
  return s + "\n";
}

/** bpftool's `btf_str()`: offset 0 is `(anon)`. */
function quoted(nameOff: number, name: string): string {
  return nameOff === 0 ? "(anon)" : name;
}

function kindName(t: BtfType): string {
  return t.kind === "VOID" ? "UNKNOWN" : t.kind;
}

/** bpftool's `btf_int_enc_str()`: one flag, or UNKN for combinations. */
function intEncoding(enc: number): string {
  switch (enc) {
    case 0:
      return "(none)";
    case BTF_INT_SIGNED:
      return "SIGNED";
    case BTF_INT_CHAR:
      return "CHAR";
    case BTF_INT_BOOL:
      return "BOOL";
    default:
      return "UNKN";
  }
}

function funcLinkage(l: number): string {
  return ["static", "global", "extern"][l] ?? "(unknown)";
}

function varLinkage(l: number): string {
  return ["static", "global", "extern"][l] ?? "(unknown)";
}
