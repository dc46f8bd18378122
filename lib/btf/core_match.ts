/**
 * Matching a local CO-RE spec against a target BTF: candidate search by
 * "essential" name (`bpf_core_add_cands()`), the three compatibility
 * relations (`bpf_core_fields_are_compat`, `__bpf_core_types_are_compat`,
 * `__bpf_core_types_match`) and `bpf_core_spec_match()`.
 * @module
 */
import type { Btf } from "./btf.ts";
import { BtfError, E2BIG, EINVAL } from "./errors.ts";
import {
  BPF_CORE_SPEC_MAX_LEN,
  BPF_CORE_TYPE_MATCHES,
  type CoreAccessor,
  type CoreSpec,
  isEnumvalBased,
  isFieldBased,
  isFlexArray,
  isTypeBased,
} from "./core_spec.ts";
import {
  BTF_INT_SIGNED,
  type BtfComposite,
  type BtfEnum,
  type BtfType,
  isAnyEnum,
  isComposite,
} from "./types.ts";

const MAX_DEPTH = 32;

/** Length of `name` without a `___flavor` suffix (`bpf_core_essential_name_len`). */
export function essentialNameLen(name: string): number {
  for (let i = name.length - 5; i >= 0; i--) {
    if (
      name[i] !== "_" && name.startsWith("___", i + 1) && name[i + 4] !== "_"
    ) return i + 1;
  }
  return name.length;
}

function essential(name: string): string {
  return name.slice(0, essentialNameLen(name));
}

/** `btf_kind_core_compat()`: same kind, or ENUM vs ENUM64. */
function kindCompat(a: BtfType, b: BtfType): boolean {
  return a.kind === b.kind || (isAnyEnum(a) && isAnyEnum(b));
}

/**
 * Target type ids whose kind and essential name match local type
 * `localId` (`bpf_core_add_cands()`). Anonymous local types have none.
 */
export function findCoreCandidates(
  local: Btf,
  localId: number,
  target: Btf,
): number[] {
  const lt = local.typeById(localId);
  const name = essential(lt.name);
  if (lt.name === "") {
    throw new BtfError("CO-RE candidate search needs a named type", {
      typeId: localId,
    });
  }
  const out: number[] = [];
  for (const t of target.types) {
    if (t.name === "" || !kindCompat(t, lt)) continue;
    if (essential(t.name) === name) out.push(t.id);
  }
  return out;
}

/** `bpf_core_fields_are_compat()`. */
export function fieldsAreCompat(
  local: Btf,
  localId: number,
  targ: Btf,
  targId: number,
): boolean {
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    const l = local.resolve(localId).type;
    const t = targ.resolve(targId).type;
    if (isComposite(l) && isComposite(t)) return true;
    if (!kindCompat(l, t)) return false;
    switch (l.kind) {
      case "PTR":
      case "FLOAT":
        return true;
      case "FWD":
      case "ENUM":
      case "ENUM64": {
        const ln = essentialNameLen(l.name);
        const tn = essentialNameLen(t.name);
        return ln === 0 || tn === 0 || essential(l.name) === essential(t.name);
      }
      case "INT":
        return l.bitsOffset === 0 && t.kind === "INT" && t.bitsOffset === 0;
      case "ARRAY":
        localId = l.type;
        targId = (t as { type: number }).type;
        continue;
      default:
        return false;
    }
  }
  throw new BtfError("type chain too deep", { typeId: localId, errno: EINVAL });
}

