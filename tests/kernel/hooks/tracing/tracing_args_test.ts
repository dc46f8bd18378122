/**
 * The simulated trampoline (lib/kernel/hooks/tracing/trampoline.ts) and kprobe
 * (lib/kernel/hooks/tracing/kprobe.ts) running tests/fixtures/runtime/tracing/func_args.c.
 * The oracle cannot run these program types (nor load fentry/fexit/fmod_ret
 * at all: no trampolines on its kernel), so every expectation is computed
 * by hand from the kernel source named beside it. Each run is made on both
 * engines, with the program as loaded and, when bpfsim's verifier accepts
 * it, as rewritten (its xlated form).
 */
import assert from "node:assert/strict";
import { loadFixture, readOracle } from "../../../elf/fixtures.ts";
import { decodeRaw } from "../../../../lib/isa/decode.ts";
import type { Insn } from "../../../../lib/isa/insn.ts";
import type { ObjectFile } from "../../../../lib/elf/types.ts";
import type { Engine } from "../../../../lib/exec/jit/step_jit.ts";
import { Kernel } from "../../../../lib/kernel/kernel.ts";
import { loadObjectWithRuntime } from "../../../../lib/kernel/object_runtime.ts";
import type { LoadedObject } from "../../../../lib/kernel/object_loader.ts";
import { u32Key } from "../../../../lib/kernel/maps/map.ts";
import { TestRunError } from "../../../../lib/kernel/test_run.ts";
import {
  runTracingProgram,
  type TracingRunOptions,
  type TracingRunResult,
  trampolineNrArgs,
} from "../../../../lib/kernel/hooks/tracing/trampoline.ts";
import {
  type KprobeRunOptions,
  type KprobeRunResult,
  runKprobeProgram,
  SIM_JUST_RETURN_FUNC,
} from "../../../../lib/kernel/hooks/tracing/kprobe.ts";
import { verifyProgram } from "../../../../lib/verifier/verify.ts";

const FIXTURE = "runtime/tracing/func_args.o";
const ENGINES: readonly Engine[] = ["interp", "jit"];
const EINVAL = -22n, EOPNOTSUPP = -95n, ENOTSUPP = 524;
const u64 = (v: bigint) => BigInt.asUintN(64, v);

/** `struct out` of func_args.c: eleven u64 in order. */
const OUT_FIELDS = [
  "cnt",
  "err0",
  "arg0",
  "err1",
  "arg1",
  "err2",
  "arg2",
  "ret_err",
  "ret",
  "direct",
  "ip",
] as const;
type Out = Record<(typeof OUT_FIELDS)[number], bigint>;

function readOut(loaded: LoadedObject): Out {
  const bss = loaded.maps.find((m) => m.name.endsWith(".bss"))!;
  const addr = bss.map!.lookup(u32Key(0), 0)!;
  const bytes = loaded.kernel.space.readBytes(addr, 8 * OUT_FIELDS.length);
  const view = new DataView(bytes.buffer);
  const out = {} as Out;
  OUT_FIELDS.forEach((f, i) => out[f] = view.getBigUint64(8 * i, true));
  return out;
}

/** The program as rewritten by bpfsim's verifier (which must accept it). */
function xlatedOf(obj: ObjectFile, name: string): readonly Insn[] {
  const prog = obj.programs.find((p) => p.name === name)!;
  const v = verifyProgram(obj, prog, { logLevel: 0 });
  assert.equal(v.verdict, "accept", `${name}: ${v.message}`);
  return decodeRaw(v.xlated!);
}

type Mode = "loaded" | "rewritten";

/** Every engine × mode (modes: "rewritten" only for verified programs). */
function eachRun(
  modes: readonly Mode[],
  body: (label: string, engine: Engine, mode: Mode) => void,
): void {
  for (const engine of ENGINES) {
    for (const mode of modes) body(`${engine}, ${mode}`, engine, mode);
  }
}

