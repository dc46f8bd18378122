/**
 * check_cfg(), check_subprogs() and resolve_pseudo_ldimm64() as run by
 * runPrePass(). Rejections are compared with the real kernel's verdict on the
 * same slots, recorded from tests/fixtures/verifier_cfg/cfg.c (Linux 6.18,
 * root) in cfg.oracle.json; flag expectations are traced by hand from
 * visit_insn() / push_insn().
 */
import { strict as assert } from "node:assert";
import { decodeRaw, rawInsn } from "../../lib/isa/decode.ts";
import type { CallInsn, Insn, RawInsn } from "../../lib/isa/insn.ts";
import { checkCfg, runPrePass } from "../../lib/verifier/cfg.ts";
import {
  type CallTraits,
  helperIdCallTraits,
  InsnAux,
} from "../../lib/verifier/insn_aux.ts";
import {
  addSubprogs,
  BPF_COMPLEXITY_LIMIT_INSNS,
  BPF_MAXINSNS,
  CfgError,
  checkProgLen,
  checkSubprogs,
} from "../../lib/verifier/subprogs.ts";

// --- raw slot builders (kernel encodings) ---
const r = (code: number, dst = 0, src = 0, off = 0, imm = 0): RawInsn =>
  rawInsn(code, dst, src, off, imm);
const mov = (dst: number, imm: number) => r(0xb7, dst, 0, 0, imm);
const add = (dst: number, imm: number) => r(0x07, dst, 0, 0, imm);
const exit = () => r(0x95);
const ja = (off: number) => r(0x05, 0, 0, off);
const gotol = (imm: number) => r(0x06, 0, 0, 0, imm);
const mayGoto = (off: number) => r(0xe5, 0, 0, off);
const jeq = (dst: number, imm: number, off: number) =>
  r(0x15, dst, 0, off, imm);
const jlt = (dst: number, imm: number, off: number) =>
  r(0xa5, dst, 0, off, imm);
const helper = (id: number) => r(0x85, 0, 0, 0, id);
const callLocal = (imm: number) => r(0x85, 0, 1, 0, imm);
const kfunc = (id: number, off = 0) => r(0x85, 0, 2, off, id);
const stx64 = (dst: number, src: number, off: number) => r(0x7b, dst, src, off);
const ldx64 = (dst: number, src: number, off: number, imm = 0) =>
  r(0x79, dst, src, off, imm);
const lddw = (dst: number, src: number, lo: number, hi = 0): RawInsn[] => [
  r(0x18, dst, src, 0, lo),
  r(0, 0, 0, 0, hi),
];
const prog = (...parts: (RawInsn | RawInsn[])[]): Insn[] =>
  decodeRaw(parts.flat());

// --- the kernel's verdicts ---
interface OracleRecord {
  program: string;
  verdict: "accept" | "reject";
  errno: number;
  insns: number;
  processed: number;
  message: string;
}

function readOracle(file: string): Map<string, OracleRecord> {
  const url = new URL(`../fixtures/verifier_cfg/${file}`, import.meta.url);
  const lines = Deno.readTextFileSync(url).split("\n").filter((l) =>
    l.trim() !== ""
  );
  return new Map(lines.map((l) => {
    const rec = JSON.parse(l) as OracleRecord;
    return [rec.program, rec];
  }));
}

const CFG = readOracle("cfg.oracle.json");
const NONGPL = readOracle("kfunc_nongpl.oracle.json");

function kernel(db: Map<string, OracleRecord>, program: string): OracleRecord {
  const rec = db.get(program);
  assert.ok(rec, `no oracle record for ${program}`);
  return rec;
}

function prePassError(insns: Insn[], opts = {}): CfgError {
  try {
    runPrePass(insns, opts);
  } catch (e) {
    if (e instanceof CfgError) return e;
    throw e;
  }
  assert.fail("pre-pass accepted the program");
}

/** The pre-pass refuses exactly as the kernel did, on the slots the kernel saw. */
function rejectsLikeKernel(
  rec: OracleRecord,
  insns: Insn[],
  opts = {},
): CfgError {
  assert.equal(
    insns.length,
    rec.insns,
    "slot count differs from the kernel's program",
  );
  assert.equal(rec.verdict, "reject");
  assert.equal(rec.processed, 0, "the kernel refused it before do_check");
  const err = prePassError(insns, opts);
  assert.equal(err.message, rec.message);
  assert.equal(err.errno, rec.errno);
  return err;
}

