/**
 * The BTF type model: one plain object per type id, discriminated by `kind`
 * (the names of `BTF_KIND_*` in include/uapi/linux/btf.h). Id 0 is `void`.
 * Raw fields (`nameOff`, `kflag`, `vlen`, `offset`) are kept so that a dump
 * reproduces the encoding exactly and errors can point at bytes.
 * @module
 */

/** `BTF_KIND_*` numbers, as encoded in bits 24–28 of `btf_type.info`. */
export const BTF_KIND = {
  UNKN: 0,
  INT: 1,
  PTR: 2,
  ARRAY: 3,
  STRUCT: 4,
  UNION: 5,
  ENUM: 6,
  FWD: 7,
  TYPEDEF: 8,
  VOLATILE: 9,
  CONST: 10,
  RESTRICT: 11,
  FUNC: 12,
  FUNC_PROTO: 13,
  VAR: 14,
  DATASEC: 15,
  FLOAT: 16,
  DECL_TAG: 17,
  TYPE_TAG: 18,
  ENUM64: 19,
} as const;

/** Name of a BTF kind; `VOID` is type 0 (the kernel's `btf_void`). */
export type BtfKindName = Exclude<keyof typeof BTF_KIND, "UNKN"> | "VOID";

/** Kind names indexed by kind number (0 is `UNKN`, as bpftool prints it). */
export const BTF_KIND_NAMES: readonly string[] = Object.keys(BTF_KIND);

/** `BTF_INT_*` encoding bits of an INT. */
export const BTF_INT_SIGNED = 1;
/** INT encoding bit: a `char`. */
export const BTF_INT_CHAR = 2;
/** INT encoding bit: a `_Bool`. */
export const BTF_INT_BOOL = 4;

/** FUNC / VAR linkage `static` (`BTF_FUNC_STATIC`, `BTF_VAR_STATIC`). */
export const BTF_LINKAGE_STATIC = 0;
/** Linkage `global` (`BTF_FUNC_GLOBAL`, `BTF_VAR_GLOBAL_ALLOCATED`). */
export const BTF_LINKAGE_GLOBAL = 1;
/** Linkage `extern` (`BTF_FUNC_EXTERN`, `BTF_VAR_GLOBAL_EXTERN`). */
export const BTF_LINKAGE_EXTERN = 2;

/** The `component_idx` of a DECL_TAG that applies to the whole type. */
export const DECL_TAG_WHOLE_TYPE: number = -1;

/** Fields every type has. */
export interface BtfTypeBase {
  /** Type id (index into `Btf.types`). */
  readonly id: number;
  /** Resolved name; `""` when anonymous. */
  readonly name: string;
  /** Offset of the name in the string section (0 = anonymous). */
  readonly nameOff: number;
  /** The `kind_flag` bit of `info`. */
  readonly kflag: boolean;
  /** The `vlen` bits of `info` (member count, or linkage for FUNC). */
  readonly vlen: number;
  /** Byte offset of this `btf_type` in the `.BTF` data (-1 for void). */
  readonly offset: number;
}

/** Type id 0. */
export interface BtfVoid extends BtfTypeBase {
  /** Discriminant: the BTF kind. */
  readonly kind: "VOID";
}

/** `BTF_KIND_INT`: an integer of `size` bytes, `nrBits` bits at `bitsOffset`. */
export interface BtfInt extends BtfTypeBase {
  /** Discriminant: the BTF kind. */
  readonly kind: "INT";
  /** Size in bytes. */
  readonly size: number;
  /** `BTF_INT_*` bits (signed / char / bool). */
  readonly encoding: number;
  /** Bit offset of the value inside the int (usually 0). */
  readonly bitsOffset: number;
  /** Number of value bits. */
  readonly nrBits: number;
}

/** PTR and the modifiers, all of which just point at `type`. */
export interface BtfRefType extends BtfTypeBase {
  /** Discriminant: the BTF kind. */
  readonly kind:
    | "PTR"
    | "TYPEDEF"
    | "VOLATILE"
    | "CONST"
    | "RESTRICT"
    | "TYPE_TAG";
  /** Referenced type id. */
  readonly type: number;
}

/** `BTF_KIND_ARRAY`. */
export interface BtfArray extends BtfTypeBase {
  /** Discriminant: the BTF kind. */
  readonly kind: "ARRAY";
  /** Element type id. */
  readonly type: number;
  /** Index type id (an INT). */
  readonly indexType: number;
  /** Number of elements (0 for a flexible array). */
  readonly nelems: number;
}

/** One member of a STRUCT or UNION. */
export interface BtfMember {
  /** Name (`""` when anonymous). */
  readonly name: string;
  /** String offset of the name (0 when anonymous). */
  readonly nameOff: number;
  /** Referenced type id. */
  readonly type: number;
  /** Offset in bits from the start of the struct (kflag decoded). */
  readonly bitOffset: number;
  /** Bitfield width in bits; 0 for a whole member (or when kflag is 0). */
  readonly bitfieldSize: number;
  /** The raw `offset` word as encoded. */
  readonly rawOffset: number;
}

/** `BTF_KIND_STRUCT` / `BTF_KIND_UNION`. */
export interface BtfComposite extends BtfTypeBase {
  /** Discriminant: the BTF kind. */
  readonly kind: "STRUCT" | "UNION";
  /** Size in bytes. */
  readonly size: number;
  /** Members in declaration order. */
  readonly members: readonly BtfMember[];
}

