/**
 * A simulated kprobe hit (kernel/trace/trace_kprobe.c `kprobe_perf_func()`,
 * kernel/trace/bpf_trace.c `trace_call_bpf()`): a kprobe program gets the
 * probed CPU's `struct pt_regs` (x86_64 layout, {@link PT_REGS_OFFSETS}),
 * and may rewrite it with `bpf_override_return`.
 *
 * ## bpf_override_return
 * Mirrors the helper on x86: `regs_set_return_value()` puts `rc` in
 * `regs->ax`, `override_function_with_return()` points `regs->ip` at
 * `just_return_func` (arch/x86/lib/error-inject.c), and it returns 0.
 * `kprobe_perf_func()` then sees `regs->ip` changed and returns 1: the
 * kprobe resumes at `just_return_func`, so the probed function returns
 * `rc` without running. The runner reports that as
 * {@link KprobeRunResult.overriddenReturn}. The helper exists only in a
 * kernel built with `CONFIG_BPF_KPROBE_OVERRIDE`; the oracle's is not, and
 * neither is the configuration bpfsim's verifier judges by, so a program
 * calling it runs here only unverified (`verify: false`). The attach-time
 * checks (`trace_kprobe_on_func_entry()`, `trace_kprobe_error_injectable()`)
 * are not modelled.
 *
 * ## bpf_get_func_ip
 * Mirrors `bpf_get_func_ip_kprobe()`: the probed function's entry when the
 * kprobe sits on it (`KPROBE_FLAG_ON_FUNC_ENTRY`; give
 * {@link KprobeRunOptions.funcIp}), else 0.
 * @module
 */
import type { HelperFn } from "../../../exec/state.ts";
import { PT_REGS_SIZE } from "../../../verifier/ctx_access/tracing.ts";
import { ENOTSUPP } from "../../../uapi/errno.ts";
import { findProgram, type LoadedObject } from "../../object_loader.ts";
import {
  runInContext,
  TestRunError,
  type TestRunOptions,
  type TestRunResult,
} from "../../test_run.ts";

/** Helper ids (include/uapi/linux/bpf.h). */
export const KPROBE_HELPER = {
  override_return: 58,
  get_func_ip: 173,
} as const;

/** `offsetof(struct pt_regs, …)` on x86_64 (arch/x86/include/asm/ptrace.h). */
export const PT_REGS_OFFSETS: Readonly<Record<PtRegsField, number>> = Object
  .freeze(
    {
      r15: 0,
      r14: 8,
      r13: 16,
      r12: 24,
      bp: 32,
      bx: 40,
      r11: 48,
      r10: 56,
      r9: 64,
      r8: 72,
      ax: 80,
      cx: 88,
      dx: 96,
      si: 104,
      di: 112,
      orig_ax: 120,
      ip: 128,
      cs: 136,
      flags: 144,
      sp: 152,
      ss: 160,
    } as const,
  );

/** A `struct pt_regs` field name. */
export type PtRegsField =
  | "r15"
  | "r14"
  | "r13"
  | "r12"
  | "bp"
  | "bx"
  | "r11"
  | "r10"
  | "r9"
  | "r8"
  | "ax"
  | "cx"
  | "dx"
  | "si"
  | "di"
  | "orig_ax"
  | "ip"
  | "cs"
  | "flags"
  | "sp"
  | "ss";

/** A `struct pt_regs` by field. */
export type PtRegs = Readonly<Record<PtRegsField, bigint>>;

/**
 * Address of `just_return_func` in the simulated kernel's text, where
 * `bpf_override_return` sends the probed function. A value only: nothing
 * in the simulation executes or reads it.
 */
export const SIM_JUST_RETURN_FUNC = 0xffffffff81e00000n;

/** Options of {@link runKprobeProgram}. */
export interface KprobeRunOptions extends Omit<TestRunOptions, "data"> {
  /** Registers at the probe (missing fields are 0). */
  readonly regs?: Partial<PtRegs>;
  /** The probed function's entry, when the kprobe sits on it. */
  readonly funcIp?: bigint;
}

