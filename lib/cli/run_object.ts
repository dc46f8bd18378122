/**
 * `cli.ts run FILE.o --program NAME`: loads the object into a fresh
 * simulated kernel and runs one program as `BPF_PROG_TEST_RUN` would,
 * printing what `../shared/oracle/oracle run` prints (retval, the packet
 * after, and with `--dump-maps` the array and hash maps).
 * @module
 */
import { ExecError, MemoryFault } from "../exec/fault.ts";
import { Kernel } from "../kernel/kernel.ts";
import { toHex } from "../kernel/maps/map.ts";
import {
  type LoadedObject,
  ProgramLoadError,
} from "../kernel/object_loader.ts";
import { loadObjectWithRuntime } from "../kernel/object_runtime.ts";
import {
  isUnmodelled,
  ProgramRejectedError,
  verifyBeforeRun,
} from "../kernel/load_verify.ts";
import { MapError } from "../kernel/maps/map.ts";
import { testRun, TestRunError } from "../kernel/test_run.ts";
import { decodeRaw } from "../isa/decode.ts";
import type { Insn } from "../isa/insn.ts";
import { MAP_TYPE } from "../uapi/bpf.ts";
import type { Output } from "./command.ts";
import { readObject, selectPrograms } from "./object.ts";
import { hex64, InputError } from "./usage.ts";
import type { Engine } from "../exec/jit/step_jit.ts";

/** What `run` was asked to do with an object. */
export interface ObjectRunRequest {
  /** The object file. */
  readonly file: string;
  /** `--program`. */
  readonly program: string | undefined;
  /** `--data-hex`, parsed. */
  readonly data: Uint8Array | undefined;
  /** `--repeat` (0: not given). */
  readonly repeat: number;
  /** `--dump-maps`. */
  readonly dumpMaps: boolean;
  /** `--json`. */
  readonly json: boolean;
  /** `--engine`. */
  readonly engine: Engine;
  /** Verify the program before running it (default true; `--no-verify`: false). */
  readonly verify?: boolean;
}

/** Bytes of the packet the oracle prints (`data_out_hex`). */
export const DATA_OUT_PRINTED = 256;

/** Map types whose contents `oracle run --dump-maps` prints: plain arrays and hashes. */
const DUMPED_TYPES: readonly number[] = [MAP_TYPE.hash, MAP_TYPE.array];

/**
 * The array and hash maps of a loaded object as `oracle run --dump-maps`
 * prints them: `{name: [[key_hex, value_hex], …]}`, values as
 * `BPF_MAP_LOOKUP_ELEM` copies them (special fields zeroed).
 */
export function dumpMaps(
  loaded: LoadedObject,
): Record<string, [string, string][]> {
  const out: Record<string, [string, string][]> = {};
  for (const { name, map, typeId } of loaded.maps) {
    if (map === null || !DUMPED_TYPES.includes(typeId)) continue;
    out[name] = map.dump().map((e) => [toHex(e.key), toHex(e.value)]);
  }
  return out;
}

/** Runs the request; returns the exit code (1: the run failed, as the oracle). */
export function runObject(req: ObjectRunRequest, io: Output): number {
  if (req.program === undefined) {
    throw new InputError(`${req.file}: running an object needs --program NAME`);
  }
  const obj = readObject(req.file);
  selectPrograms(obj, req.program); // UsageError (exit 2) when absent
  let rewritten: Insn[] | undefined;
  if (req.verify !== false) {
    try {
      const verdict = verifyBeforeRun(obj, req.program);
      // like the kernel, run the program as the verifier rewrote it
      if (verdict.verdict === "accept" && verdict.xlated) {
        rewritten = decodeRaw(verdict.xlated);
      }
      if (isUnmodelled(verdict)) {
        io.err(
          `${req.file}: note: ${verdict.message}: '${req.program}' runs unverified`,
        );
      }
    } catch (e) {
      if (!(e instanceof ProgramRejectedError)) throw e;
      if (req.json) {
        io.out(JSON.stringify({ error: e.message, errno: e.result.errno }));
      }
      io.err(e.message); // names the file already
      return 1;
    }
  }
  const kernel = new Kernel({ cpus: 1 });
  let loaded: LoadedObject;
  try {
    // the program to run was verified above (or --no-verify said not to)
    loaded = loadObjectWithRuntime(kernel, obj, { verify: false });
  } catch (e) {
    if (e instanceof MapError) {
      throw new InputError(`${req.file}: ${e.message}`);
    }
    throw e;
  }
  try {
    const result = testRun(loaded, req.program, {
      data: req.data,
      repeat: Math.max(1, req.repeat),
      engine: req.engine,
      rewritten,
    });
    const report: Record<string, unknown> = {
      retval: hex64(result.r0),
      steps: result.steps,
    };
    if (req.repeat > 0) {
      report.ns_per_run = Math.round(result.elapsedNs / result.runs);
    }
    if (result.dataOut !== undefined && !isSyscall(loaded, req.program)) {
      report.data_out_hex = toHex(result.dataOut.subarray(0, DATA_OUT_PRINTED));
    }
    if (req.dumpMaps) report.maps = dumpMaps(loaded);
    if (req.json) io.out(JSON.stringify(report));
    else {
      io.out(
        `retval = ${result.retval} (r0 = ${report.retval}) after ${result.steps} instructions`,
      );
      for (const line of result.printk) io.out(`printk: ${line}`);
    }
    return 0;
  } catch (e) {
    if (
      e instanceof MemoryFault || e instanceof ExecError ||
      e instanceof TestRunError || e instanceof ProgramLoadError
    ) {
      const errno = e instanceof TestRunError ? e.errno : undefined;
      if (req.json) io.out(JSON.stringify({ error: e.message, errno }));
      io.err(`${req.file}: ${e.message}`);
      return 1;
    }
    throw e;
  }
}

function isSyscall(loaded: LoadedObject, name: string): boolean {
  return loaded.object.programs.find((p) => p.name === name)?.type ===
    "syscall";
}
