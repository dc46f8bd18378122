/**
 * The rewriting after verification that the graph kfuncs need
 * (`fixup_kfunc_call()` and `__fixup_collection_insert_kfunc()` in
 * do_misc_fixups()): what the program passed as placeholders is replaced by
 * what the verifier proved —
 *
 *  - `bpf_obj_new_impl` / `bpf_percpu_obj_new_impl`: `r1 = object size`,
 *    `r2 = &struct btf_struct_meta` (0 when the type has no special fields);
 *  - `bpf_obj_drop_impl` / `bpf_percpu_obj_drop_impl` /
 *    `bpf_refcount_acquire_impl`: `r2 = &struct btf_struct_meta`;
 *  - `bpf_list_push_{front,back}_impl`: `r3 = meta`, `r4 = node offset`;
 *    `bpf_rbtree_add_impl`: `r4 = meta`, `r5 = node offset`.
 *
 * Inserted instructions shift the program: branches, local calls and
 * function addresses are adjusted as `bpf_adj_branches()` does (a jump to
 * a patched call lands on the first inserted instruction). A kfunc call's
 * BTF id becomes the function's address (the simulated kernel's address
 * ids, `kfuncAddrId`), which the simulated kernel calls with the rewritten
 * arguments. Other do_misc_fixups() rewrites (inlined helpers, division
 * guards) are not applied.
 * @module
 */
import { rawInsn } from "../isa/decode.ts";
import type { RawInsn } from "../isa/insn.ts";
import {
  BPF_ALU64,
  BPF_CALL,
  BPF_DW,
  BPF_EXIT,
  BPF_IMM,
  BPF_JA,
  BPF_JMP,
  BPF_JMP32,
  BPF_K,
  BPF_LD,
  BPF_MOV,
  BPF_PSEUDO_CALL,
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_KFUNC_CALL,
} from "../isa/opcodes.ts";
import { kfuncAddrId, kfuncName } from "../kernel/kfunc_ids.ts";
import type { KfuncAux } from "./check_kfunc.ts";

/** A rewritten program and where each original slot went. */
export interface XlatedProgram {
  /** The rewritten instructions. */
  readonly insns: readonly RawInsn[];
  /** `newIndex[i]`: the first slot of original slot i's expansion. */
  readonly newIndex: readonly number[];
}

/** The address a program's `btf_struct_meta` of type `typeId` has (0: none). */
export type StructMetaAddress = (typeId: number) => bigint;

const movImm = (reg: number, imm: number): RawInsn =>
  rawInsn(BPF_ALU64 | BPF_MOV | BPF_K, reg, 0, 0, imm);

function ldImm64(reg: number, value: bigint): RawInsn[] {
  const v = BigInt.asUintN(64, value);
  return [
    rawInsn(BPF_LD | BPF_IMM | BPF_DW, reg, 0, 0, Number(v & 0xffffffffn)),
    rawInsn(0, 0, 0, 0, Number(v >> 32n)),
  ];
}

// the instructions fixup_kfunc_call() puts before a call
function prologue(a: KfuncAux, meta: StructMetaAddress): RawInsn[] {
  const m = a.structMetaId ? meta(a.structMetaId) : 0n;
  switch (a.name) {
    case "bpf_obj_new_impl":
    case "bpf_percpu_obj_new_impl":
      return [movImm(1, a.objNewSize), ...ldImm64(2, m)];
    case "bpf_obj_drop_impl":
    case "bpf_percpu_obj_drop_impl":
    case "bpf_refcount_acquire_impl":
      return ldImm64(2, m);
    case "bpf_list_push_front_impl":
    case "bpf_list_push_back_impl":
      return [...ldImm64(3, m), movImm(4, a.insertOff)];
    case "bpf_rbtree_add_impl":
      return [...ldImm64(4, m), movImm(5, a.insertOff)];
    default:
      return [];
  }
}

/**
 * `insn`, moved from slot `i` to slot `self`, with its branch target, local
 * call or function address re-aimed through `newIndex` (old slot → new).
 */
