/**
 * The stepper: runs a compiled program on an {@link ExecState} for at most
 * a given number of instructions. Registers are int32 halves in a typed
 * array; there is no bigint here. Dispatch is a `switch` over the literal
 * handler ids of `compile.ts` (literal cases, so V8 emits a jump table); the
 * comment on each case names the handler.
 *
 * Semantics are RFC 9669 (see `alu64.ts` for division and shifts): ALU32
 * results are zero-extended, jump immediates are sign-extended to 64 bits
 * (also for unsigned compares), JMP32 compares the low halves.
 * @module
 */
import {
  arsh64,
  bswap16,
  bswap32,
  div32,
  div64,
  lsh64,
  mod32,
  mod64,
  mul64,
  rsh64,
  sdiv32,
  sdiv64,
  smod32,
  smod64,
} from "./alu64.ts";
import {
  atomic32,
  atomic64,
  CALL_BLOCKED,
  CALL_TAIL,
  callLocal,
  exitFrame,
  helperById,
  invokeHelper,
  kfuncById,
  loadPacket,
} from "./calls.ts";
import { ExecError, MemoryFault } from "./fault.ts";
import { REGION_BASE_HI } from "./memory.ts";
import { drawPick, endPick, type PickHost, stopPick } from "./picks.ts";
import type { ExecState, ExecStatus } from "./state.ts";

/**
 * Runs `state` for at most `budget` instructions. Returns `running` when the
 * budget ran out, `exited` (result in r0), `faulted` (see `state.error`), or
 * `blocked` (a helper asked to block: its call is retried by the next step).
 * An `exited` or `faulted` state stays so.
 */
export function step(state: ExecState, budget: number): ExecStatus {
  if (state.status === "exited" || state.status === "faulted") {
    return state.status;
  }
  state.status = "running";
  return execute(state, budget, undefined);
}

/**
 * Runs picks of `host` (see `picks.ts`) in one call: where a pick's
 * quantum runs out the loop saves that state and goes on with the next
 * pick's, without returning.
 */
export function runPicks(host: PickHost): void {
  for (;;) {
    const state = drawPick(host);
    if (state === undefined) return;
    state.status = "running";
    const status = execute(state, host.quantum, host);
    if (status === "running" || !stopPick(host, status)) return;
  }
}

/** Turns whatever a run threw into the failure it records. */
function asFailure(e: unknown, pc: number): MemoryFault | ExecError {
  if (e instanceof MemoryFault || e instanceof ExecError) return e;
  const message = e instanceof Error ? e.message : String(e);
  return new ExecError(pc, `helper raised: ${message}`, { cause: e });
}

/**
 * The loop: `budget` instructions of `state`, then, with a `host`, the
 * picks that follow — a state that blocks or exits hands its pick to the
 * host and the loop goes on — returning `running` when the run of picks
 * ends, or `faulted` for the state that faulted.
 */
