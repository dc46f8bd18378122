/**
 * C-like spelling of a BTF type: the declarator is built inside-out, so
 * pointers to arrays and functions get their parentheses (`int (*)[4]`,
 * `int (*)(int, char)`). Type tags print as bpftool's C dump prints them.
 * @module
 */
import type { BtfType } from "./types.ts";

/** What `cTypeName` needs from a `Btf` (kept minimal to avoid a cycle). */
export interface TypeSource {
  typeById(id: number): BtfType;
}

const MAX_DEPTH = 64;

/** Renders type `id` as C, e.g. `struct foo *` or `const volatile int`. */
export function cTypeName(btf: TypeSource, id: number): string {
  return render(btf, id, "", 0);
}

/** `base` followed by the declarator; array suffixes attach directly. */
function join(base: string, inner: string): string {
  if (inner === "") return base;
  return inner.startsWith("[") ? base + inner : `${base} ${inner}`;
}

function render(
  btf: TypeSource,
  id: number,
  inner: string,
  depth: number,
): string {
  if (depth > MAX_DEPTH) return join("<loop>", inner);
  const t = btf.typeById(id);
  const next = (tid: number, i: string) => render(btf, tid, i, depth + 1);
  const anon = (s: string) => (s === "" ? "(anon)" : s);
  switch (t.kind) {
    case "VOID":
      return join("void", inner);
    case "INT":
    case "FLOAT":
    case "TYPEDEF":
      return join(t.name, inner);
    case "STRUCT":
      return join(`struct ${anon(t.name)}`, inner);
    case "UNION":
      return join(`union ${anon(t.name)}`, inner);
    case "ENUM":
    case "ENUM64":
      return join(`enum ${anon(t.name)}`, inner);
    case "FWD":
      return join(`${t.fwdKind} ${t.name}`, inner);
    case "PTR": {
      const target = btf.typeById(t.type);
      const star = `*${inner}`;
      const wrap = target.kind === "ARRAY" || target.kind === "FUNC_PROTO";
      return next(t.type, wrap ? `(${star})` : star);
    }
    case "CONST":
    case "VOLATILE":
    case "RESTRICT": {
      const q = t.kind.toLowerCase();
      // A qualified pointer reads `int * const`; a qualified base `const int`.
      if (qualifiesPointer(btf, t.type)) {
        return next(t.type, inner ? `${q} ${inner}` : q);
      }
      return `${q} ${next(t.type, inner)}`;
    }
    case "TYPE_TAG": {
      const tag = `__attribute__((btf_type_tag("${t.name}")))`;
      return next(t.type, inner ? `${tag} ${inner}` : tag);
    }
    case "ARRAY":
      return next(t.type, `${inner}[${t.nelems}]`);
    case "FUNC_PROTO": {
      const params = t.params.map((p, i) =>
        p.type === 0 && i === t.params.length - 1 ? "..." : next(p.type, "")
      );
      return next(
        t.returnType,
        `${inner}(${params.length ? params.join(", ") : "void"})`,
      );
    }
    case "FUNC":
      return next(t.type, t.name + inner);
    case "VAR":
      return next(t.type, t.name + (inner ? ` ${inner}` : ""));
    case "DATASEC":
      return join(`SEC("${t.name}")`, inner);
    case "DECL_TAG":
      return `__attribute__((btf_decl_tag("${t.name}")))`;
  }
}

/** True when qualifiers at `id` end on a PTR (so they bind to the pointer). */
function qualifiesPointer(btf: TypeSource, id: number): boolean {
  let t = btf.typeById(id);
  for (let i = 0; i < MAX_DEPTH; i++) {
    if (t.kind === "PTR") return true;
    if (t.kind !== "CONST" && t.kind !== "VOLATILE" && t.kind !== "RESTRICT") {
      return false;
    }
    t = btf.typeById(t.type);
  }
  return false;
}
