/**
 * Calls: BPF-to-BPF frames (own stack and r10, r6–r9 restored, the frame
 * limit), helpers and kfuncs through their tables, `callx`, the default
 * helper 5, blocking helpers and tail calls.
 */
import {
  deepStrictEqual as assertEquals,
  ok,
  throws,
} from "node:assert/strict";
import {
  alu64i,
  alu64r,
  call,
  callKfunc,
  callLocal,
  callx,
  exit,
  ldx,
  mov,
  movr,
  type Part,
  program,
  r0Of,
  run,
  st,
} from "./build.ts";
import { compileProgram } from "../../lib/exec/compile.ts";
import { ExecError } from "../../lib/exec/fault.ts";
import { ENGINES, stepWith } from "../../lib/exec/jit/step_jit.ts";
import { AddressSpace } from "../../lib/exec/memory.ts";
import {
  ExecState,
  type HelperFn,
  MAX_TAIL_CALL_CNT,
} from "../../lib/exec/state.ts";

/** Asserts that running throws an ExecError with this index and reason. */
function execErrorOf(
  parts: Part[],
  opts: Parameters<typeof run>[1] = {},
): ExecError {
  try {
    run(parts, opts);
  } catch (e) {
    if (e instanceof ExecError) return e;
    throw e;
  }
  throw new Error("no ExecError");
}

Deno.test("local calls", async (t) => {
  await t.step(
    "the callee sees r1–r5 and returns r0; r6–r9 come back intact",
    () => {
      const state = run([
        mov(1, 10),
        mov(2, 20),
        mov(3, 30),
        mov(4, 40),
        mov(5, 50), // 0–4
        mov(6, 6),
        mov(7, 7),
        mov(8, 8),
        mov(9, 9), // 5–8
        callLocal(1), // 9: call f (slot 11)
        exit(), // 10
        // f: r0 = r1 + r2 + r3 + r4 + r5; clobber r6–r9
        movr(0, 1),
        alu64r("add", 0, 2),
        alu64r("add", 0, 3),
        alu64r("add", 0, 4),
        alu64r("add", 0, 5),
        mov(6, 0),
        mov(7, 0),
        mov(8, 0),
        mov(9, 0),
        exit(),
      ]).state; // deno-fmt-ignore
      assertEquals(state.r0, 150n);
      assertEquals([6, 7, 8, 9].map((r) => state.getReg(r)), [6n, 7n, 8n, 9n]);
    },
  );
  await t.step(
    "each frame has its own 512-byte stack and r10; r10 is restored",
    () => {
      const state = run([
        st(8, 10, -8, 111), // 0: caller's slot
        movr(6, 10), // 1: remember caller's r10
        callLocal(3), // 2: call f (slot 6)
        ldx(8, 7, 10, -8), // 3: r7 = caller's slot after the call
        movr(8, 10), // 4: r10 after the call
        exit(), // 5
        st(8, 10, -8, 222), // 6: f writes its own slot
        ldx(8, 9, 10, -8), // 7
        movr(0, 10), // 8: return the callee's r10
        exit(), // 9
      ]).state;
      assertEquals(state.getReg(7), 111n);
      assertEquals(state.getReg(8), state.getReg(6));
      ok(state.r0 !== state.getReg(6), "callee r10 differs from the caller's");
      // the callee's stack is region 2 (the main stack is region 1): top at +512
      assertEquals(state.r0, 0xffff888200000200n);
      assertEquals(state.getReg(6), 0xffff888100000200n);
    },
  );
  await t.step("nested calls up to 8 frames work", () => {
    // f_k: r0 += 1; call f_{k+1} ... the chain has 7 calls below main
    const parts: Part[] = [mov(0, 0)];
    for (let k = 0; k < 7; k++) {
      parts.push(callLocal(1), exit(), alu64i("add", 0, 1));
    }
    parts.push(exit());
    assertEquals(r0Of(parts), 7n);
  });
  await t.step("a 9th frame is an ExecError at the call", () => {
    // f: call f (endless recursion)
    const e = execErrorOf([callLocal(1), exit(), callLocal(-1), exit()]);
    assertEquals([e.insnIndex, e.reason], [
      2,
      "the call stack of 9 frames is too deep",
    ]);
  });
});

