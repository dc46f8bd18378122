/**
 * `cli.ts inspect`: a JSON-able summary of a loaded object (programs, maps
 * with their special fields, externs) and a text rendering for people, plus
 * the per-instruction relocation notes a disassembler prints under each
 * instruction, as `llvm-objdump -dr` does (`R_BPF_64_64 my_map`).
 * @module
 */
import type { Btf } from "../btf/btf.ts";
import { BtfError } from "../btf/errors.ts";
import { findFields } from "../btf/fields.ts";
import {
  BPF_KPTR,
  BPF_LIST_HEAD,
  BPF_RB_ROOT,
  BPF_REFCOUNT,
  BPF_RES_SPIN_LOCK,
  BPF_SPIN_LOCK,
  BPF_TASK_WORK,
  BPF_TIMER,
  BPF_UPTR,
  BPF_WORKQUEUE,
  btfFieldTypeName,
} from "../btf/field_types.ts";
import type { BpfMapDef } from "./maps.ts";
import type { BpfProgram, ObjectFile, ProgramRelocation } from "./types.ts";
import { BPF_F_LINK, BPF_F_MMAPABLE, BPF_F_RDONLY_PROG } from "../uapi/bpf.ts";

/** A program line of the summary. */
export interface ProgramSummary {
  /** Program name. */
  readonly name: string;
  /** ELF section. */
  readonly section: string;
  /** Program type (libbpf's name). */
  readonly type: string;
  /** Expected attach type, or null. */
  readonly expectedAttachType: string | null;
  /** Attach target named in the section (`fentry/NAME`), or null. */
  readonly attachTarget: string | null;
  /** Instruction slots after linking (what libbpf submits). */
  readonly insns: number;
  /** Appended subprograms, in layout order. */
  readonly subprograms: readonly string[];
  /** Names of the maps the program refers to. */
  readonly maps: readonly string[];
  /** Names of the kfuncs and ksyms it uses. */
  readonly externs: readonly string[];
  /** Number of CO-RE relocations applied to it. */
  readonly coreRelocations: number;
}

/** One special field of a map value (`bpf_spin_lock`, `kptr`, `bpf_list_head` …). */
export interface FieldSummary {
  /** `btf_field_type_name()`: `bpf_spin_lock`, `kptr`, … */
  readonly type: string;
  /** Byte offset in the value. */
  readonly offset: number;
}

/** A map line of the summary. */
export interface MapSummary {
  /** Map index (what lddw instructions refer to); -1 for an inner map template. */
  readonly index: number;
  /** Map name. */
  readonly name: string;
  /** Map type (libbpf's name). */
  readonly type: string;
  /** Key size in bytes. */
  readonly keySize: number;
  /** Value size in bytes. */
  readonly valueSize: number;
  /** `max_entries`. */
  readonly maxEntries: number;
  /** `map_flags`. */
  readonly flags: number;
  /** Names of the set flags libbpf adds or users commonly set. */
  readonly flagNames: readonly string[];
  /** `data`, `rodata`, `bss`, `kconfig`, or null for BTF-defined maps. */
  readonly internal: string | null;
  /** Whether user space may mmap it. */
  readonly mmapable: boolean;
  /** C names of the key and value types, when BTF gives them. */
  readonly keyType: string | null;
  /** C name of the value type (for global data: `SEC(".data")`). */
  readonly valueType: string | null;
  /** Special fields of the value, as the kernel would find them; null without BTF. */
  readonly specialFields: readonly FieldSummary[] | null;
  /** Why special-field discovery failed (the kernel would refuse the map), if it did. */
  readonly fieldError?: string;
  /** Inner map template of a map-in-map. */
  readonly innerMap?: MapSummary;
  /** Initial slots (map or program names). */
  readonly initSlots?: readonly (string | null)[];
}

/** An extern line of the summary. */
export interface ExternSummary {
  /** Extern index (what relocations refer to). */
  readonly index: number;
  /** Name. */
  readonly name: string;
  /** `__kconfig` or `__ksym`. */
  readonly kind: "kconfig" | "ksym";
  /** A kfunc rather than a variable. */
  readonly isFunc: boolean;
  /** Declared `__weak`. */
  readonly isWeak: boolean;
  /** C name of its local type (kfunc prototype, variable type), or null. */
  readonly type: string | null;
}

