/**
 * A simulated raw tracepoint hit (kernel/trace/bpf_trace.c
 * `bpf_trace_run1()` … `bpf_trace_run12()` → `__bpf_trace_run()`): how
 * `raw_tp`, `raw_tp.w` and BTF-typed `tp_btf` programs run. The
 * tracepoint's arguments are stored as an array of u64 on the caller's
 * stack and the program gets a pointer to it (r1) — no `nr_args` below it
 * and no return slot, unlike a trampoline's frame (trampoline.ts): the
 * trampoline helpers `bpf_get_func_arg` & co. are not offered to tp_btf
 * programs (tracing_prog_func_proto() gates them on
 * `bpf_prog_has_trampoline()`).
 *
 * For a `tp_btf` program whose tracepoint prototype is known
 * (lib/verifier/ctx_access/btf_targets.ts: TP_PROTO() without the hidden
 * `__data`), the arguments must match it in number; a `struct sk_buff *`
 * or `struct xdp_buff *` among them is the address of a simulated kernel
 * object (sim_skb.ts). A raw_tp program (no BTF) takes any number up to
 * {@link MAX_RAW_TP_ARGS}; for `raw_tp.w` arg 0 is the writable buffer's
 * address, which the caller maps.
 *
 * ## Perf readers
 * A run's print log has no `perfOutput` (test_run.ts), so perf output
 * finds every slot empty (-ENOENT), as generic_helpers_perf.ts models.
 * With {@link RawTpRunOptions.perfOutput} the run binds
 * `bpf_perf_event_output`, `bpf_skb_output` and `bpf_xdp_output` over a
 * log holding it: slot `i` is then CPU `i`'s reader and records are
 * appended there.
 * @module
 */
import type { HelperFn } from "../../../exec/state.ts";
import { regionAddress } from "../../../exec/memory.ts";
import { knownBtfTarget } from "../../../verifier/ctx_access/btf_targets.ts";
import { EINVAL, ENOTSUPP } from "../../../uapi/errno.ts";
import {
  PERF_HELPER,
  perfHelpers,
  type PerfSample,
} from "../../generic_helpers_perf.ts";
import type { MapHelperLog } from "../../map_helpers.ts";
import { findProgram, type LoadedObject } from "../../object_loader.ts";
import { skbOutputHelpers } from "./tracing_skb_output.ts";
import {
  type RunContext,
  runInContext,
  TestRunError,
  type TestRunOptions,
  type TestRunResult,
} from "../../test_run.ts";

/** `bpf_trace_run12()`: the most arguments a tracepoint passes. */
export const MAX_RAW_TP_ARGS = 12;

/** Options of {@link runRawTracepointProgram}. */
export interface RawTpRunOptions extends Omit<TestRunOptions, "data"> {
  /** The tracepoint's arguments (TP_ARGS()), one u64 each. */
  readonly args: readonly bigint[];
  /**
   * Perf readers: when given, every slot `i` of a perf event array is CPU
   * `i`'s reader and the run's outputs are appended here (see the module
   * comment).
   */
  readonly perfOutput?: PerfSample[];
}

/** How many arguments tp_btf target `target` takes, when its prototype is known. */
function knownArgCount(
  attachType: string | null,
  target: string | null,
): number | undefined {
  return knownBtfTarget(attachType ?? undefined, target ?? undefined)?.args
    .length;
}

/**
 * Runs raw_tp, raw_tp.w or tp_btf program `name` of `loaded` as a hit of
 * its tracepoint with `opts.args` would: r1 points at the u64 array (a
 * read-only `ctx` region), on one CPU as `runInContext` runs. Throws
 * {@link TestRunError} for another program type (-ENOTSUPP) or arguments
 * the tracepoint does not take (-EINVAL).
 */
export function runRawTracepointProgram(
  loaded: LoadedObject,
  name: string,
  opts: RawTpRunOptions,
): TestRunResult {
  const prog = findProgram(loaded, name);
  const btf = prog.type === "tracing" &&
    prog.expectedAttachType === "trace_raw_tp";
  if (!btf && !prog.type.startsWith("raw_tracepoint")) {
    throw new TestRunError(
      `program '${name}' (${prog.type}) is not a raw tracepoint program ` +
        "(raw_tp, raw_tp.w, tp_btf only)",
      ENOTSUPP,
    );
  }
  const expected = btf
    ? knownArgCount(prog.expectedAttachType, prog.attachTarget)
    : undefined;
  if (expected !== undefined && opts.args.length !== expected) {
    throw new TestRunError(
      `tracepoint '${prog.attachTarget}' takes ${expected} arguments, ` +
        `${opts.args.length} given`,
      EINVAL,
    );
  }
  if (opts.args.length > MAX_RAW_TP_ARGS) {
    throw new TestRunError(
      `a tracepoint passes at most ${MAX_RAW_TP_ARGS} arguments, not ${opts.args.length}`,
      EINVAL,
    );
  }
  const ctx = argsFrame(loaded, prog.section, opts.args, opts.perfOutput);
  return runInContext(loaded, name, ctx, opts);
}

/**
 * The perf-output helpers over readers `perfOutput`: `bpf_perf_event_output`
 * (generic_helpers_perf.ts), `bpf_skb_output` and `bpf_xdp_output`.
 */
export function perfReaderHelpers(
  loaded: LoadedObject,
  perfOutput: PerfSample[],
): Map<number, HelperFn> {
  const log: MapHelperLog = { printk: [], perfOutput };
  const helpers = skbOutputHelpers({ loaded, log });
  const output = perfHelpers(loaded, log).get(PERF_HELPER.perf_event_output);
  if (output) helpers.set(PERF_HELPER.perf_event_output, output);
  return helpers;
}

/** Maps the argument array as a read-only `ctx` region; r1 points at it. */
function argsFrame(
  loaded: LoadedObject,
  section: string,
  args: readonly bigint[],
  perfOutput: PerfSample[] | undefined,
): RunContext {
  const space = loaded.kernel.space;
  const bytes = new Uint8Array(8 * args.length);
  const view = new DataView(bytes.buffer);
  args.forEach((a, i) => view.setBigUint64(8 * i, BigInt.asUintN(64, a), true));
  const id = space.mapRegionId("ctx", bytes, {
    name: `raw_tp args[${section}]`,
    write: false,
  });
  const base = regionAddress(id);
  return {
    r1: base,
    helpers: perfOutput ? perfReaderHelpers(loaded, perfOutput) : new Map(),
    release: () => space.unmapRegion(base),
  };
}
