/**
 * A simulated BPF trampoline (arch/x86/net/bpf_jit_comp.c,
 * `__arch_prepare_bpf_trampoline()`): how fentry, fexit, fmod_ret and LSM
 * (`lsm/`) programs are run, and the helpers that read the frame it builds —
 * `bpf_get_func_arg`, `bpf_get_func_ret`, `bpf_get_func_arg_cnt` and the
 * tracing `bpf_get_func_ip` (kernel/trace/bpf_trace.c).
 *
 * ## The frame
 * The trampoline saves the traced function's argument registers on its
 * stack as an array of u64 and passes the program a pointer to it (r1).
 * Below the array it stores the number of argument *registers* (`nr_regs`:
 * an argument passed by value as a struct takes `ceil(size / 8)` of them),
 * and below that, when a program on the trampoline calls
 * `bpf_get_func_ip` (`BPF_TRAMP_F_IP_ARG`), the traced function's address.
 * Above the array sits the return slot. fexit programs read the function's
 * return value there (or the non-zero return of an fmod_ret program that
 * replaced it). fmod_ret programs always read 0: `invoke_bpf_mod_ret()`
 * zeroes the slot, stores each program's r0 there and skips the rest (and
 * the function) at the first that is not 0. An LSM hook returning a value
 * gets an fmod_ret trampoline, a void one an fexit trampoline
 * (`bpf_attach_type_to_tramp()`):
 *
 * ```
 * ctx - 16   func ip     (only for a program calling bpf_get_func_ip)
 * ctx - 8    nr_args
 * ctx + 0    arg 0 … arg nr_args-1
 * ctx + 8n   return value (fexit, fmod_ret, lsm)
 * ```
 *
 * The values are what the caller gives, as the registers held them: the
 * kernel saves an `int` with a 32-bit move, so the upper half of its slot
 * is whatever the register held (the selftests cast for that reason).
 *
 * ## The helpers
 * They read the frame through the ctx pointer, as the kernel's helpers do
 * (`((u64 *)ctx)[-1]` …). LSM programs call those helpers; the kernel
 * never calls them for a tracing program: do_misc_fixups() inlines them
 * with the same loads, and inlines `bpf_get_func_ret` of an fentry program
 * (no return slot) as `r0 = -EOPNOTSUPP`. bpfsim's fixup
 * (lib/verifier/fixup.ts) does not inline helpers, so the program as
 * loaded and as rewritten both call the helpers here, which give what the
 * inlined code gives.
 * @module
 */
import type { Insn } from "../../../isa/insn.ts";
import type { CallContext, HelperFn } from "../../../exec/state.ts";
import { regionAddress } from "../../../exec/memory.ts";
import type { BpfProgram } from "../../../elf/types.ts";
import { knownBtfTarget } from "../../../verifier/ctx_access/btf_targets.ts";
import type { BtfCtxArg } from "../../../verifier/ctx_access/types.ts";
import { EINVAL, ENOTSUPP, EOPNOTSUPP } from "../../../uapi/errno.ts";
import { findProgram, type LoadedObject } from "../../object_loader.ts";
import {
  type RunContext,
  runInContext,
  TestRunError,
  type TestRunOptions,
  type TestRunResult,
} from "../../test_run.ts";

/** Helper ids (include/uapi/linux/bpf.h). */
export const TRAMPOLINE_HELPER = {
  get_func_ip: 173,
  get_func_arg: 183,
  get_func_ret: 184,
  get_func_arg_cnt: 185,
} as const;

/** `MAX_BPF_FUNC_ARGS`: the most argument registers a trampoline saves. */
export const MAX_TRAMPOLINE_ARGS = 12;

/** The attach types that run through a trampoline here. */
export type TrampolineAttachType =
  | "trace_fentry"
  | "trace_fexit"
  | "modify_return"
  | "lsm_mac";

/** The program type each attach type above belongs to. */
const TRAMPOLINE_TYPES: Readonly<Record<string, string>> = {
  trace_fentry: "tracing",
  trace_fexit: "tracing",
  modify_return: "tracing",
  lsm_mac: "lsm",
};

/** Options of {@link runTracingProgram}. */
export interface TracingRunOptions extends Omit<TestRunOptions, "data"> {
  /** The traced function's argument registers, one u64 per slot. */
  readonly args: readonly bigint[];
  /**
   * The return slot of an fexit program (or a void LSM hook's): the traced
   * function's return value, default 0. Refused for fentry (no return
   * slot) and for fmod_ret and int LSM hooks, whose programs always find
   * 0 there (see the module comment).
   */
  readonly ret?: bigint;
  /** The traced function's address, for a program calling `bpf_get_func_ip`. */
  readonly funcIp?: bigint;
  /**
   * Argument registers of the target (`nr_regs`): needed when its
   * prototype is not known (lib/verifier/ctx_access/btf_targets.ts), else
   * it must agree with the prototype.
   */
  readonly nrArgs?: number;
}

