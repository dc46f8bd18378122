/**
 * One step of precision backtracking (`backtrack_insn()` of Linux 6.18):
 * given the registers and stack slots whose values must be precise *after*
 * an instruction, compute those that must be precise *before* it. The sets
 * are kept per call frame in a {@link Backtrack} (`struct backtrack_state`);
 * stack masks are split into two 32-bit halves so the hot path never
 * touches bigint.
 * @module
 */
import type { Insn } from "../isa/insn.ts";
import type { Env } from "./env.ts";
import { REGMASK_ARGS } from "./liveness.ts";
import { findSubprog, MAX_CALL_FRAMES } from "./subprogs.ts";
import type { JmpHistEntry } from "./state.ts";

/** `INSN_F_STACK_ACCESS`: the instruction spilled to or filled from a slot. */
export const INSN_F_STACK_ACCESS = 1 << 9;
const INSN_F_SPI_SHIFT = 3;
const INSN_F_SPI_MASK = 0x3f;
const INSN_F_FRAMENO_MASK = 0x7;
const BPF_REG_FP = 10;

/** Mirrors `insn_stack_access_flags()`. */
export function stackAccessFlags(frameno: number, spi: number): number {
  return INSN_F_STACK_ACCESS | (spi << INSN_F_SPI_SHIFT) | frameno;
}

/** Packs one linked register or spilled slot (`struct linked_reg`). */
export function packLinkedReg(
  frameno: number,
  regOrSpi: number,
  isReg: boolean,
): number {
  return frameno | (regOrSpi << 3) | (isReg ? 1 << 9 : 0);
}

/** What `backtrackInsn` concluded. */
export const enum BtResult {
  /** Keep walking backwards. */
  Ok,
  /** `-ENOTSUPP`: fall back to marking every scalar precise. */
  NotSupported,
  /**
   * The kernel would report a verifier bug here (`-EFAULT`); bpfsim falls
   * back to marking everything precise, which is always safe.
   */
  Bug,
}

/** Mirrors `struct backtrack_state`: what still needs precision, per frame. */
export class Backtrack {
  /** Frame the walk is in (`bt->frame`). */
  frame = 0;
  /** Register masks per frame. */
  readonly regs: Uint32Array = new Uint32Array(MAX_CALL_FRAMES);
  /** Stack slots 0–31 per frame. */
  readonly stackLo: Uint32Array = new Uint32Array(MAX_CALL_FRAMES);
  /** Stack slots 32–63 per frame. */
  readonly stackHi: Uint32Array = new Uint32Array(MAX_CALL_FRAMES);

  /** `bt_reset()`. */
  reset(): void {
    this.frame = 0;
    this.regs.fill(0);
    this.stackLo.fill(0);
    this.stackHi.fill(0);
  }

  /** `bt_empty()`: nothing tracked in frames 0..frame. */
  empty(): boolean {
    for (let i = 0; i <= this.frame; i++) {
      if (this.regs[i] | this.stackLo[i] | this.stackHi[i]) return false;
    }
    return true;
  }

  /** Sets register `r` of frame `f`. */
  setReg(f: number, r: number): void {
    this.regs[f] |= 1 << r;
  }

  /** Clears register `r` of frame `f`. */
  clearReg(f: number, r: number): void {
    this.regs[f] &= ~(1 << r);
  }

  /** True when register `r` of frame `f` is tracked. */
  hasReg(f: number, r: number): boolean {
    return (this.regs[f] & (1 << r)) !== 0;
  }

  /** Sets slot `spi` of frame `f`. */
  setSlot(f: number, spi: number): void {
    if (spi < 32) this.stackLo[f] |= 1 << spi;
    else this.stackHi[f] |= 1 << (spi - 32);
  }

  /** Clears slot `spi` of frame `f`. */
  clearSlot(f: number, spi: number): void {
    if (spi < 32) this.stackLo[f] &= ~(1 << spi);
    else this.stackHi[f] &= ~(1 << (spi - 32));
  }

  /** True when slot `spi` of frame `f` is tracked. */
  hasSlot(f: number, spi: number): boolean {
    return spi < 32
      ? (this.stackLo[f] & (1 << spi)) !== 0
      : (this.stackHi[f] & (1 << (spi - 32))) !== 0;
  }

