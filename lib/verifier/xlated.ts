/**
 * The rewritten program as `bpftool prog dump xlated` lists it: one
 * `%4d: (op) insn` line per instruction (an `lddw` shows once), kfunc calls
 * by name.
 * @module
 */
import { decodeRaw } from "../isa/decode.ts";
import { formatInsn } from "../isa/disasm.ts";
import type { CallInsn, RawInsn } from "../isa/insn.ts";
import { BPF_PSEUDO_KFUNC_CALL } from "../isa/opcodes.ts";
import { kfuncName } from "../kernel/kfunc_ids.ts";

/** Names kfunc calls in listings (`call bpf_obj_new_impl#100000`). */
export function kfuncCallName(insn: CallInsn): string | undefined {
  return insn.src === BPF_PSEUDO_KFUNC_CALL
    ? kfuncName(insn.imm >>> 0)
    : undefined;
}

/** The listing lines of `raw`. */
export function xlatedLines(raw: readonly RawInsn[]): string[] {
  const insns = decodeRaw(raw);
  const out: string[] = [];
  insns.forEach((insn, i) => {
    if (insn.kind === "ld_imm64_hi") return;
    const body = formatInsn(insn, i, { callName: kfuncCallName });
    out.push(`${String(i).padStart(4)}: ${body.slice(body.indexOf(" ") + 1)}`);
  });
  return out;
}