/** Everything `inspect` shows; plain JSON-able data. */
export interface ObjectSummary {
  /** The name given to `loadObject`. */
  readonly file: string;
  /** libbpf's object name. */
  readonly name: string;
  /** License string. */
  readonly license: string;
  /** `version` section, or null. */
  readonly kernVersion: number | null;
  /** Whether the object carries BTF. */
  readonly hasBtf: boolean;
  /** Entry-point programs. */
  readonly programs: readonly ProgramSummary[];
  /** Maps, by index. */
  readonly maps: readonly MapSummary[];
  /** Externs, by index. */
  readonly externs: readonly ExternSummary[];
  /** Loader notes (skipped sections, ignored `.BTF.ext`). */
  readonly warnings: readonly string[];
}

/** Field types the kernel looks for in a map value (`map_check_btf()`). */
const MAP_VALUE_FIELDS = BPF_SPIN_LOCK | BPF_RES_SPIN_LOCK | BPF_TIMER |
  BPF_KPTR | BPF_LIST_HEAD |
  BPF_RB_ROOT | BPF_REFCOUNT | BPF_WORKQUEUE | BPF_UPTR | BPF_TASK_WORK;

const FLAG_NAMES: readonly [number, string][] = [
  [1 << 0, "BPF_F_NO_PREALLOC"],
  [1 << 1, "BPF_F_NO_COMMON_LRU"],
  [1 << 2, "BPF_F_NUMA_NODE"],
  [1 << 3, "BPF_F_RDONLY"],
  [1 << 4, "BPF_F_WRONLY"],
  [BPF_F_RDONLY_PROG, "BPF_F_RDONLY_PROG"],
  [1 << 8, "BPF_F_WRONLY_PROG"],
  [BPF_F_MMAPABLE, "BPF_F_MMAPABLE"],
  [BPF_F_LINK, "BPF_F_LINK"],
];

function typeName(btf: Btf | undefined, id: number): string | null {
  if (btf === undefined || id === 0) return null;
  try {
    return btf.typeName(id);
  } catch {
    return null;
  }
}

function summarizeMap(
  m: BpfMapDef,
  index: number,
  btf: Btf | undefined,
): MapSummary {
  let specialFields: FieldSummary[] | null = null;
  let fieldError: string | undefined;
  if (btf !== undefined && m.btfValueTypeId !== 0) {
    try {
      // only structs and datasecs can hold special fields (btf_find_field())
      const value = btf.resolve(m.btfValueTypeId).type;
      specialFields = value.kind !== "STRUCT" && value.kind !== "DATASEC"
        ? []
        : findFields(btf, value.id, MAP_VALUE_FIELDS)
          .map((f) => ({ type: btfFieldTypeName(f.type), offset: f.off }));
    } catch (e) {
      if (!(e instanceof BtfError)) throw e;
      specialFields = [];
      fieldError = e.message;
    }
  }
  return {
    index,
    name: m.name,
    type: m.type,
    keySize: m.keySize,
    valueSize: m.valueSize,
    maxEntries: m.maxEntries,
    flags: m.flags,
    flagNames: FLAG_NAMES.filter(([bit]) => (m.flags & bit) !== 0).map((
      [, n],
    ) => n),
    internal: m.internal,
    mmapable: m.mmapable,
    keyType: typeName(btf, m.btfKeyTypeId),
    valueType: typeName(btf, m.btfValueTypeId),
    specialFields,
    ...(fieldError === undefined ? {} : { fieldError }),
    ...(m.innerMap === undefined
      ? {}
      : { innerMap: summarizeMap(m.innerMap, -1, btf) }),
    ...(m.initSlots === undefined ? {} : { initSlots: m.initSlots }),
  };
}

function summarizeProgram(p: BpfProgram, obj: ObjectFile): ProgramSummary {
  const maps = new Set<string>();
  const externs = new Set<string>();
  let core = 0;
  for (const r of p.relocations) {
    if (r.mapIndex !== undefined) maps.add(obj.maps[r.mapIndex].name);
    if (r.externIndex !== undefined && r.kind !== "kconfig") {
      externs.add(obj.externs[r.externIndex].name);
    }
    if (r.kind === "core") core++;
  }
  return {
    name: p.name,
    section: p.section,
    type: p.type,
    expectedAttachType: p.expectedAttachType,
    attachTarget: p.attachTarget,
    insns: p.raw.length,
    subprograms: p.functions.slice(1).map((f) => f.name),
    maps: [...maps],
    externs: [...externs],
    coreRelocations: core,
  };
}

