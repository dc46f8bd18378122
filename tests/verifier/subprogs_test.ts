/**
 * The subprogram table (add_subprog_and_kfunc(), check_subprogs(),
 * check_btf_info()) and check_max_stack_depth(). Each program below is the
 * slot sequence libbpf submitted for a program of
 * tests/fixtures/verifier_cfg/subprogs.c (main first, then each called .text
 * function in order of first call); verdicts come from the real kernel
 * (Linux 6.18, root) in subprogs.oracle.json. Stack depths given to
 * checkMaxStackDepth() are those the kernel's log reported for the program
 * ("stack depth 304+304" …): the main pass measures them, not this module.
 */
import { strict as assert } from "node:assert";
import { decodeRaw, rawInsn } from "../../lib/isa/decode.ts";
import type { CallInsn, Insn, RawInsn } from "../../lib/isa/insn.ts";
import { runPrePass } from "../../lib/verifier/cfg.ts";
import {
  type CallTraits,
  helperIdCallTraits,
} from "../../lib/verifier/insn_aux.ts";
import {
  addSubprogs,
  CfgError,
  checkFuncInfo,
  checkMaxStackDepth,
  checkSubprogs,
  findContainingSubprog,
  findSubprog,
  type StackDepthOptions,
  type SubprogLayout,
} from "../../lib/verifier/subprogs.ts";

// --- raw slot builders (kernel encodings) ---
const r = (code: number, dst = 0, src = 0, off = 0, imm = 0): RawInsn =>
  rawInsn(code, dst, src, off, imm);
const mov = (dst: number, imm: number) => r(0xb7, dst, 0, 0, imm);
const exit = () => r(0x95);
const ja = (off: number) => r(0x05, 0, 0, off);
const jne = (dst: number, imm: number, off: number) =>
  r(0x55, dst, 0, off, imm);
const helper = (id: number) => r(0x85, 0, 0, 0, id);
const callLocal = (imm: number) => r(0x85, 0, 1, 0, imm);
const kfunc = (id: number) => r(0x85, 0, 2, 0, id);
const stx64 = (dst: number, src: number, off: number) => r(0x7b, dst, src, off);
const ldAbsW = (imm: number) => r(0x20, 0, 0, 0, imm);
const lddw = (dst: number, src: number, lo: number, hi = 0): RawInsn[] => [
  r(0x18, dst, src, 0, lo),
  r(0, 0, 0, 0, hi),
];
const prog = (...parts: (RawInsn | RawInsn[])[]): Insn[] =>
  decodeRaw(parts.flat());

/** d1 … dN as subprogs.c has them: "call next; exit" pairs, then "r0 = 0; exit". */
const callChain = (n: number): RawInsn[] => [
  ...Array.from({ length: n - 1 }, () => [callLocal(1), exit()]).flat(),
  mov(0, 0),
  exit(),
];

// --- the kernel's verdicts ---
interface OracleRecord {
  program: string;
  verdict: "accept" | "reject";
  errno: number;
  insns: number;
  processed: number;
  message: string;
}

const ORACLE: Map<string, OracleRecord> = (() => {
  const url = new URL(
    "../fixtures/verifier_cfg/subprogs.oracle.json",
    import.meta.url,
  );
  const lines = Deno.readTextFileSync(url).split("\n").filter((l) =>
    l.trim() !== ""
  );
  return new Map(lines.map((l) => {
    const rec = JSON.parse(l) as OracleRecord;
    return [rec.program, rec];
  }));
})();

function kernel(program: string, insns: Insn[]): OracleRecord {
  const rec = ORACLE.get(program);
  assert.ok(rec, `no oracle record for ${program}`);
  assert.equal(
    insns.length,
    rec.insns,
    "slot count differs from the kernel's program",
  );
  return rec;
}

function caught(f: () => unknown): CfgError {
  try {
    f();
  } catch (e) {
    if (e instanceof CfgError) return e;
    throw e;
  }
  assert.fail("no CfgError");
}

