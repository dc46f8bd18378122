/**
 * The kernel's BTF object printer (`btf_show` and the per-kind `show`
 * operations of kernel/bpf/btf.c), which `bpf_snprintf_btf` and
 * `bpf_seq_printf_btf` print with: `(struct foo){.a = (int)1,.b = …,}`.
 *
 * The walk is a port of the kernel's state machine, quirks included,
 * because its output is what programs compare against:
 * - every value is `indent + name + value + delim + newline`, the name
 *   being `.member = (type)` (`btf_show_name()`: typedef names win, `*`
 *   and `[]` suffixes, `{` / `[` openers, at most `BTF_SHOW_MAX_ITER`
 *   levels, 79 characters); inside an array element no names are shown —
 *   not even a struct element's `{`, which belongs to the name — until an
 *   array nested in it ends (`array_member` is one flag, cleared by any
 *   array's end, the silent pass's included); a type that starts with a
 *   qualifier (`const int`) names as `()`;
 * - zero values are omitted below the top level unless `BTF_F_ZERO`; a
 *   nested struct, union or array is walked twice (`depth_check`): once
 *   silently to learn whether anything in it is non-zero, then for real;
 *   an enumerator found by name always shows, whatever its value;
 * - integers whose bits do not fill their bytes (bitfields, `nr_bits` not
 *   a multiple of 8) and `__int128` print in hex; 1-byte integers in an
 *   array print as `'c'` when printable and stop at a NUL;
 * - an array of pointers or of arrays does not advance between elements
 *   (`btf_type_has_size()` is false for them, so `elem_size` is 0): each
 *   element shows the first one;
 * - the object is read through a 32-byte "safe" buffer refilled with
 *   `copy_from_kernel_nofault()` (`btf_show_obj_safe()`); a failed copy
 *   sets the status the helpers return (-ERANGE below the kernel's address
 *   range, e.g. NULL, -EFAULT on an unmapped address), a later successful
 *   copy clears it again, as in the kernel.
 *
 * Pointers print as `0x` and 16 hex digits with or without `BTF_F_PTR_RAW`:
 * the kernel hashes plain `%p` with a per-boot secret, so the simulation
 * prints it as `no_hash_pointers` does (as `bpf_snprintf` here does);
 * NULL prints as zeros either way, as in the kernel. `BTF_SHOW_UNSAFE`
 * (bpffs map dumps only) is not modelled. The state and its primitives
 * are btf_show_state.ts.
 * @module
 */
import type { Btf } from "../../../btf/btf.ts";
import {
  BTF_INT_CHAR,
  BTF_INT_SIGNED,
  BTF_KIND,
  type BtfArray,
  type BtfComposite,
  type BtfEnum,
  type BtfInt,
  type BtfType,
} from "../../../btf/types.ts";
import {
  BTF_F_ZERO,
  BtfShowState,
  bytesOf,
  type KernelCopy,
} from "./btf_show_state.ts";

export {
  BTF_F_ALL,
  BTF_F_COMPACT,
  BTF_F_NONAME,
  BTF_F_PTR_RAW,
  BTF_F_ZERO,
  BTF_SHOW_MAX_ITER,
  type KernelCopy,
} from "./btf_show_state.ts";

/** Kernel `isprint()` (lib/ctype.c, Latin-1: 0x20–0x7e and 0xa0–0xff). */
function isPrint(c: number): boolean {
  return (c >= 0x20 && c <= 0x7e) || c >= 0xa0;
}

/** `btf_type_has_size()`. */
function hasSize(t: BtfType): boolean {
  return t.kind === "INT" || t.kind === "STRUCT" || t.kind === "UNION" ||
    t.kind === "ENUM" || t.kind === "DATASEC" || t.kind === "FLOAT" ||
    t.kind === "ENUM64";
}

/** The show operations (`kind_ops[]->show`) over {@link BtfShowState}. */
class BtfShow extends BtfShowState {
  /** `btf_type_ops(t)->show(…)`. */
  show(t: BtfType, typeId: number, data: bigint, bitsOffset: number): void {
    switch (t.kind) {
      case "INT":
        return this.intShow(t, typeId, data, bitsOffset);
      case "PTR":
        return this.ptrShow(t, typeId, data);
      case "ARRAY":
        return this.arrayShow(t, typeId, data, bitsOffset);
      case "STRUCT":
      case "UNION":
        return this.structShow(t, typeId, data, bitsOffset);
      case "ENUM":
      case "ENUM64":
        return this.enumShow(t, typeId, data);
      case "TYPEDEF":
      case "VOLATILE":
      case "CONST":
      case "RESTRICT":
      case "TYPE_TAG":
        return this.modifierShow(typeId, data, bitsOffset);
      case "VAR": {
        // mirrors btf_var_show() on a base BTF: skip modifiers from t->type
        const r = this.btf.resolve(t.type);
        return this.show(r.type, r.id, data, bitsOffset);
      }
      case "DATASEC":
        // btf_datasec_show(): btf_resolve_size() knows no DATASEC size, so
        // its first copy fails with -EINVAL before anything prints
        this.startType(t, typeId, data);
        return;
      default:
        return this.dfShow(t);
    }
  }

