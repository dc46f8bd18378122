/**
 * A working copy of an object's BTF that the loader may change before it is
 * handed on, the way libbpf edits `obj->btf` in place between opening and
 * loading (DATASEC layout, VAR/FUNC linkage, the `.ksyms` placeholder VAR).
 * `Btf` objects are immutable apart from DATASEC layout, so edits go to a
 * copy of the type array and a new `Btf` is built at the end.
 * @module
 */
import { Btf } from "../btf/btf.ts";
import { BtfStrings } from "../btf/strings.ts";
import { essentialNameLen } from "../btf/core_match.ts";
import type { BtfType, BtfVar } from "../btf/types.ts";

/** BTF types being edited, plus names to append to the string section. */
export interface BtfDraft {
  /** The BTF as parsed. */
  readonly original: Btf;
  /** The `.BTF` section bytes it was parsed from. */
  readonly data: Uint8Array;
  /** Type array, edited in place (index = type id). */
  readonly types: BtfType[];
  /** Strings appended after the original string section. */
  readonly addedStrings: string[];
}

/** Starts a draft from a parsed BTF. */
export function draftBtf(original: Btf, data: Uint8Array): BtfDraft {
  return { original, data, types: [...original.types], addedStrings: [] };
}

/** Size in bytes of the original string section. */
function stringBytes(draft: BtfDraft): number {
  return draft.original.header.strLen;
}

/** Appends a name to the string section; returns its offset. */
export function addString(draft: BtfDraft, name: string): number {
  let offset = stringBytes(draft);
  for (const s of draft.addedStrings) {
    offset += new TextEncoder().encode(s).length + 1;
  }
  draft.addedStrings.push(name);
  return offset;
}

const VAR_ENCODED_SIZE = 16;

/** Appends a VAR (as libbpf's `btf__add_var()`); returns its id. */
export function addVar(
  draft: BtfDraft,
  name: string,
  linkage: number,
  type: number,
): number {
  const id = draft.types.length;
  const h = draft.original.header;
  const added = draft.types.length - draft.original.types.length;
  const v: BtfVar = {
    id,
    kind: "VAR",
    name,
    nameOff: addString(draft, name),
    kflag: false,
    vlen: 0,
    offset: h.hdrLen + h.typeOff + h.typeLen + added * VAR_ENCODED_SIZE,
    type,
    linkage,
  };
  draft.types.push(v);
  return id;
}

/**
 * The edited BTF as the simulated kernel sees it, for CO-RE: the program's
 * own types, except that CO-RE "flavours" (`task_struct___old`) lose their
 * names, since by convention they describe some other kernel's layout and
 * must not become relocation candidates.
 */
export function kernelView(draft: BtfDraft): Btf {
  const types = draft.types.map((t) =>
    t.name !== "" && essentialNameLen(t.name) !== t.name.length
      ? { ...t, name: "" }
      : t
  );
  return finishBtf({ ...draft, types });
}

/** The edited BTF: a new `Btf` (the original is left untouched). */
export function finishBtf(draft: BtfDraft): Btf {
  const h = draft.original.header;
  const encoder = new TextEncoder();
  const extra = draft.addedStrings.map((s) => encoder.encode(s + "\0"));
  const extraLen = extra.reduce((n, b) => n + b.length, 0);
  const typeGrowth = (draft.types.length - draft.original.types.length) *
    VAR_ENCODED_SIZE;
  const strStart = h.hdrLen + h.strOff;
  let bytes = draft.data.subarray(strStart, strStart + h.strLen);
  if (extraLen > 0) {
    const grown = new Uint8Array(h.strLen + extraLen);
    grown.set(bytes);
    let at = h.strLen;
    for (const b of extra) {
      grown.set(b, at);
      at += b.length;
    }
    bytes = grown;
  }
  // clang puts strings after types; appended types push the string section along
  const strOff = h.strOff >= h.typeOff + h.typeLen
    ? h.strOff + typeGrowth
    : h.strOff;
  const header = {
    ...h,
    typeLen: h.typeLen + typeGrowth,
    strOff,
    strLen: bytes.length,
  };
  return new Btf(header, draft.types, new BtfStrings(bytes, h.hdrLen + strOff));
}