function execute(
  state: ExecState,
  budget: number,
  host: PickHost | undefined,
): ExecStatus {
  for (;;) {
    const R = state.regs;
    const mem = state.mem;
    const regions = mem.regions;
    let c = state.prog.code;
    let pc = state.pc;
    const start = state.steps;
    let n = 0;
    // how this pick's state stopped, when it stopped before its budget
    let stopped: ExecStatus = "running";
    try {
      pick: while (n < budget) {
        n++;
        const p = pc << 3;
        const d = c[p + 1], s = c[p + 2];
        // deno-fmt-ignore
        switch (c[p]) {
        // ---- ALU: 4 × op + (0: 64-bit imm, 1: 64-bit reg, 2: 32-bit imm, 3: 32-bit reg)
        case 0: { const t = (R[d] >>> 0) + (c[p + 4] >>> 0); R[d] = t; R[d + 1] += c[p + 5] + (t > 0xffffffff ? 1 : 0); pc++; break; } // add
        case 1: { const t = (R[d] >>> 0) + (R[s] >>> 0); R[d] = t; R[d + 1] += R[s + 1] + (t > 0xffffffff ? 1 : 0); pc++; break; }
        case 2: R[d] += c[p + 4]; R[d + 1] = 0; pc++; break;
        case 3: R[d] += R[s]; R[d + 1] = 0; pc++; break;
        case 4: { const a = R[d] >>> 0, b = c[p + 4] >>> 0; R[d] = a - b; R[d + 1] -= c[p + 5] + (a < b ? 1 : 0); pc++; break; } // sub
        case 5: { const a = R[d] >>> 0, b = R[s] >>> 0; R[d] = a - b; R[d + 1] -= R[s + 1] + (a < b ? 1 : 0); pc++; break; }
        case 6: R[d] -= c[p + 4]; R[d + 1] = 0; pc++; break;
        case 7: R[d] -= R[s]; R[d + 1] = 0; pc++; break;
        case 8: mul64(R, d, c[p + 4], c[p + 5]); pc++; break; // mul
        case 9: mul64(R, d, R[s], R[s + 1]); pc++; break;
        case 10: R[d] = Math.imul(R[d], c[p + 4]); R[d + 1] = 0; pc++; break;
        case 11: R[d] = Math.imul(R[d], R[s]); R[d + 1] = 0; pc++; break;
        case 12: div64(R, d, c[p + 4], c[p + 5]); pc++; break; // div
        case 13: div64(R, d, R[s], R[s + 1]); pc++; break;
        case 14: R[d] = div32(R[d], c[p + 4]); R[d + 1] = 0; pc++; break;
        case 15: R[d] = div32(R[d], R[s]); R[d + 1] = 0; pc++; break;
        case 16: sdiv64(R, d, c[p + 4], c[p + 5]); pc++; break; // sdiv
        case 17: sdiv64(R, d, R[s], R[s + 1]); pc++; break;
        case 18: R[d] = sdiv32(R[d], c[p + 4]); R[d + 1] = 0; pc++; break;
        case 19: R[d] = sdiv32(R[d], R[s]); R[d + 1] = 0; pc++; break;
        case 20: mod64(R, d, c[p + 4], c[p + 5]); pc++; break; // mod
        case 21: mod64(R, d, R[s], R[s + 1]); pc++; break;
        case 22: R[d] = mod32(R[d], c[p + 4]); R[d + 1] = 0; pc++; break;
        case 23: R[d] = mod32(R[d], R[s]); R[d + 1] = 0; pc++; break;
        case 24: smod64(R, d, c[p + 4], c[p + 5]); pc++; break; // smod
        case 25: smod64(R, d, R[s], R[s + 1]); pc++; break;
        case 26: R[d] = smod32(R[d], c[p + 4]); R[d + 1] = 0; pc++; break;
        case 27: R[d] = smod32(R[d], R[s]); R[d + 1] = 0; pc++; break;
        case 28: R[d] |= c[p + 4]; R[d + 1] |= c[p + 5]; pc++; break; // or
        case 29: R[d] |= R[s]; R[d + 1] |= R[s + 1]; pc++; break;
        case 30: R[d] |= c[p + 4]; R[d + 1] = 0; pc++; break;
        case 31: R[d] |= R[s]; R[d + 1] = 0; pc++; break;
        case 32: R[d] &= c[p + 4]; R[d + 1] &= c[p + 5]; pc++; break; // and
        case 33: R[d] &= R[s]; R[d + 1] &= R[s + 1]; pc++; break;
        case 34: R[d] &= c[p + 4]; R[d + 1] = 0; pc++; break;
        case 35: R[d] &= R[s]; R[d + 1] = 0; pc++; break;
        case 36: lsh64(R, d, c[p + 4]); pc++; break; // lsh (imm counts pre-masked)
        case 37: lsh64(R, d, R[s] & 63); pc++; break;
        case 38: R[d] <<= c[p + 4]; R[d + 1] = 0; pc++; break;
        case 39: R[d] <<= R[s]; R[d + 1] = 0; pc++; break; // JS masks the count & 31
        case 40: rsh64(R, d, c[p + 4]); pc++; break; // rsh
        case 41: rsh64(R, d, R[s] & 63); pc++; break;
        case 42: R[d] = R[d] >>> c[p + 4]; R[d + 1] = 0; pc++; break;
        case 43: R[d] = R[d] >>> R[s]; R[d + 1] = 0; pc++; break;
        case 44: arsh64(R, d, c[p + 4]); pc++; break; // arsh
        case 45: arsh64(R, d, R[s] & 63); pc++; break;
        case 46: R[d] >>= c[p + 4]; R[d + 1] = 0; pc++; break;
        case 47: R[d] >>= R[s]; R[d + 1] = 0; pc++; break;
        case 48: R[d] ^= c[p + 4]; R[d + 1] ^= c[p + 5]; pc++; break; // xor
        case 49: R[d] ^= R[s]; R[d + 1] ^= R[s + 1]; pc++; break;
        case 50: R[d] ^= c[p + 4]; R[d + 1] = 0; pc++; break;
        case 51: R[d] ^= R[s]; R[d + 1] = 0; pc++; break;
        case 52: R[d] = c[p + 4]; R[d + 1] = c[p + 5]; pc++; break; // mov
        case 53: R[d] = R[s]; R[d + 1] = R[s + 1]; pc++; break;
        case 54: R[d] = c[p + 4]; R[d + 1] = 0; pc++; break;
        case 55: R[d] = R[s]; R[d + 1] = 0; pc++; break;
        case 56: { const lo = R[d]; R[d] = -lo; R[d + 1] = ~R[d + 1] + (lo === 0 ? 1 : 0); pc++; break; } // NEG64
        case 57: R[d] = -R[d]; R[d + 1] = 0; pc++; break; // NEG32
        case 58: { const k = c[p + 7], lo = (R[s] << k) >> k; R[d] = lo; R[d + 1] = lo >> 31; pc++; break; } // MOVSX64
        case 59: { const k = c[p + 7]; R[d] = (R[s] << k) >> k; R[d + 1] = 0; pc++; break; } // MOVSX32
        case 60: R[d] &= 0xffff; R[d + 1] = 0; pc++; break; // LE16
        case 61: R[d + 1] = 0; pc++; break; // LE32
        case 62: pc++; break; // LE64: the host is little-endian
        case 63: R[d] = bswap16(R[d]); R[d + 1] = 0; pc++; break; // BE16 / bswap16
        case 64: R[d] = bswap32(R[d]); R[d + 1] = 0; pc++; break; // BE32
        case 65: { const lo = R[d]; R[d] = bswap32(R[d + 1]); R[d + 1] = bswap32(lo); pc++; break; } // BE64
        case 66: R[d] = c[p + 4]; R[d + 1] = c[p + 5]; pc += 2; break; // LDDW: two slots
        // ---- loads (67–73) and stores (74–81): the address translation of
        // AddressSpace.at() written out once per group, then the width.
        case 67: case 68: case 69: case 70: case 71: case 72: case 73: {
          const size = c[p + 7], lo = R[s], hi = R[s + 1], sum = (lo >>> 0) + c[p + 3], o = sum | 0;
          const id = (hi - REGION_BASE_HI + (sum - o) / 4294967296) >>> 0;
          const g = id < regions.length ? regions[id] : regions[0];
          if ((g.flags & 1) === 0 || (o >>> 0) + size > g.size) { hookedLoad(state, c[p], d, mem.hookLoad(lo, hi, c[p + 3], size, pc)); pc++; break; }
          const v = g.view;
          switch (c[p]) {
            case 67: R[d] = g.bytes[o]; R[d + 1] = 0; break; // LDXB
            case 68: R[d] = v.getUint16(o, true); R[d + 1] = 0; break; // LDXH
            case 69: R[d] = v.getInt32(o, true); R[d + 1] = 0; break; // LDXW
            case 70: R[d] = v.getInt32(o, true); R[d + 1] = v.getInt32(o + 4, true); break; // LDXDW
            case 71: { const x = v.getInt8(o); R[d] = x; R[d + 1] = x >> 31; break; } // LDXSB
            case 72: { const x = v.getInt16(o, true); R[d] = x; R[d + 1] = x >> 31; break; } // LDXSH
            default: { const x = v.getInt32(o, true); R[d] = x; R[d + 1] = x >> 31; } // LDXSW
          }
          pc++;
          break;
        }
        case 74: case 75: case 76: case 77: case 78: case 79: case 80: case 81: {
          const size = c[p + 7], lo = R[d], hi = R[d + 1], sum = (lo >>> 0) + c[p + 3], o = sum | 0;
          const id = (hi - REGION_BASE_HI + (sum - o) / 4294967296) >>> 0;
          const g = id < regions.length ? regions[id] : regions[0];
          if ((g.flags & 2) === 0 || (o >>> 0) + size > g.size) { mem.hookStore(lo, hi, c[p + 3], size, storedValue(R, c, p), pc); pc++; break; }
          const v = g.view;
          switch (c[p]) {
            case 74: g.bytes[o] = c[p + 4]; break; // STB
            case 75: v.setInt16(o, c[p + 4], true); break; // STH
            case 76: v.setInt32(o, c[p + 4], true); break; // STW
            case 77: v.setInt32(o, c[p + 4], true); v.setInt32(o + 4, c[p + 5], true); break; // STDW
            case 78: g.bytes[o] = R[s]; break; // STXB
            case 79: v.setInt16(o, R[s], true); break; // STXH
            case 80: v.setInt32(o, R[s], true); break; // STXW
            default: v.setInt32(o, R[s], true); v.setInt32(o + 4, R[s + 1], true); // STXDW
          }
          pc++;
          break;
        }
        case 82: atomic32(state, pc, d, s, c[p + 3], c[p + 7]); pc++; break; // ATOMIC32
        case 83: atomic64(state, pc, d, s, c[p + 3], c[p + 7]); pc++; break; // ATOMIC64
        case 84: pc = c[p + 6]; break; // JA / gotol
        // ---- conditional jumps: 85 + 4 × op + (0: imm, 1: reg, 2: imm32, 3: reg32)
        case 85: pc = R[d] === c[p + 4] && R[d + 1] === c[p + 5] ? c[p + 6] : pc + 1; break; // jeq
        case 86: pc = R[d] === R[s] && R[d + 1] === R[s + 1] ? c[p + 6] : pc + 1; break;
        case 87: pc = R[d] === c[p + 4] ? c[p + 6] : pc + 1; break;
        case 88: pc = R[d] === R[s] ? c[p + 6] : pc + 1; break;
        case 89: pc = R[d] !== c[p + 4] || R[d + 1] !== c[p + 5] ? c[p + 6] : pc + 1; break; // jne
        case 90: pc = R[d] !== R[s] || R[d + 1] !== R[s + 1] ? c[p + 6] : pc + 1; break;
        case 91: pc = R[d] !== c[p + 4] ? c[p + 6] : pc + 1; break;
        case 92: pc = R[d] !== R[s] ? c[p + 6] : pc + 1; break;
        case 93: { const ah = R[d + 1] >>> 0, bh = c[p + 5] >>> 0; pc = ah > bh || (ah === bh && (R[d] >>> 0) > (c[p + 4] >>> 0)) ? c[p + 6] : pc + 1; break; } // jgt
        case 94: { const ah = R[d + 1] >>> 0, bh = R[s + 1] >>> 0; pc = ah > bh || (ah === bh && (R[d] >>> 0) > (R[s] >>> 0)) ? c[p + 6] : pc + 1; break; }
        case 95: pc = (R[d] >>> 0) > (c[p + 4] >>> 0) ? c[p + 6] : pc + 1; break;
        case 96: pc = (R[d] >>> 0) > (R[s] >>> 0) ? c[p + 6] : pc + 1; break;
        case 97: { const ah = R[d + 1] >>> 0, bh = c[p + 5] >>> 0; pc = ah > bh || (ah === bh && (R[d] >>> 0) >= (c[p + 4] >>> 0)) ? c[p + 6] : pc + 1; break; } // jge
        case 98: { const ah = R[d + 1] >>> 0, bh = R[s + 1] >>> 0; pc = ah > bh || (ah === bh && (R[d] >>> 0) >= (R[s] >>> 0)) ? c[p + 6] : pc + 1; break; }
        case 99: pc = (R[d] >>> 0) >= (c[p + 4] >>> 0) ? c[p + 6] : pc + 1; break;
        case 100: pc = (R[d] >>> 0) >= (R[s] >>> 0) ? c[p + 6] : pc + 1; break;
        case 101: { const ah = R[d + 1] >>> 0, bh = c[p + 5] >>> 0; pc = ah < bh || (ah === bh && (R[d] >>> 0) < (c[p + 4] >>> 0)) ? c[p + 6] : pc + 1; break; } // jlt
        case 102: { const ah = R[d + 1] >>> 0, bh = R[s + 1] >>> 0; pc = ah < bh || (ah === bh && (R[d] >>> 0) < (R[s] >>> 0)) ? c[p + 6] : pc + 1; break; }
        case 103: pc = (R[d] >>> 0) < (c[p + 4] >>> 0) ? c[p + 6] : pc + 1; break;
        case 104: pc = (R[d] >>> 0) < (R[s] >>> 0) ? c[p + 6] : pc + 1; break;
        case 105: { const ah = R[d + 1] >>> 0, bh = c[p + 5] >>> 0; pc = ah < bh || (ah === bh && (R[d] >>> 0) <= (c[p + 4] >>> 0)) ? c[p + 6] : pc + 1; break; } // jle
        case 106: { const ah = R[d + 1] >>> 0, bh = R[s + 1] >>> 0; pc = ah < bh || (ah === bh && (R[d] >>> 0) <= (R[s] >>> 0)) ? c[p + 6] : pc + 1; break; }
        case 107: pc = (R[d] >>> 0) <= (c[p + 4] >>> 0) ? c[p + 6] : pc + 1; break;
        case 108: pc = (R[d] >>> 0) <= (R[s] >>> 0) ? c[p + 6] : pc + 1; break;
        case 109: pc = ((R[d] & c[p + 4]) | (R[d + 1] & c[p + 5])) !== 0 ? c[p + 6] : pc + 1; break; // jset
        case 110: pc = ((R[d] & R[s]) | (R[d + 1] & R[s + 1])) !== 0 ? c[p + 6] : pc + 1; break;
        case 111: pc = (R[d] & c[p + 4]) !== 0 ? c[p + 6] : pc + 1; break;
        case 112: pc = (R[d] & R[s]) !== 0 ? c[p + 6] : pc + 1; break;
        case 113: { const ah = R[d + 1], bh = c[p + 5]; pc = ah > bh || (ah === bh && (R[d] >>> 0) > (c[p + 4] >>> 0)) ? c[p + 6] : pc + 1; break; } // jsgt
        case 114: { const ah = R[d + 1], bh = R[s + 1]; pc = ah > bh || (ah === bh && (R[d] >>> 0) > (R[s] >>> 0)) ? c[p + 6] : pc + 1; break; }
        case 115: pc = R[d] > c[p + 4] ? c[p + 6] : pc + 1; break;
        case 116: pc = R[d] > R[s] ? c[p + 6] : pc + 1; break;
        case 117: { const ah = R[d + 1], bh = c[p + 5]; pc = ah > bh || (ah === bh && (R[d] >>> 0) >= (c[p + 4] >>> 0)) ? c[p + 6] : pc + 1; break; } // jsge
        case 118: { const ah = R[d + 1], bh = R[s + 1]; pc = ah > bh || (ah === bh && (R[d] >>> 0) >= (R[s] >>> 0)) ? c[p + 6] : pc + 1; break; }
        case 119: pc = R[d] >= c[p + 4] ? c[p + 6] : pc + 1; break;
        case 120: pc = R[d] >= R[s] ? c[p + 6] : pc + 1; break;
        case 121: { const ah = R[d + 1], bh = c[p + 5]; pc = ah < bh || (ah === bh && (R[d] >>> 0) < (c[p + 4] >>> 0)) ? c[p + 6] : pc + 1; break; } // jslt
        case 122: { const ah = R[d + 1], bh = R[s + 1]; pc = ah < bh || (ah === bh && (R[d] >>> 0) < (R[s] >>> 0)) ? c[p + 6] : pc + 1; break; }
        case 123: pc = R[d] < c[p + 4] ? c[p + 6] : pc + 1; break;
        case 124: pc = R[d] < R[s] ? c[p + 6] : pc + 1; break;
        case 125: { const ah = R[d + 1], bh = c[p + 5]; pc = ah < bh || (ah === bh && (R[d] >>> 0) <= (c[p + 4] >>> 0)) ? c[p + 6] : pc + 1; break; } // jsle
        case 126: { const ah = R[d + 1], bh = R[s + 1]; pc = ah < bh || (ah === bh && (R[d] >>> 0) <= (R[s] >>> 0)) ? c[p + 6] : pc + 1; break; }
        case 127: pc = R[d] <= c[p + 4] ? c[p + 6] : pc + 1; break;
        case 128: pc = R[d] <= R[s] ? c[p + 6] : pc + 1; break;
        case 129: { // MAY_GOTO: falls through BPF_MAX_LOOPS times per frame, then jumps
          const budgetLeft = state.mayGoto;
          if (budgetLeft[state.depth] === 0) pc = c[p + 6];
          else { budgetLeft[state.depth]--; pc++; }
          break;
        }
        // ---- calls and exit
        case 130: case 131: case 132: { // CALL_HELPER, CALLX (id in dst), CALL_KFUNC
          const op = c[p];
          const fn = op === 132 ? kfuncById(state, c[p + 4], pc) : helperById(state, op === 131 ? R[d] : c[p + 4], pc);
          state.pc = pc;
          state.steps = start + n - 1;
          const outcome = invokeHelper(state, fn, pc);
          if (outcome === CALL_BLOCKED) { state.status = "blocked"; if (host === undefined) return "blocked"; stopped = "blocked"; break pick; }
          if (outcome === CALL_TAIL) { c = state.prog.code; pc = 0; } else pc++;
          break;
        }
        case 133: pc = callLocal(state, pc, c[p + 6]); break; // CALL_LOCAL
        case 134: // EXIT
          if (state.depth === 0) { state.pc = pc; state.steps = start + n; state.status = "exited"; if (host === undefined) return "exited"; stopped = "exited"; break pick; }
          pc = exitFrame(state);
          break;
        case 135: case 136: { // LD_ABS, LD_IND: out of the packet ends the program with r0 = 0
          const offset = c[p] === 135 ? c[p + 4] : (R[s] + c[p + 4]) | 0;
          if (loadPacket(state, pc, offset, c[p + 7])) { pc++; break; }
          R[0] = 0; R[1] = 0; state.pc = pc; state.steps = start + n; state.status = "exited";
          return "exited";
        }
        case 137: { // TRAP: fell off the end, jumped out of range, or an invalid slot
          const at = c[p + 4];
          throw new ExecError(at, state.prog.traps[c[p + 7]]);
        }
        default:
          throw new ExecError(pc, `no handler ${c[p]}`);
      }
      }
    } catch (e) {
      const failure = asFailure(e, pc);
      state.pc = failure.insnIndex >= 0 ? failure.insnIndex : pc;
      state.steps = start + n - 1;
      state.error = failure;
      state.status = "faulted";
      return "faulted";
    }
    if (stopped === "running") {
      state.pc = pc;
      state.steps = start + n;
      if (host === undefined) return "running";
      endPick(host, n);
    } else if (!stopPick(host as PickHost, stopped)) return "running";
    // the next pick's state, in the same call
    const next = drawPick(host as PickHost);
    if (next === undefined) return "running";
    state = next;
    budget = (host as PickHost).quantum;
  }
}