/** Summarizes a loaded object for `inspect` (and its `--json`). */
export function inspectObject(obj: ObjectFile): ObjectSummary {
  return {
    file: obj.file,
    name: obj.name,
    license: obj.license,
    kernVersion: obj.kernVersion,
    hasBtf: obj.btf !== undefined,
    programs: obj.programs.map((p) => summarizeProgram(p, obj)),
    maps: obj.maps.map((m, i) => summarizeMap(m, i, obj.btf)),
    externs: obj.externs.map((e, index) => ({
      index,
      name: e.name,
      kind: e.kind,
      isFunc: e.isFunc,
      isWeak: e.isWeak,
      type: typeName(
        obj.btf,
        e.kind === "ksym"
          ? e.ksymTypeId
          : (obj.btf?.typeById(e.btfId) as { type?: number })?.type ?? 0,
      ),
    })),
    warnings: obj.warnings,
  };
}

function mapLine(m: MapSummary, indent: string): string[] {
  const flags = m.flagNames.length > 0
    ? m.flagNames.join("|")
    : `0x${m.flags.toString(16)}`;
  const head =
    `${indent}${
      m.index >= 0 ? `#${m.index} ` : ""
    }${m.name}: ${m.type} key ${m.keySize} value ${m.valueSize}` +
    ` max_entries ${m.maxEntries} flags ${flags}${
      m.mmapable ? " (mmapable)" : ""
    }`;
  const lines = [head];
  if (m.keyType !== null || m.valueType !== null) {
    lines.push(
      `${indent}    key type ${m.keyType ?? "-"}, value type ${
        m.valueType ?? "-"
      }`,
    );
  }
  if (m.specialFields !== null && m.specialFields.length > 0) {
    lines.push(
      `${indent}    special fields: ${
        m.specialFields.map((f) => `${f.type}@${f.offset}`).join(" ")
      }`,
    );
  }
  if (m.fieldError !== undefined) {
    lines.push(`${indent}    special fields: error: ${m.fieldError}`);
  }
  if (m.innerMap !== undefined) {
    lines.push(...mapLine(m.innerMap, `${indent}    inner `));
  }
  if (m.initSlots !== undefined) {
    lines.push(
      `${indent}    initial slots: ${
        m.initSlots.map((s, i) => `[${i}]=${s ?? "-"}`).join(" ")
      }`,
    );
  }
  return lines;
}

/** Renders a summary for people, one line per program / map / extern. */
export function formatInspect(s: ObjectSummary): string {
  const out: string[] = [];
  const version = s.kernVersion === null
    ? ""
    : `, version 0x${s.kernVersion.toString(16)}`;
  out.push(
    `object ${s.name} (${s.file}): license "${s.license}"${version}${
      s.hasBtf ? "" : ", no BTF"
    }`,
  );
  out.push(`programs (${s.programs.length}):`);
  for (const p of s.programs) {
    const attach = p.expectedAttachType === null
      ? ""
      : ` attach ${p.expectedAttachType}`;
    const parts = [
      `  ${p.name}: section ${p.section}, ${p.type}${attach}, ${p.insns} insns`,
    ];
    if (p.subprograms.length > 0) {
      parts.push(`subprograms ${p.subprograms.join(", ")}`);
    }
    if (p.maps.length > 0) parts.push(`maps ${p.maps.join(", ")}`);
    if (p.externs.length > 0) parts.push(`externs ${p.externs.join(", ")}`);
    if (p.coreRelocations > 0) {
      parts.push(`${p.coreRelocations} CO-RE relocations`);
    }
    out.push(parts.join("; "));
  }
  out.push(`maps (${s.maps.length}):`);
  for (const m of s.maps) out.push(...mapLine(m, "  "));
  if (s.externs.length > 0) {
    out.push(`externs (${s.externs.length}):`);
    for (const e of s.externs) {
      const what = e.kind === "kconfig"
        ? "kconfig"
        : e.isFunc
        ? "kfunc"
        : "ksym";
      out.push(
        `  #${e.index} ${e.name}: ${what}${e.isWeak ? " (weak)" : ""}${
          e.type === null ? "" : ` ${e.type}`
        }`,
      );
    }
  }
  for (const w of s.warnings) out.push(`note: ${w}`);
  return out.join("\n") + "\n";
}

/**
 * The notes to print under instruction `slot` of a program, as
 * `llvm-objdump -dr` prints them: `R_BPF_64_64 my_map`; CO-RE records read
 * `CO-RE byte_off [5] 0:1`.
 */
export function relocationNotes(program: BpfProgram, slot: number): string[] {
  return program.relocations.filter((r) => r.insnIndex === slot).map(
    formatRelocation,
  );
}

/** One relocation note (see `relocationNotes`). */
export function formatRelocation(r: ProgramRelocation): string {
  if (r.core !== undefined) {
    return `CO-RE ${r.core.kind} [${r.core.typeId}] ${r.core.accessString}`;
  }
  return `${r.elfType ?? "?"} ${r.symbol}`;
}