/** What {@link runKprobeProgram} reports. */
export interface KprobeRunResult extends TestRunResult {
  /** The registers after the program. */
  readonly regs: PtRegs;
  /**
   * The probed function's return value when the program overrode it
   * (`regs->ip` moved, as `kprobe_perf_func()` checks): `regs->ax`; else null.
   */
  readonly overriddenReturn: bigint | null;
}

/** `regs` as the bytes of a `struct pt_regs`. */
export function ptRegsBytes(regs: Partial<PtRegs>): Uint8Array {
  const bytes = new Uint8Array(PT_REGS_SIZE);
  const view = new DataView(bytes.buffer);
  for (const [field, off] of Object.entries(PT_REGS_OFFSETS)) {
    const v = regs[field as PtRegsField] ?? 0n;
    view.setBigUint64(off, BigInt.asUintN(64, v), true);
  }
  return bytes;
}

/** The fields of a `struct pt_regs` in `bytes`. */
export function ptRegsOf(bytes: Uint8Array): PtRegs {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out: Partial<Record<PtRegsField, bigint>> = {};
  for (const [field, off] of Object.entries(PT_REGS_OFFSETS)) {
    out[field as PtRegsField] = view.getBigUint64(off, true);
  }
  return out as PtRegs;
}

/** The kprobe helpers (see the module comment); `funcIp` as in {@link KprobeRunOptions}. */
export function kprobeHelpers(funcIp?: bigint): Map<number, HelperFn> {
  const H = KPROBE_HELPER;
  return new Map<number, HelperFn>([
    [H.override_return, (vm) => {
      // bpf_override_return(regs, rc): on the pt_regs the program passed
      const regs = vm.arg(1);
      const at = (f: PtRegsField) => regs + BigInt(PT_REGS_OFFSETS[f]);
      vm.mem.write(at("ax"), 8, vm.arg(2), vm.insnIndex);
      vm.mem.write(at("ip"), 8, SIM_JUST_RETURN_FUNC, vm.insnIndex);
      return 0;
    }],
    [H.get_func_ip, () => funcIp ?? 0n],
  ]);
}

/**
 * Runs kprobe program `name` of `loaded` as a hit of its kprobe with the
 * registers `opts.regs` would run it: r1 points at a `struct pt_regs`
 * (a `ctx` region), the kprobe helpers are bound over the object's, on
 * one CPU as `runInContext` runs. Throws {@link TestRunError} for another
 * program type (kprobe.multi included: its context is not modelled).
 */
export function runKprobeProgram(
  loaded: LoadedObject,
  name: string,
  opts: KprobeRunOptions = {},
): KprobeRunResult {
  const prog = findProgram(loaded, name);
  if (prog.type !== "kprobe" || prog.expectedAttachType !== null) {
    throw new TestRunError(
      `program '${name}' (${prog.type}${
        prog.expectedAttachType ? `, ${prog.expectedAttachType}` : ""
      }) is not a kprobe program`,
      ENOTSUPP,
    );
  }
  const space = loaded.kernel.space;
  const before = ptRegsBytes(opts.regs ?? {});
  const address = space.mapRegion("ctx", before.slice(), {
    name: `pt_regs[${prog.section}]`,
  });
  let after: Uint8Array = before;
  const result = runInContext(loaded, name, {
    r1: address,
    helpers: kprobeHelpers(opts.funcIp),
    dataOut: () => after = space.readBytes(address, PT_REGS_SIZE),
    release: () => space.unmapRegion(address),
  }, opts);
  const regs = ptRegsOf(after);
  const moved = regs.ip !== BigInt.asUintN(64, opts.regs?.ip ?? 0n);
  return {
    ...result,
    dataOut: undefined,
    regs,
    overriddenReturn: moved ? regs.ax : null,
  };
}
