/**
 * `bpf_kptr_xchg()` (helper 194): swaps a referenced kptr in a map value or
 * an allocated object, moving ownership between the field and the program.
 * @module
 */
import type { CallContext } from "../../exec/state.ts";

/** `BPF_FUNC_kptr_xchg`. */
export const BPF_FUNC_kptr_xchg = 194;

/**
 * Mirrors bpf_kptr_xchg(): `xchg(dst, ptr)`; returns the old pointer (the
 * program now owns it), leaving `ptr` in the field (the field owns it).
 */
export function bpfKptrXchg(vm: CallContext): bigint {
  const dst = vm.arg(1);
  const old = vm.mem.read(dst, 8);
  vm.mem.write(dst, 8, vm.arg(2));
  return old;
}