/** What {@link runTracingProgram} reports. */
export interface TracingRunResult extends TestRunResult {
  /** The `nr_args` the trampoline stored. */
  readonly nrArgs: number;
  /**
   * fmod_ret and int LSM hooks: the traced function's return (rax: the
   * program's whole r0) when that r0 is not 0 — the trampoline then skips
   * the function — else null. Always null for fentry and fexit.
   */
  readonly modifiedReturn: bigint | null;
}

/**
 * Argument registers of a target's prototype (`nr_regs` in
 * `__arch_prepare_bpf_trampoline()`): one per argument, `ceil(size / 8)`
 * for a struct passed by value.
 */
export function argRegisters(args: readonly BtfCtxArg[]): number {
  let n = 0;
  for (const a of args) {
    n += a.kind === "struct" ? Math.ceil((a.size ?? 8) / 8) : 1;
  }
  return n;
}

/**
 * The `nr_args` the trampoline of `prog` stores: from its attach target's
 * prototype, else `given`. Throws {@link TestRunError} (-EINVAL) when
 * neither is known or they disagree, and (-ENOTSUPP) past
 * {@link MAX_TRAMPOLINE_ARGS}, as the trampoline builder refuses.
 */
export function trampolineNrArgs(prog: BpfProgram, given?: number): number {
  const proto = knownBtfTarget(
    prog.expectedAttachType ?? undefined,
    prog.attachTarget ?? undefined,
  );
  const target = prog.attachTarget ?? "?";
  const fromProto = proto ? argRegisters(proto.args) : undefined;
  if (fromProto === undefined && given === undefined) {
    throw new TestRunError(
      `attach target '${target}' of '${prog.name}' has no known prototype: ` +
        "give nrArgs (the target's argument registers)",
      EINVAL,
    );
  }
  if (fromProto !== undefined && given !== undefined && given !== fromProto) {
    throw new TestRunError(
      `nrArgs ${given} disagrees with '${target}', which takes ${fromProto} ` +
        "argument registers",
      EINVAL,
    );
  }
  const n = fromProto ?? given ?? 0;
  if (!Number.isInteger(n) || n < 0 || n > MAX_TRAMPOLINE_ARGS) {
    throw new TestRunError(
      `a trampoline saves at most ${MAX_TRAMPOLINE_ARGS} argument registers, not ${n}`,
      ENOTSUPP,
    );
  }
  return n;
}

/** Whether `insns` call `bpf_get_func_ip` (the verifier's `call_get_func_ip`). */
function callsGetFuncIp(insns: readonly Insn[]): boolean {
  return insns.some((i) =>
    i.kind === "call" && i.callee === "helper" &&
    i.imm === TRAMPOLINE_HELPER.get_func_ip
  );
}

/**
 * The trampoline helpers for a program of `attachType`, reading the frame
 * through the ctx pointer they get (see the module comment).
 */
export function trampolineHelpers(
  attachType: TrampolineAttachType,
): Map<number, HelperFn> {
  const H = TRAMPOLINE_HELPER;
  const word = (vm: CallContext, slot: number): bigint =>
    vm.mem.read(vm.arg(1) + BigInt(8 * slot), 8, vm.insnIndex);
  const store = (vm: CallContext, to: bigint, value: bigint): void =>
    vm.mem.write(to, 8, value, vm.insnIndex);
  return new Map<number, HelperFn>([
    // get_func_arg(): n (a u32) at or past nr_args is -EINVAL, value untouched
    [H.get_func_arg, (vm) => {
      const n = vm.argLo(2) >>> 0;
      if (BigInt(n) >= word(vm, -1)) return -EINVAL;
      store(vm, vm.arg(3), word(vm, n));
      return 0;
    }],
    // get_func_ret(): the slot past the arguments; an fentry program has
    // none, and do_misc_fixups() inlines its call as r0 = -EOPNOTSUPP
    [H.get_func_ret, (vm) => {
      if (attachType === "trace_fentry") return -EOPNOTSUPP;
      const nr = word(vm, -1);
      store(vm, vm.arg(2), word(vm, Number(nr)));
      return 0;
    }],
    // get_func_arg_cnt(): ((u64 *)ctx)[-1]
    [H.get_func_arg_cnt, (vm) => word(vm, -1)],
    // bpf_get_func_ip_tracing(): ((u64 *)ctx)[-2]
    [H.get_func_ip, (vm) => word(vm, -2)],
  ]);
}

