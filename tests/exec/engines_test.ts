/**
 * Every engine, the same tests (tests/conformance runs the suite's expected
 * results on both): the conformance programs stopped at budgets 1 and 7, hand-computed
 * cases built with `build.ts` (ALU edge cases, memory, atomics, calls,
 * helpers, tail calls, may_goto, packet loads), faults and run-level errors
 * with all their fields, and step budgets (budget 1 and odd slices give the
 * interpreter's final state and number of `step` calls).
 */
import { deepStrictEqual as assertEquals, ok } from "node:assert/strict";
import { fileURLToPath } from "node:url";
import {
  alu32i,
  alu32r,
  alu64i,
  alu64r,
  ALU_OPS,
  atomic,
  call,
  callLocal,
  callx,
  EDGES,
  endian,
  exit,
  ja,
  jmp32i,
  jmp32r,
  JMP_OPS,
  jmpi,
  jmpr,
  ldAbs,
  lddw,
  ldInd,
  ldx,
  ldxs,
  mayGoto,
  mov,
  movr,
  movsx64,
  pair,
  type Part,
  program,
  rng,
  st,
  stx,
} from "./build.ts";
import {
  dataFileProgram,
  parseDataFile,
} from "../../lib/isa/conformance_data.ts";
import { decodeRaw } from "../../lib/isa/decode.ts";
import {
  type CompiledProgram,
  compileProgram,
} from "../../lib/exec/compile.ts";
import { ExecError, MemoryFault } from "../../lib/exec/fault.ts";
import { AddressSpace, regionAddress } from "../../lib/exec/memory.ts";
import { type RunOptions, runProgram } from "../../lib/exec/run.ts";
import {
  ExecState,
  type HelperFn,
  type StateOptions,
} from "../../lib/exec/state.ts";
import {
  ENGINES,
  setStepwiseAfter,
  stepWith,
} from "../../lib/exec/jit/step_jit.ts";
import { refAlu, refJmp } from "./reference.ts";

const suite = fileURLToPath(
  new URL("../../../shared/conformance/tests/", import.meta.url),
);
const conformance = [...Deno.readDirSync(suite)]
  .map((e) => e.name)
  .filter((n) => n.endsWith(".data"))
  .sort()
  .map((name) => {
    const file = parseDataFile(Deno.readTextFileSync(suite + name), name);
    return { name, file, program: decodeRaw(dataFileProgram(file)) };
  });

/** Runs `f` with the JIT's stepwise entry used from the first partial block on. */
function stepwiseAtOnce<T>(f: () => T): T {
  const previous = setStepwiseAfter(0);
  try {
    return f();
  } finally {
    setStepwiseAfter(previous);
  }
}

Deno.test("conformance: the JIT retires exactly the interpreter's instructions, whole and with budgets 1, 2 and 7 (partial blocks interpreted, and on the stepwise entry)", () => {
  const differences: string[] = [];
  for (const { name, file, program } of conformance) {
    const ref = runProgram(program, { mem: file.mem });
    const jit = runProgram(program, { mem: file.mem, engine: "jit" });
    if (jit.steps !== ref.steps) differences.push(`${name}: steps differ`);
    for (const budget of [1, 2, 7]) {
      const a = sliced(compileProgram(program), "interp", budget, file.mem);
      const b = sliced(compileProgram(program), "jit", budget, file.mem);
      const c = stepwiseAtOnce(() =>
        sliced(compileProgram(program), "jit", budget, file.mem)
      );
      if (a !== b) differences.push(`${name} @${budget}: ${a} vs ${b}`);
      if (a !== c) {
        differences.push(`${name} @${budget} stepwise: ${a} vs ${c}`);
      }
    }
  }
  assertEquals(differences, []);
});