  /** `btf_df_show()`: kinds with nothing to print. */
  private dfShow(t: BtfType): void {
    const kind = t.kind === "VOID" ? 0 : BTF_KIND[t.kind];
    this.emit(`<unsupported kind:${kind}>`);
  }

  /** `btf_int_bits_show()`. */
  private intBitsShow(t: BtfInt, off: number, bitsOffset: number): void {
    const total = (bitsOffset + t.bitsOffset) & 0xff;
    this.bitfieldShow(off + (total >> 3), total & 7, t.nrBits);
  }

  /** `btf_int_show()`. */
  private intShow(t: BtfInt, typeId: number, data: bigint, bitsOffset: number) {
    const off = this.startType(t, typeId, data);
    if (off < 0) return;
    const signed = (t.encoding & BTF_INT_SIGNED) !== 0;
    if (bitsOffset !== 0 || t.bitsOffset !== 0 || t.nrBits % 8 !== 0) {
      this.intBitsShow(t, off, bitsOffset);
      return this.endType();
    }
    switch (t.nrBits) {
      case 128:
        this.int128Print(this.safeUint(off, 16));
        break;
      case 64:
      case 32:
      case 16: {
        const x = this.safeInt(off, t.nrBits / 8, signed);
        this.typeValue(x.toString(), x !== 0n);
        break;
      }
      case 8: {
        const c = this.safe[off];
        if (this.arrayEncoding === BTF_INT_CHAR) {
          if (this.arrayTerminated) break;
          if (c === 0) {
            this.arrayTerminated = true;
            break;
          }
          if (isPrint(c)) {
            this.typeValue(`'${String.fromCharCode(c)}'`, true);
            break;
          }
        }
        const x = signed ? (c << 24) >> 24 : c;
        this.typeValue(String(x), x !== 0);
        break;
      }
      default:
        this.intBitsShow(t, off, bitsOffset);
    }
    this.endType();
  }

  /** `btf_ptr_show()`: `0x%px`, and `0x%p` printed the same (see module doc). */
  private ptrShow(t: BtfType, typeId: number, data: bigint): void {
    const off = this.startType(t, typeId, data);
    if (off < 0) return;
    const p = this.safeUint(off, 8);
    this.typeValue(`0x${p.toString(16).padStart(16, "0")}`, p !== 0n);
    this.endType();
  }

  /** `btf_modifier_show()` on a base BTF (no resolved ids): type id kept. */
  private modifierShow(typeId: number, data: bigint, bitsOffset: number) {
    const r = this.btf.resolve(typeId);
    if (r.type.kind === "VOID") return this.dfShow(r.type);
    this.show(r.type, typeId, data, bitsOffset);
  }

  /** `btf_enum_show()` / `btf_enum64_show()`. */
  private enumShow(t: BtfEnum, typeId: number, data: bigint): void {
    const off = this.startType(t, typeId, data);
    if (off < 0) return;
    const wide = t.kind === "ENUM64";
    // ENUM reads an int whatever its size; ENUM64 a u64
    const v = this.safeInt(off, wide ? 8 : 4, true);
    const width = wide ? 64 : 32;
    const hit = t.values.find((e) =>
      BigInt.asIntN(width, e.value) === BigInt.asIntN(width, v)
    );
    if (hit !== undefined) {
      // the macro tests the name pointer, never NULL: always shown
      this.typeValue(bytesOf(hit.name), true);
    } else {
      const x = t.signed ? BigInt.asIntN(width, v) : BigInt.asUintN(width, v);
      this.typeValue(x.toString(), x !== 0n);
    }
    this.endType();
  }

  /**
   * The two-pass walk of `btf_struct_show()` / `btf_array_show()`: below
   * the top level and without `BTF_F_ZERO`, a silent pass first learns
   * whether anything non-zero lies inside.
   */
  private twoPass(walk: () => void): void {
    const m = this.member;
    if (this.depth > 0 && !(this.flags & BTF_F_ZERO)) {
      if (this.depthCheck === 0) {
        this.depthCheck = this.depth + 1;
        this.depthToShow = 0;
      }
      walk();
      this.member = m;
      if (this.depthCheck !== this.depth + 1) return;
      this.depthCheck = 0;
      if (this.depthToShow <= this.depth) return;
    }
    walk();
  }

