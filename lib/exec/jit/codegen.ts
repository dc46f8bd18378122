/**
 * JavaScript source for a whole program: one function with the registers it
 * names in locals (`registers.ts`) and a `switch` over block leaders inside
 * a loop. Consecutive blocks
 * fall through into each other; a taken jump sets `pc` and re-dispatches; a
 * block that jumps back to its own start loops in place without dispatch.
 *
 * Each block charges the step budget for all its instructions on entry and
 * leaves (ret = {@link JIT_BUDGET}) when fewer remain, so the caller can let
 * the interpreter retire the exact remainder. A fault undoes the charge of
 * the instructions not retired with the `rest` table of `blocks.ts`.
 *
 * Helper and kfunc calls are direct: the function is looked up in the
 * state's tables and called in place (invokeHelper() inlined), an int32
 * result lands in r0's locals without a round trip through `R`.
 *
 * With every instruction a block of its own (`findBlocks(prog, true)`),
 * the same generator gives the stepwise entry that small budgets use.
 *
 * The generated function returns one of the `JIT_*` codes and leaves
 * `state.pc` / `state.steps` / registers exactly as the interpreter would.
 * @module
 */
import { type CompiledProgram, OP, STRIDE } from "../compile.ts";
import { FRAME_WORDS, MAX_CALL_FRAMES } from "../state.ts";
import {
  type Block,
  type BlockMap,
  endsBlock,
  usedRegisters,
} from "./blocks.ts";
import {
  emitAlu,
  emitMemory,
  emitUnary,
  jumpCondition,
  lit,
  lo,
} from "./emit_insn.ts";
import { regHalves, type RegisterLocals, registerLocals } from "./registers.ts";

/** Generated-code outcome: the program exited (r0 holds the result). */
export const JIT_EXITED = 0;
/** Generated-code outcome: a fault was recorded in `state.error`. */
export const JIT_FAULTED = 1;
/** Generated-code outcome: a helper blocked; its call is retried next time. */
export const JIT_BLOCKED = 2;
/** Generated-code outcome: the budget is smaller than the next block, or `pc` is not a leader. */
export const JIT_BUDGET = 3;
/** Generated-code outcome: a tail call replaced `state.prog`; continue at its slot 0. */
export const JIT_TAIL = 4;

/** Names the generated code takes from its runtime object (see `jit.ts`). */
export const RUNTIME_NAMES: readonly string[] = [
  "mulHiU32",
  "div64",
  "mod64",
  "sdiv64",
  "smod64",
  "div32",
  "mod32",
  "sdiv32",
  "smod32",
  "lsh64",
  "rsh64",
  "arsh64",
  "bswap16",
  "bswap32",
  "atomic32",
  "atomic64",
  "callLocal",
  "helperById",
  "kfuncById",
  "invokeHelper",
  "pinToInsn",
  "takeTailCall",
  "loadPacket",
  "coldLoad",
  "coldStore",
  "ExecError",
  "asFailure",
  "traps",
  "rest",
  "S",
];

/** Source of a factory `(rt) => (state, budget) => code` for `prog`. */
export function generateSource(prog: CompiledProgram, map: BlockMap): string {
  const parts: string[] = [];
  const blocks = map.blocks;
  const regs = registerLocals(usedRegisters(prog));
  for (let i = 0; i < blocks.length; i++) {
    const following = i + 1 < blocks.length ? blocks[i + 1].start : -1;
    parts.push(emitBlock(prog.code, blocks[i], following, regs));
  }
  const SPILL = regs.spill;
  return `"use strict";
const { ${RUNTIME_NAMES.join(", ")} } = rt;
return (function jitted(state, budget) {
  const R = state.regs, mem = state.mem, regions = mem.regions, mg = state.mayGoto, H = state.helpers, KF = state.kfuncs, start = state.steps;
  ${regs.declare}
  let pc = state.pc, n = 0, ret = ${JIT_BUDGET};
  try {
    dispatch: for (;;) {
      switch (pc) {
${parts.join("\n")}
        default: break dispatch;
      }
    }
  } catch (e) {
    ${SPILL}
    const f = asFailure(e, pc);
    state.pc = f.insnIndex >= 0 ? f.insnIndex : pc;
    state.steps = start + n - rest[pc];
    state.error = f;
    state.status = "faulted";
    return ${JIT_FAULTED};
  }
  ${SPILL}
  state.pc = pc;
  state.steps = start + n;
  return ret;
});`;
}

