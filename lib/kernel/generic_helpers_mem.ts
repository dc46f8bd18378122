/**
 * Runtime of the generic helpers that read memory the verifier cannot
 * vouch for (kernel/trace/bpf_trace.c, kernel/bpf/helpers.c, mm/maccess.c):
 * the probe reads, `bpf_copy_from_user`, and the per-CPU pointer helpers.
 *
 * ## User and kernel memory
 * Every region of the simulated address space sits at a kernel address
 * (window `0xffff8880_xxxxxxxx` and up); no user memory is mapped. So the
 * helpers behave as x86-64 does:
 * - kernel reads (`copy_from_kernel_nofault()`) refuse user and
 *   non-canonical addresses with -ERANGE (`copy_from_kernel_nofault_allowed()`)
 *   and fault with -EFAULT on an address no live readable region holds;
 * - user reads (`copy_from_user_nofault()`, `copy_from_user()`) fail with
 *   -EFAULT: a kernel address fails `access_ok()`, a user address is not
 *   mapped.
 * A failed read zeroes the destination, as the helpers do.
 * @module
 */
import { MemoryFault } from "../exec/fault.ts";
import type { CallContext, HelperFn } from "../exec/state.ts";
import { ExecError } from "../exec/fault.ts";
import { addressLo } from "../exec/memory.ts";
import type { Kernel } from "./kernel.ts";
import { cpuOf } from "./generic_helpers_task.ts";
import { EFAULT, ERANGE } from "../uapi/errno.ts";

/** `TASK_SIZE_MAX` of x86-64 with 4-level paging: `(1 << 47) - PAGE_SIZE`. */
export const TASK_SIZE_MAX: bigint = (1n << 47n) - 4096n;

/** Helper ids (include/uapi/linux/bpf.h). */
export const MEM_HELPER = {
  probe_read: 4,
  probe_read_str: 45,
  probe_read_user: 112,
  probe_read_kernel: 113,
  probe_read_user_str: 114,
  probe_read_kernel_str: 115,
  copy_from_user: 148,
  per_cpu_ptr: 153,
  this_cpu_ptr: 154,
} as const;

/**
 * x86's `copy_from_kernel_nofault_allowed()`: no user addresses (below
 * `TASK_SIZE_MAX + PAGE_SIZE`), none outside the canonical 48-bit space.
 */
export function kernelReadAllowed(address: bigint): boolean {
  const a = BigInt.asUintN(64, address);
  if (a < TASK_SIZE_MAX + 4096n) return false;
  return a >= 0xffff800000000000n; // canonical: bits 63..47 all set
}

/** Whether `address` is a user address (`TASK_SIZE`, for a 64-bit task). */
export function isUserAddress(address: bigint): boolean {
  return BigInt.asUintN(64, address) < TASK_SIZE_MAX;
}

/** `memset(dst, 0, size)`; an empty buffer may be NULL, so nothing is touched. */
export function zeroBuffer(vm: CallContext, dst: bigint, size: number): void {
  if (size > 0) vm.mem.writeBytes(dst, new Uint8Array(size));
}

/** The bytes at `address`, or undefined where the kernel would fault. */
function tryRead(
  vm: CallContext,
  address: bigint,
  size: number,
): Uint8Array | undefined {
  try {
    return vm.mem.readBytes(address, size);
  } catch (e) {
    if (e instanceof MemoryFault) return undefined;
    throw e;
  }
}

/**
 * `bpf_probe_read_kernel_common()`: `copy_from_kernel_nofault()` into
 * `dst`, which is zeroed on failure.
 */
export function probeReadKernel(
  vm: CallContext,
  dst: bigint,
  size: number,
  src: bigint,
): number {
  if (!kernelReadAllowed(src)) {
    zeroBuffer(vm, dst, size);
    return -ERANGE;
  }
  if (size === 0) return 0;
  const bytes = tryRead(vm, src, size);
  vm.mem.writeBytes(dst, bytes ?? new Uint8Array(size));
  return bytes === undefined ? -EFAULT : 0;
}

/**
 * `bpf_probe_read_user_common()` / `bpf_copy_from_user()`: no user memory
 * is mapped, so any read of one byte or more fails with -EFAULT (a kernel
 * address fails `access_ok()`), zeroing `dst`; an empty read of a user
 * address succeeds.
 */
export function probeReadUser(
  vm: CallContext,
  dst: bigint,
  size: number,
  src: bigint,
): number {
  if (size === 0 && isUserAddress(src)) return 0;
  zeroBuffer(vm, dst, size);
  return -EFAULT;
}

/**
 * `bpf_probe_read_kernel_str_common()`: `strncpy_from_kernel_nofault()`
 * copies up to `size` bytes, stopping after a NUL, always NUL-terminates
 * and returns the bytes written (NUL included); on failure `dst` is zeroed.
 */
