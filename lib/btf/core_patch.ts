/**
 * Applying a CO-RE result to an instruction, as libbpf's
 * `bpf_core_patch_insn()`: ALU immediates, load/store offsets (with size
 * adjustment) and 64-bit immediates; failed relocations poison the insn.
 * @module
 */
import type { RawInsn } from "../isa/insn.ts";
import {
  BPF_ALU,
  BPF_ALU64,
  BPF_B,
  BPF_CALL,
  BPF_DW,
  BPF_H,
  BPF_IMM,
  BPF_JMP,
  BPF_K,
  BPF_LD,
  BPF_LDX,
  BPF_ST,
  BPF_STX,
  BPF_W,
  bpfClass,
  bpfMode,
  bpfSize,
  bpfSrc,
  sizeBytes,
} from "../isa/opcodes.ts";
import { BtfError, EINVAL, ERANGE } from "./errors.ts";
import type { CoreReloResult } from "./core.ts";

/** Helper id a poisoned insn calls: 0xbad2310, "bad relo". */
export const POISON_HELPER_ID = 195896080;

const POISONED: RawInsn = {
  code: BPF_JMP | BPF_CALL,
  dst: 0,
  src: 0,
  off: 0,
  imm: POISON_HELPER_ID,
};

function isLdImm64(i: RawInsn): boolean {
  return i.code === (BPF_LD | BPF_IMM | BPF_DW);
}

function bytesToSize(n: number): number {
  switch (n) {
    case 8:
      return BPF_DW;
    case 4:
      return BPF_W;
    case 2:
      return BPF_H;
    case 1:
      return BPF_B;
    default:
      return -1;
  }
}

/**
 * Patches slot `idx` of `prog` (and `idx + 1` for an lddw) in place,
 * replacing the slot objects. Throws `BtfError` with libbpf's reason when
 * the instruction does not hold what the compiler was expected to emit.
 */
export function patchCoreInsn(
  prog: RawInsn[],
  idx: number,
  res: CoreReloResult,
): void {
  const insn = prog[idx];
  if (insn === undefined) {
    throw new BtfError(`CO-RE relo for insn #${idx} past the program end`);
  }
  const fail = (reason: string, errno = EINVAL): never => {
    throw new BtfError(`insn #${idx} ${reason}`, { errno });
  };
  const poison = () => {
    // The lddw's second half is poisoned too, so the verifier does not
    // complain about "unknown opcode 00" instead.
    if (isLdImm64(insn) && idx + 1 < prog.length) prog[idx + 1] = POISONED;
    prog[idx] = POISONED;
  };
  if (res.poison) return poison();
  const { origVal, newVal } = res;
  switch (bpfClass(insn.code)) {
    case BPF_ALU:
    case BPF_ALU64:
      if (bpfSrc(insn.code) !== BPF_K) {
        fail("(ALU/ALU64) does not use an immediate");
      }
      // C compares the s32 imm with the u64 value after sign extension.
      if (res.validate && BigInt.asUintN(64, BigInt(insn.imm)) !== origVal) {
        fail(
          `(ALU/ALU64) value: got ${
            insn.imm >>> 0
          }, exp ${origVal} -> ${newVal}`,
        );
      }
      prog[idx] = { ...insn, imm: Number(BigInt.asIntN(32, newVal)) };
      return;
    case BPF_LDX:
    case BPF_ST:
    case BPF_STX: {
      if (res.validate && BigInt.asUintN(64, BigInt(insn.off)) !== origVal) {
        fail(
          `(LDX/ST/STX) value: got ${insn.off}, exp ${origVal} -> ${newVal}`,
        );
      }
      if (newVal > 32767n) {
        fail(`(LDX/ST/STX) value too big: ${newVal}`, ERANGE);
      }
      if (res.failMemszAdjust) return poison();
      let code = insn.code;
      if (res.newSize !== res.origSize) {
        const have = sizeBytes(bpfSize(insn.code));
        if (have !== res.origSize) {
          fail(
            `(LDX/ST/STX) unexpected mem size: got ${have}, exp ${res.origSize}`,
          );
        }
        const size = bytesToSize(res.newSize);
        if (size < 0) fail(`(LDX/ST/STX) invalid new mem size: ${res.newSize}`);
        code = bpfMode(insn.code) | size | bpfClass(insn.code);
      }
      prog[idx] = { ...insn, code, off: Number(newVal) };
      return;
    }
    case BPF_LD: {
      const hi = prog[idx + 1];
      if (
        !isLdImm64(insn) || insn.src !== 0 || insn.off !== 0 ||
        hi === undefined ||
        hi.code !== 0 || hi.dst !== 0 || hi.src !== 0 || hi.off !== 0
      ) {
        fail("(LDIMM64) has unexpected form");
      }
      const imm = (BigInt(hi.imm >>> 0) << 32n) | BigInt(insn.imm >>> 0);
      if (res.validate && imm !== origVal) {
        fail(`(LDIMM64) value: got ${imm}, exp ${origVal} -> ${newVal}`);
      }
      prog[idx] = { ...insn, imm: Number(BigInt.asIntN(32, newVal)) };
      prog[idx + 1] = { ...hi, imm: Number(BigInt.asIntN(32, newVal >> 32n)) };
      return;
    }
    default:
      fail(`code:0x${insn.code.toString(16)} cannot be relocated`);
  }
}