function emitBlock(
  code: Int32Array,
  block: Block,
  following: number,
  regs: RegisterLocals,
): string {
  const len = block.rows.length;
  const last = block.rows[len - 1];
  const lastOp = code[last * STRIDE];
  const selfLoop = lastOp >= OP.JMP_BASE && lastOp < OP.MAY_GOTO &&
    code[last * STRIDE + 6] === block.start;
  const charge = `if (n + ${lit(len)} > budget) { pc = ${
    lit(block.start)
  }; break dispatch; } n += ${lit(len)};`;
  const body: string[] = [];
  for (const r of block.rows) {
    if (r === last && selfLoop) break;
    body.push(emitInsn(code, r, regs));
  }
  const out: string[] = [`        case ${lit(block.start)}:`];
  if (selfLoop) {
    // A loop that is one block: iterate in place, charging each round.
    const p = last * STRIDE;
    const cond = jumpCondition(
      lastOp,
      code[p + 1] >> 1,
      code[p + 2] >> 1,
      code[p + 4],
      code[p + 5],
    );
    out.push(
      `for (;;) { ${charge} ${body.join(" ")} if (${cond}) continue; break; }`,
    );
  } else {
    out.push(charge, ...body);
  }
  // Fall through into the next case only when it is the next block.
  if (block.next >= 0 && block.next !== following) {
    out.push(`pc = ${lit(block.next)}; continue dispatch;`);
  }
  return out.join("\n");
}