  /** `btf_array_show()`. */
  private arrayShow(t: BtfArray, typeId: number, data: bigint, bits: number) {
    this.twoPass(() => this.arrayWalk(t, typeId, data, bits));
  }

  /** `__btf_array_show()`. */
  private arrayWalk(t: BtfArray, typeId: number, data: bigint, bits: number) {
    const elemType = this.btf.resolve(t.type).type;
    const elemSize = hasSize(elemType)
      ? (elemType as { size: number }).size
      : 0;
    let encoding = 0;
    if (elemType.kind === "INT") {
      encoding = elemSize === 1 ? BTF_INT_CHAR : elemType.encoding;
    }
    this.arrayEncoding = encoding;
    this.arrayTerminated = false;
    if (this.startAggr(t, typeId, data) < 0) return;
    for (let i = 0; i < t.nelems; i++) {
      this.arrayMember = true;
      this.member = null;
      this.show(elemType, t.type, data, bits);
      data += BigInt(elemSize);
      this.arrayMember = false;
      this.member = null;
      if (this.arrayTerminated) break;
    }
    this.arrayEncoding = 0;
    this.arrayTerminated = false;
    this.endAggr("]");
  }

  /** `btf_struct_show()`. */
  private structShow(
    t: BtfComposite,
    typeId: number,
    data: bigint,
    bits: number,
  ): void {
    this.twoPass(() => this.structWalk(t, typeId, data, bits));
  }

  /** `__btf_struct_show()`. */
  private structWalk(
    t: BtfComposite,
    typeId: number,
    data: bigint,
    _b: number,
  ) {
    if (this.startAggr(t, typeId, data) < 0) return;
    for (const m of t.members) {
      this.member = m;
      const memberType = this.btf.typeById(m.type);
      const at = data + BigInt(m.bitOffset >> 3);
      const bits8 = m.bitOffset & 7;
      if (m.bitfieldSize !== 0) {
        const off = this.startType(memberType, m.type, at);
        if (off >= 0) this.bitfieldShow(off, bits8, m.bitfieldSize);
        this.endType();
      } else {
        this.show(memberType, m.type, at, bits8);
      }
      this.member = null;
    }
    this.endAggr("}");
  }
}

/**
 * `btf_type_show()`: prints the object at `obj` of type `typeId` of `btf`
 * with `flags` (`BTF_F_*`), handing each `btf_show()` output to `showfn`
 * (one char per byte); returns `state.status` (0 or a negative errno).
 */
export function btfTypeShow(
  btf: Btf,
  typeId: number,
  obj: bigint,
  flags: number,
  copy: KernelCopy,
  showfn: (text: string) => void,
): number {
  const show = new BtfShow(btf, flags, copy, showfn);
  show.show(btf.typeById(typeId), typeId, obj, 0);
  return show.status;
}

/** What {@link btfTypeSnprintfShow} wrote and returns. */
export interface BtfSnprintf {
  /** The bytes written at the start of the buffer (NUL included), maybe none. */
  readonly written: Uint8Array;
  /** The helper's return: the length it would have written, or the status. */
  readonly ret: number;
}

/**
 * `btf_type_snprintf_show()`: each `btf_show()` is a `vsnprintf()` into
 * what is left of a `size`-byte buffer; once one does not fit, the rest
 * only counts. Returns the bytes written and the length the whole output
 * would have had, or the error status.
 */
export function btfTypeSnprintfShow(
  btf: Btf,
  typeId: number,
  obj: bigint,
  size: number,
  flags: number,
  copy: KernelCopy,
): BtfSnprintf {
  const buf = new Uint8Array(size);
  let at = 0, end = 0, left = size, len = 0;
  const showfn = (text: string) => {
    const n = text.length;
    // vsnprintf(): at most left - 1 chars and the NUL, when left > 0
    const fits = Math.min(n, Math.max(left - 1, 0));
    for (let i = 0; i < fits; i++) buf[at + i] = text.charCodeAt(i) & 0xff;
    if (left > 0) {
      buf[at + fits] = 0;
      end = Math.max(end, at + fits + 1);
    }
    len += n;
    if (n >= left) {
      left = 0;
    } else {
      left -= n;
      at += n;
    }
  };
  const status = btfTypeShow(btf, typeId, obj, flags, copy, showfn);
  return { written: buf.subarray(0, end), ret: status !== 0 ? status : len };
}
