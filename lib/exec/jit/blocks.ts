/**
 * Basic blocks of a {@link CompiledProgram}, the unit the JIT translates and
 * charges the step budget for. A block starts at a *leader* — slot 0, a jump
 * or call target, the slot after any instruction that transfers control or
 * leaves the generated code (jumps, `may_goto`, calls, `exit`, `ld_abs` /
 * `ld_ind`), and every trap row — and runs straight to the next leader.
 * @module
 */
import { type CompiledProgram, OP, STRIDE } from "../compile.ts";

/** One basic block: rows `[start, …]` holding `length` instructions. */
export interface Block {
  /** First row (the leader). */
  readonly start: number;
  /** Rows of the instructions, in order (an `lddw` is one row, two slots). */
  readonly rows: readonly number[];
  /** Row control reaches when the last instruction falls through (-1: it never does). */
  readonly next: number;
}

/** Blocks of a program and the per-row tables the stepper needs. */
export interface BlockMap {
  /** Blocks in row order. */
  readonly blocks: readonly Block[];
  /** 1 where a row starts a block. */
  readonly leader: Uint8Array;
  /**
   * Per row: instructions from this row to the end of its block, itself
   * included. Undoes the block's up-front step charge when an instruction
   * faults, and bounds how far the interpreter runs when a state stopped
   * in the middle of a block.
   */
  readonly rest: Int32Array;
}

/** Whether the instruction with handler id `op` ends its block. */
export function endsBlock(op: number): boolean {
  return op >= OP.JA;
}

/** Whether `op` jumps to the row in its `target` word. */
export function hasTarget(op: number): boolean {
  return (op >= OP.JA && op <= OP.MAY_GOTO) || op === OP.CALL_LOCAL;
}

/**
 * Splits `prog` (its program rows and its trap rows) into basic blocks.
 * With `everyInsn`, every instruction is a block of its own: the map of the
 * JIT's stepwise entry, which can start and stop at any instruction.
 */
export function findBlocks(prog: CompiledProgram, everyInsn = false): BlockMap {
  const code = prog.code;
  const rows = code.length / STRIDE;
  const leader = new Uint8Array(rows);
  leader[0] = 1;
  // An lddw's second slot is a trap row (a jump into it traps), so every
  // row may lead.
  if (everyInsn) leader.fill(1);
  for (let r = 0; r < rows; r++) {
    const op = code[r * STRIDE];
    if (op === OP.TRAP) leader[r] = 1;
    if (hasTarget(op)) leader[code[r * STRIDE + 6]] = 1;
    if (endsBlock(op) && r + 1 < rows) leader[r + 1] = 1;
  }
  const blocks: Block[] = [];
  const rest = new Int32Array(rows);
  for (let start = 0; start < rows; start++) {
    if (leader[start] === 0) continue;
    const members: number[] = [];
    let r = start, next = -1;
    for (;;) {
      const op = code[r * STRIDE];
      members.push(r);
      if (endsBlock(op)) {
        // Conditional jumps, may_goto, helpers and ld_abs also fall through.
        if (op !== OP.JA && op !== OP.EXIT && op !== OP.TRAP) next = r + 1;
        if (op === OP.CALL_LOCAL) next = -1; // resumes via exitFrame's return slot
        break;
      }
      r += op === OP.LDDW ? 2 : 1;
      if (r >= rows || leader[r] === 1) {
        next = r;
        break;
      }
    }
    members.forEach((m, i) => rest[m] = members.length - i);
    blocks.push({ start, rows: members, next });
  }
  return { blocks, leader, rest };
}

/**
 * Which registers the program names (in any instruction's dst or src
 * field, r0 always): only these live in locals of the generated code; the
 * others stay in the register file, where helpers and frames find them.
 */
export function usedRegisters(prog: CompiledProgram): boolean[] {
  const code = prog.code;
  const used = new Array<boolean>(11).fill(false);
  used[0] = true;
  for (let p = 0; p < code.length; p += STRIDE) {
    const d = code[p + 1] >> 1, s = code[p + 2] >> 1;
    if (d <= 10) used[d] = true;
    if (s <= 10) used[s] = true;
  }
  return used;
}