/** One enumerator. ENUM values are sign- or zero-extended per `signed`. */
export interface BtfEnumValue {
  /** Name (`""` when anonymous). */
  readonly name: string;
  /** String offset of the name (0 when anonymous). */
  readonly nameOff: number;
  /** Value (ENUM: sign-extended when the enum is signed). */
  readonly value: bigint;
}

/** `BTF_KIND_ENUM` / `BTF_KIND_ENUM64`; `signed` is the kflag. */
export interface BtfEnum extends BtfTypeBase {
  /** Discriminant: the BTF kind. */
  readonly kind: "ENUM" | "ENUM64";
  /** Size in bytes. */
  readonly size: number;
  /** Signedness (the kind_flag). */
  readonly signed: boolean;
  /** Enumerators in declaration order. */
  readonly values: readonly BtfEnumValue[];
}

/** `BTF_KIND_FWD`: a forward `struct x;` or (kflag) `union x;`. */
export interface BtfFwd extends BtfTypeBase {
  /** Discriminant: the BTF kind. */
  readonly kind: "FWD";
  /** What is forward-declared. */
  readonly fwdKind: "struct" | "union";
}

/** `BTF_KIND_FUNC`: a function, its prototype in `type`. */
export interface BtfFunc extends BtfTypeBase {
  /** Discriminant: the BTF kind. */
  readonly kind: "FUNC";
  /** Referenced type id. */
  readonly type: number;
  /** `BTF_LINKAGE_*` (encoded in vlen). */
  readonly linkage: number;
}

/** One parameter of a FUNC_PROTO; `type` 0 in last place means varargs. */
export interface BtfParam {
  /** Name (`""` when anonymous). */
  readonly name: string;
  /** String offset of the name (0 when anonymous). */
  readonly nameOff: number;
  /** Referenced type id. */
  readonly type: number;
}

/** `BTF_KIND_FUNC_PROTO`. */
export interface BtfFuncProto extends BtfTypeBase {
  /** Discriminant: the BTF kind. */
  readonly kind: "FUNC_PROTO";
  /** Return type id (0 for void). */
  readonly returnType: number;
  /** Parameters in order. */
  readonly params: readonly BtfParam[];
}

/** `BTF_KIND_VAR`: a global variable. */
export interface BtfVar extends BtfTypeBase {
  /** Discriminant: the BTF kind. */
  readonly kind: "VAR";
  /** Referenced type id. */
  readonly type: number;
  /** `BTF_LINKAGE_*`. */
  readonly linkage: number;
}

/** One variable placed in a DATASEC. */
export interface BtfVarSecinfo {
  /** VAR (or FUNC, for `.ksyms`) type id. */
  readonly type: number;
  /** Byte offset of the variable in the section. */
  readonly offset: number;
  /** Size in bytes. */
  readonly size: number;
}

/** `BTF_KIND_DATASEC`: a data section and the variables in it. */
export interface BtfDatasec extends BtfTypeBase {
  /** Discriminant: the BTF kind. */
  readonly kind: "DATASEC";
  /** Size in bytes. */
  readonly size: number;
  /** Variables (or extern functions) in the section. */
  readonly vars: readonly BtfVarSecinfo[];
}

/** `BTF_KIND_FLOAT`. */
export interface BtfFloat extends BtfTypeBase {
  /** Discriminant: the BTF kind. */
  readonly kind: "FLOAT";
  /** Size in bytes. */
  readonly size: number;
}

/** `BTF_KIND_DECL_TAG`: tag `name` on type `type` (or its member/param). */
export interface BtfDeclTag extends BtfTypeBase {
  /** Discriminant: the BTF kind. */
  readonly kind: "DECL_TAG";
  /** Referenced type id. */
  readonly type: number;
  /** Member / parameter index, or `DECL_TAG_WHOLE_TYPE` (-1). */
  readonly componentIdx: number;
}

/** Any BTF type. */
export type BtfType =
  | BtfVoid
  | BtfInt
  | BtfRefType
  | BtfArray
  | BtfComposite
  | BtfEnum
  | BtfFwd
  | BtfFunc
  | BtfFuncProto
  | BtfVar
  | BtfDatasec
  | BtfFloat
  | BtfDeclTag;

/** The decoded `struct btf_header`. */
export interface BtfHeader {
  /** `BTF_MAGIC` (0xeb9f). */
  readonly magic: number;
  /** Always 1. */
  readonly version: number;
  /** Always 0. */
  readonly flags: number;
  /** Header length (24). */
  readonly hdrLen: number;
  /** Type section offset, relative to the end of the header. */
  readonly typeOff: number;
  /** Type section length in bytes. */
  readonly typeLen: number;
  /** String section offset, relative to the end of the header. */
  readonly strOff: number;
  /** String section length in bytes. */
  readonly strLen: number;
}

/** True for the kinds that `btf_type_skip_modifiers()` walks through. */
export function isModifierKind(kind: BtfKindName): boolean {
  return kind === "TYPEDEF" || kind === "VOLATILE" || kind === "CONST" ||
    kind === "RESTRICT" || kind === "TYPE_TAG";
}

/** True for STRUCT and UNION (the kernel's `__btf_type_is_struct` is STRUCT only). */
export function isComposite(t: BtfType): t is BtfComposite {
  return t.kind === "STRUCT" || t.kind === "UNION";
}

/** True for ENUM and ENUM64. */
export function isAnyEnum(t: BtfType): t is BtfEnum {
  return t.kind === "ENUM" || t.kind === "ENUM64";
}
