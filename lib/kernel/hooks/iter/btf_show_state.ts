/**
 * The state of the kernel's BTF printer (`struct btf_show`,
 * kernel/bpf/btf.c) and what every show operation uses: output that the
 * silent zero-check pass swallows, indentation and delimiters,
 * `btf_show_name()`, the safe copy (`btf_show_obj_safe()`), aggregate
 * openers and closers, and the hex printing of `__int128` and bitfields.
 * The walk over the kinds is btf_show.ts.
 * @module
 */
import type { Btf } from "../../../btf/btf.ts";
import {
  type BtfMember,
  type BtfType,
  isModifierKind,
} from "../../../btf/types.ts";
import { EINVAL } from "../../../uapi/errno.ts";

/** `BTF_F_COMPACT`: no indentation or newlines. */
export const BTF_F_COMPACT = 1;
/** `BTF_F_NONAME`: no member names or types. */
export const BTF_F_NONAME = 2;
/** `BTF_F_PTR_RAW`: unhashed pointers (`%px`). */
export const BTF_F_PTR_RAW = 4;
/** `BTF_F_ZERO`: show zero-valued members and elements too. */
export const BTF_F_ZERO = 8;
/** `BTF_F_ALL` of kernel/trace/bpf_trace.c: the flags the helpers accept. */
export const BTF_F_ALL = 15;

/** `BTF_SHOW_MAX_ITER`: typedef / pointer / array levels a name may have. */
export const BTF_SHOW_MAX_ITER = 10;
/** `BTF_SHOW_OBJ_SAFE_SIZE`: bytes of the safe copy. */
const SAFE_SIZE = 32;
/** `BTF_SHOW_OBJ_BASE_TYPE_SIZE`: the largest base type (`__int128`). */
const BASE_TYPE_SIZE = 16;
/** `BTF_SHOW_NAME_SIZE`: the name buffer, NUL included. */
const NAME_SIZE = 80;

/**
 * `copy_from_kernel_nofault()`: the `size` bytes at `address`, or a
 * negative errno.
 */
export type KernelCopy = (address: bigint, size: number) => Uint8Array | number;

/** UTF-8 bytes of `s` as a string of one char per byte (what `%s` copies). */
export function bytesOf(s: string): string {
  // deno-lint-ignore no-control-regex
  if (/^[\x00-\x7f]*$/.test(s)) return s;
  return String.fromCharCode(...new TextEncoder().encode(s));
}

/** Mirrors `struct btf_show`: its state, its target and its safe copy. */
export class BtfShowState {
  /** `state.depth`: nesting level (indentation, delimiters). */
  protected depth: number = 0;
  /** `state.depth_to_show`: the deepest level a value was shown at. */
  protected depthToShow: number = 0;
  /** `state.depth_check`: non-zero during a silent zero-check pass. */
  protected depthCheck: number = 0;
  /** `state.array_member`: names are off while set. */
  protected arrayMember: boolean = false;
  /** `state.array_terminated`: a char array met its NUL. */
  protected arrayTerminated: boolean = false;
  /** `state.array_encoding`: `BTF_INT_CHAR` in an array of 1-byte ints. */
  protected arrayEncoding: number = 0;
  /** `state.type_id`: the type being shown, as named. */
  protected typeId: number = 0;
  /** `state.type`: the type being shown, resolved. */
  protected type: BtfType | null = null;
  /** `state.member`: the member being shown. */
  protected member: BtfMember | null = null;
  /** `state.status`: 0 or the last copy's / size's error. */
  status: number = 0;
  /** `obj.size`: size of the top-level object. */
  protected objSize: number = 0;
  /** `obj.head`: address of the top-level object. */
  protected objHead: bigint = 0n;
  /** `obj.data`: address the safe copy starts at. */
  protected objData: bigint = 0n;
  /** `obj.safe`: the last copy's bytes (stale beyond what it copied). */
  protected readonly safe: Uint8Array = new Uint8Array(SAFE_SIZE);

  /** A printer of `btf` types with `flags`, reading through `copy`, printing with `showfn`. */
  constructor(
    protected readonly btf: Btf,
    protected readonly flags: number,
    protected readonly copy: KernelCopy,
    protected readonly showfn: (text: string) => void,
  ) {}

  /** `btf_show()`: output, unless this is the silent zero-check pass. */
  protected emit(text: string): void {
    if (this.depthCheck === 0) this.showfn(text);
  }

  /** `btf_show_indent()`: one space a level (at most 32), none if compact. */
  protected indent(): string {
    return this.flags & BTF_F_COMPACT
      ? ""
      : " ".repeat(Math.min(this.depth, 32));
  }

  /** `btf_show_newline()`. */
  protected newline(): string {
    return this.flags & BTF_F_COMPACT ? "" : "\n";
  }

  /** `btf_show_delim()`: "|" only after a union still being shown, compact. */
  protected delim(): string {
    if (this.depth === 0) return "";
    if (this.flags & BTF_F_COMPACT && this.type?.kind === "UNION") return "|";
    return ",";
  }

  /** `btf_show_type_value()`: `nonZero` is the macro's `value != 0`. */
  protected typeValue(text: string, nonZero: boolean): void {
    if (nonZero || this.flags & BTF_F_ZERO || this.depth === 0) {
      this.typeValues(text);
    }
  }

  /** `btf_show_type_values()`: shown whatever the value. */
  protected typeValues(text: string): void {
    this.emit(
      this.indent() + this.name() + text + this.delim() + this.newline(),
    );
    if (this.depth > this.depthToShow) this.depthToShow = this.depth;
  }