export function probeReadKernelStr(
  vm: CallContext,
  dst: bigint,
  size: number,
  src: bigint,
): number {
  const got = kernelString(vm, src, size);
  if (typeof got === "number") {
    if (got < 0) zeroBuffer(vm, dst, size);
    return got;
  }
  vm.mem.writeBytes(dst, got);
  return got.length;
}

/**
 * `strncpy_from_kernel_nofault(dst, src, count)`: the bytes it writes
 * (NUL-terminated, at most `count`), or 0 for `count <= 0`, -ERANGE for a
 * refused address, -EFAULT on a fault.
 */
export function kernelString(
  vm: CallContext,
  src: bigint,
  count: number,
): Uint8Array | number {
  if (count <= 0) return 0;
  if (!kernelReadAllowed(src)) return -ERANGE;
  const out: number[] = [];
  for (let i = 0; i < count; i++) {
    const byte = tryRead(vm, src + BigInt(i), 1);
    if (byte === undefined) return -EFAULT;
    out.push(byte[0]);
    if (byte[0] === 0) break;
  }
  out[out.length - 1] = 0; // dst[-1] = '\0': truncation keeps a terminator
  return Uint8Array.from(out);
}

/**
 * `bpf_probe_read_user_str_common()`: `strncpy_from_user_nofault()`
 * returns 0 for an empty buffer, else fails (-EFAULT, `dst` zeroed): no
 * user memory is mapped.
 */
export function probeReadUserStr(
  vm: CallContext,
  dst: bigint,
  size: number,
  _src: bigint,
): number {
  if (size <= 0) return 0;
  zeroBuffer(vm, dst, size);
  return -EFAULT;
}

/**
 * `bpf_per_cpu_ptr()` on a per-CPU object: the simulator lays CPU `c`'s
 * copy at `ptr + c × stride`, the region holding `nr_cpus` copies after
 * `ptr` (bpf_percpu_obj_new(), GraphRuntime.percpuCopy()); NULL for a CPU
 * past `nr_cpu_ids`.
 */
export function perCpuPtr(
  vm: CallContext,
  kernel: Kernel,
  ptr: bigint,
  cpu: bigint,
): bigint | number {
  const nrCpus = kernel.cpus.length;
  if (BigInt.asUintN(32, cpu) >= BigInt(nrCpus)) return 0;
  const region = vm.mem.regionAt(ptr);
  const offset = addressLo(ptr);
  const bytes = region === undefined ? 0 : region.size - offset;
  if (
    region === undefined || !region.live || offset < 0 || bytes <= 0 ||
    bytes % nrCpus !== 0
  ) {
    throw new ExecError(
      vm.insnIndex,
      `bpf_per_cpu_ptr: 0x${ptr.toString(16)} is not a per-CPU object`,
    );
  }
  return ptr + BigInt(Number(BigInt.asUintN(32, cpu)) * (bytes / nrCpus));
}

/** The memory-reading helpers, by id. */
export function memHelpers(kernel: Kernel): Map<number, HelperFn> {
  const H = MEM_HELPER;
  const size = (vm: CallContext) => vm.argLo(2) >>> 0;
  return new Map<number, HelperFn>([
    [
      H.probe_read_kernel,
      (vm) => probeReadKernel(vm, vm.arg(1), size(vm), vm.arg(3)),
    ],
    [
      H.probe_read_user,
      (vm) => probeReadUser(vm, vm.arg(1), size(vm), vm.arg(3)),
    ],
    [
      H.probe_read_kernel_str,
      (vm) => probeReadKernelStr(vm, vm.arg(1), size(vm), vm.arg(3)),
    ],
    [
      H.probe_read_user_str,
      (vm) => probeReadUserStr(vm, vm.arg(1), size(vm), vm.arg(3)),
    ],
    // bpf_probe_read_compat(): user below TASK_SIZE, kernel above
    [H.probe_read, (vm) => {
      const read = isUserAddress(vm.arg(3)) ? probeReadUser : probeReadKernel;
      return read(vm, vm.arg(1), size(vm), vm.arg(3));
    }],
    [H.probe_read_str, (vm) => {
      const read = isUserAddress(vm.arg(3))
        ? probeReadUserStr
        : probeReadKernelStr;
      return read(vm, vm.arg(1), size(vm), vm.arg(3));
    }],
    // bpf_copy_from_user(): copy_from_user() of nothing copies nothing
    [H.copy_from_user, (vm) => {
      if (size(vm) === 0) return 0;
      return probeReadUser(vm, vm.arg(1), size(vm), vm.arg(3));
    }],
    [H.per_cpu_ptr, (vm) => perCpuPtr(vm, kernel, vm.arg(1), vm.arg(2))],
    // bpf_this_cpu_ptr(): this_cpu_ptr()
    [
      H.this_cpu_ptr,
      (vm) => perCpuPtr(vm, kernel, vm.arg(1), BigInt(cpuOf(vm))),
    ],
  ]);
}