/** The kernel got past the pre-pass (accepted, or refused only by do_check). */
function passesLikeKernel(rec: OracleRecord, insns: Insn[], opts = {}) {
  assert.equal(
    insns.length,
    rec.insns,
    "slot count differs from the kernel's program",
  );
  assert.ok(rec.verdict === "accept" || rec.processed > 0);
  return runPrePass(insns, opts);
}

Deno.test("pre-pass rejections match the kernel (cfg.c)", async (t) => {
  const cases: [string, Insn[]][] = [
    ["unreachable_tail", prog(mov(0, 0), exit(), mov(0, 1), exit())],
    ["ja_past_end", prog(mov(0, 0), ja(5), exit())],
    ["ja_before_start", prog(mov(0, 0), ja(-5), exit())],
    ["may_goto_past_end", prog(mov(0, 0), mayGoto(10), exit())],
    ["gotol_past_end", prog(mov(0, 0), gotol(100), exit())],
    ["ends_in_mov", prog(mov(0, 0), exit(), mov(0, 1))],
    ["ends_in_cond_jump", prog(mov(0, 0), add(0, 1), jlt(0, 10, -2))],
    ["ends_in_may_goto", prog(mov(0, 0), mayGoto(0))],
    [
      "jump_into_ldimm64",
      prog(mov(0, 0), jeq(0, 0, 1), lddw(1, 0, 0x55667788, 0x11223344), exit()),
    ],
    [
      "ldx_reserved_then_unreachable",
      prog(
        mov(0, 0),
        stx64(10, 0, -8),
        ldx64(0, 10, -8, 1),
        exit(),
        mov(0, 1),
        exit(),
      ),
    ],
    ["ldimm64_bad_src", prog(lddw(0, 7, 0), mov(0, 0), exit())],
    ["ldimm64_map_fd_hi", prog(lddw(1, 1, 0, 1), mov(0, 0), exit())],
  ];
  for (const [name, insns] of cases) {
    await t.step(name, () => {
      rejectsLikeKernel(kernel(CFG, name), insns);
    });
  }
});

Deno.test("kfunc calls: the structural part of add_kfunc_call()", async (t) => {
  await t.step("negative fd_array offset logs two lines", () => {
    const err = rejectsLikeKernel(
      kernel(CFG, "kfunc_negative_off"),
      prog(kfunc(5, -1), mov(0, 0), exit()),
    );
    assert.deepEqual(err.logLines, [
      "negative offset disallowed for kernel module function call",
      "failed to find BTF for kernel function",
    ]);
  });
  await t.step(
    "an id that names no function (BTF lookup supplied by the caller)",
    () => {
      // vmlinux BTF has no type 0xfffffffb; the caller's lookup says so
      const kfuncIsFunction = (id: number) => id < 200_000;
      rejectsLikeKernel(
        kernel(CFG, "kfunc_negative_id"),
        prog(kfunc(-5), mov(0, 0), exit()),
        {
          kfuncIsFunction,
        },
      );
    },
  );
  await t.step("non-GPL program", () => {
    rejectsLikeKernel(
      kernel(NONGPL, "kfunc_from_mit"),
      prog(kfunc(5), mov(0, 0), exit()),
      { gplCompatible: false },
    );
  });
  await t.step("a zero call is left for dead-code elimination", () => {
    const { layout } = runPrePass(prog(kfunc(0), mov(0, 0), exit()));
    assert.equal(layout.kfuncCount, 0);
  });
  await t.step("distinct (id, offset) pairs are counted once", () => {
    const { layout } = runPrePass(
      prog(kfunc(7), kfunc(7), kfunc(7, 1), kfunc(9), mov(0, 0), exit()),
    );
    assert.equal(layout.kfuncCount, 3);
  });
  await t.step("at most 256 distinct kfuncs", () => {
    const calls = Array.from({ length: 257 }, (_, i) => kfunc(i + 1));
    const err = prePassError(prog(calls, mov(0, 0), exit()));
    assert.equal(err.message, "too many different kernel function calls");
    assert.equal(err.errno, -7);
    assert.equal(err.insnIndex, 256);
  });
});

