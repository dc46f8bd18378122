/**
 * Running a BPF LSM program as its hook would (`BPF_LSM_MAC`, through the
 * BPF trampoline, `trampoline.ts`): the context is the trampoline's array
 * of u64 hook arguments — a simulated object's address for a pointer
 * argument — with `nr_args` below it (so `bpf_get_func_arg` and kin work)
 * and the return slot after them, 0 (the hook's default, no program before
 * this one). The kernel cannot test-run LSM programs; this is
 * `runTracingProgram()` with the simulated objects' addresses.
 * @module
 */
import { SimBinprm, SimFile, SimInode, type SimLsmObject } from "./lsm_env.ts";
import type { LoadedObject } from "../../object_loader.ts";
import { programOfType, type TestRunOptions } from "../../test_run.ts";
import {
  runTracingProgram,
  type TracingRunResult,
} from "../tracing/trampoline.ts";

/** One hook argument: a simulated object (its address is passed) or a scalar. */
export type LsmArg = SimLsmObject | bigint | number;

/** What one object looks like after the run. */
export interface LsmObjectState {
  /** `file`, `inode`, `binprm` or `scalar`. */
  readonly kind: "file" | "inode" | "binprm" | "scalar";
  /** Inode storage of the object's inode (a file's or binprm's file's): map name → value. */
  readonly storage?: ReadonlyMap<string, Uint8Array>;
  /** `bprm->secureexec` (binprm only). */
  readonly secureexec?: boolean;
}

/** What {@link runLsmProgram} reports. */
export interface LsmRunResult extends TracingRunResult {
  /** The hook's return value: r0 as a signed int (0 allows, -errno denies). */
  readonly ret: number;
  /** The state of each argument after the run, in order. */
  readonly args: readonly LsmObjectState[];
}

/**
 * Runs LSM program `name` of `loaded` with hook arguments `args` (objects
 * of `lsmEnv(loaded.kernel)`, or scalars) on one CPU. The hook's argument
 * count comes from its prototype when bpfsim knows it (`args` must match),
 * else from `args`. Throws `TestRunError` for a program that is not
 * an LSM one or arguments the trampoline refuses, and what stopped the
 * program.
 */
export function runLsmProgram(
  loaded: LoadedObject,
  name: string,
  args: readonly LsmArg[],
  opts: Omit<TestRunOptions, "data"> & { readonly funcIp?: bigint } = {},
): LsmRunResult {
  programOfType(loaded, name, "lsm");
  const result = runTracingProgram(loaded, name, {
    ...opts,
    args: args.map(argValue),
    nrArgs: args.length,
  });
  return {
    ...result,
    ret: Number(BigInt.asIntN(32, result.r0)),
    args: args.map(stateOf),
  };
}

function argValue(a: LsmArg): bigint {
  if (typeof a === "bigint") return BigInt.asUintN(64, a);
  if (typeof a === "number") return BigInt.asUintN(64, BigInt(a));
  return a.address;
}

function stateOf(a: LsmArg): LsmObjectState {
  if (a instanceof SimInode) return { kind: "inode", storage: a.storage() };
  if (a instanceof SimFile) {
    return { kind: "file", storage: a.inode.storage() };
  }
  if (a instanceof SimBinprm) {
    return {
      kind: "binprm",
      storage: a.file.inode.storage(),
      secureexec: a.secureexec,
    };
  }
  return { kind: "scalar" };
}