/** Runs with a fixed budget per `step` call; returns the final state and the number of calls. */
function sliced(
  prog: CompiledProgram,
  engine: "interp" | "jit",
  budget: number,
  mem?: Uint8Array,
  opts: StateOptions = {},
): string {
  const space = new AddressSpace();
  const memId = mem
    ? space.mapRegionId("mem", mem.slice(), { name: "mem" })
    : 0;
  const state = new ExecState(prog, space, { ...opts, packetRegion: memId });
  if (mem) {
    state.setReg(1, regionAddress(memId));
    state.setReg(2, BigInt(mem.length));
  }
  const stepper = stepWith(engine);
  let calls = 0, status;
  do {
    status = stepper(state, budget);
    calls++;
  } while (status === "running" || status === "blocked");
  return `${status} calls=${calls} steps=${state.steps} pc=${state.pc} ` +
    `regs=${state.regs.join(",")} error=${state.error?.message ?? ""}`;
}

/** A hand-computed case: the program and what r0 must be, or the error it must raise. */
interface Case {
  readonly name: string;
  readonly parts: Part[];
  readonly opts?: RunOptions;
  readonly r0?: bigint;
  readonly steps?: number;
  readonly error?: string;
}

const twice: HelperFn = (vm) => vm.argLo(1) * 2;
// deno-fmt-ignore
const CASES: Case[] = [
  { name: "loop sums 10..1", parts: [mov(0, 0), mov(1, 10), alu64r("add", 0, 1), alu64i("sub", 1, 1), jmpi("jne", 1, 0, -3), exit()], r0: 55n, steps: 33, },
  { name: "add64 carries into the high half", parts: [lddw(0, 0xffffffffn), alu64i("add", 0, 1), exit()], r0: 0x100000000n, },
  { name: "sub64 borrows", parts: [mov(0, 0), alu64i("sub", 0, 1), exit()], r0: 0xffffffffffffffffn, },
  { name: "mul64 wraps: (2^32 + 1)^2 mod 2^64 = 2^33 + 1", parts: [lddw(0, 0x100000001n), lddw(1, 0x100000001n), alu64r("mul", 0, 1), exit()], r0: 0x200000001n, },
  { name: "div by zero is 0", parts: [mov(0, 7), mov(1, 0), alu64r("div", 0, 1), exit()], r0: 0n, },
  { name: "mod by zero leaves dst", parts: [mov(0, 7), mov(1, 0), alu32r("mod", 0, 1), exit()], r0: 7n, },
  { name: "sdiv MIN / -1 = MIN", parts: [lddw(0, 0x8000000000000000n), alu64i("sdiv", 0, -1), exit()], r0: 0x8000000000000000n, },
  { name: "64-bit udiv by a 33-bit divisor", parts: [lddw(0, 0xffffffffffffffffn), lddw(1, 0x100000000n), alu64r("div", 0, 1), exit()], r0: 0xffffffffn, },
  { name: "ALU32 zero-extends", parts: [mov(0, -1), alu32i("add", 0, 0), exit()], r0: 0xffffffffn, },
  { name: "64-bit shift count from a register is masked to 6 bits", parts: [mov(0, 1), mov(1, 65), alu64r("lsh", 0, 1), exit()], r0: 2n, },
  { name: "32-bit shift count is masked to 5 bits", parts: [mov(0, 1), mov(1, 33), alu32r("lsh", 0, 1), exit()], r0: 2n, },
  { name: "arsh by 63 spreads the sign", parts: [lddw(0, 0x8000000000000000n), alu64i("arsh", 0, 63), exit()], r0: 0xffffffffffffffffn, },
  { name: "rsh by 36 moves the high half down", parts: [lddw(0, 0xf000000000000000n), alu64i("rsh", 0, 36), exit()], r0: 0xf000000n, },
  { name: "movsx64 from 8 bits", parts: [mov(1, 0x80), movsx64(0, 1, 8), exit()], r0: 0xffffffffffffff80n, },
  { name: "be16 swaps and truncates", parts: [mov(0, 0x71234), endian("be", 0, 16), exit()], r0: 0x3412n, },
  { name: "bswap64", parts: [lddw(0, 0x0102030405060708n), endian("swap", 0, 64), exit()], r0: 0x0807060504030201n, },
  { name: "-1 is not s> 0 but is u> 0", parts: [mov(0, -1), jmpi("jsgt", 0, 0, 2), jmpi("jgt", 0, 0, 2), mov(0, 1), exit(), mov(0, 2), exit()], r0: 2n, },
  { name: "JMP32 compares only the low half", parts: [lddw(1, 0x100000000n), mov(0, 1), jmp32i("jeq", 1, 0, 1), mov(0, 0), exit()], r0: 1n, },
  { name: "stack store and sign-extending load", parts: [st(8, 10, -8, -2), ldxs(1, 0, 10, -8), exit()], r0: 0xfffffffffffffffen, },
  { name: "stack store of a register, 32-bit load", parts: [lddw(1, 0x1122334455667788n), stx(8, 10, 1, -16), ldx(4, 0, 10, -12), exit()], r0: 0x11223344n, },
  { name: "atomic fetch-add returns the old value", parts: [st(8, 10, -8, 10), mov(1, 5), atomic(8, 0x01, 10, 1, -8), ldx(8, 0, 10, -8), alu64r("add", 0, 1), exit()], r0: 25n, },
  { name: "cmpxchg swaps when r0 matches", parts: [st(4, 10, -4, 3), mov(0, 3), mov(1, 9), atomic(4, 0xf1, 10, 1, -4), ldx(4, 2, 10, -4), alu64i("lsh", 0, 8), alu64r("add", 0, 2), exit()], r0: 0x309n, },
  { name: "local call: callee doubles r1, r6 survives", parts: [mov(6, 4), mov(1, 21), callLocal(2), alu64r("add", 0, 6), exit(), movr(0, 1), alu64r("add", 0, 1), mov(6, 0), exit()], r0: 46n, },
  { name: "ktime_get_ns returns the instructions retired before the call", parts: [mov(1, -1), mov(2, 0), call(5), exit()], r0: 2n, },
  { name: "callx takes the helper id from a register", parts: [mov(3, 100), mov(1, 8), callx(3), exit()], opts: { helpers: new Map([[100, twice]]) }, r0: 16n, },
  { name: "may_goto falls through its budget, then jumps", parts: [mov(0, 0), mayGoto(2), alu64i("add", 0, 1), ja(-3), exit()], opts: { mayGotoBudget: 3 }, r0: 3n, },
  { name: "ld_abs reads network order", parts: [ldAbs(2, 1), exit()], opts: { mem: new Uint8Array([0x12, 0x34, 0x56, 0x78]) }, r0: 0x3456n, },
  { name: "ld_ind out of the packet ends the program with r0 = 0", parts: [mov(0, 5), mov(3, 3), ldInd(4, 3, 0), mov(0, 9), exit()], opts: { mem: new Uint8Array(4) }, r0: 0n, steps: 3, },
  { name: "below the stack", parts: [mov(0, 0), ldx(8, 0, 10, -520), exit()], error: "insn 1: out-of-bounds: read of size 8 at 0xffff8880fffffff8 in stack region 'stack[0]' (size 512) at offset -8", },
  { name: "a store past the end of mem", parts: [mov(2, 1), stx(4, 1, 2, 2), exit()], opts: { mem: new Uint8Array(5) }, error: "insn 1: out-of-bounds: write of size 4 at 0xffff888100000002 in mem region 'mem' (size 5) at offset 2", },
  { name: "a null dereference", parts: [mov(1, 0), mov(0, 1), ldx(4, 0, 1, 0), exit()], error: "insn 2: unmapped: read of size 4 at 0x0000000000000000 in unmapped memory", },
  { name: "falling off the end", parts: [mov(0, 1)], error: "insn 0: fell off the end of the program", },
  { name: "a jump out of range", parts: [mov(0, 1), ja(5), exit()], error: "insn 1: jump out of range from insn 1 to 7", },
  { name: "a jump into the middle of lddw", parts: [ja(1), lddw(0, 1n), exit()], error: "insn 2: jump into the middle of ldimm64 insn", },
  { name: "an unknown helper", parts: [mov(0, 0), call(999), exit()], error: "insn 1: invalid func unknown#999", },
  { name: "unbounded recursion", parts: [callLocal(-1), exit()], error: "insn 0: the call stack of 9 frames is too deep", },
];