Deno.test("bounded loops pass check_cfg for root, as in the kernel", () => {
  const loop = prog(mov(0, 0), add(0, 1), jlt(0, 10, -2), exit());
  const { aux } = passesLikeKernel(kernel(CFG, "bounded_loop"), loop);
  // jlt at 2: prune point; its target 1: prune + jump point (push_insn BRANCH)
  assert.deepEqual(InsnAux.indicesOf(aux.prunePoint), [1, 2]);
  assert.deepEqual(InsnAux.indicesOf(aux.jmpPoint), [1]);
  assert.deepEqual(InsnAux.indicesOf(aux.forceCheckpoint), []);
  // the kernel refuses `goto -1` only in do_check (infinite loop detected)
  passesLikeKernel(
    kernel(CFG, "self_loop"),
    prog(mov(0, 0), jeq(0, 0, 1), exit(), ja(-1)),
  );
});

Deno.test("unprivileged loaders: back-edges and calls are refused", async (t) => {
  // messages from push_insn() / add_subprog_and_kfunc(); the oracle runs as
  // root, so these two cannot be recorded from the kernel here
  await t.step("back-edge", () => {
    const err = prePassError(
      prog(mov(0, 0), add(0, 1), jlt(0, 10, -2), exit()),
      {
        bpfCapable: false,
      },
    );
    assert.equal(err.message, "back-edge from insn 2 to 1");
    assert.equal(err.errno, -22);
    assert.equal(err.insnIndex, 2);
  });
  await t.step("bpf-to-bpf call", () => {
    const err = prePassError(prog(callLocal(1), exit(), mov(0, 0), exit()), {
      bpfCapable: false,
    });
    assert.equal(
      err.message,
      "loading/calling other bpf or kernel functions are allowed for CAP_BPF and CAP_SYS_ADMIN",
    );
    assert.equal(err.errno, -1);
  });
});

Deno.test("check_cfg flags for the main pass", async (t) => {
  await t.step("may_goto loop: forced checkpoint at the may_goto", () => {
    // 0: r0 = 0; 1: may_goto +2 (-> 4); 2: r0 += 1; 3: goto -3 (-> 1); 4: exit
    const { aux } = runPrePass(
      prog(mov(0, 0), mayGoto(2), add(0, 1), ja(-3), exit()),
    );
    assert.deepEqual(InsnAux.indicesOf(aux.prunePoint), [1, 4]);
    assert.deepEqual(InsnAux.indicesOf(aux.jmpPoint), [1, 4]);
    assert.deepEqual(InsnAux.indicesOf(aux.forceCheckpoint), [1]);
  });
  await t.step("local call: call site, return site and callee entry", () => {
    const { aux, layout } = runPrePass(
      prog(callLocal(1), exit(), mov(0, 0), exit()),
    );
    assert.deepEqual(layout.subprogs.map((s) => [s.start, s.end]), [[0, 2], [
      2,
      4,
    ]]);
    assert.deepEqual(InsnAux.indicesOf(aux.prunePoint), [0, 1, 2]);
    assert.deepEqual(InsnAux.indicesOf(aux.jmpPoint), [1, 2]);
  });
  await t.step("bpf_loop callback through an ld_imm64 BPF_PSEUDO_FUNC", () => {
    // the slots libbpf submitted for loop_callback (subprogs.c); accepted
    const insns = prog(
      mov(1, 4),
      lddw(2, 4, 6), // 1-2: r2 = loop_cb (slot 8)
      mov(3, 0),
      mov(4, 0),
      helper(181), // 5: bpf_loop
      mov(0, 0),
      exit(),
      mov(0, 0), // 8: loop_cb
      exit(),
    );
    const { aux, layout } = runPrePass(insns);
    assert.deepEqual(layout.subprogs.map((s) => s.start), [0, 8]);
    assert.deepEqual(InsnAux.indicesOf(aux.prunePoint), [1, 3, 5, 6, 8]);
    assert.deepEqual(InsnAux.indicesOf(aux.jmpPoint), [3, 5, 6, 8]);
    assert.deepEqual(InsnAux.indicesOf(aux.forceCheckpoint), [5]);
    assert.deepEqual(InsnAux.indicesOf(aux.callsCallback), [5]);
  });
  await t.step(
    "async callback registration: prune point at the call only",
    () => {
      const { aux } = runPrePass(prog(helper(170), exit()));
      assert.deepEqual(InsnAux.indicesOf(aux.prunePoint), [0, 1]);
      assert.deepEqual(InsnAux.indicesOf(aux.forceCheckpoint), []);
      assert.deepEqual(InsnAux.indicesOf(aux.callsCallback), []);
    },
  );
  await t.step("iterator next kfunc: forced checkpoint", () => {
    // the kfunc table would say which BTF id is an iterator's next
    const callTraits = (insn: CallInsn): CallTraits => ({
      ...helperIdCallTraits(insn),
      iterNext: insn.callee === "kfunc" && insn.imm === 1234,
    });
    const { aux } = runPrePass(prog(kfunc(1234), exit()), { callTraits });
    assert.deepEqual(InsnAux.indicesOf(aux.forceCheckpoint), [0]);
    assert.deepEqual(InsnAux.indicesOf(aux.prunePoint), [0, 1]);
  });
});

