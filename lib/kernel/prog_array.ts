/**
 * `BPF_MAP_TYPE_PROG_ARRAY` and `bpf_tail_call()` (kernel/bpf/arraymap.c,
 * the interpreter's `JMP_TAIL_CALL`): slots hold programs of the same
 * object, filled as libbpf fills them from a `.maps` definition's
 * `.values` (`bpf_object__init_prog_arrays()`). A tail call to an empty or
 * out-of-range slot, or past `MAX_TAIL_CALL_CNT`, falls through: the
 * program goes on after the call.
 * @module
 */
import type { CompiledProgram } from "../exec/compile.ts";
import type { HelperFn } from "../exec/state.ts";

/** Helper id of `bpf_tail_call`. */
export const BPF_FUNC_tail_call = 12;

/** A program array: program names by slot, compiled on first use. */
export class ProgArray {
  /** The map's name. */
  readonly name: string;
  /** `max_entries`. */
  readonly maxEntries: number;
  /** Program name per slot, or null. */
  readonly slots: (string | null)[];
  private readonly compiled = new Map<string, CompiledProgram>();

  /** An array of `maxEntries` slots, the first ones set from `initSlots`. */
  constructor(
    name: string,
    maxEntries: number,
    initSlots: readonly (string | null)[] = [],
  ) {
    this.name = name;
    this.maxEntries = maxEntries;
    this.slots = Array.from(
      { length: maxEntries },
      (_, i) => initSlots[i] ?? null,
    );
  }

  /** The program in slot `index`, compiled with `compile`, or undefined when empty. */
  target(
    index: number,
    compile: (name: string) => CompiledProgram,
  ): CompiledProgram | undefined {
    const name = index < this.maxEntries ? this.slots[index] : null;
    if (name === null || name === undefined) return undefined;
    let prog = this.compiled.get(name);
    if (prog === undefined) {
      prog = compile(name);
      this.compiled.set(name, prog);
    }
    return prog;
  }
}

/**
 * `bpf_tail_call(ctx, prog_array, index)`: `lookup` finds the array the
 * second argument points at, `compile` compiles a program of the object.
 */
export function tailCallHelper(
  lookup: (address: bigint) => ProgArray | undefined,
  compile: (name: string) => CompiledProgram,
): HelperFn {
  return (vm) => {
    const array = lookup(vm.arg(2));
    if (array === undefined) return 0; // the verifier guarantees a prog array
    const target = array.target(vm.argLo(3) >>> 0, compile);
    if (target !== undefined) vm.tailCall(target);
    return 0;
  };
}
