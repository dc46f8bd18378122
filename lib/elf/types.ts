/**
 * What `loadObject()` returns: plain data describing an object as libbpf
 * would submit it to the kernel (no file descriptors, no live state), so one
 * parsed object can be loaded into any number of simulated kernels.
 * @module
 */
import type { Btf } from "../btf/btf.ts";
import type { BtfExt } from "../btf/ext.ts";
import type { Insn, RawInsn } from "../isa/insn.ts";
import type { ExternDesc } from "./externs.ts";
import type { BpfMapDef } from "./maps.ts";
import type { AttachType, ProgType } from "../uapi/bpf.ts";

/** How an instruction was rewritten for a relocation (see `ProgramRelocation`). */
export type ProgramRelocationKind =
  | "map" // lddw: src=BPF_PSEUDO_MAP_IDX, imm=map index
  | "map_value" // lddw: src=BPF_PSEUDO_MAP_IDX_VALUE, imm=map index, second imm=offset
  | "subprog_call" // call: src=BPF_PSEUDO_CALL, imm=relative target
  | "subprog_addr" // lddw: src=BPF_PSEUDO_FUNC, imm=relative target
  | "kfunc_call" // call: src=BPF_PSEUDO_KFUNC_CALL, imm=0 until the kernel BTF id is known
  | "ksym" // lddw of a __ksym variable: src=BPF_PSEUDO_BTF_ID (typed) or 0 (typeless), imm=0
  | "kconfig" // lddw of a __kconfig variable: a map_value in the .kconfig map
  | "core"; // a CO-RE relocation from .BTF.ext

/** One relocated instruction, for printing (`llvm-objdump -dr` style) and for later resolution. */
export interface ProgramRelocation {
  /** Slot of the instruction in the linked program. */
  readonly insnIndex: number;
  /** How the instruction was rewritten. */
  readonly kind: ProgramRelocationKind;
  /** ELF relocation type (`R_BPF_64_64`, `R_BPF_64_32`), or null for CO-RE records. */
  readonly elfType: string | null;
  /** Symbol the ELF relocation names (a map, a variable, a section, an extern). */
  readonly symbol: string;
  /** Map index (`map`, `map_value`, `kconfig`). */
  readonly mapIndex?: number;
  /** Byte offset into the map value (`map_value`, `kconfig`). */
  readonly offset?: number;
  /** Index into `ObjectFile.externs` (`kfunc_call`, `ksym`, `kconfig`). */
  readonly externIndex?: number;
  /** Slot the call / address points at (`subprog_call`, `subprog_addr`). */
  readonly target?: number;
  /** CO-RE: relocation kind, local type id and access string. */
  readonly core?: ProgramCoreRelocation;
}

/** A CO-RE relocation record (`struct bpf_core_relo`) placed on a linked instruction. */
export interface ProgramCoreRelocation {
  /** `enum bpf_core_relo_kind` name, e.g. `field_byte_offset`, `type_id_local`. */
  readonly kind: string;
  /** Number of the kind. */
  readonly kindId: number;
  /** Local BTF type id the relocation is about. */
  readonly typeId: number;
  /** Access string, e.g. `0:1` (member 1 of the type). */
  readonly accessString: string;
  /** The value written into the instruction, or null when not applied or poisoned. */
  readonly value: bigint | null;
  /** The relocation failed and the instruction became a call of helper 0xbad2310. */
  readonly poisoned: boolean;
}

/** A function inside a linked program: the entry point or an appended subprogram. */
export interface ProgramFunction {
  /** Function name. */
  readonly name: string;
  /** First slot. */
  readonly start: number;
  /** Number of slots. */
  readonly length: number;
}

/** One `bpf_func_info` record, in linked slots. */
export interface FuncInfo {
  /** Slot where the function starts. */
  readonly insnOff: number;
  /** Its BTF FUNC id. */
  readonly typeId: number;
}

/** One `bpf_line_info` record, in linked slots. */
export interface LineInfo {
  /** First slot of the source line. */
  readonly insnOff: number;
  /** Source file. */
  readonly fileName: string;
  /** The source line's text. */
  readonly line: string;
  /** Line number. */
  readonly lineNum: number;
  /** Column. */
  readonly lineCol: number;
}