function tracing(
  name: string,
  opts: TracingRunOptions,
  engine: Engine,
  mode: Mode,
): { run: TracingRunResult; out: Out } {
  const obj = loadFixture(FIXTURE);
  const loaded = loadObjectWithRuntime(new Kernel({ cpus: 1 }), obj, {
    verify: false,
  });
  const rewritten = mode === "rewritten" ? xlatedOf(obj, name) : undefined;
  const run = runTracingProgram(loaded, name, { ...opts, engine, rewritten });
  return { run, out: readOut(loaded) };
}

function kprobe(
  name: string,
  opts: KprobeRunOptions,
  engine: Engine,
  mode: Mode,
): { run: KprobeRunResult; out: Out } {
  const obj = loadFixture(FIXTURE);
  const loaded = loadObjectWithRuntime(new Kernel({ cpus: 1 }), obj, {
    verify: false,
  });
  const rewritten = mode === "rewritten" ? xlatedOf(obj, name) : undefined;
  const run = runKprobeProgram(loaded, name, { ...opts, engine, rewritten });
  return { run, out: readOut(loaded) };
}

function throwsErrno(fn: () => unknown, errno: number, re: RegExp): void {
  assert.throws(fn, (e: unknown) => {
    assert.ok(e instanceof TestRunError, String(e));
    assert.equal(e.errno, errno);
    assert.match(e.message, re);
    return true;
  });
}

const FUNC_IP = 0xffffffff81234560n;

Deno.test("fentry: nr_args, the args and an out-of-range arg (get_func_arg, get_func_arg_cnt, get_func_ip_tracing)", () => {
  // an int saved by a 32-bit move: the upper half is the register's garbage
  const a = 0xdeadbeef_00000007n;
  eachRun(["loaded", "rewritten"], (label, engine, mode) => {
    const { run, out } = tracing(
      "fentry_args",
      { args: [a], funcIp: FUNC_IP },
      engine,
      mode,
    );
    assert.equal(run.nrArgs, 1, label);
    assert.equal(run.modifiedReturn, null, label);
    // bpf_fentry_test1(int a): nr_regs 1, stored at ctx - 8
    assert.equal(out.cnt, 1n, label);
    // get_func_arg(ctx, 0): the whole slot
    assert.equal(out.err0, 0n, label);
    assert.equal(out.arg0, a, label);
    // get_func_arg(ctx, 1): n >= nr_args is -EINVAL, value untouched
    assert.equal(out.err1, u64(EINVAL), label);
    assert.equal(out.arg1, 0n, label);
    assert.equal(out.direct, a, label);
    // bpf_get_func_ip_tracing(): ctx[-2] (BPF_TRAMP_F_IP_ARG)
    assert.equal(out.ip, FUNC_IP, label);
  });
});

Deno.test("fexit: args, the arg past the last is -EINVAL, get_func_ret and ctx[nr_args] are the return value", () => {
  const b = 0xffff888000001000n; // int *b
  eachRun(["loaded", "rewritten"], (label, engine, mode) => {
    const { run, out } = tracing(
      "fexit_args",
      { args: [3n, b], ret: 5n },
      engine,
      mode,
    );
    assert.equal(run.nrArgs, 2, label);
    assert.equal(run.modifiedReturn, null, "fexit cannot change it");
    assert.equal(out.cnt, 2n, label);
    assert.deepEqual([out.err0, out.arg0], [0n, 3n], label);
    assert.deepEqual([out.err1, out.arg1], [0n, b], label);
    assert.deepEqual([out.err2, out.arg2], [u64(EINVAL), 0n], label);
    // get_func_ret(): ((u64 *)ctx)[nr_args]
    assert.deepEqual([out.ret_err, out.ret], [0n, 5n], label);
    assert.equal(out.direct, 5n, label);
  });
});

