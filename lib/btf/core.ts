/**
 * CO-RE relocation results (`bpf_core_calc_relo_insn()` and the
 * `bpf_core_calc_*_relo()` helpers of tools/lib/bpf/relo_core.c) and the
 * instruction patch that applies one (`bpf_core_patch_insn()`). In bpfsim
 * the target BTF is normally the program's own: the simulated kernel's
 * types are the program's types.
 * @module
 */
import type { Btf } from "./btf.ts";
import { BtfError, E2BIG, EINVAL, EOPNOTSUPP } from "./errors.ts";
import {
  BPF_CORE_ENUMVAL_EXISTS,
  BPF_CORE_FIELD_BYTE_OFFSET,
  BPF_CORE_FIELD_BYTE_SIZE,
  BPF_CORE_FIELD_EXISTS,
  BPF_CORE_FIELD_LSHIFT_U64,
  BPF_CORE_FIELD_RSHIFT_U64,
  BPF_CORE_FIELD_SIGNED,
  BPF_CORE_TYPE_EXISTS,
  BPF_CORE_TYPE_ID_LOCAL,
  BPF_CORE_TYPE_ID_TARGET,
  BPF_CORE_TYPE_MATCHES,
  BPF_CORE_TYPE_SIZE,
  coreReloKindName,
  type CoreSpec,
  isFieldBased,
  isTypeBased,
  parseCoreSpec,
} from "./core_spec.ts";
import { findCoreCandidates, matchCoreSpec } from "./core_match.ts";
import { BTF_INT_SIGNED, isAnyEnum, isComposite } from "./types.ts";

/** One CO-RE relocation as `.BTF.ext` records it (insnOff only for messages). */
export interface CoreRelocation {
  /** Local root type id (`bpf_core_relo.type_id`). */
  readonly typeId: number;
  /** Access string, e.g. `0:1:2` (`"0"` for type-based kinds). */
  readonly accessStr: string;
  /** Discriminant: the BTF kind. */
  readonly kind: number;
  /** Byte offset of the instruction in its section (for messages). */
  readonly insnOff?: number;
}

/** `struct bpf_core_relo_res`: what to check in and write to the insn. */
export interface CoreReloResult {
  /** Replace the instruction by an invalid call (`0xbad2310`). */
  readonly poison: boolean;
  /** Check that the insn currently holds `origVal` before patching. */
  readonly validate: boolean;
  /** Value the compiler put in (computed on the local BTF), as u64. */
  readonly origVal: bigint;
  /** Value to write (computed on the target BTF), as u64. */
  readonly newVal: bigint;
  /** Field sizes for load/store size adjustment (0 when not a field load). */
  readonly origSize: number;
  /** Field size on the target side. */
  readonly newSize: number;
  /** Field type id on the local side (0 when not a field load). */
  readonly origTypeId: number;
  /** Field type id on the target side. */
  readonly newTypeId: number;
  /** Sizes differ in a way that cannot be fixed by resizing the access. */
  readonly failMemszAdjust: boolean;
  /** The parsed local spec and the chosen target spec (null: no match). */
  readonly localSpec: CoreSpec;
  /** The matching target spec; null when nothing matched. */
  readonly targetSpec: CoreSpec | null;
}

interface CalcOut {
  val: bigint;
  size: number;
  typeId: number;
  validate: boolean;
  poison: boolean;
}