function reaim(
  insn: RawInsn,
  i: number,
  self: number,
  newIndex: readonly number[],
): RawInsn {
  const at = (old: number) =>
    old >= 0 && old < newIndex.length ? newIndex[old] : old;
  const cls = insn.code & 0x07;
  if (isJump(insn)) {
    const ja32 = cls === BPF_JMP32 && (insn.code & 0xf0) === BPF_JA;
    const off = ja32 ? insn.imm : insn.off;
    const target = at(i + off + 1) - self - 1;
    return ja32 ? { ...insn, imm: target } : { ...insn, off: target };
  }
  const relative =
    (insn.code === (BPF_JMP | BPF_CALL) && insn.src === BPF_PSEUDO_CALL) ||
    (insn.code === (BPF_LD | BPF_IMM | BPF_DW) && insn.src === BPF_PSEUDO_FUNC);
  return relative ? { ...insn, imm: at(i + insn.imm + 1) - self - 1 } : insn;
}

function isJump(insn: RawInsn): boolean {
  const cls = insn.code & 0x07;
  if (cls !== BPF_JMP && cls !== BPF_JMP32) return false;
  const op = insn.code & 0xf0;
  return op !== BPF_CALL && op !== BPF_EXIT;
}

/**
 * Applies the kfunc fixups recorded during verification (`aux`, by slot)
 * to `raw`, returning the rewritten program.
 */
export function fixupKfuncCalls(
  raw: readonly RawInsn[],
  aux: ReadonlyMap<number, KfuncAux>,
  meta: StructMetaAddress,
): XlatedProgram {
  const pro = raw.map((_, i) => {
    const a = aux.get(i);
    return a ? prologue(a, meta) : [];
  });
  const newIndex: number[] = [];
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    newIndex.push(n);
    n += pro[i].length + 1;
  }
  newIndex.push(n);
  const out: RawInsn[] = [];
  raw.forEach((insn, i) => {
    out.push(...pro[i]);
    const moved = reaim(insn, i, out.length, newIndex);
    if (
      insn.code === (BPF_JMP | BPF_CALL) &&
      insn.src === BPF_PSEUDO_KFUNC_CALL &&
      insn.off === 0 && kfuncName(insn.imm >>> 0) !== undefined
    ) {
      // the BTF id becomes the function's "address" (its rewritten form)
      out.push({ ...insn, imm: kfuncAddrId(insn.imm >>> 0) });
    } else {
      out.push(moved);
    }
  });
  return { insns: out, newIndex };
}

/**
 * Mirrors `opt_remove_dead_code()` then `opt_remove_nops()` for a
 * privileged loader: instructions no path reached (`seen[i]` 0) go, then
 * `goto +0`s; branches are re-aimed (a jump into removed code lands on the
 * next kept instruction). Returns the program and the slot map.
 */
export function removeDeadCode(
  raw: readonly RawInsn[],
  seen: ArrayLike<number>,
): XlatedProgram {
  // an lddw's second slot lives and dies with its first
  const lddw = BPF_LD | BPF_IMM | BPF_DW;
  const keep = raw.map((_, i) =>
    seen[i] !== 0 || (i > 0 && raw[i - 1].code === lddw && seen[i - 1] !== 0)
  );
  const pass1 = compact(raw, keep);
  const nop = pass1.insns.map((insn) =>
    !(insn.code === (BPF_JMP | BPF_JA) && insn.off === 0 && insn.imm === 0)
  );
  const pass2 = compact(pass1.insns, nop);
  return {
    insns: pass2.insns,
    newIndex: pass1.newIndex.map((n) => pass2.newIndex[n]),
  };
}

// drops the slots where keep[i] is false, re-aiming every branch
function compact(
  raw: readonly RawInsn[],
  keep: readonly boolean[],
): XlatedProgram {
  const newIndex: number[] = [];
  let n = 0;
  for (let i = 0; i < raw.length; i++) {
    newIndex.push(n);
    if (keep[i]) n++;
  }
  newIndex.push(n);
  const out: RawInsn[] = [];
  raw.forEach((insn, i) => {
    if (keep[i]) out.push(reaim(insn, i, out.length, newIndex));
  });
  return { insns: out, newIndex };
}