/** `__bpf_core_types_are_compat()` (used by TYPE_EXISTS / TYPE_SIZE / TYPE_ID_TARGET). */
export function typesAreCompat(
  local: Btf,
  localId: number,
  targ: Btf,
  targId: number,
  level = MAX_DEPTH,
): boolean {
  if (!kindCompat(local.typeById(localId), targ.typeById(targId))) return false;
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    const lr = local.resolve(localId);
    const tr = targ.resolve(targId);
    const l = lr.type;
    const t = tr.type;
    if (!kindCompat(l, t)) return false;
    switch (l.kind) {
      case "VOID":
      case "STRUCT":
      case "UNION":
      case "ENUM":
      case "ENUM64":
      case "FWD":
        return true;
      case "INT":
        return l.bitsOffset === 0 &&
          (t as { bitsOffset: number }).bitsOffset === 0;
      case "PTR":
      case "ARRAY":
        localId = l.type;
        targId = (t as { type: number }).type;
        continue;
      case "FUNC_PROTO": {
        if (t.kind !== "FUNC_PROTO" || l.params.length !== t.params.length) {
          return false;
        }
        for (let i = 0; i < l.params.length; i++) {
          if (level <= 0) {
            throw new BtfError("func proto nesting too deep", {
              errno: EINVAL,
            });
          }
          const lp = local.resolve(l.params[i].type).id;
          const tp = targ.resolve(t.params[i].type).id;
          if (!typesAreCompat(local, lp, targ, tp, level - 1)) return false;
        }
        localId = local.resolve(l.returnType).id;
        targId = targ.resolve(t.returnType).id;
        continue;
      }
      default:
        return false;
    }
  }
  throw new BtfError("type chain too deep", { typeId: localId, errno: EINVAL });
}

/** `bpf_core_names_match()`: essential names equal, anonymous only with anonymous. */
function namesMatch(local: string, targ: string): boolean {
  if (targ === "") return local === "";
  return essential(local) === essential(targ);
}

/** `__bpf_core_types_match()` (TYPE_MATCHES): structural equality by name. */
export function typesMatch(
  local: Btf,
  localId: number,
  targ: Btf,
  targId: number,
  behindPtrIn = false,
  level = MAX_DEPTH,
): boolean {
  if (level <= 0) {
    throw new BtfError("types_match nesting too deep", { errno: EINVAL });
  }
  let behindPtr = behindPtrIn;
  for (let depth = 0; depth < MAX_DEPTH; depth++) {
    const l = local.resolve(localId).type;
    const t = targ.resolve(targId).type;
    if (!namesMatch(l.name, t.name)) return false;
    switch (l.kind) {
      case "VOID":
        return t.kind === "VOID";
      case "FWD":
        if (behindPtr && t.kind !== "FWD") {
          return (t.kind === "STRUCT" && !l.kflag) ||
            (t.kind === "UNION" && l.kflag);
        }
        return t.kind === "FWD" && l.kflag === t.kflag;
      case "ENUM":
      case "ENUM64":
        return isAnyEnum(t) && enumsMatch(l, t);
      case "STRUCT":
      case "UNION":
        if (behindPtr) {
          if (l.kind === t.kind) return true;
          return t.kind === "FWD" && (l.kind === "UNION") === t.kflag;
        }
        return l.kind === t.kind &&
          compositesMatch(local, l, targ, t as BtfComposite, level);
      case "INT":
        return t.kind === "INT" && l.size === t.size &&
          (l.encoding & BTF_INT_SIGNED) === (t.encoding & BTF_INT_SIGNED);
      case "PTR":
        if (t.kind !== "PTR") return false;
        behindPtr = true;
        localId = l.type;
        targId = t.type;
        continue;
      case "ARRAY":
        if (t.kind !== "ARRAY" || l.nelems !== t.nelems) return false;
        localId = l.type;
        targId = t.type;
        continue;
      case "FUNC_PROTO": {
        if (t.kind !== "FUNC_PROTO" || l.params.length !== t.params.length) {
          return false;
        }
        for (let i = 0; i < l.params.length; i++) {
          const ok = typesMatch(
            local,
            l.params[i].type,
            targ,
            t.params[i].type,
            behindPtr,
            level - 1,
          );
          if (!ok) return false;
        }
        localId = l.returnType;
        targId = t.returnType;
        continue;
      }
      default:
        return false;
    }
  }
  throw new BtfError("type chain too deep", { typeId: localId, errno: EINVAL });
}

function enumsMatch(l: BtfEnum, t: BtfEnum): boolean {
  if (l.size !== t.size || l.values.length > t.values.length) return false;
  return l.values.every((lv) =>
    t.values.some((tv) => namesMatch(lv.name, tv.name))
  );
}

function compositesMatch(
  local: Btf,
  l: BtfComposite,
  targ: Btf,
  t: BtfComposite,
  level: number,
): boolean {
  if (l.members.length > t.members.length) return false;
  return l.members.every((lm) =>
    t.members.some((tm) =>
      namesMatch(lm.name, tm.name) &&
      typesMatch(local, lm.type, targ, tm.type, false, level - 1)
    )
  );
}