/**
 * Runs the pre-pass (with BTF func_info at every function start, as clang -g
 * emits it), sets the measured depths, then the stack check.
 */
function stackCheck(
  insns: Insn[],
  depths: number[],
  opts: StackDepthOptions = {},
) {
  const starts = addSubprogs(insns).subprogs.map((s) => s.start);
  const { layout } = runPrePass(insns, { funcInfoInsnOffs: starts });
  assert.equal(layout.subprogs.length, depths.length);
  layout.subprogs.forEach((s, i) => s.stackDepth = depths[i]);
  return { layout, result: checkMaxStackDepth(insns, layout, opts) };
}

// slot sequences of subprogs.c's programs, as the kernel received them
const PROGRAMS: Record<string, Insn[]> = {
  jump_into_subprog: prog(callLocal(2), ja(1), exit(), mov(0, 0), exit()),
  main_falls_into_subprog: prog(callLocal(1), mov(0, 0), mov(0, 0), exit()),
  subprog_without_exit: prog(
    callLocal(1),
    exit(),
    mov(0, 0),
    exit(),
    mov(0, 1),
  ),
  too_many_subprogs: prog(
    Array.from({ length: 256 }, (_, k) => callLocal(257 + k)),
    mov(0, 0),
    exit(),
    Array.from({ length: 256 }, () => [mov(0, 0), exit()]).flat(),
  ),
  max_subprogs: prog(
    Array.from({ length: 255 }, (_, k) => callLocal(256 + k)),
    mov(0, 0),
    exit(),
    Array.from({ length: 255 }, () => [mov(0, 0), exit()]).flat(),
  ),
  eight_frames: prog(callLocal(2), mov(0, 0), exit(), callChain(7)),
  nine_frames_live: prog(callLocal(2), mov(0, 0), exit(), callChain(8)),
  nine_frames_dead: prog(
    mov(0, 0),
    jne(0, 0, 1),
    exit(),
    callLocal(1),
    exit(),
    callChain(8),
  ),
};
const stack304 = [mov(1, 0), stx64(10, 1, -304), mov(0, 0), exit()];
const mainStack = (
  off: number,
) => [mov(1, 0), stx64(10, 1, off), callLocal(2), mov(0, 0), exit()];
const tailSub = [lddw(2, 1, 3), mov(3, 0), helper(12), mov(0, 0), exit()]
  .flat();
const tailMain = (
  off: number,
) => [stx64(10, 1, off), callLocal(2), mov(0, 0), exit()];
PROGRAMS.combined_stack_too_large = prog(mainStack(-304), stack304);
PROGRAMS.combined_stack_512 = prog(mainStack(-208), stack304);
PROGRAMS.combined_stack_dead_call = prog(
  mov(1, 0),
  stx64(10, 1, -304),
  mov(0, 0),
  jne(0, 0, 1),
  exit(),
  callLocal(1),
  exit(),
  stack304,
);
PROGRAMS.tail_call_under_256 = prog(tailMain(-256), tailSub);
PROGRAMS.tail_call_under_240 = prog(tailMain(-240), tailSub);

Deno.test("pre-pass verdicts on subprograms match the kernel", async (t) => {
  for (
    const name of [
      "jump_into_subprog",
      "main_falls_into_subprog",
      "subprog_without_exit",
    ]
  ) {
    await t.step(name, () => {
      const insns = PROGRAMS[name];
      const rec = kernel(name, insns);
      const err = caught(() => runPrePass(insns));
      assert.deepEqual([err.message, err.errno], [rec.message, rec.errno]);
    });
  }
  await t.step("257 functions are one too many", () => {
    const insns = PROGRAMS.too_many_subprogs;
    const rec = kernel("too_many_subprogs", insns);
    const err = caught(() => runPrePass(insns));
    assert.deepEqual([err.message, err.errno], [rec.message, rec.errno]);
    assert.equal(err.insnIndex, 255, "the 256th call adds the 257th function");
  });
  await t.step("256 functions are fine", () => {
    const insns = PROGRAMS.max_subprogs;
    assert.equal(kernel("max_subprogs", insns).verdict, "accept");
    const { layout } = runPrePass(insns);
    assert.equal(layout.subprogs.length, 256);
    assert.deepEqual(layout.subprogs.slice(0, 3).map((s) => [s.start, s.end]), [
      [0, 257],
      [257, 259],
      [259, 261],
    ]);
  });
});

