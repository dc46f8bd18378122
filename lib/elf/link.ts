/**
 * Linking one entry-point program the way libbpf does before `BPF_PROG_LOAD`:
 * the subprograms it calls (directly or not) are appended after its own code
 * in first-call order and every call is pointed at its copy
 * (`bpf_object__relocate_calls()` / `bpf_object__reloc_code()` /
 * `bpf_object__append_subprog_code()`); then map, global-data and extern
 * references are written into the `lddw` and `call` instructions
 * (`bpf_object__relocate_data()`), using the fd-array encoding libbpf uses for
 * light skeletons: `src=BPF_PSEUDO_MAP_IDX`, `imm` = map index, and for
 * values `src=BPF_PSEUDO_MAP_IDX_VALUE` with the offset in the second slot.
 * @module
 */
import type { RawInsn } from "../isa/insn.ts";
import {
  BPF_CALL,
  BPF_DW,
  BPF_IMM,
  BPF_JMP,
  BPF_LD,
  BPF_PSEUDO_BTF_ID,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_KFUNC_CALL,
  BPF_PSEUDO_MAP_IDX,
  BPF_PSEUDO_MAP_IDX_VALUE,
  INSN_SIZE,
} from "../isa/opcodes.ts";
import { LoadError } from "./errors.ts";
import type { ExternDesc } from "./externs.ts";
import { type ElfProgram, findProgramBySecInsn } from "./programs.ts";
import type { RelocDesc } from "./relocations.ts";

/** A function's place in a linked program. */
export interface LinkedFunction {
  /** Function name (the entry point first). */
  readonly name: string;
  /** First slot in the linked program. */
  readonly start: number;
  /** Number of slots. */
  readonly length: number;
  /** The ELF program it was copied from. */
  readonly source: ElfProgram;
}

/** The result of linking one entry point. */
export interface LinkedProgram {
  /** Linked slots. */
  readonly insns: RawInsn[];
  /** Relocations of the linked code, slot indices in the linked program, sorted. */
  readonly relocs: RelocDesc[];
  /** The entry point and the appended subprograms, in layout order. */
  readonly functions: LinkedFunction[];
}

/** What linking needs from the object. */
export interface LinkContext {
  /** Object name, for messages. */
  readonly file: string;
  /** All functions, sorted (`sortPrograms`). */
  readonly programs: readonly ElfProgram[];
  /** Index of `.text`. */
  readonly textIndex: number;
  /** Externs in libbpf's order. */
  readonly externs: readonly ExternDesc[];
  /** Index of the `.kconfig` map, or -1. */
  readonly kconfigMapIdx: number;
}

const LDDW = BPF_LD | BPF_IMM | BPF_DW;
const CALL = BPF_JMP | BPF_CALL;

function isSubprogCall(insn: RawInsn): boolean {
  return insn.code === CALL && insn.src === BPF_PSEUDO_CALL && insn.dst === 0 &&
    insn.off === 0;
}

function isPseudoFunc(insn: RawInsn): boolean {
  return insn.code === LDDW && insn.src === BPF_PSEUDO_FUNC;
}

/** Links `main` with its subprograms and resolves its data references. */
export function linkProgram(ctx: LinkContext, main: ElfProgram): LinkedProgram {
  // slots are replaced, never changed in place: copying the array is enough
  const insns = [...main.insns];
  // mirrors bpf_object__relocate(): lddw of a subprogram address becomes BPF_PSEUDO_FUNC first
  const markFuncs = (
    code: RawInsn[],
    relocs: readonly RelocDesc[],
    base: number,
  ) => {
    for (const r of relocs) {
      if (r.kind === "subprog_addr") {
        code[base + r.insnIdx] = {
          ...code[base + r.insnIdx],
          src: BPF_PSEUDO_FUNC,
        };
      }
    }
  };
  markFuncs(insns, main.relocs, 0);
  const linked: LinkedProgram = {
    insns,
    relocs: [...main.relocs],
    functions: [{
      name: main.name,
      start: 0,
      length: main.secInsnCnt,
      source: main,
    }],
  };
  const placed = new Map<ElfProgram, number>([[main, 0]]);
  const append = (sub: ElfProgram) => {
    const start = linked.insns.length;
    placed.set(sub, start);
    const code = [...sub.insns];
    markFuncs(code, sub.relocs, 0);
    linked.insns.push(...code);
    for (const r of sub.relocs) {
      linked.relocs.push({ ...r, insnIdx: r.insnIdx + start });
    }
    linked.functions.push({
      name: sub.name,
      start,
      length: sub.secInsnCnt,
      source: sub,
    });
  };
  relocCode(ctx, linked, main, placed, append);
  linked.relocs.sort((a, b) => a.insnIdx - b.insnIdx);
  relocateData(ctx, main, linked);
  return linked;
}