Deno.test("fmod_ret: the return slot is 0; a non-zero return replaces the function's, a zero one lets it run", () => {
  eachRun(["loaded", "rewritten"], (label, engine, mode) => {
    // invoke_bpf_mod_ret(): the slot is zeroed and any earlier non-zero
    // return would have skipped this program
    const run = tracing("fmod_ret_prog", { args: [21n, 0n] }, engine, mode);
    assert.equal(run.out.cnt, 2n, label);
    assert.deepEqual([run.out.err0, run.out.arg0], [0n, 21n], label);
    assert.deepEqual([run.out.ret_err, run.out.ret], [0n, 0n], label);
    assert.equal(run.out.direct, 0n, label);
    // w0 = a * 2 + ret: rax, not 0, goes back to the caller
    assert.equal(run.run.retval, 42, label);
    assert.equal(run.run.modifiedReturn, 42n, label);
    const zero = tracing("fmod_ret_prog", { args: [0n, 0n] }, engine, mode);
    assert.equal(zero.run.r0, 0n, label);
    assert.equal(zero.run.modifiedReturn, null, label);
  });
});

Deno.test("lsm (file_open): an fmod_ret trampoline; get_func_arg and get_func_ret run as helpers", () => {
  const file = 0xffff888000002000n;
  eachRun(["loaded", "rewritten"], (label, engine, mode) => {
    const { run, out } = tracing("lsm_args", { args: [file] }, engine, mode);
    assert.equal(out.cnt, 1n, label);
    assert.deepEqual([out.err0, out.arg0], [0n, file], label);
    assert.deepEqual([out.err1, out.arg1], [u64(EINVAL), 0n], label);
    assert.equal(out.direct, 0n, label);
    assert.equal(run.modifiedReturn, null, "0: the hook goes on");
    // w0 = -1 (-EPERM) leaves rax = 0xffffffff: not 0, the hook's return
    const denied = tracing("lsm_args", { args: [0n] }, engine, mode);
    assert.equal(denied.run.modifiedReturn, 0xffffffffn, label);
  });
  // get_func_ret() (not inlined for LSM): ((u64 *)ctx)[nr_args], 0 here
  eachRun(["loaded", "rewritten"], (label, engine, mode) => {
    const { out } = tracing("lsm_ret", { args: [file] }, engine, mode);
    assert.deepEqual([out.ret_err, out.ret], [0n, 0n], label);
  });
});

Deno.test("fentry: get_func_ret is -EOPNOTSUPP, as do_misc_fixups() inlines it (value untouched)", () => {
  // The kernel's verifier accepts this call (tracing_prog_func_proto()
  // gives get_func_ret to every trampoline program; selftests
  // get_func_args_test.c expects -EOPNOTSUPP)
  eachRun(["loaded", "rewritten"], (label, engine, mode) => {
    const { out } = tracing("fentry_ret", { args: [1n] }, engine, mode);
    assert.deepEqual([out.ret_err, out.ret], [u64(EOPNOTSUPP), 0n], label);
  });
});

Deno.test("the trampoline's nr_args is the target's: checked against the prototype, required without one", () => {
  const obj = loadFixture(FIXTURE);
  const loaded = loadObjectWithRuntime(new Kernel({ cpus: 1 }), obj, {
    verify: false,
  });
  const run = (name: string, opts: TracingRunOptions) => () =>
    runTracingProgram(loaded, name, opts);
  throwsErrno(run("fentry_args", { args: [], funcIp: 1n }), 22, /takes 1/);
  throwsErrno(
    run("fentry_args", { args: [1n, 2n], nrArgs: 2, funcIp: 1n }),
    22,
    /disagrees with 'bpf_fentry_test1'/,
  );
  throwsErrno(run("fentry_ret", { args: [1n], ret: 0n }), 22, /no return/);
  throwsErrno(
    run("fmod_ret_prog", { args: [1n, 0n], ret: 4n }),
    22,
    /always finds 0/,
  );
  throwsErrno(run("fentry_args", { args: [1n] }), 22, /give funcIp/);
  throwsErrno(run("kprobe_regs", { args: [] }), ENOTSUPP, /trampoline/);
  // a target btf_targets.ts does not know
  const fentry = obj.programs.find((p) => p.name === "fentry_args")!;
  const unknown = { ...fentry, attachTarget: "bpf_fentry_test9" };
  throwsErrno(() => trampolineNrArgs(unknown), 22, /give nrArgs/);
  assert.equal(trampolineNrArgs(unknown, 3), 3);
  throwsErrno(() => trampolineNrArgs(unknown, 13), ENOTSUPP, /at most 12/);
  const renamed: ObjectFile = {
    ...obj,
    programs: obj.programs.map((p) => p === fentry ? unknown : p),
  };
  for (const engine of ENGINES) {
    const l = loadObjectWithRuntime(new Kernel({ cpus: 1 }), renamed, {
      verify: false,
    });
    const r = runTracingProgram(l, "fentry_args", {
      args: [7n, 8n, 9n],
      nrArgs: 3,
      funcIp: FUNC_IP,
      engine,
    });
    assert.equal(r.nrArgs, 3);
    const out = readOut(l);
    assert.deepEqual([out.cnt, out.arg0, out.arg1], [3n, 7n, 8n], engine);
    assert.equal(out.err1, 0n, "arg 1 of 3 exists");
  }
});