Deno.test("check_max_stack_depth matches the kernel", async (t) => {
  await t.step("8 frames pass, 9 frames in dead code do not", () => {
    const eight = PROGRAMS.eight_frames;
    assert.equal(kernel("eight_frames", eight).verdict, "accept");
    stackCheck(eight, Array(8).fill(0));
    const dead = PROGRAMS.nine_frames_dead;
    const rec = kernel("nine_frames_dead", dead);
    const err = caught(() => stackCheck(dead, Array(9).fill(0)));
    assert.deepEqual([err.message, err.errno], [rec.message, rec.errno]);
  });
  await t.step("9 live frames: the main pass refuses first", () => {
    // the kernel's do_check says "the call stack of 9 frames is too deep"
    // (no " !"); the pre-pass itself has nothing against the program
    const insns = PROGRAMS.nine_frames_live;
    const rec = kernel("nine_frames_live", insns);
    assert.ok(rec.processed > 0);
    runPrePass(insns);
  });
  await t.step("combined stack 304 + 304", () => {
    const insns = PROGRAMS.combined_stack_too_large;
    const rec = kernel("combined_stack_too_large", insns);
    const err = caught(() => stackCheck(insns, [304, 304]));
    assert.deepEqual([err.message, err.errno], [rec.message, rec.errno]);
  });
  await t.step("combined stack 208 + 304 = 512 fits", () => {
    const insns = PROGRAMS.combined_stack_512;
    assert.equal(kernel("combined_stack_512", insns).verdict, "accept");
    stackCheck(insns, [208, 304]);
  });
  await t.step("a callee the main pass never entered counts 0 bytes", () => {
    const insns = PROGRAMS.combined_stack_dead_call;
    assert.equal(kernel("combined_stack_dead_call", insns).verdict, "accept");
    stackCheck(insns, [304, 0]);
  });
  await t.step("tail call below a 256-byte caller", () => {
    const insns = PROGRAMS.tail_call_under_256;
    const rec = kernel("tail_call_under_256", insns);
    const err = caught(() => stackCheck(insns, [256, 0]));
    assert.deepEqual([err.message, err.errno], [rec.message, rec.errno]);
  });
  await t.step("tail call below a 240-byte caller; reachability marked", () => {
    const insns = PROGRAMS.tail_call_under_240;
    assert.equal(kernel("tail_call_under_240", insns).verdict, "accept");
    const { layout, result } = stackCheck(insns, [240, 0]);
    assert.equal(result.tailCallReachable, true);
    assert.deepEqual(
      layout.subprogs.map((s) => [s.hasTailCall, s.tailCallReachable]),
      [
        [false, true],
        [true, true],
      ],
    );
  });
});

