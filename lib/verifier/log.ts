/**
 * The verifier log (kernel/bpf/log.c and the printing parts of verifier.c):
 * a buffer that is appended to and rewound (`bpf_vlog_reset()` when a branch
 * is popped, so level 1 shows only the path that failed), the per-instruction
 * `; state` annotations of scratched registers aligned as `vlog_alignment()`
 * does, source lines from BTF line info, and the statistics trailer.
 *
 * The buffer is a single string that is truncated and overwritten exactly as
 * the kernel's byte buffer is: the annotation after an instruction replaces
 * its newline, so rewinding to a position recorded before keeps the first
 * padding space — the kernel's `goto pc+2 11: R0=…` lines come from that.
 * @module
 */
import { formatReg } from "./reg_state.ts";
import {
  BPF_REG_SIZE,
  isSpilledReg,
  SLOT_TYPE_CHAR,
  STACK_INVALID,
  type VerifierState,
} from "./state.ts";
import { NOT_INIT } from "./reg_types.ts";
import type { LineInfo } from "../elf/types.ts";
import type { LdImm64Insn } from "../isa/insn.ts";
import {
  BPF_PSEUDO_BTF_ID,
  BPF_PSEUDO_FUNC,
  BPF_PSEUDO_MAP_IDX_VALUE,
  BPF_PSEUDO_MAP_VALUE,
} from "../isa/opcodes.ts";

/** Pretend kernel address of map `index`, as the log prints `lddw` of a map. */
export function mapAddress(insn: LdImm64Insn): string | undefined {
  // function addresses and BTF ids print as their raw immediate
  if (insn.src === 0 || insn.src === BPF_PSEUDO_FUNC) return undefined;
  if (insn.src === BPF_PSEUDO_BTF_ID) return undefined;
  const base = 0xffff888100000000n + BigInt(insn.imm) * 0x1000n;
  if (
    insn.src === BPF_PSEUDO_MAP_IDX_VALUE || insn.src === BPF_PSEUDO_MAP_VALUE
  ) {
    return "0x" + (base + 0x100n + BigInt(insn.imm2 >>> 0)).toString(16);
  }
  return "0x" + base.toString(16);
}

/** `BPF_LOG_LEVEL1`: the failing path with per-instruction state. */
export const BPF_LOG_LEVEL1 = 1;
/** `BPF_LOG_LEVEL2`: every path, full states at branch targets. */
export const BPF_LOG_LEVEL2 = 2;

const BPF_LOG_MIN_ALIGNMENT = 8;
const BPF_LOG_ALIGNMENT = 40;

/** Mirrors `vlog_alignment()`: where the `;` after an instruction goes. */
export function vlogAlignment(pos: number): number {
  const m = Math.max(pos + BPF_LOG_MIN_ALIGNMENT / 2, BPF_LOG_ALIGNMENT);
  return Math.ceil(m / BPF_LOG_MIN_ALIGNMENT) * BPF_LOG_MIN_ALIGNMENT - pos -
    1;
}

/** The log buffer plus the positions `print_insn_state()` needs. */
export class VerifierLog {
  /** 0, 1 or 2 (`log_level` without the stats bit). */
  readonly level: number;
  // written pieces and their total length: appends and rewinds stay cheap
  // on logs of millions of lines (a flat string would be copied on every
  // rewind of a long path)
  private pieces: string[] = [];
  private length = 0;
  /** `env->prev_log_pos`: end of the last instruction line. */
  prevLogPos = 0;
  /** `env->prev_insn_print_pos`: length of that line with its newline. */
  prevInsnPrintPos = 0;
  /** The source line last printed (`env->prev_linfo`), "" for none. */
  prevLinfo = "";
  /** Register bits scratched since the last state print (`scratched_regs`). */
  scratchedRegs = 0;
  /** Stack slots scratched since the last state print (`scratched_stack_slots`). */
  scratchedStack: Set<number> = new Set();
  /** All registers and slots count as scratched (after a pop, at start). */
  allScratched = true;

  /** A log at `level` (0 keeps only error lines). */
  constructor(level: number) {
    this.level = level;
  }

  /** `verbose()`: appends text (errors are kept at every level). */
  write(s: string): void {
    if (s === "") return;
    this.pieces.push(s);
    this.length += s.length;
  }

  /** Everything written so far. */
  get text(): string {
    if (this.pieces.length > 1) this.pieces = [this.pieces.join("")];
    return this.pieces[0] ?? "";
  }

  /** `env->log.end_pos`. */
  get endPos(): number {
    return this.length;
  }

  /** Mirrors `bpf_vlog_reset()`. */
  reset(pos: number): void {
    if (this.level === 0 || pos > this.length) return;
    while (this.length > pos) {
      const last = this.pieces.pop()!;
      this.length -= last.length;
      if (this.length < pos) {
        this.pieces.push(last.slice(0, pos - this.length));
        this.length = pos;
      }
    }
  }

  /** Marks register `regno` scratched (`mark_reg_scratched()`). */
  scratchReg(regno: number): void {
    this.scratchedRegs |= 1 << regno;
  }

  /** Marks stack slot `spi` scratched (`mark_stack_slot_scratched()`). */
  scratchSlot(spi: number): void {
    this.scratchedStack.add(spi);
  }

  /** Mirrors `mark_verifier_state_scratched()`. */
  scratchAll(): void {
    this.allScratched = true;
  }

