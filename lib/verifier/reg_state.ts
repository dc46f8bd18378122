/**
 * `struct bpf_reg_state`: what the verifier knows about one register (or one
 * spilled stack slot) — its type, fixed offset, the scalar bounds of its value
 * or variable offset, ids linking copies and NULL checks, the map it points
 * into, memory and packet ranges — with the kernel's `mark_reg_*()` helpers
 * and `print_reg_state()` ({@link formatReg}) as Linux 6.18 logs it.
 * @module
 */
import {
  markScalarKnown,
  markScalarUnknown,
  regBoundsSync,
} from "./bounds_sync.ts";
import {
  copyScalar,
  formatScalarRanges,
  formatSnum,
  formatUnum,
  type Scalar,
  scalarsEqual,
  unknownScalar,
} from "./scalar.ts";
import { tnumIsConst, tnumIsUnknown, tnumStr } from "./tnum.ts";
import type { Btf } from "../btf/btf.ts";
import type { BtfRecord } from "../btf/field_types.ts";
import {
  baseType,
  NOT_INIT,
  PTR_TO_ARENA,
  PTR_TO_BTF_ID,
  PTR_TO_MEM,
  PTR_TO_STACK,
  regTypeStr,
  SCALAR_VALUE,
  typeIsMapPtr,
  typeIsPktPointer,
} from "./reg_types.ts";

/** The map a pointer refers to, as the log prints it (`map=m,ks=4,vs=8`). */
export interface MapRef {
  /** Index in the object's maps (the `lddw` immediate). */
  readonly index: number;
  /** Map name as given to the kernel. */
  readonly name: string;
  /** `enum bpf_map_type` number. */
  readonly typeId: number;
  /** Key size in bytes. */
  readonly keySize: number;
  /** Value size in bytes. */
  readonly valueSize: number;
  /** `max_entries`. */
  readonly maxEntries: number;
  /** `map_flags`. */
  readonly flags: number;
  /** Map-in-map: the inner map template (`inner_map_meta`). */
  readonly inner?: MapRef;
  /** The map was created with BTF for its value (`map->btf`). */
  readonly hasBtf?: boolean;
  /** Special fields of the value (`map->record`), null when none. */
  readonly record?: BtfRecord | null;
}

/**
 * The BTF a `PTR_TO_BTF_ID` points into (`reg->btf`): the program's own BTF
 * for allocated objects, with its `btf_struct_meta` records. One object per
 * program, so its identity is what lock state compares (`active_lock_ptr`).
 */
export interface RegBtf {
  /** The types. */
  readonly btf: Btf;
  /** Records of the structs with special fields (`btf->struct_meta_tab`). */
  readonly metas: ReadonlyMap<number, BtfRecord>;
}

/**
 * `BPF_ADD_CONST64` / `BPF_ADD_CONST32`: flags a scalar's `id` carries
 * after `rX += K` (or `-= K`, 64- or 32-bit) on a linked copy, its `off`
 * holding K: the register equals the others of its base id plus K, so a
 * bound learned on one reaches the others (`sync_linked_regs()`). Kept as
 * high bits of the id, as the kernel keeps them (ids stay below 2^30).
 */
export const BPF_ADD_CONST64 = 0x8000_0000;
/** See {@link BPF_ADD_CONST64}. */
export const BPF_ADD_CONST32 = 0x4000_0000;

/** A scalar id without its `BPF_ADD_CONST` flags (`id & ~BPF_ADD_CONST`). */
export function idBase(id: number): number {
  return id % BPF_ADD_CONST32;
}

/** The `BPF_ADD_CONST` flags of a scalar id: 0, 32-bit or 64-bit. */
export function idAddConst(id: number): number {
  return id - idBase(id);
}

