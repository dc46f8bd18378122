/**
 * The lirc_mode2 hook (drivers/media/rc/bpf-lirc.c), which the kernel
 * cannot test-run: `lirc_bpf_run()` stores each raw IR sample in
 * `ir_raw_event_ctrl.bpf_sample` and runs the device's programs with a
 * pointer to it; the program decodes and reports to the rc device.
 * {@link runLircProgram} plays one sample through one program with a
 * simulated {@link RcDevice} that records what was reported: `rc_keydown()`
 * (protocol, scancode, toggle), `rc_repeat()`, and the relative pointer
 * motion `bpf_rc_pointer_rel()` reports (`input_report_rel()` of REL_X and
 * REL_Y, then `input_sync()`). The rc core's own work after that — keymap
 * lookup, key-up timers, the input layer dropping zero motions — is not
 * simulated: the events are the program's reports as the device got them.
 * @module
 */
import type { HelperFn } from "../../exec/state.ts";
import type { AddressSpace } from "../../exec/memory.ts";
import { EINVAL } from "../../uapi/errno.ts";
import { findProgram, type LoadedObject } from "../object_loader.ts";
import {
  runInContext,
  TestRunError,
  type TestRunOptions,
} from "../test_run.ts";

/** Helper ids (include/uapi/linux/bpf.h). */
export const LIRC_HELPER = {
  rc_repeat: 77,
  rc_keydown: 78,
  rc_pointer_rel: 92,
} as const;

/** LIRC_MODE2 sample types (include/uapi/linux/lirc.h): the top byte. */
export const LIRC_MODE2 = {
  SPACE: 0x00000000,
  PULSE: 0x01000000,
  FREQUENCY: 0x02000000,
  TIMEOUT: 0x03000000,
  OVERFLOW: 0x04000000,
} as const;
/** `LIRC_VALUE_MASK`: the sample's value (µs, or Hz for FREQUENCY). */
export const LIRC_VALUE_MASK = 0x00ffffff;

/** One report a program made to the rc device. */
export type RcEvent =
  | {
    /** `rc_keydown(dev, protocol, scancode, toggle)`. */
    readonly kind: "keydown";
    /** `enum rc_proto`, as the program passed it (u32). */
    readonly protocol: number;
    /** The u64 scancode. */
    readonly scancode: bigint;
    /** `toggle != 0`. */
    readonly toggle: 0 | 1;
  }
  | {
    /** `rc_repeat(dev)`: the last key repeats. */
    readonly kind: "repeat";
  }
  | {
    /** `input_report_rel()` of REL_X and REL_Y, then `input_sync()`. */
    readonly kind: "pointer_rel";
    /** REL_X motion (s32). */
    readonly x: number;
    /** REL_Y motion (s32). */
    readonly y: number;
  };

/** A simulated rc device (`struct rc_dev`): what its programs reported, in order. */
export class RcDevice {
  /** Every report, oldest first. */
  readonly events: RcEvent[] = [];
}

/**
 * The lirc helpers, reporting to `dev`; each returns 0 (the kernel's
 * helpers cannot fail once the verifier let the call through).
 */
export function lircHelpers(dev: RcDevice): Map<number, HelperFn> {
  return new Map<number, HelperFn>([
    [LIRC_HELPER.rc_repeat, () => {
      dev.events.push({ kind: "repeat" });
      return 0;
    }],
    [LIRC_HELPER.rc_keydown, (vm) => {
      dev.events.push({
        kind: "keydown",
        protocol: vm.argLo(2) >>> 0,
        scancode: vm.arg(3),
        toggle: vm.argLo(4) !== 0 ? 1 : 0,
      });
      return 0;
    }],
    [LIRC_HELPER.rc_pointer_rel, (vm) => {
      dev.events.push({
        kind: "pointer_rel",
        x: vm.argLo(2) | 0,
        y: vm.argLo(3) | 0,
      });
      return 0;
    }],
  ]);
}

/** What {@link runLircProgram} reports. */
export interface LircRunResult {
  /** r0 as the kernel's `BPF_PROG_RUN_ARRAY` sees it (u32; ignored by the rc core). */
  readonly retval: number;
  /** The full 64-bit r0. */
  readonly r0: bigint;
  /** The events this run reported (also appended to the device's). */
  readonly events: readonly RcEvent[];
  /** Lines `bpf_trace_printk` printed. */
  readonly printk: readonly string[];
  /** Instructions retired. */
  readonly steps: number;
}

/**
 * Maps `raw->bpf_sample` holding `sample` (u32) as a read-only ctx region:
 * the one field `lirc_mode2_is_valid_access()` lets a program read.
 */
export function mapLircSample(space: AddressSpace, sample: number): bigint {
  const bytes = new Uint8Array(4);
  new DataView(bytes.buffer).setUint32(0, sample >>> 0, true);
  return space.mapRegion("ctx", bytes, { name: "lirc sample", write: false });
}

/**
 * Runs `lirc_mode2` program `name` on one raw IR `sample` (a LIRC_MODE2
 * value: {@link LIRC_MODE2} type | duration), as `lirc_bpf_run()` does,
 * reporting to `dev` (a new device when omitted). Throws TestRunError
 * (EINVAL) for a program of another type, and what stops the program.
 *
 * @example
 * ```ts
 * const dev = new RcDevice();
 * runLircProgram(loaded, "decode", LIRC_MODE2.PULSE | 560, { dev });
 * dev.events; // [{ kind: "keydown", protocol: 9, scancode: 560n, toggle: 1 }]
 * ```
 */
export function runLircProgram(
  loaded: LoadedObject,
  name: string,
  sample: number,
  opts: Pick<TestRunOptions, "cpu" | "maxSteps" | "engine" | "kfuncs"> & {
    readonly dev?: RcDevice;
  } = {},
): LircRunResult {
  const type = findProgram(loaded, name).type;
  if (type !== "lirc_mode2") {
    throw new TestRunError(
      `program '${name}' of type ${type} cannot attach to a lirc device`,
      EINVAL,
    );
  }
  const dev = opts.dev ?? new RcDevice();
  const before = dev.events.length;
  const space = loaded.kernel.space;
  const address = mapLircSample(space, sample);
  const run = runInContext(loaded, name, {
    r1: address,
    helpers: lircHelpers(dev),
    release: () => space.unmapRegion(address),
  }, { ...opts, repeat: 1 });
  return {
    retval: run.retval,
    r0: run.r0,
    events: dev.events.slice(before),
    printk: run.printk,
    steps: run.steps,
  };
}