  /** `btf_show_name()`: `[.member = ](type)` plus the aggregate opener. */
  protected name(): string {
    if (this.arrayMember) return "";
    let id = this.typeId;
    let member = "";
    if (this.member !== null) {
      member = bytesOf(this.member.name);
      id = this.member.type;
    }
    if (id >= this.btf.typeCount) return "";
    let t = this.btf.typeById(id);
    let name: string | undefined;
    let typedef = false, array = false, ptr = false;
    let arrays = 0, ptrs = 0, parens = "", i = 0;
    for (; i < BTF_SHOW_MAX_ITER; i++) {
      if (t.kind === "TYPEDEF") {
        name ??= t.name;
        typedef = true;
        id = t.type;
      } else if (t.kind === "ARRAY") {
        array = true;
        parens = "[";
        arrays = Math.min(arrays + 1, BTF_SHOW_MAX_ITER);
        id = t.type;
      } else if (t.kind === "PTR") {
        ptr = true;
        ptrs = Math.min(ptrs + 1, BTF_SHOW_MAX_ITER);
        id = t.type;
      } else {
        id = 0;
      }
      if (id === 0) break;
      t = this.skipQualifiers(id);
    }
    if (i === BTF_SHOW_MAX_ITER) return "";
    name = bytesOf(name ?? t.name);
    let prefix = "";
    if (t.kind === "STRUCT" || t.kind === "UNION") {
      prefix = t.kind === "STRUCT" ? "struct" : "union";
      if (!array) parens = "{";
    } else if (t.kind === "ENUM" || t.kind === "ENUM64") {
      prefix = "enum";
    }
    if (ptr) parens = "";
    if (typedef) prefix = "";
    if (this.flags & BTF_F_NONAME) return parens;
    const full = (member !== "" ? `.${member} = ` : "") + "(" + prefix +
      (prefix !== "" && name !== "" ? " " : "") + name +
      (ptrs > 0 ? " " : "") + "*".repeat(ptrs) + "[]".repeat(arrays) + ")" +
      parens;
    return full.slice(0, NAME_SIZE - 1);
  }

  /** `btf_type_skip_qualifiers()`: modifiers but typedefs. */
  protected skipQualifiers(id: number): BtfType {
    let t = this.btf.typeById(id);
    while (isModifierKind(t.kind) && t.kind !== "TYPEDEF") {
      t = this.btf.typeById((t as { type: number }).type);
    }
    return t;
  }

  /**
   * `btf_show_obj_safe()`: the offset in the safe buffer where `data`'s
   * bytes are, copying a new chunk when they are not there; -1 on error.
   */
  protected objSafe(t: BtfType, data: bigint): number {
    let size: number;
    try {
      size = this.btf.sizeOf(t.id) | 0;
    } catch {
      this.status = -EINVAL; // btf_resolve_size() failed
      return -1;
    }
    if (this.depth === 0) {
      this.objSize = size;
      this.objHead = data;
    } else {
      const want = Math.min(size, BASE_TYPE_SIZE);
      if (
        data >= this.objData &&
        data + BigInt(want) < this.objData + BigInt(SAFE_SIZE)
      ) {
        return Number(data - this.objData);
      }
    }
    const left = Math.min(
      Number(this.objHead + BigInt(this.objSize) - data),
      SAFE_SIZE,
    );
    const got = this.copy(data, Math.max(left, 0));
    if (typeof got === "number") {
      this.status = got;
      return -1;
    }
    this.status = 0;
    this.safe.set(got.subarray(0, SAFE_SIZE));
    this.objData = data;
    return 0;
  }

  /** `btf_show_start_type()`. */
  protected startType(t: BtfType, typeId: number, data: bigint): number {
    this.type = t;
    this.typeId = typeId;
    return this.objSafe(t, data);
  }

  /** `btf_show_end_type()`. */
  protected endType(): void {
    this.type = null;
    this.typeId = 0;
  }

  /** `btf_show_start_aggr_type()`. */
  protected startAggr(t: BtfType, typeId: number, data: bigint): number {
    const safe = this.startType(t, typeId, data);
    if (safe < 0) return safe;
    this.emit(this.indent() + this.name() + this.newline());
    this.depth++;
    return safe;
  }

  /** `btf_show_end_aggr_type()`. */
  protected endAggr(suffix: string): void {
    this.depth--;
    this.emit(this.indent() + suffix + this.delim() + this.newline());
    this.endType();
  }

  /** Little-endian unsigned value of `size` safe bytes at `off`. */
  protected safeUint(off: number, size: number): bigint {
    let v = 0n;
    for (let i = size - 1; i >= 0; i--) {
      v = (v << 8n) | BigInt(this.safe[off + i] ?? 0);
    }
    return v;
  }

  /** `btf_int128_print()`. */
  protected int128Print(value: bigint): void {
    const upper = value >> 64n, lower = value & 0xffffffffffffffffn;
    if (upper === 0n) {
      this.typeValue(`0x${lower.toString(16)}`, lower !== 0n);
    } else {
      this.typeValues(
        `0x${upper.toString(16)}${lower.toString(16).padStart(16, "0")}`,
      );
    }
  }

  /** `btf_bitfield_show()`: `nrBits` bits `bitsOffset` bits into `off`. */
  protected bitfieldShow(
    off: number,
    bitsOffset: number,
    nrBits: number,
  ): void {
    const copyBytes = Math.min(Math.ceil((nrBits + bitsOffset) / 8), 16);
    const raw = this.safeUint(off, copyBytes);
    this.int128Print(
      (raw >> BigInt(bitsOffset)) & ((1n << BigInt(nrBits)) - 1n),
    );
  }

  /** A `size`-byte integer of the safe buffer, sign-extended if `signed`. */
  protected safeInt(off: number, size: number, signed: boolean): bigint {
    const x = this.safeUint(off, size);
    return signed ? BigInt.asIntN(size * 8, x) : x;
  }
}
