/**
 * Loads and stores through a pointer to an allocated object
 * (`PTR_TO_BTF_ID | MEM_ALLOC`, a type of the program's own BTF):
 * `check_ptr_to_btf_access()` with `btf_struct_access()` and
 * `btf_struct_walk()` (kernel/bpf/btf.c) — special fields are off limits,
 * accesses must stay inside one member, and what is loaded is a scalar
 * (a local type's pointers never become pointers again).
 * @module
 */
import type { Btf } from "../btf/btf.ts";
import { btfFieldTypeName } from "../btf/field_types.ts";
import type { BtfType } from "../btf/types.ts";
import { EACCES, EINVAL, type Env } from "./env.ts";
import { typeIsAlloc } from "./graph_state.ts";
import { markRegUnknown, type RegState } from "./reg_state.ts";
import { baseType, MEM_PERCPU, MEM_USER, PTR_TO_BTF_ID } from "./reg_types.ts";
import { tnumStr } from "./tnum.ts";

/** `enum bpf_struct_walk_result`. */
type Walk = { kind: "scalar" } | { kind: "ptr" } | {
  kind: "struct";
  id: number;
};

// __btf_resolve_size() for a member: total size, element size and type
function memberSize(btf: Btf, id: number): {
  size: number;
  elem: BtfType;
  elemId: number;
  nelems: number;
} {
  let t = btf.resolve(id).type;
  let nelems = 1;
  while (t.kind === "ARRAY") {
    nelems *= t.nelems;
    t = btf.resolve(t.type).type;
  }
  const elemSize = t.kind === "PTR" ? 8 : btf.sizeOf(t.id);
  return { size: elemSize * nelems, elem: t, elemId: t.id, nelems };
}

// mirrors btf_struct_walk() (no flexible arrays: local types are sized)
function structWalk(
  env: Env,
  btf: Btf,
  startId: number,
  off: number,
  size: number,
): Walk {
  let t = btf.resolve(startId).type;
  for (;;) {
    const tname = t.name;
    if (t.kind !== "STRUCT" && t.kind !== "UNION") {
      env.fail(EINVAL, `Type '${tname}' is not a struct`);
    }
    if (off + size > t.size) {
      env.fail(
        EACCES,
        `access beyond struct ${tname} at off ${off} size ${size}`,
      );
    }
    let next: BtfType | null = null;
    for (const m of t.members) {
      const moff = Math.floor(m.bitOffset / 8);
      if (off + size <= moff) break;
      if (m.bitfieldSize) {
        const endByte = Math.ceil((m.bitOffset + m.bitfieldSize) / 8);
        if (off <= moff && endByte <= off + size) return { kind: "scalar" };
        continue;
      }
      if (off < moff) break;
      const ms = memberSize(btf, m.type);
      const trueEnd = moff + ms.size;
      if (off >= trueEnd) continue;
      let mt = btf.resolve(m.type).type;
      let mid = btf.resolve(m.type).id;
      let start = moff;
      if (mt.kind === "ARRAY") {
        if (moff === trueEnd) continue;
        const esz = ms.size / ms.nelems;
        start += Math.floor((off - moff) / esz) * esz;
        mt = ms.elem;
        mid = ms.elemId;
      }
      if (mt.kind === "STRUCT" || mt.kind === "UNION") {
        if (off === start) return { kind: "struct", id: mid };
        off -= start;
        next = mt;
        break;
      }
      if (mt.kind === "PTR") {
        const target = btf.resolve(mt.type).type;
        if (ms.size !== size || off !== start) {
          env.fail(
            EACCES,
            `cannot access ptr member ${m.name} with moff ${start} in struct ${tname} with off ${off} size ${size}`,
          );
        }
        if (target.kind === "STRUCT") return { kind: "ptr" };
      }
      if (off + size > trueEnd) {
        env.fail(
          EACCES,
          `access beyond the end of member ${m.name} (mend:${trueEnd}) in struct ${tname} with off ${off} size ${size}`,
        );
      }
      return { kind: "scalar" };
    }
    if (!next) {
      env.fail(EINVAL, `struct ${tname} doesn't have field at offset ${off}`);
    }
    t = next;
  }
}

/** True when this access is one {@link checkAllocObjAccess} handles. */
export function isAllocObjAccess(reg: RegState): boolean {
  return baseType(reg.type) === PTR_TO_BTF_ID && reg.btf !== null;
}

/**
 * Mirrors `check_ptr_to_btf_access()` for allocated objects: `off` already
 * includes the register's fixed offset.
 */
export function checkAllocObjAccess(
  env: Env,
  reg: RegState,
  regno: number,
  off: number,
  size: number,
  isWrite: boolean,
  valueRegno: number,
): void {
  const btf = reg.btf!.btf;
  const tname = reg.btfName;
  if (off < 0) {
    env.fail(
      EACCES,
      `R${regno} is ptr_${tname} invalid negative access: off=${off}`,
    );
  }
  if (reg.s.varOff.mask !== 0n || reg.s.varOff.value !== 0n) {
    env.fail(
      EACCES,
      `R${regno} is ptr_${tname} invalid variable offset: off=${off}, var_off=${
        tnumStr(reg.s.varOff)
      }`,
    );
  }
  if (reg.type & MEM_USER) {
    env.fail(
      EACCES,
      `R${regno} is ptr_${tname} access user memory: off=${off}`,
    );
  }
  if (reg.type & MEM_PERCPU) {
    env.fail(
      EACCES,
      `R${regno} is ptr_${tname} access percpu memory: off=${off}`,
    );
  }
  // btf_struct_access(): no special field may be touched directly
  if (typeIsAlloc(reg.type)) {
    const rec = reg.btf!.metas.get(reg.btfId);
    for (const f of rec?.fields ?? []) {
      if (off < f.offset + f.size && off + size > f.offset) {
        env.fail(
          EACCES,
          `direct access to ${btfFieldTypeName(f.type)} is disallowed`,
        );
      }
    }
  }
  let id = reg.btfId;
  for (;;) {
    const w = structWalk(env, btf, id, off, size);
    if (w.kind !== "struct") break;
    id = w.id;
    off = 0;
  }
  if (!isWrite && valueRegno >= 0) {
    markRegUnknown(env.cur.frames[env.cur.curframe].regs[valueRegno]);
  }
}