Deno.test("helpers", async (t) => {
  await t.step(
    "default helper 5 (ktime_get_ns) returns simulated time = retired insns",
    () => {
      assertEquals(r0Of([mov(1, -1), mov(2, 0), call(5), exit()]), 2n);
    },
  );
  await t.step("arguments, memory access and a number result", () => {
    let seenInsn = -1;
    const helpers = new Map<number, HelperFn>([[100, (vm) => {
      seenInsn = vm.insnIndex;
      return Number(vm.mem.read(vm.arg(1), 8)) + vm.argLo(2) + vm.argHi(3);
    }]]);
    const r = run([
      st(8, 10, -8, 1000), // 0
      movr(1, 10), // 1
      alu64i("add", 1, -8), // 2: r1 = &slot
      mov(2, 20), // 3
      mov(3, -1), // 4: argHi(3) = -1
      call(100), // 5
      exit(),
    ], { helpers });
    assertEquals([r.r0, seenInsn], [1019n, 5]);
  });
  await t.step(
    "a negative number result is sign-extended; bigint results are taken mod 2^64",
    () => {
      assertEquals(
        r0Of([call(1), exit()], { helpers: new Map([[1, () => -22]]) }),
        0xffffffffffffffean,
      );
      assertEquals(
        r0Of([call(1), exit()], { helpers: new Map([[1, () => -1n]]) }),
        0xffffffffffffffffn,
      );
      assertEquals(
        r0Of([call(1), exit()], { helpers: new Map([[1, () => 2 ** 40 + 3]]) }),
        2n ** 40n + 3n,
      );
    },
  );
  await t.step("a void helper leaves r0 as set with setR0", () => {
    const helpers = new Map<number, HelperFn>([[
      1,
      (vm) => vm.setR0(0x1122334455667788n),
    ]]);
    assertEquals(
      r0Of([mov(0, 3), call(1), exit()], { helpers }),
      0x1122334455667788n,
    );
  });
  await t.step("a helper finds the state's owner (e.g. its CPU)", () => {
    const cpu = { id: 3 };
    const prog = compileProgram(program(call(8), exit()));
    const helpers = new Map<number, HelperFn>([[
      8,
      (vm) => (vm.owner as typeof cpu).id,
    ]]);
    const state = new ExecState(prog, new AddressSpace(), {
      helpers,
      owner: cpu,
    });
    for (const engine of ENGINES) {
      state.reset();
      assertEquals([stepWith(engine)(state, 10), state.r0], ["exited", 3n]);
    }
  });
  await t.step("an unknown helper is an ExecError at the call", () => {
    const e = execErrorOf([mov(0, 0), call(999), exit()]);
    assertEquals([e.insnIndex, e.reason], [1, "invalid func unknown#999"]);
  });
  await t.step("a helper the runtime lacks is named in the error", () => {
    const e = execErrorOf([mov(0, 0), call(99), exit()]);
    assertEquals(
      [e.insnIndex, e.reason],
      [
        1,
        "helper bpf_skc_lookup_tcp#99 is not modelled by bpfsim's runtime here",
      ],
    );
  });
  await t.step("a helper throwing a plain Error becomes an ExecError", () => {
    const e = execErrorOf([call(1), exit()], {
      helpers: new Map([[1, () => {
        throw new Error("boom");
      }]]),
    });
    assertEquals([e.insnIndex, e.reason], [0, "helper raised: boom"]);
  });
});

Deno.test("callx calls the helper whose id is in dst", async (t) => {
  await t.step("r2 = 5 calls ktime", () => {
    assertEquals(r0Of([mov(2, 5), callx(2), exit()]), 1n);
  });
  await t.step("an unknown id in the register", () => {
    const e = execErrorOf([mov(2, 1234), callx(2), exit()]);
    assertEquals([e.insnIndex, e.reason], [1, "invalid func unknown#1234"]);
  });
});

Deno.test("kfuncs are looked up by BTF id", async (t) => {
  const kfuncs = new Map<number, HelperFn>([[54321, (vm) => vm.argLo(1) * 2]]);
  await t.step("a known kfunc", () => {
    assertEquals(r0Of([mov(1, 21), callKfunc(54321), exit()], { kfuncs }), 42n);
  });
  await t.step("an unknown kfunc", () => {
    const e = execErrorOf([callKfunc(7), exit()], { kfuncs });
    assertEquals([e.insnIndex, e.reason], [0, "unknown kfunc with BTF id 7"]);
  });
  await t.step("a helper id is not a kfunc id", () => {
    const e = execErrorOf([callKfunc(5), exit()]);
    assertEquals(e.reason, "unknown kfunc with BTF id 5");
  });
});

for (const engine of ENGINES) {
  const step = stepWith(engine);
  Deno.test(`[${engine}] a blocking helper is retried by the next step`, () => {
    let calls = 0;
    const lock: HelperFn = (vm) => {
      calls++;
      if (calls < 3) vm.block(); // taken twice, then free
      return calls < 3 ? undefined : 7;
    };
    const prog = compileProgram(
      program(mov(6, 1), call(50), alu64r("add", 0, 6), exit()),
    );
    const state = new ExecState(prog, new AddressSpace(), {
      helpers: new Map([[50, lock]]),
    });
    assertEquals(step(state, 100), "blocked");
    assertEquals([state.pc, state.steps, calls], [1, 1, 1]);
    assertEquals(step(state, 100), "blocked");
    assertEquals([state.pc, state.steps, calls], [1, 1, 2]);
    assertEquals(step(state, 100), "exited");
    assertEquals([state.r0, state.steps, calls], [8n, 4, 3]);
  });
}

Deno.test("tail calls continue at slot 0 of the new program, at most 33 times", async (t) => {
  await t.step("into another program", () => {
    const target = compileProgram(
      program(alu64i("add", 6, 100), movr(0, 6), exit()),
    );
    const helpers = new Map<number, HelperFn>([[12, (vm) => {
      vm.tailCall(target);
    }]]);
    assertEquals(
      r0Of([mov(6, 1), call(12), mov(0, 0), exit()], { helpers }),
      101n,
    );
  });
  await t.step("into itself: the 34th attempt falls through", () => {
    const self = compileProgram(
      program(alu64i("add", 6, 1), call(12), movr(0, 6), exit()),
    );
    const helpers = new Map<number, HelperFn>([[12, (vm) => {
      vm.tailCall(self);
    }]]);
    assertEquals(MAX_TAIL_CALL_CNT, 33);
    for (const engine of ENGINES) {
      const state = new ExecState(self, new AddressSpace(), { helpers });
      assertEquals(stepWith(engine)(state, 10_000), "exited", engine);
      assertEquals(state.r0, 34n, engine);
    }
  });
  await t.step("a blocked helper cannot complete in runProgram", () => {
    throws(
      () =>
        run([call(1), exit()], { helpers: new Map([[1, (vm) => vm.block()]]) }),
      (e) => e instanceof ExecError && e.insnIndex === 0,
    );
  });
});