for (const engine of ENGINES) {
  Deno.test(`[${engine}] hand-computed programs`, async (t) => {
    for (const c of CASES) {
      await t.step(c.name, () => {
        const opts = { ...c.opts, engine };
        if (c.error !== undefined) {
          let message = "no error";
          try {
            runProgram(program(...c.parts), opts);
          } catch (e) {
            ok(e instanceof MemoryFault || e instanceof ExecError);
            message = e.message;
          }
          assertEquals(message, c.error);
          return;
        }
        const r = runProgram(program(...c.parts), opts);
        assertEquals(r.r0, c.r0);
        if (c.steps !== undefined) assertEquals(r.steps, c.steps);
      });
    }
  });
}

Deno.test("hand-computed programs stop in the same state on both engines, for every budget 1–6", () => {
  const ktime: HelperFn = (vm) => vm.nowNs();
  const helpers = new Map([[100, twice], [5, ktime]]);
  for (const c of CASES) {
    const prog = compileProgram(program(...c.parts));
    for (let budget = 1; budget <= 6; budget++) {
      const mem = c.opts?.mem;
      const reference = sliced(prog, "interp", budget, mem, {
        ...c.opts,
        helpers,
      });
      assertEquals(
        sliced(prog, "jit", budget, mem, { ...c.opts, helpers }),
        reference,
        `${c.name} @${budget}`,
      );
      assertEquals(
        stepwiseAtOnce(() =>
          sliced(prog, "jit", budget, mem, { ...c.opts, helpers })
        ),
        reference,
        `${c.name} @${budget}, stepwise`,
      );
    }
  }
});

