/**
 * Differential fuzzing of the JIT against the interpreter: seeded random
 * valid programs (straight-line ALU with forward jumps, stack loads, stores
 * and atomics, `may_goto`, helper, `callx` and kfunc calls of every result
 * kind, blocking and faulting included (`fuzz_helpers.ts`), a subprogram called with
 * bpf-to-bpf calls (which may call itself until the frame limit faults),
 * bounded loops, now and then an
 * out-of-bounds access) run on both engines under the same budget schedule;
 * every observable — status, steps, pc, registers, stack bytes, the fault
 * and the number of `step` calls — must agree. A disagreement is minimised
 * by deleting instructions while it persists, and reported disassembled.
 * @module
 */
import { decodeRaw, rawInsn } from "../../isa/decode.ts";
import type { RawInsn } from "../../isa/insn.ts";
import { disassemble } from "../../isa/disasm.ts";
import { type CompiledProgram, compileProgram } from "../compile.ts";
import { MemoryFault } from "../fault.ts";
import { AddressSpace } from "../memory.ts";
import { fuzzCallTargets, randomCall } from "./fuzz_helpers.ts";
import { ExecState } from "../state.ts";
import { type Engine, stepWith } from "./step_jit.ts";

/** Deterministic xorshift32 generator (no Math.random): integers in [0, n). */
export function seededRandom(seed: number): (n: number) => number {
  let x = (seed * 2654435761) | 0 || 1;
  return (n: number) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
}

const ALU_CODES = [
  0x00,
  0x10,
  0x20,
  0x30,
  0x40,
  0x50,
  0x60,
  0x70,
  0x90,
  0xa0,
  0xb0,
  0xc0,
]; // deno-fmt-ignore
const JMP_CODES = [0x10, 0x20, 0x30, 0x40, 0x50, 0x60, 0x70, 0xa0, 0xb0, 0xc0, 0xd0]; // deno-fmt-ignore
const SIZES: readonly [number, number][] = [[1, 0x10], [2, 0x08], [4, 0x00], [
  8,
  0x18,
]];
const ATOMIC_OPS = [0x00, 0x40, 0x50, 0xa0, 0x01, 0x41, 0x51, 0xa1, 0xe1, 0xf1]; // deno-fmt-ignore
const EDGE_IMMS = [0, 1, -1, 2, 31, 32, 63, 0x7fffffff, -0x80000000, 0xffff, 0x80]; // deno-fmt-ignore
const LOOP_COUNTER = 9;

/** One generated item: a slot, or an lddw pair. */
type Item = RawInsn[];

/** A random valid program of about `size` instructions, from `seed`. */
export function randomProgram(seed: number, size = 40): RawInsn[] {
  const rand = seededRandom(seed);
  const imm = () =>
    rand(3) === 0 ? EDGE_IMMS[rand(EDGE_IMMS.length)] : rand(0x100000000) | 0;
  const dst = () => rand(9); // r0–r8: r9 counts loops, r10 is the frame pointer
  const src = () => rand(11);
  const out: RawInsn[] = [];
  for (let r = 0; r < 9; r++) {
    if (rand(2) === 0) out.push(rawInsn(0xb7, r, 0, 0, imm()));
    else out.push(rawInsn(0x18, r, 0, 0, imm()), rawInsn(0, 0, 0, 0, imm()));
  }
  while (out.length < size) {
    if (rand(4) === 0) {
      const body = chunk(rand, imm, dst, src, 3 + rand(8));
      const slots = body.flat();
      out.push(rawInsn(0xb7, LOOP_COUNTER, 0, 0, 1 + rand(20)));
      out.push(...slots);
      out.push(rawInsn(0x17, LOOP_COUNTER, 0, 0, 1));
      out.push(rawInsn(0x55, LOOP_COUNTER, 0, -(slots.length + 2), 0));
    } else {
      out.push(...chunk(rand, imm, dst, src, 4 + rand(10)).flat());
    }
  }
  out.push(rawInsn(0x95, 0, 0, 0, 0));
  // A subprogram after the main exit: bpf-to-bpf calls point at it.
  const fn = out.length;
  out.push(...chunk(rand, imm, dst, src, 3 + rand(6)).flat());
  out.push(rawInsn(0x95, 0, 0, 0, 0));
  return out.map((r, j) =>
    r.code === 0x85 && r.src === 1 && r.imm === CALL_MARK
      ? { ...r, imm: fn - j - 1 }
      : r
  );
}

/** Placeholder imm of a local call, resolved once the program is laid out. */
const CALL_MARK = 0x7fff0000;