Deno.test("check_max_stack_depth: rules traced from the kernel source", async (t) => {
  const twoFuncs = prog(callLocal(1), exit(), mov(0, 0), exit());
  await t.step("interpreter frames round up to 32 bytes, at least 32", () => {
    const err = caught(() =>
      stackCheck(twoFuncs, [260, 260], { jitRequested: false })
    );
    assert.equal(
      err.message,
      "combined stack size of 2 calls is 576. Too large",
    );
    stackCheck(twoFuncs, [0, 480], { jitRequested: false }); // 32 + 480
    const over = caught(() =>
      stackCheck(twoFuncs, [0, 481], { jitRequested: false })
    );
    assert.equal(
      over.message,
      "combined stack size of 2 calls is 544. Too large",
    );
  });
  await t.step("private stacks take big frames off the shared stack", () => {
    const { layout, result } = stackCheck(twoFuncs, [400, 400], {
      privStackEligible: true,
    });
    assert.equal(result.jitsUsePrivStack, true);
    assert.deepEqual(layout.subprogs.map((s) => s.privStackMode), [
      "adaptive",
      "adaptive",
    ]);
    const small = stackCheck(twoFuncs, [16, 32], { privStackEligible: true });
    assert.equal(small.result.jitsUsePrivStack, false);
    const err = caught(() =>
      stackCheck(twoFuncs, [0, 520], { privStackEligible: true })
    );
    assert.deepEqual([err.message, err.errno], [
      "stack size of subprog 1 is 528. Too large",
      -13,
    ]);
  });
  await t.step("a tail call anywhere disables private stacks", () => {
    const insns = prog(tailMain(-256), tailSub);
    const err = caught(() =>
      stackCheck(insns, [400, 0], { privStackEligible: true })
    );
    assert.match(
      err.message,
      /^tail_calls are not allowed when call stack of previous frames/,
    );
  });
  const withCallback = (asCall: boolean) =>
    prog(
      asCall
        ? [callLocal(4), mov(0, 0), mov(0, 0)]
        : lddw(1, 4, 4).concat(mov(0, 0)),
      mov(0, 0),
      exit(),
      mov(0, 0), // 5: the callback
      exit(),
    );
  await t.step(
    "async callbacks get their own stack unless called directly",
    () => {
      for (const asCall of [false, true]) {
        const insns = withCallback(asCall);
        const { layout } = runPrePass(insns);
        layout.subprogs[1].isCb = layout.subprogs[1].isAsyncCb = true; // as the main pass marks it
        layout.subprogs[0].stackDepth = 400;
        layout.subprogs[1].stackDepth = 200;
        if (asCall) {
          const err = caught(() => checkMaxStackDepth(insns, layout));
          assert.equal(
            err.message,
            "combined stack size of 2 calls is 608. Too large", /* 400 + round_up(200, 16) */
          );
        } else {
          checkMaxStackDepth(insns, layout);
        }
      }
    },
  );
  await t.step(
    "a function-address load counts as a call for other callbacks",
    () => {
      const insns = withCallback(false);
      const { layout } = runPrePass(insns);
      layout.subprogs[1].isCb = true; // a sync callback (bpf_loop …)
      layout.subprogs[0].stackDepth = 400;
      layout.subprogs[1].stackDepth = 200;
      const err = caught(() => checkMaxStackDepth(insns, layout));
      assert.equal(
        err.message,
        "combined stack size of 2 calls is 608. Too large", /* 400 + round_up(200, 16) */
      );
    },
  );
  await t.step("the exception callback cannot be called directly", () => {
    const insns = prog(callLocal(1), exit(), mov(0, 0), exit());
    const { layout } = runPrePass(insns, { exceptionCallbackInsn: 2 });
    const err = caught(() => checkMaxStackDepth(insns, layout));
    assert.deepEqual([err.message, err.errno], [
      "insn 0 cannot call exception cb directly",
      -22,
    ]);
  });
  await t.step("bpf_throw may not run inside a callback", () => {
    // 0-1: r1 = &cb (slot 4); 2: r0 = 0; 3: exit; 4: call bpf_throw; 5: exit
    const insns = prog(lddw(1, 4, 3), mov(0, 0), exit(), kfunc(777), exit());
    const callTraits = (insn: CallInsn): CallTraits => ({
      ...helperIdCallTraits(insn),
      bpfThrow: insn.callee === "kfunc" && insn.imm === 777,
    });
    const { layout } = runPrePass(insns);
    checkMaxStackDepth(insns, layout, { callTraits }); // not yet known as a callback
    layout.subprogs[1].isCb = true;
    const err = caught(() => checkMaxStackDepth(insns, layout, { callTraits }));
    assert.equal(
      err.message,
      "bpf_throw kfunc (insn 4) cannot be called from callback subprog 1",
    );
  });
});