for (const engine of ENGINES) {
  Deno.test(`[${engine}] a fault's fields are the same`, () => {
    const prog = program(
      mov(0, 0),
      movr(1, 10),
      alu64i("add", 1, -520),
      ldx(4, 0, 1, 4),
      exit(),
    );
    let fault: MemoryFault | undefined;
    try {
      runProgram(prog, { engine });
    } catch (e) {
      if (e instanceof MemoryFault) fault = e;
    }
    ok(fault);
    assertEquals(
      [
        fault.insnIndex,
        fault.addressHex,
        fault.region?.name,
        fault.offset,
        fault.size,
        fault.access,
        fault.reason,
      ],
      [3, "0xffff8880fffffffc", "stack[0]", -4, 4, "read", "out-of-bounds"],
    );
  });

  Deno.test(`[${engine}] a blocking helper is retried by the next step`, () => {
    let calls = 0;
    const lock: HelperFn = (vm) => {
      calls++;
      if (calls < 3) vm.block();
      return calls < 3 ? undefined : 7;
    };
    const prog = compileProgram(
      program(mov(6, 1), call(50), alu64r("add", 0, 6), exit()),
    );
    const state = new ExecState(prog, new AddressSpace(), {
      helpers: new Map([[50, lock]]),
    });
    const stepper = stepWith(engine);
    assertEquals([stepper(state, 100), state.pc, state.steps], [
      "blocked",
      1,
      1,
    ]);
    assertEquals([stepper(state, 100), state.pc, state.steps], [
      "blocked",
      1,
      1,
    ]);
    assertEquals([stepper(state, 100), state.r0, state.steps, calls], [
      "exited",
      8n,
      4,
      3,
    ]);
  });

  Deno.test(`[${engine}] a tail call continues at slot 0 of the new program`, () => {
    const target = compileProgram(program(alu64i("add", 0, 40), exit()));
    const tail: HelperFn = (vm) => {
      vm.tailCall(target);
      return 2;
    };
    const prog = compileProgram(
      program(mov(0, 0), call(12), mov(0, 99), exit()),
    );
    const state = new ExecState(prog, new AddressSpace(), {
      helpers: new Map([[12, tail]]),
    });
    assertEquals(stepWith(engine)(state, 100), "exited");
    assertEquals([state.r0, state.steps, state.prog], [42n, 4, target]);
  });
}