  /** Mirrors `mark_verifier_state_clean()`. */
  clean(): void {
    this.allScratched = false;
    this.scratchedRegs = 0;
    this.scratchedStack.clear();
  }

  /** Mirrors `verifier_state_scratched()`. */
  isScratched(): boolean {
    return this.allScratched || this.scratchedRegs !== 0 ||
      this.scratchedStack.size !== 0;
  }

  /** The last non-empty line (the decisive message when nothing follows). */
  lastLine(): string {
    // only the tail can hold it: take pieces from the end until the last
    // non-blank line is known to be whole (a newline precedes it)
    let tail = "";
    for (let i = this.pieces.length - 1; i >= 0; i--) {
      tail = this.pieces[i] + tail;
      const lines = tail.split("\n");
      for (let k = lines.length - 1; k >= 0; k--) {
        if (lines[k].trim() === "") continue;
        if (k > 0 || i === 0) return lines[k];
        break;
      }
    }
    return "";
  }
}

/** Mirrors `print_verifier_state()` for frame `frameno` of `vs`. */
export function printVerifierState(
  log: VerifierLog,
  vs: VerifierState,
  frameno: number,
  printAll: boolean,
): void {
  const f = vs.frames[frameno];
  let out = "";
  if (f.frameno) out += ` frame${f.frameno}:`;
  for (let i = 0; i < f.regs.length; i++) {
    const r = f.regs[i];
    if (r.type === NOT_INIT) continue;
    if (!printAll && !log.allScratched && !(log.scratchedRegs & (1 << i))) {
      continue;
    }
    out += ` R${i}=` + formatReg(r, f.frameno);
  }
  for (let i = 0; i < f.stack.length; i++) {
    if (!printAll && !log.allScratched && !log.scratchedStack.has(i)) continue;
    const slot = f.stack[i];
    let types = "";
    let valid = false;
    for (let j = 0; j < BPF_REG_SIZE; j++) {
      if (slot.slotType[j] !== STACK_INVALID) valid = true;
      types += SLOT_TYPE_CHAR[slot.slotType[j]];
    }
    if (!valid) continue;
    out += ` fp${(-i - 1) * BPF_REG_SIZE}`;
    if (isSpilledReg(slot)) {
      // MISC/ZERO/INVALID bytes above a sub-register spill are shown
      const cut = types.indexOf("r");
      out += "=" + types.slice(0, cut < 0 ? 8 : cut) +
        formatReg(slot.spilled, f.frameno);
    } else {
      out += "=" + types;
    }
  }
  const refs = vs.refs.filter((r) => r.id);
  if (refs.length) out += " refs=" + refs.map((r) => r.id).join(",");
  log.write(out + "\n");
  if (!printAll) log.clean();
}

/** Mirrors `print_insn_state()`: `; state` after the previous line, or `N: state`. */
export function printInsnState(
  log: VerifierLog,
  vs: VerifierState,
  insnIdx: number,
): void {
  if (log.prevLogPos && log.prevLogPos === log.endPos) {
    log.reset(log.prevLogPos - 1);
    log.write(" ".repeat(vlogAlignment(log.prevInsnPrintPos)) + ";");
  } else {
    log.write(`${insnIdx}:`);
  }
  printVerifierState(log, vs, vs.curframe, false);
}

/**
 * Mirrors `verbose_linfo()`: prints `; <source> @ <file>:<line>` when the
 * line info covering `insnIdx` differs from the last one printed.
 */
export function printLineInfo(
  log: VerifierLog,
  lineInfo: readonly LineInfo[] | undefined,
  insnIdx: number,
): void {
  if (!lineInfo || lineInfo.length === 0) return;
  let lo = 0, hi = lineInfo.length - 1, found = -1;
  while (lo <= hi) {
    const mid = (lo + hi) >> 1;
    if (lineInfo[mid].insnOff <= insnIdx) {
      found = mid;
      lo = mid + 1;
    } else hi = mid - 1;
  }
  if (found < 0) return;
  const li = lineInfo[found];
  // records of one source line (several columns) print once
  const base = li.fileName.slice(li.fileName.lastIndexOf("/") + 1);
  const text = `; ${li.line.trimStart()} @ ${base}:${li.lineNum}\n`;
  if (text === log.prevLinfo) return;
  log.write(text);
  log.prevLinfo = text;
}

/** Statistics `print_verification_stats()` prints. */
export interface VerificationStats {
  /** Stack depth of each subprogram. */
  readonly stackDepths: readonly number[];
  /** `insn_processed`. */
  readonly processed: number;
  /** `max_states_per_insn`. */
  readonly maxStatesPerInsn: number;
  /** `total_states`. */
  readonly totalStates: number;
  /** `peak_states`. */
  readonly peakStates: number;
}

/**
 * Mirrors `print_verification_stats()`. The time is printed as 0 usec:
 * the simulation has no wall clock.
 */
export function printVerificationStats(
  log: VerifierLog,
  st: VerificationStats,
): void {
  log.write("verification time 0 usec\n");
  log.write(`stack depth ${st.stackDepths.join("+")}\n`);
  log.write(
    `processed ${st.processed} insns (limit 1000000) max_states_per_insn ${st.maxStatesPerInsn} total_states ${st.totalStates} peak_states ${st.peakStates} mark_read 0\n`,
  );
}