/** Straight-line items with forward jumps that stay inside the chunk. */
function chunk(
  rand: (n: number) => number,
  imm: () => number,
  dst: () => number,
  src: () => number,
  count: number,
): Item[] {
  const items: (Item | { skip: number; make: (off: number) => RawInsn })[] = [];
  for (let i = 0; i < count; i++) {
    const kind = rand(20);
    if (kind < 9) {
      const op = ALU_CODES[rand(ALU_CODES.length)];
      const cls = rand(2) === 0 ? 0x07 : 0x04, reg = rand(2) === 0;
      const signed = (op === 0x30 || op === 0x90) && rand(2) === 0 ? 1 : 0;
      let k = imm();
      if (op === 0x60 || op === 0x70 || op === 0xc0) {
        k = rand(cls === 0x07 ? 64 : 32);
      }
      if (op === 0xb0 && reg && rand(3) === 0) {
        const bits = cls === 0x07 ? [8, 16, 32][rand(3)] : [8, 16][rand(2)];
        items.push([rawInsn(cls | 0x08 | op, dst(), src(), bits, 0)]); // movsx
      } else if (reg) {
        items.push([rawInsn(cls | 0x08 | op, dst(), src(), signed, 0)]);
      } else items.push([rawInsn(cls | op, dst(), 0, signed, k)]);
    } else if (kind === 9) {
      const code = [0x87, 0x84, 0xd4, 0xdc, 0xd7][rand(5)];
      const bits = code >= 0xd4 ? [16, 32, 64][rand(3)] : 0;
      items.push([rawInsn(code, dst(), 0, 0, bits)]);
    } else if (kind === 10) {
      items.push([
        rawInsn(0x18, dst(), 0, 0, imm()),
        rawInsn(0, 0, 0, 0, imm()),
      ]);
    } else if (kind < 15) {
      items.push([stackAccess(rand, imm, dst, src)]);
    } else if (kind < 19) {
      const skip = rand(count - i + 1);
      const op = JMP_CODES[rand(JMP_CODES.length)];
      const cls = rand(2) === 0 ? 0x05 : 0x06, reg = rand(2) === 0;
      const d = src(), s = src(), k = imm();
      const mayGoto = rand(12) === 0;
      items.push({
        skip,
        make: (off) =>
          mayGoto
            ? rawInsn(0xe5, 0, 0, off, 0)
            : reg
            ? rawInsn(cls | 0x08 | op, d, s, off, 0)
            : rawInsn(cls | op, d, 0, off, k),
      });
    } else {
      items.push(
        rand(3) === 0
          ? [rawInsn(0x85, 0, 1, 0, CALL_MARK)] // call the subprogram
          : randomCall(rand), // a helper, callx or a kfunc
      );
    }
  }
  // Resolve each jump to the slots its skipped items occupy.
  const sizes = items.map((it) => ("skip" in it ? 1 : it.length));
  return items.map((it, i) => {
    if (!("skip" in it)) return it;
    let off = 0;
    for (let j = i + 1; j <= i + it.skip && j < items.length; j++) {
      off += sizes[j];
    }
    return [it.make(off)];
  });
}

/** A load, store or atomic on the stack; rarely just outside it (a fault). */
function stackAccess(
  rand: (n: number) => number,
  imm: () => number,
  dst: () => number,
  src: () => number,
): RawInsn {
  const [size, bits] = SIZES[rand(4)];
  const off = rand(40) === 0
    ? -512 - size + rand(2) * (512 + size) // out of bounds
    : -size - rand(64);
  switch (rand(6)) {
    case 0:
    case 1:
      return rawInsn(0x61 | bits, dst(), 10, off, 0);
    case 2:
      return size === 8
        ? rawInsn(0x61 | bits, dst(), 10, off, 0)
        : rawInsn(0x81 | bits, dst(), 10, off, 0);
    case 3:
      return rawInsn(0x62 | bits, 10, 0, off, imm());
    case 4:
      return rawInsn(0x63 | bits, 10, src(), off, 0);
    default: {
      const wide = rand(2) === 0;
      const aligned = wide ? off & ~7 : off & ~3;
      return rawInsn(
        0xc3 | (wide ? 0x18 : 0),
        10,
        dst(),
        aligned,
        ATOMIC_OPS[rand(ATOMIC_OPS.length)],
      );
    }
  }
}

/** Budgets `step` is called with, in turn (odd sizes split blocks). */
export const SLICED: readonly number[] = [1, 5, 3, 64, 2, 17, 1000];
/** One budget large enough for any fuzzed run: whole blocks only. */
export const WHOLE: readonly number[] = [200_000];
/** Instructions after which a fuzzed run stops (a minimised loop may not end). */
const STEP_CAP = 200_000;

const compiled = new WeakMap<readonly RawInsn[], CompiledProgram>();

/**
 * `raws` compiled, once per array: the runs of one program (whole and in
 * slices, on both engines) share it, and so the JIT's translation of it.
 */
function compiledOf(raws: readonly RawInsn[]): CompiledProgram {
  let prog = compiled.get(raws);
  if (prog === undefined) {
    prog = compileProgram(decodeRaw(raws));
    compiled.set(raws, prog);
  }
  return prog;
}