Deno.test("kprobe: pt_regs->di is the first argument; get_func_ip is the entry on a function-entry probe, else 0", () => {
  eachRun(["loaded", "rewritten"], (label, engine, mode) => {
    const regs = { di: 77n, ip: FUNC_IP + 1n };
    const at = kprobe("kprobe_regs", { regs, funcIp: FUNC_IP }, engine, mode);
    assert.equal(at.out.arg0, 77n, label);
    assert.equal(at.out.ip, FUNC_IP, label);
    assert.equal(at.run.retval, 1, label);
    assert.equal(at.run.overriddenReturn, null, label);
    assert.equal(at.run.regs.di, 77n, label);
    // bpf_get_func_ip_kprobe(): no KPROBE_FLAG_ON_FUNC_ENTRY
    const off = kprobe("kprobe_regs", { regs }, engine, mode);
    assert.equal(off.out.ip, 0n, label);
  });
});

Deno.test("kprobe: bpf_override_return sets regs->ax and regs->ip, returns 0; the runner reports the override", () => {
  eachRun(["loaded"], (label, engine, mode) => {
    const regs = { ip: FUNC_IP, ax: 1234n, di: 5n };
    const { run, out } = kprobe("kprobe_override", { regs }, engine, mode);
    assert.equal(out.ret_err, 0n, label);
    // regs_set_return_value(): rc is an unsigned long
    assert.equal(run.regs.ax, u64(-12n), label);
    // override_function_with_return(): ip = just_return_func
    assert.equal(run.regs.ip, SIM_JUST_RETURN_FUNC, label);
    assert.equal(run.regs.di, 5n, "the other registers stay");
    assert.equal(run.overriddenReturn, u64(-12n), label);
  });
});

Deno.test("verdicts: the kprobe programs as the 6.18 kernel judged them; the trampoline programs accepted", () => {
  const obj = loadFixture(FIXTURE);
  const oracle = readOracle(FIXTURE);
  for (const name of ["kprobe_regs", "kprobe_override"]) {
    const prog = obj.programs.find((p) => p.name === name)!;
    const v = verifyProgram(obj, prog, { logLevel: 0 });
    const k = oracle.find((o) => o.program === name)!;
    assert.equal(v.verdict, k.verdict, name);
    assert.equal(v.message, k.message, name);
  }
  // no trampolines on the oracle's machine: EPERM before verification
  for (
    const name of [
      "fentry_args",
      "fexit_args",
      "fmod_ret_prog",
      "lsm_args",
      "fentry_ret",
      "lsm_ret",
    ]
  ) {
    assert.equal(oracle.find((o) => o.program === name)!.errno, -1);
    const prog = obj.programs.find((p) => p.name === name)!;
    assert.equal(verifyProgram(obj, prog).verdict, "accept", name);
  }
});