/** One register's verifier state; mirrors `struct bpf_reg_state`. */
export interface RegState {
  /** `enum bpf_reg_type` with flags (see reg_types.ts). */
  type: number;
  /** Fixed part of a pointer's offset. */
  off: number;
  /** Scalar value, or a pointer's variable offset (`var_off` and bounds). */
  s: Scalar;
  /** Shared by copies and by the results of one `*_or_null` lookup. */
  id: number;
  /** Id of the acquired reference this pointer holds (0 if none). */
  refObjId: number;
  /** The map (CONST_PTR_TO_MAP, PTR_TO_MAP_VALUE/KEY), else null. */
  map: MapRef | null;
  /** PTR_TO_MEM: size of the memory. */
  memSize: number;
  /** Packet pointers: bytes known readable after `off` (`range`). */
  range: number;
  /** Frame a PTR_TO_STACK points into. */
  frameno: number;
  /** Scalar precision mark (`precise`). */
  precise: boolean;
  /** PTR_TO_BTF_ID: the type id (object BTF). */
  btfId: number;
  /** PTR_TO_BTF_ID: the type name for printing. */
  btfName: string;
  /** PTR_TO_BTF_ID: the BTF `btfId` belongs to (`reg->btf`), null when unknown. */
  btf: RegBtf | null;
  /** PTR_TO_FUNC: the subprogram it points to (`subprogno`). */
  subprogno: number;
  /** An iterator's stack slot: its kind and state (`reg->iter`); replaced, never mutated. */
  iter: IterInfo | null;
}

/** `reg->iter` of an open-coded iterator's first stack slot. */
export interface IterInfo {
  /** The iterator type without `bpf_iter_` (`num`). */
  readonly kind: string;
  /** `BPF_ITER_STATE_ACTIVE` / `_DRAINED`. */
  readonly state: "active" | "drained";
  /** Iterations the verifier has unrolled on this path (`depth`). */
  readonly depth: number;
}

/** A NOT_INIT register (`__mark_reg_not_init`). */
export function notInitReg(): RegState {
  return {
    type: NOT_INIT,
    off: 0,
    s: unknownScalar(),
    id: 0,
    refObjId: 0,
    map: null,
    memSize: 0,
    range: 0,
    frameno: 0,
    precise: false,
    btfId: 0,
    btfName: "",
    btf: null,
    subprogno: 0,
    iter: null,
  };
}

/** A deep copy (scalars are mutable, maps are shared). */
export function copyReg(r: RegState): RegState {
  return { ...r, s: copyScalar(r.s) };
}

/** Overwrites `dst` with a copy of `src`. */
export function assignReg(dst: RegState, src: RegState): void {
  Object.assign(dst, src);
  dst.s = copyScalar(src.s);
}

function clearPtrFields(r: RegState): void {
  r.off = 0;
  r.id = 0;
  r.refObjId = 0;
  r.map = null;
  r.memSize = 0;
  r.range = 0;
  r.frameno = 0;
  r.btfId = 0;
  r.btfName = "";
  r.btf = null;
  r.subprogno = 0;
  r.iter = null;
}

/** Mirrors `__mark_reg_not_init()`. */
export function markRegNotInit(r: RegState): void {
  clearPtrFields(r);
  r.type = NOT_INIT;
  r.precise = false;
  markScalarUnknown(r.s);
}

/** Mirrors `__mark_reg_unknown()`: an unbounded scalar. */
export function markRegUnknown(r: RegState): void {
  clearPtrFields(r);
  r.type = SCALAR_VALUE;
  r.precise = false;
  markScalarUnknown(r.s);
}

/** Mirrors `__mark_reg_known()` on a scalar: the constant `v`. */
export function markRegKnown(r: RegState, v: bigint): void {
  clearPtrFields(r);
  r.type = SCALAR_VALUE;
  markScalarKnown(r.s, v);
}

/** A pointer with a known-zero variable offset (`mark_reg_known_zero()` + type). */
export function markRegPointer(r: RegState, type: number): void {
  clearPtrFields(r);
  r.type = type;
  r.precise = false;
  markScalarKnown(r.s, 0n);
}

/** A scalar register with the given bounds (already synced by the caller). */
export function scalarReg(s: Scalar): RegState {
  const r = notInitReg();
  r.type = SCALAR_VALUE;
  r.s = s;
  return r;
}