Deno.test("add_subprog_and_kfunc() and check_subprogs() bookkeeping", async (t) => {
  await t.step("calls to nowhere", () => {
    for (const imm of [5, -2]) {
      const insns = prog(callLocal(imm), exit());
      const err = caught(() => addSubprogs(insns));
      assert.deepEqual([err.message, err.errno, err.insnIndex], [
        "call to invalid destination",
        -22,
        0,
      ]);
    }
  });
  await t.step("starts are sorted and shared", () => {
    // 0: call 6; 1: call 4; 2: call 6; 3: exit; 4-5: f; 6-7: g
    const insns = prog(callLocal(5), callLocal(2), callLocal(3), exit(), [
      mov(0, 0),
      exit(),
    ], [
      mov(0, 0),
      exit(),
    ]);
    const layout = addSubprogs(insns);
    assert.deepEqual(layout.subprogs.map((s) => [s.start, s.end]), [[0, 4], [
      4,
      6,
    ], [6, 8]]);
    assert.deepEqual(
      [0, 3, 4, 5, 6, 7, 8].map((i) =>
        findContainingSubprog(layout.subprogs, i)
      ),
      [
        0,
        0,
        1,
        1,
        2,
        2,
        2,
      ],
    );
    assert.deepEqual([0, 4, 5, 6].map((i) => findSubprog(layout.subprogs, i)), [
      0,
      1,
      -1,
      2,
    ]);
  });
  await t.step("tail calls, ld_abs and exits are recorded per function", () => {
    // main: 0: ld_abs; 1: call f; 2: exit | f: 3: tail_call; 4: r0 = 0; 5: exit
    const insns = prog(
      ldAbsW(0),
      callLocal(1),
      exit(),
      helper(12),
      mov(0, 0),
      exit(),
    );
    const layout = addSubprogs(insns);
    checkSubprogs(insns, layout);
    const flags = layout.subprogs.map((
      s,
    ) => [s.hasLdAbs, s.hasTailCall, s.exitIdx]);
    assert.deepEqual(flags, [[true, false, 2], [false, true, 5]]);
  });
});

Deno.test("check_btf_info(): subprograms without and with BTF func_info", async (t) => {
  const layoutOf = (insns: Insn[]): SubprogLayout => {
    const layout = addSubprogs(insns);
    checkSubprogs(insns, layout);
    return layout;
  };
  await t.step("ld_abs or tail calls outside main need BTF", () => {
    const ldAbs = layoutOf(prog(callLocal(1), exit(), ldAbsW(0), exit()));
    assert.equal(
      caught(() => checkFuncInfo(ldAbs)).message,
      "LD_ABS is not allowed in subprogs without BTF",
    );
    checkFuncInfo(ldAbs, [0, 2]);
    const tail = layoutOf(prog(callLocal(1), exit(), helper(12), exit()));
    assert.equal(
      caught(() => checkFuncInfo(tail)).message,
      "tail_call is not allowed in subprogs without BTF",
    );
    // main itself may do both without BTF
    checkFuncInfo(layoutOf(prog(ldAbsW(0), helper(12), exit())));
  });
  await t.step("func_info must match the functions", () => {
    const layout = layoutOf(prog(callLocal(1), exit(), mov(0, 0), exit()));
    assert.equal(
      caught(() => checkFuncInfo(layout, [0])).message,
      "number of funcs in func_info doesn't match number of subprogs",
    );
    assert.equal(
      caught(() => checkFuncInfo(layout, [0, 3])).message,
      "func_info BTF section doesn't match subprog layout in BPF program",
    );
  });
});