  /** True when frame `f` tracks any stack slot. */
  hasStack(f: number): boolean {
    return (this.stackLo[f] | this.stackHi[f]) !== 0;
  }
}

/** Mirrors `fmt_reg_mask()`: `r0,r2`. */
export function fmtRegMask(mask: number): string {
  const out: string[] = [];
  for (let i = 0; i < 32; i++) if (mask & (1 << i)) out.push(`r${i}`);
  return out.join(",");
}

/** Mirrors `bpf_fmt_stack_mask()`: `-8,-24`. */
export function fmtStackMask(lo: number, hi: number): string {
  const out: string[] = [];
  for (let i = 0; i < 64; i++) {
    const set = i < 32 ? lo & (1 << i) : hi & (1 << (i - 32));
    if (set) out.push(`${-(i + 1) * 8}`);
  }
  return out.join(",");
}

// mirrors bt_sync_linked_regs(): one precise member makes all precise
function syncLinkedRegs(bt: Backtrack, hist: JmpHistEntry | null): void {
  const linked = hist?.linkedRegs;
  if (!linked) return;
  let some = false;
  for (const e of linked) {
    const f = e & 7, n = (e >> 3) & 0x3f;
    if ((e & (1 << 9)) ? bt.hasReg(f, n) : bt.hasSlot(f, n)) {
      some = true;
      break;
    }
  }
  if (!some) return;
  for (const e of linked) {
    const f = e & 7, n = (e >> 3) & 0x3f;
    if (e & (1 << 9)) bt.setReg(f, n);
    else bt.setSlot(f, n);
  }
}

function stackSlotOf(hist: JmpHistEntry | null): [number, number] | null {
  if (!hist || !(hist.flags & INSN_F_STACK_ACCESS)) return null;
  return [
    hist.flags & INSN_F_FRAMENO_MASK,
    (hist.flags >> INSN_F_SPI_SHIFT) & INSN_F_SPI_MASK,
  ];
}

// a load into `dreg` (ldx, load-acquire): its precision moves to the stack
// slot it filled from; false when backtracking may stop here
function backtrackLoad(
  bt: Backtrack,
  f: number,
  dreg: number,
  hist: JmpHistEntry | null,
): boolean {
  if (!bt.hasReg(f, dreg)) return false;
  bt.clearReg(f, dreg);
  const slot = stackSlotOf(hist);
  if (!slot) return false;
  bt.setSlot(slot[0], slot[1]);
  return true;
}

// the call/exit part of backtrack_insn()
function backtrackCall(
  env: Env,
  insn: Insn & { kind: "call" },
  idx: number,
  subseq: number,
  bt: Backtrack,
): BtResult {
  const f = bt.frame;
  if (insn.callee === "local") {
    const subprog = findSubprog(env.layout.subprogs, insn.target);
    if (subprog < 0) return BtResult.Bug;
    if (env.isGlobal(subprog)) {
      // r1-r5 are invalidated by the call; the callee always sets R0
      if (bt.regs[f] & REGMASK_ARGS) return BtResult.Bug;
      bt.clearReg(f, 0);
      return BtResult.Ok;
    }
    // leaving the callee: only its arguments can still be wanted
    if (bt.regs[f] & ~REGMASK_ARGS || bt.hasStack(f) || f === 0) {
      return BtResult.Bug;
    }
    for (let r = 1; r <= 5; r++) {
      if (bt.hasReg(f, r)) {
        bt.clearReg(f, r);
        bt.setReg(f - 1, r);
      }
    }
    bt.frame--;
    return BtResult.Ok;
  }
  if (env.aux.callsCallbackAt(idx) && idx !== subseq - 1) {
    // exit from a callback back into the helper that called it
    if (bt.regs[f] & ~REGMASK_ARGS || bt.hasStack(f) || f === 0) {
      return BtResult.Bug;
    }
    bt.regs[f] &= ~REGMASK_ARGS;
    bt.frame--;
    return BtResult.Ok;
  }
  if (insn.callee === "kfunc" && insn.imm === 0) return BtResult.NotSupported;
  bt.clearReg(f, 0);
  return bt.regs[f] & REGMASK_ARGS ? BtResult.Bug : BtResult.Ok;
}