/** A target spec under construction (mutable twin of `CoreSpec`). */
interface SpecBuilder {
  spec: CoreAccessor[];
  raw: number[];
  bitOffset: number;
}

/** `bpf_core_match_member()`: finds `local`'s named member, diving into anonymous ones. */
function matchMember(
  local: Btf,
  localAcc: CoreAccessor,
  targ: Btf,
  targIdIn: number,
  out: SpecBuilder,
): number | undefined {
  const tr = targ.resolve(targIdIn);
  const t = tr.type;
  if (!isComposite(t)) return undefined;
  const lt = local.typeById(localAcc.typeId);
  const lm = (lt as BtfComposite).members[localAcc.idx];
  for (let i = 0; i < t.members.length; i++) {
    const m = t.members[i];
    if (out.raw.length === BPF_CORE_SPEC_MAX_LEN) {
      throw new BtfError("CO-RE spec too deep", { errno: E2BIG });
    }
    out.bitOffset += m.bitOffset;
    out.raw.push(i);
    if (m.name === "") {
      const found = matchMember(local, localAcc, targ, m.type, out);
      if (found !== undefined) return found;
    } else if (m.name === lm.name) {
      if (!fieldsAreCompat(local, lm.type, targ, m.type)) return undefined;
      out.spec.push({ typeId: tr.id, idx: i, name: m.name });
      return m.type;
    }
    out.bitOffset -= m.bitOffset;
    out.raw.pop();
  }
  return undefined;
}

/**
 * `bpf_core_spec_match()`: the target spec for candidate `targId`, or null
 * when the candidate does not match.
 */
export function matchCoreSpec(
  localSpec: CoreSpec,
  targ: Btf,
  targIdIn: number,
): CoreSpec | null {
  const local = localSpec.btf;
  const kind = localSpec.kind;
  const done = (b: SpecBuilder): CoreSpec => ({
    btf: targ,
    rootTypeId: targIdIn,
    kind,
    spec: b.spec,
    raw: b.raw,
    bitOffset: b.bitOffset,
  });
  const out: SpecBuilder = { spec: [], raw: [], bitOffset: 0 };
  if (isTypeBased(kind)) {
    const ok = kind === BPF_CORE_TYPE_MATCHES
      ? typesMatch(local, localSpec.rootTypeId, targ, targIdIn)
      : typesAreCompat(local, localSpec.rootTypeId, targ, targIdIn);
    return ok ? done(out) : null;
  }
  if (isEnumvalBased(kind)) {
    const tr = targ.resolve(targIdIn);
    if (!isAnyEnum(tr.type)) return null;
    const want = essential(localSpec.spec[0].name ?? "");
    const i = tr.type.values.findIndex((v) => essential(v.name) === want);
    if (i < 0) return null;
    out.spec.push({ typeId: tr.id, idx: i, name: tr.type.values[i].name });
    out.raw.push(i);
    return done(out);
  }
  if (!isFieldBased(kind)) {
    throw new BtfError(`unknown relocation kind ${kind}`);
  }
  let targId = targIdIn;
  for (let i = 0; i < localSpec.spec.length; i++) {
    const acc = localSpec.spec[i];
    const tr = targ.resolve(targId);
    targId = tr.id;
    if (acc.name !== undefined) {
      const next = matchMember(local, acc, targ, targId, out);
      if (next === undefined) return null;
      targId = next;
      continue;
    }
    if (i > 0) {
      const t = tr.type;
      if (t.kind !== "ARRAY") return null;
      const flex = isFlexArray(targ, out.spec[out.spec.length - 1], t.nelems);
      if (!flex && acc.idx >= t.nelems) return null;
      targId = targ.resolve(t.type).id;
    }
    if (out.raw.length === BPF_CORE_SPEC_MAX_LEN) {
      throw new BtfError("CO-RE spec too deep", { errno: E2BIG });
    }
    out.spec.push({ typeId: targId, idx: acc.idx });
    out.raw.push(acc.idx);
    out.bitOffset += acc.idx * targ.sizeOf(targId) * 8;
  }
  return done(out);
}
