/**
 * The helpers and kfuncs fuzzed programs call, chosen to cover every path
 * of a call in both engines: a result as a bigint, as an int32, as a number
 * beyond 32 bits, no result at all (r0 set through the context), a helper
 * that blocks every other call, one that reads memory an argument points
 * to (and faults when it points nowhere), `callx` and a kfunc. They are
 * deterministic and keep their state per {@link fuzzCallTargets} call, so
 * two runs of one program see the same calls.
 * @module
 */
import { rawInsn } from "../../isa/decode.ts";
import type { RawInsn } from "../../isa/insn.ts";
import { BPF_FUNC_ktime_get_ns } from "../run.ts";
import type { HelperFn, KfuncFn } from "../state.ts";

/** Helper ids of the fuzz helpers (beside 5, `bpf_ktime_get_ns`). */
export const FUZZ_HELPER = {
  /** r0 = a mix of r1–r5, as a bigint. */
  mix: 100,
  /** r0 set through `setR0Parts`, the helper returns nothing. */
  setsR0: 101,
  /** r0 = low half of r1 × 65537: a number that may need more than 32 bits. */
  wide: 102,
  /** Blocks on every odd call, then returns r1 + 1. */
  blocks: 103,
  /** r0 = the u64 at r1 (a fault when r1 points at nothing). */
  load: 104,
} as const;

/** BTF id of the fuzz kfunc: r0 = r1 - r2 (64-bit, from the halves). */
export const FUZZ_KFUNC_ID = 77001;

/** Fresh helpers and kfuncs for one fuzzed run. */
export function fuzzCallTargets(): {
  helpers: Map<number, HelperFn>;
  kfuncs: Map<number, KfuncFn>;
} {
  let blockCalls = 0;
  const helpers = new Map<number, HelperFn>([
    [BPF_FUNC_ktime_get_ns, (vm) => vm.nowNs()],
    [
      FUZZ_HELPER.mix,
      (vm) =>
        (vm.arg(1) * 3n + vm.arg(2)) ^ (vm.arg(3) << 7n) ^ vm.arg(4) ^
        (vm.arg(5) >> 3n),
    ],
    [FUZZ_HELPER.setsR0, (vm) => {
      vm.setR0Parts(vm.argLo(2), vm.argHi(1) ^ vm.insnIndex);
    }],
    [FUZZ_HELPER.wide, (vm) => vm.argLo(1) * 65537],
    [FUZZ_HELPER.blocks, (vm) => {
      blockCalls++;
      if (blockCalls % 2 === 1) return vm.block();
      return vm.argLo(1) + 1;
    }],
    [FUZZ_HELPER.load, (vm) => vm.mem.read(vm.arg(1), 8)],
  ]);
  const kfuncs = new Map<number, KfuncFn>([
    [FUZZ_KFUNC_ID, (vm) => vm.arg(1) - vm.arg(2)],
  ]);
  return { helpers, kfuncs };
}

/**
 * The slots of one random call: a helper by id (mostly), `callx` through a
 * register loaded with the id, the kfunc, or a load helper handed a stack
 * address (now and then a wild one). Never touches r9 (the loop counter)
 * or r10.
 */
export function randomCall(rand: (n: number) => number): RawInsn[] {
  const ids = [
    BPF_FUNC_ktime_get_ns,
    FUZZ_HELPER.mix,
    FUZZ_HELPER.setsR0,
    FUZZ_HELPER.wide,
    FUZZ_HELPER.blocks,
  ];
  switch (rand(8)) {
    case 0: { // callx: the id in a register
      const reg = rand(9);
      return [
        rawInsn(0xb7, reg, 0, 0, ids[rand(ids.length)]),
        rawInsn(0x8d, reg, 0, 0, 0),
      ];
    }
    case 1: // the kfunc
      return [rawInsn(0x85, 0, 2, 0, FUZZ_KFUNC_ID)];
    case 2: // r1 = a stack address (rarely left as it was), then load it
      return rand(6) === 0 ? [rawInsn(0x85, 0, 0, 0, FUZZ_HELPER.load)] : [
        rawInsn(0xbf, 1, 10, 0, 0),
        rawInsn(0x07, 1, 0, 0, -8 * (1 + rand(64))),
        rawInsn(0x85, 0, 0, 0, FUZZ_HELPER.load),
      ];
    default:
      return [rawInsn(0x85, 0, 0, 0, ids[rand(ids.length)])];
  }
}