// ---- cold paths of loads and stores the region permissions refused: a
// hooked region (memory.ts RegionAccessHook) answers them, anything else
// has already thrown its MemoryFault inside hookLoad / hookStore.

/** Puts a hooked load's value in r`d/2` as the load opcode `op` would (sign extension for LDXS*). */
function hookedLoad(
  state: ExecState,
  op: number,
  d: number,
  value: bigint,
): void {
  const R = state.regs;
  const lo = Number(value & 0xffffffffn) | 0;
  switch (op) {
    case 71:
      R[d] = (lo << 24) >> 24;
      R[d + 1] = R[d] >> 31;
      return; // LDXSB
    case 72:
      R[d] = (lo << 16) >> 16;
      R[d + 1] = R[d] >> 31;
      return; // LDXSH
    case 73:
      R[d] = lo;
      R[d + 1] = lo >> 31;
      return; // LDXSW
    default:
      R[d] = lo;
      R[d + 1] = Number((value >> 32n) & 0xffffffffn) | 0; // zero-extended by the hook
  }
}

/** The 64-bit value a store row `p` writes: the immediate (ST*) or the source register (STX*). */
function storedValue(R: Int32Array, c: Int32Array, p: number): bigint {
  const imm = c[p] <= 77;
  const lo = imm ? c[p + 4] : R[c[p + 2]],
    hi = imm ? c[p + 5] : R[c[p + 2] + 1];
  return (BigInt(hi >>> 0) << 32n) | BigInt(lo >>> 0);
}