/** Mirrors `bpf_core_calc_field_relo()`. */
function calcField(kind: number, spec: CoreSpec | null, insn: number): CalcOut {
  const out: CalcOut = {
    val: 0n,
    size: 0,
    typeId: 0,
    validate: true,
    poison: false,
  };
  if (kind === BPF_CORE_FIELD_EXISTS) return { ...out, val: spec ? 1n : 0n };
  if (spec === null) return { ...out, poison: true };
  const btf = spec.btf;
  const acc = spec.spec[spec.spec.length - 1];
  if (acc.name === undefined) {
    if (kind === BPF_CORE_FIELD_BYTE_OFFSET) {
      const size = btf.sizeOf(acc.typeId);
      return {
        ...out,
        val: BigInt(spec.bitOffset >>> 3),
        size,
        typeId: acc.typeId,
      };
    }
    if (kind === BPF_CORE_FIELD_BYTE_SIZE) {
      return { ...out, val: BigInt(btf.sizeOf(acc.typeId)) };
    }
    throw new BtfError(
      `relo ${kind} at insn #${insn} can't be applied to array access`,
    );
  }
  const t = btf.typeById(acc.typeId);
  if (!isComposite(t)) {
    throw new BtfError(`accessor type [${acc.typeId}] is not a struct`);
  }
  const m = t.members[acc.idx];
  const fieldType = btf.resolve(m.type);
  const mt = fieldType.type;
  const bitOff = spec.bitOffset;
  let bitSz = m.bitfieldSize;
  const bitfield = bitSz > 0;
  let byteSz: number;
  let byteOff: number;
  if (bitfield) {
    byteSz = (mt as { size: number }).size;
    byteOff = Math.floor(bitOff / 8 / byteSz) * byteSz;
    // Smallest power-of-two load that covers the whole bitfield.
    while (bitOff + bitSz - byteOff * 8 > byteSz * 8) {
      if (byteSz >= 8) {
        throw new BtfError(
          `relo ${kind} at insn #${insn} can't be satisfied for bitfield`,
          {
            errno: E2BIG,
          },
        );
      }
      byteSz *= 2;
      byteOff = Math.floor(bitOff / 8 / byteSz) * byteSz;
    }
  } else {
    byteSz = btf.sizeOf(fieldType.id);
    byteOff = Math.floor(bitOff / 8);
    bitSz = byteSz * 8;
  }
  out.validate = !bitfield;
  switch (kind) {
    case BPF_CORE_FIELD_BYTE_OFFSET:
      out.val = BigInt(byteOff);
      if (!bitfield) {
        out.size = byteSz;
        out.typeId = fieldType.id;
      }
      return out;
    case BPF_CORE_FIELD_BYTE_SIZE:
      out.val = BigInt(byteSz);
      return out;
    case BPF_CORE_FIELD_SIGNED: {
      const signed = (isAnyEnum(mt) && mt.kflag) ||
        (mt.kind === "INT" && (mt.encoding & BTF_INT_SIGNED) !== 0);
      return { ...out, val: signed ? 1n : 0n, validate: true };
    }
    case BPF_CORE_FIELD_LSHIFT_U64:
      out.val = BigInt(64 - (bitOff + bitSz - byteOff * 8));
      return out;
    case BPF_CORE_FIELD_RSHIFT_U64:
      return { ...out, val: BigInt(64 - bitSz), validate: true };
    default:
      throw new BtfError(`unrecognized CO-RE relocation ${kind}`, {
        errno: EOPNOTSUPP,
      });
  }
}

/** Mirrors `bpf_core_calc_type_relo()`. */
function calcType(kind: number, spec: CoreSpec | null): CalcOut {
  const out: CalcOut = {
    val: 0n,
    size: 0,
    typeId: 0,
    validate: true,
    poison: false,
  };
  if (spec === null) return out;
  switch (kind) {
    case BPF_CORE_TYPE_ID_TARGET:
      return { ...out, val: BigInt(spec.rootTypeId), validate: false };
    case BPF_CORE_TYPE_EXISTS:
    case BPF_CORE_TYPE_MATCHES:
      return { ...out, val: 1n };
    case BPF_CORE_TYPE_SIZE:
      return { ...out, val: BigInt(spec.btf.sizeOf(spec.rootTypeId)) };
    default:
      throw new BtfError(`unrecognized CO-RE relocation ${kind}`, {
        errno: EOPNOTSUPP,
      });
  }
}

/** Mirrors `bpf_core_calc_enumval_relo()` (an ENUM's s32 is sign-extended). */
function calcEnumval(kind: number, spec: CoreSpec | null): CalcOut {
  const out: CalcOut = {
    val: 0n,
    size: 0,
    typeId: 0,
    validate: true,
    poison: false,
  };
  if (kind === BPF_CORE_ENUMVAL_EXISTS) return { ...out, val: spec ? 1n : 0n };
  if (spec === null) return { ...out, poison: true };
  const t = spec.btf.typeById(spec.spec[0].typeId);
  if (!isAnyEnum(t)) throw new BtfError(`[${t.id}] is not an enum`);
  const v = t.values[spec.spec[0].idx].value;
  const raw = t.kind === "ENUM" ? BigInt.asIntN(32, v) : v;
  return { ...out, val: BigInt.asUintN(64, raw) };
}