/**
 * Runs fentry/fexit/fmod_ret/lsm program `name` of `loaded` as its trampoline
 * would on a call of the traced function with `opts.args`: the frame of
 * the module comment, r1 pointing at the arguments, the trampoline
 * helpers bound (over the object's), on one CPU as `runInContext` runs.
 * Throws {@link TestRunError} for another program type, wrong arguments
 * (see {@link trampolineNrArgs}), a return slot given to fentry, or a
 * program calling `bpf_get_func_ip` without `opts.funcIp`.
 */
export function runTracingProgram(
  loaded: LoadedObject,
  name: string,
  opts: TracingRunOptions,
): TracingRunResult {
  const prog = findProgram(loaded, name);
  const attachType = prog.expectedAttachType ?? "";
  if (TRAMPOLINE_TYPES[attachType] !== prog.type) {
    throw new TestRunError(
      `program '${name}' (${prog.type}, ${attachType || "no attach type"}) ` +
        "does not run through a trampoline (fentry, fexit, fmod_ret, lsm only)",
      ENOTSUPP,
    );
  }
  const type = attachType as TrampolineAttachType;
  const nrArgs = trampolineNrArgs(prog, opts.nrArgs);
  if (opts.args.length !== nrArgs) {
    throw new TestRunError(
      `'${prog.attachTarget}' takes ${nrArgs} argument registers, ` +
        `${opts.args.length} given`,
      EINVAL,
    );
  }
  const hasRet = type !== "trace_fentry";
  if (!hasRet && opts.ret !== undefined) {
    throw new TestRunError("an fentry trampoline has no return slot", EINVAL);
  }
  const modRet = modifiesReturn(prog);
  if (modRet && (opts.ret ?? 0n) !== 0n) {
    throw new TestRunError(
      "an fmod_ret program always finds 0 in the return slot",
      EINVAL,
    );
  }
  const hasIp = callsGetFuncIp(opts.rewritten ?? prog.insns);
  if (hasIp && opts.funcIp === undefined) {
    throw new TestRunError(
      `'${name}' calls bpf_get_func_ip: give funcIp (the traced function's address)`,
      EINVAL,
    );
  }
  const ctx = trampolineFrame(loaded, prog, {
    nrArgs,
    args: opts.args,
    ret: hasRet ? opts.ret ?? 0n : undefined,
    funcIp: hasIp ? opts.funcIp : undefined,
    type,
  });
  const result = runInContext(loaded, name, ctx, opts);
  // invoke_bpf_mod_ret(): r0 goes to the return slot whole, and a slot
  // that is not 0 (`cmp QWORD PTR [rbp - 8], 0`) skips the traced function
  const modifiedReturn = modRet && result.r0 !== 0n ? result.r0 : null;
  return { ...result, nrArgs, modifiedReturn };
}

/**
 * Whether the trampoline of `prog` is a `BPF_TRAMP_MODIFY_RETURN` one
 * (`bpf_attach_type_to_tramp()`): fmod_ret, and LSM hooks that return a
 * value (assumed for a hook whose prototype is not known).
 */
function modifiesReturn(prog: BpfProgram): boolean {
  if (prog.expectedAttachType === "modify_return") return true;
  if (prog.expectedAttachType !== "lsm_mac") return false;
  const proto = knownBtfTarget("lsm_mac", prog.attachTarget ?? undefined);
  return proto === undefined || proto.ret.kind !== "void";
}

/** The frame's contents (see {@link trampolineFrame}). */
interface FrameSpec {
  readonly nrArgs: number;
  readonly args: readonly bigint[];
  readonly ret: bigint | undefined;
  readonly funcIp: bigint | undefined;
  readonly type: TrampolineAttachType;
}

/** Maps the trampoline's frame as a `ctx` region; r1 points at arg 0. */
function trampolineFrame(
  loaded: LoadedObject,
  prog: BpfProgram,
  spec: FrameSpec,
): RunContext {
  const space = loaded.kernel.space;
  const words: bigint[] = [];
  if (spec.funcIp !== undefined) words.push(spec.funcIp);
  words.push(BigInt(spec.nrArgs), ...spec.args);
  if (spec.ret !== undefined) words.push(spec.ret);
  const bytes = new Uint8Array(8 * words.length);
  const view = new DataView(bytes.buffer);
  words.forEach((w, i) =>
    view.setBigUint64(8 * i, BigInt.asUintN(64, w), true)
  );
  const id = space.mapRegionId("ctx", bytes, {
    name: `trampoline[${prog.section}]`,
  });
  const base = regionAddress(id);
  const argsOff = 8 * (spec.funcIp !== undefined ? 2 : 1);
  return {
    r1: base + BigInt(argsOff),
    helpers: trampolineHelpers(spec.type),
    release: () => space.unmapRegion(base),
  };
}