/** Mirrors `bpf_object__reloc_code()` for the copy of `prog` inside the linked program. */
function relocCode(
  ctx: LinkContext,
  linked: LinkedProgram,
  prog: ElfProgram,
  placed: Map<ElfProgram, number>,
  append: (sub: ElfProgram) => void,
): void {
  const base = placed.get(prog)!;
  const where = { file: ctx.file, section: prog.secName };
  for (let insnIdx = 0; insnIdx < prog.secInsnCnt; insnIdx++) {
    const insn = linked.insns[base + insnIdx];
    if (!isSubprogCall(insn) && !isPseudoFunc(insn)) continue;
    const relo = prog.relocs.find((r) => r.insnIdx === insnIdx);
    if (relo?.kind === "extern_call") continue; // kfunc, handled with the data relocations
    if (
      relo !== undefined && relo.kind !== "call" && relo.kind !== "subprog_addr"
    ) {
      throw new LoadError(
        { ...where, offset: (prog.secInsnOff + insnIdx) * INSN_SIZE },
        `prog '${prog.name}': unexpected relo for insn #${insnIdx}, type ${relo.kind}`,
      );
    }
    let subInsnIdx: number;
    if (relo?.kind === "call") {
      // global functions: imm is -1 and the symbol gives the target; static: imm gives it
      subInsnIdx = relo.symOff / INSN_SIZE + insn.imm + 1;
    } else if (relo?.kind === "subprog_addr") {
      subInsnIdx = (relo.symOff + insn.imm) / INSN_SIZE;
    } else if (isPseudoFunc(insn)) {
      throw new LoadError(
        { ...where, offset: (prog.secInsnOff + insnIdx) * INSN_SIZE },
        `prog '${prog.name}': missing subprog addr relo for insn #${insnIdx}`,
      );
    } else {
      // a call to a static function of the same section carries no relocation
      subInsnIdx = prog.secInsnOff + insnIdx + insn.imm + 1;
    }
    const sub = findProgramBySecInsn(ctx.programs, ctx.textIndex, subInsnIdx);
    if (sub === undefined) {
      throw new LoadError(
        { ...where, offset: (prog.secInsnOff + insnIdx) * INSN_SIZE },
        `prog '${prog.name}': no .text section found yet sub-program call exists`,
      );
    }
    if (!placed.has(sub)) {
      append(sub);
      relocCode(ctx, linked, sub, placed, append);
    }
    const imm = placed.get(sub)! - (base + insnIdx) - 1;
    linked.insns[base + insnIdx] = { ...linked.insns[base + insnIdx], imm };
  }
}

/** Mirrors `bpf_object__relocate_data()` with the fd-array encoding (see module doc). */
function relocateData(
  ctx: LinkContext,
  main: ElfProgram,
  linked: LinkedProgram,
): void {
  const code = linked.insns;
  const set = (i: number, fields: Partial<RawInsn>) => {
    code[i] = { ...code[i], ...fields };
  };
  for (const r of linked.relocs) {
    const i = r.insnIdx;
    switch (r.kind) {
      case "ld64":
        set(i, { src: BPF_PSEUDO_MAP_IDX, imm: r.mapIdx });
        break;
      case "data":
        set(i + 1, { imm: (code[i].imm + r.symOff) | 0 });
        set(i, { src: BPF_PSEUDO_MAP_IDX_VALUE, imm: r.mapIdx });
        break;
      case "extern_ld64": {
        const ext = ctx.externs[r.extIdx];
        if (ext.kconfig !== undefined) {
          set(i, { src: BPF_PSEUDO_MAP_IDX_VALUE, imm: ctx.kconfigMapIdx });
          set(i + 1, { imm: ext.kconfig.offset });
        } else if (ext.ksymTypeId !== 0) {
          // typed ksym: the kernel BTF id is found at load time (relocation names it)
          set(i, { src: BPF_PSEUDO_BTF_ID, imm: 0 });
          set(i + 1, { imm: 0 });
        } else {
          // typeless ksym: its kallsyms address is found at load time
          set(i, { imm: 0 });
          set(i + 1, { imm: 0 });
        }
        break;
      }
      case "extern_call":
        // kfunc: imm (kernel BTF id) and off (module BTF slot) are filled at load time
        set(i, { src: BPF_PSEUDO_KFUNC_CALL, imm: 0, off: 0 });
        break;
      case "subprog_addr":
        if (code[i].src !== BPF_PSEUDO_FUNC) {
          throw new LoadError(
            { file: ctx.file, section: main.secName },
            `prog '${main.name}': relo at insn ${i}: bad insn`,
          );
        }
        break;
      case "call":
      case "core":
        break;
    }
  }
}
