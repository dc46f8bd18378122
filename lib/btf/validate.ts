/**
 * Cross-type checks run once all types are read: every referenced type id
 * exists, can be referenced from there, and DECL_TAG component indices fit.
 * Messages are those of the kernel's resolve pass (`btf_*_resolve()`,
 * `btf_decl_tag_resolve()`, `btf_struct_check_meta()`).
 * @module
 */
import { BtfError } from "./errors.ts";
import { type BtfType, DECL_TAG_WHOLE_TYPE } from "./types.ts";

/** Throws `BtfError` for the first dangling or misplaced type reference. */
export function checkReferences(types: readonly BtfType[]): void {
  const count = types.length;
  for (const t of types) {
    const fail = (reason: string): never => {
      throw new BtfError(reason, { typeId: t.id, offset: t.offset });
    };
    const ref = (id: number, reason: string, allowVoid: boolean) => {
      if (id >= count || (!allowVoid && id === 0)) {
        fail(`${reason} (type id ${id}, last is ${count - 1})`);
      }
    };
    switch (t.kind) {
      case "PTR":
      case "TYPEDEF":
      case "VOLATILE":
      case "CONST":
      case "RESTRICT":
      case "TYPE_TAG":
        ref(t.type, "Invalid type_id", true);
        break;
      case "ARRAY":
        ref(t.type, "Invalid elem", false);
        ref(t.indexType, "Invalid index", false);
        break;
      case "STRUCT":
      case "UNION":
        for (const m of t.members) {
          ref(m.type, `Invalid member '${m.name}'`, false);
          // btf_struct_check_meta(): union members sit at 0, none past the end.
          if (t.kind === "UNION" && m.bitOffset !== 0) {
            fail(`Invalid member '${m.name}' bits_offset`);
          }
          if (Math.ceil(m.bitOffset / 8) > t.size) {
            fail(`Member '${m.name}' bits_offset exceeds its struct size`);
          }
        }
        break;
      case "FUNC":
        ref(t.type, "Invalid type_id", false);
        if (types[t.type].kind !== "FUNC_PROTO") {
          fail("Invalid type_id (not a FUNC_PROTO)");
        }
        break;
      case "FUNC_PROTO":
        ref(t.returnType, "Invalid return type", true);
        t.params.forEach((p, i) => ref(p.type, `Invalid arg#${i + 1}`, true));
        break;
      case "VAR":
        ref(t.type, "Invalid type_id", false);
        break;
      case "DATASEC":
        for (const v of t.vars) ref(v.type, "Invalid type_id", false);
        break;
      case "DECL_TAG":
        ref(t.type, "Invalid type_id", false);
        checkDeclTagTarget(types, t.componentIdx, types[t.type], fail);
        break;
      default:
        break;
    }
  }
}

/** Mirrors `btf_decl_tag_resolve()`: what a decl tag may sit on, and where. */
function checkDeclTagTarget(
  types: readonly BtfType[],
  idx: number,
  target: BtfType,
  fail: (reason: string) => never,
): void {
  const k = target.kind;
  if (
    k !== "STRUCT" && k !== "UNION" && k !== "VAR" && k !== "FUNC" &&
    k !== "TYPEDEF"
  ) {
    fail(
      "Invalid type_id (decl tag target must be struct, union, var, func or typedef)",
    );
  }
  if (idx === DECL_TAG_WHOLE_TYPE) return;
  let vlen = 0;
  if (target.kind === "STRUCT" || target.kind === "UNION") {
    vlen = target.members.length;
  } else if (target.kind === "FUNC") vlen = types[target.type]?.vlen ?? 0;
  if (idx < 0 || idx >= vlen) fail(`Invalid component_idx ${idx}`);
}