// deno-fmt-ignore
for (const engine of ENGINES) {
  Deno.test(`[${engine}] every ALU op and jump, both widths and forms, matches the bigint model`, () => {
    const next = rng(0x1e7a11n);
    const operand = (): bigint => {
      const r = next();
      return (r & 3n) === 0n ? EDGES[Number(r >> 8n) % EDGES.length] : next();
    };
    const wrong: string[] = [];
    const check = (what: string, got: bigint, want: bigint) => {
      if (got !== want) wrong.push(`${what}: got 0x${got.toString(16)}, want 0x${want.toString(16)}`);
    };
    for (const w32 of [false, true]) {
      for (const op of ALU_OPS) {
        const regForm = compileProgram(program(ldx(8, 0, 1, 0), ldx(8, 2, 1, 8), (w32 ? alu32r : alu64r)(op, 0, 2), exit()));
        for (let i = 0; i < 40; i++) {
          const a = operand(), b = operand();
          check(`${op}${w32 ? "32" : ""} 0x${a.toString(16)}, 0x${b.toString(16)}`, runProgram(regForm, { mem: pair(a, b), engine }).r0, refAlu(op, w32, a, b));
          const imm = Number(BigInt.asIntN(32, operand()));
          const got = runProgram(program(ldx(8, 0, 1, 0), (w32 ? alu32i : alu64i)(op, 0, imm), exit()), { mem: pair(a, 0n), engine }).r0;
          // ALU64 sign-extends imm, ALU32 takes its 32 bits; immediate shift counts are masked
          let b2 = w32 ? BigInt(imm >>> 0) : BigInt.asUintN(64, BigInt(imm));
          if (op === "lsh" || op === "rsh" || op === "arsh") b2 &= w32 ? 31n : 63n;
          check(`${op}${w32 ? "32" : ""} imm ${imm}`, got, refAlu(op, w32, a, b2));
        }
      }
      for (const op of JMP_OPS) {
        // r0 = 1 when the jump over the first exit is taken
        const jump = (cond: Part) => program(ldx(8, 1, 1, 0), mov(0, 0), cond, exit(), mov(0, 1), exit());
        for (let i = 0; i < 40; i++) {
          const a = operand(), b = operand();
          const mem = pair(a, 0n);
          const r2 = lddw(2, b); // b rides in r2, loaded before the test
          const taken = runProgram(program(...r2, ldx(8, 1, 1, 0), mov(0, 0), (w32 ? jmp32r : jmpr)(op, 1, 2, 1), exit(), mov(0, 1), exit()), { mem, engine }).r0;
          check(`${op}${w32 ? "32" : ""} 0x${a.toString(16)}, 0x${b.toString(16)}`, taken, refJmp(op, w32, a, b) ? 1n : 0n);
          const imm = Number(BigInt.asIntN(32, operand()));
          // JMP imm is sign-extended to 64 bits, also for unsigned compares
          const immTaken = runProgram(jump((w32 ? jmp32i : jmpi)(op, 1, imm, 1)), { mem, engine }).r0;
          check(`${op}${w32 ? "32" : ""} imm ${imm}`, immTaken, refJmp(op, w32, a, BigInt.asUintN(64, BigInt(imm))) ? 1n : 0n);
        }
      }
    }
    assertEquals(wrong, []);
  });
}
