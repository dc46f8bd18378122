/**
 * `bpf_snprintf_btf` (149) and the core of `bpf_seq_printf_btf` (150)
 * (kernel/trace/bpf_trace.c): print the object a `struct btf_ptr { void
 * *ptr; __u32 type_id; __u32 flags; }` describes with the kernel's BTF
 * printer (btf_show.ts).
 *
 * ## Whose types
 * The kernel looks `type_id` up in vmlinux BTF. The simulated kernel's
 * types are the program's own (lib/btf/core.ts): `bpf_core_type_id_kernel(
 * struct foo)` resolves to the id of `struct foo` in the loaded object's
 * BTF, so `type_id` is looked up there. An object without BTF is a kernel
 * without vmlinux BTF: `bpf_get_btf_vmlinux()` finds none and the helpers
 * return -EINVAL.
 *
 * ## Memory
 * The object is read with `copy_from_kernel_nofault()` as generic_helpers_mem.ts
 * models it: every region is kernel memory; an address below the kernel's
 * range (NULL …) fails with -ERANGE, an unmapped one with -EFAULT, and the
 * helper returns that error (what it printed before stays in the buffer).
 * @module
 */
import type { Btf } from "../../../btf/btf.ts";
import { MemoryFault } from "../../../exec/fault.ts";
import type { AddressSpace } from "../../../exec/memory.ts";
import type { CallContext, HelperFn } from "../../../exec/state.ts";
import { EFAULT, EINVAL, ENOENT, ERANGE } from "../../../uapi/errno.ts";
import {
  BTF_F_ALL,
  btfTypeShow,
  btfTypeSnprintfShow,
  type KernelCopy,
} from "./btf_show.ts";
import { kernelReadAllowed } from "../../generic_helpers_mem.ts";
import type { ObjectHelperEnv } from "../../object_helpers.ts";
import type { SeqFile } from "./seq_helpers.ts";

/** Helper ids (include/uapi/linux/bpf.h). */
export const BTF_PRINT_HELPER = {
  snprintf_btf: 149,
  seq_printf_btf: 150,
} as const;

/** `sizeof(struct btf_ptr)`. */
export const BTF_PTR_SIZE = 16;

/** `copy_from_kernel_nofault()` over the simulated address space `mem`. */
export function kernelCopy(mem: AddressSpace): KernelCopy {
  return (address, size) => {
    if (!kernelReadAllowed(address)) return -ERANGE;
    if (size === 0) return new Uint8Array(0);
    try {
      return mem.readBytes(address, size);
    } catch (e) {
      if (e instanceof MemoryFault) return -EFAULT;
      throw e;
    }
  };
}

/** What {@link btfPrintfPrepare} found: the object and its type. */
export interface BtfPrintTarget {
  /** `ptr->ptr`. */
  readonly ptr: bigint;
  /** `ptr->type_id`, a type of `btf`. */
  readonly typeId: number;
  /** The BTF standing in for vmlinux's. */
  readonly btf: Btf;
}

/**
 * Mirrors `bpf_btf_printf_prepare()`: flags within `BTF_F_ALL`, a
 * `btf_ptr_size` of exactly 16, a BTF, a `type_id` that is not 0 (-EINVAL)
 * and names a type (-ENOENT; as an `s32`, ids from 2^31 are negative).
 */
export function btfPrintfPrepare(
  vm: CallContext,
  btfPtr: bigint,
  btfPtrSize: number,
  flags: bigint,
  btf: Btf | undefined,
): BtfPrintTarget | number {
  if ((flags & ~BigInt(BTF_F_ALL)) !== 0n) return -EINVAL;
  if (btfPtrSize !== BTF_PTR_SIZE) return -EINVAL;
  if (btf === undefined) return -EINVAL;
  const typeId = Number(vm.mem.read(btfPtr + 8n, 4));
  if (typeId === 0) return -EINVAL;
  if (typeId >= 0x80000000 || typeId >= btf.typeCount) return -ENOENT;
  return { ptr: vm.mem.read(btfPtr, 8), typeId, btf };
}

/** `bpf_snprintf_btf(str, str_size, ptr, btf_ptr_size, flags)`. */
export function snprintfBtf(vm: CallContext, btf: Btf | undefined): number {
  const target = btfPrintfPrepare(
    vm,
    vm.arg(3),
    vm.argLo(4) >>> 0,
    vm.arg(5),
    btf,
  );
  if (typeof target === "number") return target;
  const out = btfTypeSnprintfShow(
    target.btf,
    target.typeId,
    target.ptr,
    vm.argLo(2) >>> 0,
    Number(vm.arg(5)),
    kernelCopy(vm.mem),
  );
  if (out.written.length > 0) vm.mem.writeBytes(vm.arg(1), out.written);
  return out.ret;
}

/**
 * `bpf_seq_printf_btf(m, ptr, btf_ptr_size, flags)` into `seq`: each
 * `btf_show()` is a `seq_vprintf()`; the return is the printer's status
 * (an overflow is the seq_file's business, not the helper's: 0).
 */
export function seqPrintfBtf(
  vm: CallContext,
  seq: SeqFile,
  btf: Btf | undefined,
): number {
  const target = btfPrintfPrepare(
    vm,
    vm.arg(2),
    vm.argLo(3) >>> 0,
    vm.arg(4),
    btf,
  );
  if (typeof target === "number") return target;
  return btfTypeShow(
    target.btf,
    target.typeId,
    target.ptr,
    Number(vm.arg(4)),
    kernelCopy(vm.mem),
    (text) => seq.bprintf(text),
  );
}

/** `bpf_snprintf_btf` by id, over the loaded object's BTF. */
export function btfPrintHelpers(env: ObjectHelperEnv): Map<number, HelperFn> {
  const btf = env.loaded.object.btf;
  return new Map<number, HelperFn>([
    [BTF_PRINT_HELPER.snprintf_btf, (vm) => snprintfBtf(vm, btf)],
  ]);
}
