/**
 * The open-coded numeric iterator kfuncs (kernel/bpf/bpf_iter.c):
 * `bpf_iter_num_new`, `_next`, `_destroy` over a `struct bpf_iter_num`
 * on the program's stack (`struct bpf_iter_num_kern { int cur; int end; }`).
 * Their ids are the simulated vmlinux's (lib/kernel/kfunc_ids.ts).
 * @module
 */
import type { KfuncFn } from "../exec/state.ts";
import { kfuncBtfId } from "./kfunc_ids.ts";
import { E2BIG, EINVAL } from "../uapi/errno.ts";

/** `BPF_MAX_LOOPS`: the longest range `bpf_iter_num_new` accepts. */
export const ITER_NUM_MAX_LOOPS: number = 8 * 1024 * 1024;

function idOf(name: string): number {
  const id = kfuncBtfId(name);
  if (id === undefined) throw new Error(`kfunc_ids.ts lacks ${name}`);
  return id;
}

/** The iterator kfuncs by id. */
export function iterKfuncs(): Map<number, KfuncFn> {
  const put = (vm: Parameters<KfuncFn>[0], cur: number, end: number) => {
    const it = vm.arg(1);
    vm.mem.write(it, 4, BigInt(cur >>> 0));
    vm.mem.write(it + 4n, 4, BigInt(end >>> 0));
  };
  return new Map<number, KfuncFn>([
    [idOf("bpf_iter_num_new"), (vm) => { // bpf_iter_num_new(it, start, end)
      const start = vm.argLo(2), end = vm.argLo(3);
      put(vm, 0, 0);
      if (start > end) return -EINVAL;
      if (end - start > ITER_NUM_MAX_LOOPS) return -E2BIG;
      put(vm, start - 1, end);
      return 0;
    }],
    [idOf("bpf_iter_num_next"), (vm) => { // bpf_iter_num_next(it): &it->cur or NULL
      const it = vm.arg(1);
      const cur = Number(BigInt.asIntN(32, vm.mem.read(it, 4)));
      const end = Number(BigInt.asIntN(32, vm.mem.read(it + 4n, 4)));
      if (cur + 1 >= end) {
        put(vm, 0, 0);
        return 0;
      }
      put(vm, cur + 1, end);
      return it;
    }],
    [idOf("bpf_iter_num_destroy"), (vm) => { // bpf_iter_num_destroy(it)
      put(vm, 0, 0);
      return 0;
    }],
  ]);
}