/** Mirrors `reg_bounds_sync()` on a register's scalar part. */
export function regSync(r: RegState): void {
  regBoundsSync(r.s);
}

/** Mirrors `register_is_null()`: the scalar constant 0. */
export function registerIsNull(r: RegState): boolean {
  return r.type === SCALAR_VALUE && r.s.varOff.mask === 0n &&
    r.s.varOff.value === 0n;
}

/** True for a constant scalar (`tnum_is_const` on a SCALAR_VALUE). */
export function isConstScalar(r: RegState): boolean {
  return r.type === SCALAR_VALUE && tnumIsConst(r.s.varOff);
}

/** True for scalars and NOT_INIT — what `__is_pointer_value()` calls non-pointers. */
export function isPointerValue(r: RegState): boolean {
  return r.type !== SCALAR_VALUE && r.type !== NOT_INIT;
}

function iterEqual(a: IterInfo | null, b: IterInfo | null): boolean {
  return a === b ||
    (a !== null && b !== null && a.kind === b.kind && a.state === b.state &&
      a.depth === b.depth);
}

/** Equal in every field the state comparison cares about. */
export function regsEqual(a: RegState, b: RegState): boolean {
  return a.type === b.type && a.off === b.off && a.id === b.id &&
    a.refObjId === b.refObjId && a.map === b.map &&
    a.memSize === b.memSize && a.range === b.range &&
    a.frameno === b.frameno && a.btfId === b.btfId && a.btf === b.btf &&
    a.subprogno === b.subprogno && iterEqual(a.iter, b.iter) &&
    scalarsEqual(a.s, b.s);
}

/**
 * Mirrors `print_reg_state()` (kernel/bpf/log.c): what follows `R1=` in the
 * log. `curFrame` is the frame the register lives in (a stack pointer into
 * another frame prints `fp[N]`).
 */
export function formatReg(r: RegState, curFrame: number): string {
  const t = r.type;
  const p = t === SCALAR_VALUE && r.precise ? "P" : "";
  if (t === SCALAR_VALUE && tnumIsConst(r.s.varOff)) {
    return p + formatSnum(r.s.varOff.value);
  }
  let out = p + regTypeStr(t);
  if (t === PTR_TO_ARENA) return out;
  if (t === PTR_TO_STACK) {
    if (curFrame !== r.frameno) out += `[${r.frameno}]`;
    if (tnumIsConst(r.s.varOff)) {
      return out + formatSnum(r.s.varOff.value + BigInt(r.off));
    }
  }
  if (baseType(t) === PTR_TO_BTF_ID) out += r.btfName;
  const f: string[] = [];
  if (r.id) {
    // print_reg_state(): the base id, then the delta of a BPF_ADD_CONST link
    f.push(
      `id=${idBase(r.id)}` +
        (idAddConst(r.id) ? (r.off < 0 ? `${r.off}` : `+${r.off}`) : ""),
    );
  }
  if (r.refObjId) f.push(`ref_obj_id=${r.refObjId}`);
  if (typeIsMapPtr(t) && r.map) {
    if (r.map.name) f.push(`map=${r.map.name}`);
    f.push(`ks=${r.map.keySize},vs=${r.map.valueSize}`);
  }
  if (t !== SCALAR_VALUE && r.off) f.push("off=" + formatSnum(BigInt(r.off)));
  if (typeIsPktPointer(t)) {
    f.push("r=" + formatUnum(BigInt.asUintN(64, BigInt(r.range))));
  }
  if (baseType(t) === PTR_TO_MEM) f.push("sz=" + formatUnum(BigInt(r.memSize)));
  if (tnumIsConst(r.s.varOff)) {
    if (r.s.varOff.value) f.push("imm=" + formatSnum(r.s.varOff.value));
  } else {
    f.push(...formatScalarRanges(r.s));
    if (!tnumIsUnknown(r.s.varOff)) f.push("var_off=" + tnumStr(r.s.varOff));
  }
  return `${out}(${f.join(",")})`;
}
