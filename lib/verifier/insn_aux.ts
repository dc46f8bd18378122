/**
 * Per-instruction facts the verifier keeps beside the program, after the
 * kernel's `struct bpf_insn_aux_data`: the flags `check_cfg()` sets before the
 * main pass (prune points, jump points, forced checkpoints, callback-calling
 * calls) and the `seen` mark the main pass sets.
 *
 * One typed array per flag, indexed by slot, so the main pass reads them in
 * its hot loop without allocating. Also here: what a call instruction's
 * callee is known to do ({@link CallTraits}), and which slot a local call or
 * function address points at.
 * @module
 */
import type { CallInsn, Insn } from "../isa/insn.ts";
import { BPF_PSEUDO_FUNC } from "../isa/opcodes.ts";

/** Per-slot auxiliary data; every flag starts clear. */
export class InsnAux {
  /** Number of slots covered. */
  readonly length: number;
  /** 1 where `is_state_visited()` may look for an equivalent state. */
  readonly prunePoint: Uint8Array;
  /** 1 where a non-linear entry must be recorded in the jump history. */
  readonly jmpPoint: Uint8Array;
  /** 1 where a checkpoint is always saved (may_goto, iterator `next`, callbacks). */
  readonly forceCheckpoint: Uint8Array;
  /** 1 on calls of helpers/kfuncs that call a callback synchronously (bpf_loop …). */
  readonly callsCallback: Uint8Array;
  /** 1 on calls of an open-coded iterator's `next` kfunc. */
  readonly iterNextInsn: Uint8Array;
  /** The main pass's visit mark (0 = never visited); the pre-pass leaves it 0. */
  readonly seen: Uint32Array;

  /** Allocates clear flags for `length` slots. */
  constructor(length: number) {
    this.length = length;
    this.prunePoint = new Uint8Array(length);
    this.jmpPoint = new Uint8Array(length);
    this.forceCheckpoint = new Uint8Array(length);
    this.callsCallback = new Uint8Array(length);
    this.iterNextInsn = new Uint8Array(length);
    this.seen = new Uint32Array(length);
  }

  /** mirrors mark_prune_point() */
  markPrunePoint(index: number): void {
    this.prunePoint[index] = 1;
  }

  /** mirrors mark_jmp_point() */
  markJmpPoint(index: number): void {
    this.jmpPoint[index] = 1;
  }

  /** mirrors mark_force_checkpoint() */
  markForceCheckpoint(index: number): void {
    this.forceCheckpoint[index] = 1;
  }

  /** mirrors mark_calls_callback() */
  markCallsCallback(index: number): void {
    this.callsCallback[index] = 1;
  }

  /** mirrors is_prune_point() */
  isPrunePoint(index: number): boolean {
    return this.prunePoint[index] === 1;
  }

  /** mirrors is_jmp_point() */
  isJmpPoint(index: number): boolean {
    return this.jmpPoint[index] === 1;
  }

  /** mirrors is_force_checkpoint() */
  isForceCheckpoint(index: number): boolean {
    return this.forceCheckpoint[index] === 1;
  }

  /** mirrors is_iter_next_insn() */
  isIterNextInsn(index: number): boolean {
    return this.iterNextInsn[index] === 1;
  }

  /** mirrors bpf_calls_callback() */
  callsCallbackAt(index: number): boolean {
    return this.callsCallback[index] === 1;
  }

  /** Slot indices whose flag is set in `flags` (for tests and dumps). */
  static indicesOf(flags: Uint8Array): number[] {
    const out: number[] = [];
    flags.forEach((set, i) => {
      if (set) out.push(i);
    });
    return out;
  }
}

/** What the pre-pass must know about the function a call instruction calls. */
export interface CallTraits {
  /** Calls a callback before returning (`is_sync_callback_calling_insn`). */
  readonly syncCallback: boolean;
  /** Registers a callback run later (`is_async_callback_calling_insn`). */
  readonly asyncCallback: boolean;
  /** An open-coded iterator's `next` kfunc (`is_iter_next_kfunc`). */
  readonly iterNext: boolean;
  /** The helper's `might_sleep` / the kfunc's `KF_SLEEPABLE`. */
  readonly mightSleep: boolean;
  /** The helper or kfunc may move packet data (`bpf_helper_changes_pkt_data`). */
  readonly changesPktData: boolean;
  /** The `bpf_throw` kfunc. */
  readonly bpfThrow: boolean;
}

/** Classifies a helper or kfunc call; the helper and kfunc tables supply a better one. */
export type CallTraitsOf = (insn: CallInsn, index: number) => CallTraits;

const NO_TRAITS: CallTraits = {
  syncCallback: false,
  asyncCallback: false,
  iterNext: false,
  mightSleep: false,
  changesPktData: false,
  bpfThrow: false,
};

// mirrors is_sync_callback_calling_function(): for_each_map_elem, find_vma,
// loop, user_ringbuf_drain
const SYNC_CALLBACK_HELPERS: ReadonlySet<number> = new Set([
  164,
  180,
  181,
  209,
]);
// mirrors is_async_callback_calling_function(): timer_set_callback
const ASYNC_CALLBACK_HELPERS: ReadonlySet<number> = new Set([170]);

/**
 * Traits known from the helper id alone: which helpers call callbacks. Kfuncs
 * (known by BTF id only) and sleep / packet-data effects need the helper and
 * kfunc tables, so they are reported as absent here.
 */
export function helperIdCallTraits(insn: CallInsn): CallTraits {
  if (insn.callee !== "helper") return NO_TRAITS;
  return {
    ...NO_TRAITS,
    syncCallback: SYNC_CALLBACK_HELPERS.has(insn.imm),
    asyncCallback: ASYNC_CALLBACK_HELPERS.has(insn.imm),
  };
}

/** True for an `ld_imm64` of a function address (`BPF_PSEUDO_FUNC`); mirrors bpf_pseudo_func(). */
export function isPseudoFunc(insn: Insn): boolean {
  return insn.kind === "ld_imm64" && insn.src === BPF_PSEUDO_FUNC;
}

/**
 * The callee slot of a local call or of a function address loaded at `index`
 * (`index + imm + 1`), or -1 for anything else.
 */
export function calleeOf(insn: Insn, index: number): number {
  if (insn.kind === "call" && insn.callee === "local") return insn.target;
  if (isPseudoFunc(insn)) return index + insn.imm + 1;
  return -1;
}