/** An entry-point program, linked (libbpf's program as passed to `BPF_PROG_LOAD`). */
export interface BpfProgram {
  /** Function name (libbpf's program name). */
  readonly name: string;
  /** ELF section, without a leading `?`. */
  readonly section: string;
  /** Program type implied by the section name; `unspec` when libbpf does not know it. */
  readonly type: ProgType;
  /** `enum bpf_prog_type` number. */
  readonly typeId: number;
  /** Expected attach type, or null. */
  readonly expectedAttachType: AttachType | null;
  /** `enum bpf_attach_type` number (0 when null). */
  readonly expectedAttachTypeId: number;
  /** For programs attached through kernel BTF (`fentry/NAME` …): NAME. */
  readonly attachTarget: string | null;
  /** `prog_flags` libbpf passes (`BPF_F_SLEEPABLE`, `BPF_F_XDP_HAS_FRAGS`). */
  readonly progFlags: number;
  /** False for `SEC("?…")` programs. */
  readonly autoload: boolean;
  /** Linked instruction slots exactly as libbpf submits them to `BPF_PROG_LOAD`. */
  readonly raw: readonly RawInsn[];
  /**
   * `raw` decoded, one entry per slot (an `lddw` takes two); empty when a
   * slot cannot be decoded (see `decodeError`) — the kernel's verifier, not
   * the loader, rejects such programs, so they still load here.
   */
  readonly insns: readonly Insn[];
  /** Why `raw` could not be decoded (`decodeRaw()`'s `IsaError`), if it could not. */
  readonly decodeError?: {
    readonly insnIndex: number;
    readonly reason: string;
  };
  /** The entry point and appended subprograms, in order. */
  readonly functions: readonly ProgramFunction[];
  /** Relocated instructions, by slot. */
  readonly relocations: readonly ProgramRelocation[];
  /** `.BTF.ext` function info, when the object has it. */
  readonly funcInfo?: readonly FuncInfo[];
  /** `.BTF.ext` line info, when the object has it. */
  readonly lineInfo?: readonly LineInfo[];
  /**
   * For a struct_ops program: the member of a `.struct_ops` map it fills
   * (from the map's relocations); absent when no map refers to it.
   */
  readonly structOps?: StructOpsMember;
}

/** A function-pointer member of a struct_ops map, filled by a program. */
export interface StructOpsMember {
  /** The map (the `.struct_ops` variable's name). */
  readonly map: string;
  /** The struct's name (`tcp_congestion_ops`), which libbpf looks up in the kernel's BTF. */
  readonly structName: string;
  /** The member's name (`cong_avoid`). */
  readonly member: string;
  /** The member's index in the object's own declaration of the struct. */
  readonly memberIndex: number;
}

/** A BPF object file, parsed and linked. */
export interface ObjectFile {
  /** libbpf's object name: the file's basename up to the first dot (≤ 15 chars). */
  readonly name: string;
  /** The name given to `loadObject` (used in every message). */
  readonly file: string;
  /** Contents of the `license` section ("" when absent). */
  readonly license: string;
  /** Contents of the `version` section, or null. */
  readonly kernVersion: number | null;
  /** Entry-point programs in libbpf's order (by section, then offset). */
  readonly programs: readonly BpfProgram[];
  /** Maps in creation order: the index is what `src=BPF_PSEUDO_MAP_IDX` instructions refer to. */
  readonly maps: readonly BpfMapDef[];
  /** Externs in libbpf's order: the index is what relocations refer to. */
  readonly externs: readonly ExternDesc[];
  /** The object's BTF after libbpf's fix-ups, when it has `.BTF`. */
  readonly btf?: Btf;
  /** The parsed `.BTF.ext` (offsets as in the ELF sections), when present and valid. */
  readonly btfExt?: BtfExt;
  /** What libbpf would report at info level (skipped sections, ignored `.BTF.ext`). */
  readonly warnings: readonly string[];
}