function calcOne(kind: number, spec: CoreSpec | null, insn: number): CalcOut {
  if (isFieldBased(kind)) return calcField(kind, spec, insn);
  if (isTypeBased(kind)) return calcType(kind, spec);
  return calcEnumval(kind, spec);
}

/** Mirrors `bpf_core_calc_relo()`: local and target values, plus size checks. */
function calcRelo(
  relo: CoreRelocation,
  local: CoreSpec,
  targ: CoreSpec | null,
): CoreReloResult {
  const insn = (relo.insnOff ?? 0) / 8;
  const o = calcOne(relo.kind, local, insn);
  const n = calcOne(relo.kind, targ, insn);
  let failMemszAdjust = false;
  if (isFieldBased(relo.kind) && !n.poison && o.size !== n.size) {
    const ot = local.btf.typeById(o.typeId);
    const nt = targ!.btf.typeById(n.typeId);
    const unsignedInts = ot.kind === "INT" && nt.kind === "INT" &&
      ot.encoding !== BTF_INT_SIGNED && nt.encoding !== BTF_INT_SIGNED;
    // Pointers and unsigned ints survive a narrower/wider load unchanged.
    failMemszAdjust = !(ot.kind === "PTR" && nt.kind === "PTR") &&
      !unsignedInts;
  }
  return {
    poison: n.poison,
    validate: o.validate,
    origVal: o.val,
    newVal: n.val,
    origSize: o.size,
    newSize: n.size,
    origTypeId: o.typeId,
    newTypeId: n.typeId,
    failMemszAdjust,
    localSpec: local,
    targetSpec: targ,
  };
}

/**
 * Computes one relocation (`bpf_core_calc_relo_insn()`): parses the local
 * spec, finds candidates in `target` by essential name, matches each and
 * demands they agree. Throws `BtfError` where libbpf fails the load.
 */
export function calcCoreRelo(
  local: Btf,
  relo: CoreRelocation,
  target: Btf = local,
): CoreReloResult {
  const localType = local.typeById(relo.typeId);
  const localSpec = parseCoreSpec(
    local,
    relo.typeId,
    relo.accessStr,
    relo.kind,
  );
  if (relo.kind === BPF_CORE_TYPE_ID_LOCAL) {
    const id = BigInt(relo.typeId);
    return {
      poison: false,
      validate: false,
      origVal: id,
      newVal: id,
      origSize: 0,
      newSize: 0,
      origTypeId: 0,
      newTypeId: 0,
      failMemszAdjust: false,
      localSpec,
      targetSpec: null,
    };
  }
  if (localType.name === "") {
    throw new BtfError(
      `<${
        coreReloKindName(relo.kind)
      }> (${relo.kind}) relocation doesn't support anonymous types`,
      { typeId: relo.typeId, errno: EOPNOTSUPP },
    );
  }
  let result: CoreReloResult | undefined;
  for (const cand of findCoreCandidates(local, relo.typeId, target)) {
    const spec = matchCoreSpec(localSpec, target, cand);
    if (spec === null) continue;
    const res = calcRelo(relo, localSpec, spec);
    if (result === undefined) {
      result = res;
    } else if (spec.bitOffset !== result.targetSpec!.bitOffset) {
      throw new BtfError(
        `field offset ambiguity: ${spec.bitOffset} != ${
          result.targetSpec!.bitOffset
        }`,
        { typeId: relo.typeId, errno: EINVAL },
      );
    } else if (res.poison !== result.poison || res.newVal !== result.newVal) {
      throw new BtfError(
        `relocation decision ambiguity: ${res.newVal} != ${result.newVal}`,
        { typeId: relo.typeId, errno: EINVAL },
      );
    }
  }
  return result ?? calcRelo(relo, localSpec, null);
}