Deno.test("callee effects reach the caller (merge_callee_effects)", () => {
  // 0: call +2 (-> 3); 1: r0 = 0; 2: exit; 3: call helper 99; 4: exit
  const insns = prog(callLocal(2), mov(0, 0), exit(), helper(99), exit());
  const callTraits = (insn: CallInsn): CallTraits => ({
    ...helperIdCallTraits(insn),
    changesPktData: insn.callee === "helper" && insn.imm === 99,
  });
  const { layout, cfg } = runPrePass(insns, { callTraits });
  assert.deepEqual(layout.subprogs.map((s) => s.changesPktData), [true, true]);
  assert.equal(cfg.changesPktData, true);
  assert.equal(cfg.mightSleep, false);
  const plain = runPrePass(insns);
  assert.equal(plain.cfg.changesPktData, false);
});

Deno.test("the exception callback is walked although nothing calls it", () => {
  const insns = prog(mov(0, 0), exit(), mov(0, 0), exit());
  assert.equal(prePassError(insns).message, "unreachable insn 2");
  const { layout } = runPrePass(insns, { exceptionCallbackInsn: 2 });
  assert.equal(layout.exceptionCallbackSubprog, 1);
  const cb = layout.subprogs[1];
  assert.deepEqual([cb.isCb, cb.isAsyncCb, cb.isExceptionCb], [
    true,
    true,
    true,
  ]);
});

Deno.test("program length limits of bpf_prog_load()", () => {
  const e2big = (n: number, capable: boolean) => {
    try {
      checkProgLen(n, capable);
    } catch (e) {
      assert.ok(e instanceof CfgError);
      assert.equal(e.errno, -7);
      assert.deepEqual(e.logLines, [], "the kernel logs nothing");
      return true;
    }
    return false;
  };
  assert.equal(e2big(0, true), true);
  assert.equal(e2big(BPF_MAXINSNS, false), false);
  assert.equal(e2big(BPF_MAXINSNS + 1, false), true);
  assert.equal(e2big(BPF_MAXINSNS + 1, true), false);
  assert.equal(e2big(BPF_COMPLEXITY_LIMIT_INSNS, true), false);
  assert.equal(e2big(BPF_COMPLEXITY_LIMIT_INSNS + 1, true), true);
});

Deno.test("check_cfg on its own leaves the ld_imm64 second half unvisited", () => {
  // 0-1: r1 = imm64; 2: r0 = 0; 3: exit
  const insns = prog(lddw(1, 0, 1), mov(0, 0), exit());
  const layout = addSubprogs(insns);
  checkSubprogs(insns, layout);
  const aux = new InsnAux(insns.length);
  const res = checkCfg(insns, layout, aux);
  assert.deepEqual(res, { changesPktData: false, mightSleep: false });
  assert.deepEqual(InsnAux.indicesOf(aux.prunePoint), []);
});