// the BPF_EXIT part of backtrack_insn(): entering the callee backwards
function backtrackExit(env: Env, subseq: number, bt: Backtrack): BtResult {
  const f = bt.frame;
  if (subseq >= 0 && env.aux.callsCallbackAt(subseq)) {
    bt.regs[f] &= ~REGMASK_ARGS;
  }
  if (bt.regs[f] & REGMASK_ARGS) return BtResult.Bug;
  const before = subseq - 1 >= 0 ? env.insns[subseq - 1] : undefined;
  const r0Precise = before?.kind === "call" && before.callee === "local" &&
    bt.hasReg(f, 0);
  bt.clearReg(f, 0);
  if (f === MAX_CALL_FRAMES - 1) return BtResult.Bug;
  bt.frame++;
  if (r0Precise) bt.setReg(bt.frame, 0);
  return BtResult.Ok;
}

/**
 * Mirrors `backtrack_insn()`: updates `bt` from "precise after slot `idx`"
 * to "precise before it". `subseq` is the slot processed after `idx` on
 * this path; `hist` the history entry recorded for `idx`, if any.
 */
export function backtrackInsn(
  env: Env,
  idx: number,
  subseq: number,
  hist: JmpHistEntry | null,
  bt: Backtrack,
): BtResult {
  const insn = env.insns[idx];
  if (insn.kind === "ld_imm64_hi") return BtResult.Ok;
  const f = bt.frame;
  const dreg = insn.dst, sreg = insn.src;
  syncLinkedRegs(bt, hist);
  switch (insn.kind) {
    case "alu":
    case "endian":
      if (!bt.hasReg(f, dreg)) return BtResult.Ok;
      if (insn.kind === "endian" || insn.op === "neg") return BtResult.Ok;
      if (
        insn.op === "mov" || insn.op === "movsx" ||
        insn.op === "addr_space_cast"
      ) {
        bt.clearReg(f, dreg);
        if (insn.source === "reg" && sreg !== BPF_REG_FP) bt.setReg(f, sreg);
      } else if (insn.source === "reg" && sreg !== BPF_REG_FP) {
        bt.setReg(f, sreg);
      }
      break;
    case "ldx":
      if (!backtrackLoad(bt, f, dreg, hist)) return BtResult.Ok;
      break;
    case "atomic":
    case "st":
    case "stx": {
      if (insn.kind === "atomic" && insn.op === "load_acq") {
        if (!backtrackLoad(bt, f, dreg, hist)) return BtResult.Ok;
        break;
      }
      // a scalar used as the address: pointer subtraction happened
      if (bt.hasReg(f, dreg)) return BtResult.NotSupported;
      const slot = stackSlotOf(hist);
      if (!slot || !bt.hasSlot(slot[0], slot[1])) return BtResult.Ok;
      bt.clearSlot(slot[0], slot[1]);
      if (insn.kind !== "st") bt.setReg(f, sreg);
      break;
    }
    case "call": {
      const r = backtrackCall(env, insn, idx, subseq, bt);
      if (r !== BtResult.Ok || insn.callee === "local") return r;
      if (env.aux.callsCallbackAt(idx) && idx !== subseq - 1) return r;
      break;
    }
    case "exit":
      return backtrackExit(env, subseq, bt);
    case "jcond":
      if (insn.source === "reg") {
        if (!bt.hasReg(f, dreg) && !bt.hasReg(f, sreg)) return BtResult.Ok;
        bt.setReg(f, sreg);
        bt.setReg(f, dreg);
      }
      break;
    case "ld_imm64":
    case "ld_abs":
    case "ld_ind":
      if (!bt.hasReg(f, dreg)) return BtResult.Ok;
      bt.clearReg(f, dreg);
      if (insn.kind !== "ld_imm64") return BtResult.NotSupported;
      break;
    default:
      // ja and may_goto change no register
      break;
  }
  syncLinkedRegs(bt, hist);
  return BtResult.Ok;
}