/** Source of the instruction at row `k`. */
function emitInsn(code: Int32Array, k: number, regs: RegisterLocals): string {
  const SPILL = regs.spill, RELOAD = regs.reload;
  const p = k * STRIDE;
  const op = code[p], d = code[p + 1] >> 1, s = code[p + 2] >> 1;
  const off = code[p + 3], immLo = code[p + 4], immHi = code[p + 5];
  const target = code[p + 6], aux = code[p + 7];
  const K = lit(k), T = lit(target);
  if (op < OP.NEG64) return emitAlu(op, d, s, immLo, immHi);
  if (op <= OP.LDDW) return emitUnary(op, d, s, immLo, immHi, aux);
  if (op <= OP.STXDW) {
    return emitMemory(k, op, d, s, off, immLo, immHi, aux);
  }
  if (op === OP.ATOMIC32 || op === OP.ATOMIC64) {
    const fn = op === OP.ATOMIC32 ? "atomic32" : "atomic64";
    return `pc = ${K}; ${SPILL} ${fn}(state, ${K}, ${lit(2 * d)}, ${
      lit(2 * s)
    }, ${lit(off)}, ${lit(aux)}); ${RELOAD}`;
  }
  if (!endsBlock(op)) throw new RangeError(`no handler ${op} at row ${k}`);
  switch (op) {
    case OP.JA:
      return `pc = ${T}; continue dispatch;`;
    case OP.MAY_GOTO: // falls through BPF_MAX_LOOPS times per frame, then jumps
      return `if (mg[state.depth] === 0) { pc = ${T}; continue dispatch; } mg[state.depth]--;`;
    case OP.CALL_HELPER:
    case OP.CALLX:
    case OP.CALL_KFUNC: {
      // A direct call, invokeHelper() inlined: the helper table is read
      // once per entry (H, KF), an int32 result goes straight into r0's locals
      // and only r0 is reloaded (a helper changes no other register).
      const fn = op === OP.CALL_KFUNC
        ? `(KF.get(${lit(immLo)}) ?? kfuncById(state, ${lit(immLo)}, ${K}))`
        : op === OP.CALLX
        ? `helperById(state, ${lo(d)}, ${K})`
        : `(H[${lit(immLo)}] ?? helperById(state, ${lit(immLo)}, ${K}))`;
      // The helper sees pc and steps as the interpreter shows them; blocking
      // leaves the call unretired, to be retried by the next step.
      return `pc = ${K}; { const fn = ${fn}; ${SPILL} state.pc = ${K}; state.steps = start + n - 1; ` +
        `state.blockRequested = false; state.pendingTailCall = undefined; let v; ` +
        `try { v = fn(state); } catch (e) { throw pinToInsn(e, ${K}); } ` +
        `if (state.blockRequested) { state.blockRequested = false; state.status = "blocked"; return ${JIT_BLOCKED}; } ` +
        `if (typeof v === "number" && (v | 0) === v) { l0 = v | 0; h0 = v >> 31; } ` +
        `else { if (v !== undefined) state.storeResult(v); l0 = R[0]; h0 = R[1]; } ` +
        `if (state.pendingTailCall !== undefined) { takeTailCall(state); pc = 0; ret = ${JIT_TAIL}; break dispatch; } }`;
    }
    case OP.CALL_LOCAL: {
      // callLocal() with r6–r10 saved straight from the locals; past the
      // frame limit it is called for its error.
      const [l10, h10] = regHalves(regs, 10);
      return `pc = ${K}; { const depth = state.depth; ` +
        `if (depth + 1 >= ${
          lit(MAX_CALL_FRAMES)
        }) callLocal(state, ${K}, ${T}); ` +
        `const F = state.frames, base = depth * ${lit(FRAME_WORDS)}; ${
          saveFrame(regs)
        } F[base + 10] = ${lit(k + 1)}; state.depth = depth + 1; ` +
        `state.enterFrame(depth + 1); ` +
        (regs.used[10] ? `${l10} = R[20]; ${h10} = R[21]; ` : "") +
        `} pc = ${T}; continue dispatch;`;
    }
    case OP.EXIT:
      // exitFrame() with r6–r10 restored straight into the locals.
      return `if (state.depth === 0) { pc = ${K}; ret = ${JIT_EXITED}; break dispatch; } ` +
        `{ const depth = state.depth - 1, F = state.frames, base = depth * ${
          lit(FRAME_WORDS)
        }; ${
          restoreFrame(regs)
        } state.depth = depth; pc = F[base + 10]; } continue dispatch;`;
    case OP.LD_ABS:
    case OP.LD_IND: {
      const offset = op === OP.LD_ABS
        ? lit(immLo)
        : `((${lo(s)} + ${lit(immLo)}) | 0)`;
      // Out of the packet ends the program with r0 = 0 (bpf_gen_ld_abs()).
      return `pc = ${K}; if (loadPacket(state, ${K}, ${offset}, ${
        lit(aux)
      })) { l0 = R[0]; h0 = R[1]; } else { l0 = 0; h0 = 0; ret = ${JIT_EXITED}; break dispatch; }`;
    }
    case OP.TRAP:
      return `pc = ${K}; throw new ExecError(${lit(immLo)}, traps[${
        lit(aux)
      }]);`;
  }
  // Conditional jumps; the fall-through edge continues below.
  return `if (${
    jumpCondition(op, d, s, immLo, immHi)
  }) { pc = ${T}; continue dispatch; }`;
}

/** Stores r6–r10 (locals or `R`) into frame words 0–9 at `F[base]`, as callLocal() does from `R`. */
function saveFrame(regs: RegisterLocals): string {
  const out: string[] = [];
  for (let r = 6; r <= 10; r++) {
    const w = 2 * (r - 6), [l, h] = regHalves(regs, r);
    out.push(`F[base + ${w}] = ${l};`, `F[base + ${w + 1}] = ${h};`);
  }
  return out.join(" ");
}

/** Loads r6–r10 (locals or `R`) from frame words 0–9 at `F[base]`, as exitFrame() does into `R`. */
function restoreFrame(regs: RegisterLocals): string {
  const out: string[] = [];
  for (let r = 6; r <= 10; r++) {
    const w = 2 * (r - 6), [l, h] = regHalves(regs, r);
    out.push(`${l} = F[base + ${w}];`, `${h} = F[base + ${w + 1}];`);
  }
  return out.join(" ");
}