/** Everything observable about a run, as one comparable string. */
export function observe(
  raws: readonly RawInsn[],
  engine: Engine,
  budgets: readonly number[] = SLICED,
): string {
  const prog = compiledOf(raws);
  const state = new ExecState(prog, new AddressSpace(), fuzzCallTargets());
  const stepper = stepWith(engine);
  let calls = 0, status = "running";
  // A blocked helper is retried by the next call (it blocks every other time).
  while (
    (status === "running" || status === "blocked") && state.steps < STEP_CAP
  ) {
    status = stepper(state, budgets[calls % budgets.length]);
    calls++;
  }
  const regs = [...state.regs].map((x) => (x >>> 0).toString(16)).join(",");
  const stack = state.mem.regionById(state.stackRegions[0])?.bytes ?? [];
  let sum = 0;
  for (const b of stack) sum = (Math.imul(sum, 31) + b) | 0;
  const e = state.error;
  const fault = e instanceof MemoryFault
    ? `${e.message}|${e.region?.id}|${e.offset}|${e.size}|${e.access}|${e.reason}`
    : e?.message ?? "";
  return `${status} steps=${state.steps} pc=${state.pc} calls=${calls} regs=${regs} stack=${sum} error=${fault}`;
}

/** A disagreement between the engines on a (minimised) program. */
export interface FuzzFinding {
  /** Seed of the original random program. */
  readonly seed: number;
  /** The minimised program, disassembled. */
  readonly disassembly: readonly string[];
  /** {@link observe} on the interpreter (run whole / in slices). */
  readonly interp: string;
  /** {@link observe} on the JIT (run whole / in slices). */
  readonly jit: string;
}

/** How a run is observed: {@link observe}, or a stand-in (tests plant bugs with one). */
export type Observer = (
  raws: readonly RawInsn[],
  engine: Engine,
  budgets: readonly number[],
) => string;

/** Whether the engines disagree on `raws`, run whole or in slices. */
export function differs(
  raws: readonly RawInsn[],
  look: Observer = observe,
): boolean {
  return look(raws, "interp", WHOLE) !== look(raws, "jit", WHOLE) ||
    look(raws, "interp", SLICED) !== look(raws, "jit", SLICED);
}

/** Where slot `j` of a jump-like instruction points, or -1 if it is not one. */
function jumpTarget(raws: readonly RawInsn[], j: number): number {
  const { code, src, off, imm } = raws[j];
  const cls = code & 7, op = code & 0xf0;
  if (j > 0 && raws[j - 1].code === 0x18) return -1; // lddw's second slot
  if (code === 0x85) return src === 1 ? j + 1 + imm : -1;
  if (code === 0x06) return j + 1 + imm; // gotol
  if ((cls === 5 || cls === 6) && op !== 0x80 && op !== 0x90) {
    return j + 1 + off;
  }
  return -1;
}

/** `raws` without slots [at, at + width), jump offsets fixed up. */
function removeSlots(
  raws: readonly RawInsn[],
  at: number,
  width: number,
): RawInsn[] {
  const moved = (x: number) => (x >= at + width ? x - width : x > at ? at : x);
  const out: RawInsn[] = [];
  raws.forEach((r, j) => {
    if (j >= at && j < at + width) return;
    const t = jumpTarget(raws, j);
    const rel = moved(t) - moved(j) - 1;
    if (t < 0) out.push(r);
    else if (r.code === 0x06 || r.code === 0x85) out.push({ ...r, imm: rel });
    else out.push({ ...r, off: rel });
  });
  return out;
}

/** Deletes instructions (lddw pairs whole) while `bad` still holds. */
export function minimise(
  raws: readonly RawInsn[],
  bad: (raws: readonly RawInsn[]) => boolean = differs,
): RawInsn[] {
  let current = [...raws];
  let changed = true;
  while (changed) {
    changed = false;
    for (let at = current.length - 1; at >= 0; at--) {
      if (at > 0 && current[at - 1].code === 0x18) continue; // lddw's second slot
      const width = current[at].code === 0x18 ? 2 : 1;
      const candidate = removeSlots(current, at, width);
      if (candidate.length > 0 && bad(candidate)) {
        current = candidate;
        changed = true;
      }
    }
  }
  return current;
}

/**
 * Runs `iterations` random programs from `seed` on both engines; returns the
 * disagreements found, each minimised and disassembled.
 */
export function fuzzEngines(
  seed: number,
  iterations: number,
  size = 40,
  look: Observer = observe,
): FuzzFinding[] {
  const findings: FuzzFinding[] = [];
  for (let i = 0; i < iterations; i++) {
    const programSeed = seed + i;
    const raws = randomProgram(programSeed, size);
    if (!differs(raws, look)) continue;
    const small = minimise(raws, (r) => differs(r, look));
    findings.push({
      seed: programSeed,
      disassembly: disassemble(decodeRaw(small)),
      interp: look(small, "interp", WHOLE) + " / " +
        look(small, "interp", SLICED),
      jit: look(small, "jit", WHOLE) + " / " + look(small, "jit", SLICED),
    });
  }
  return findings;
}
