/**
 * Runtime of the helpers only `BPF_PROG_TYPE_SYSCALL` programs get
 * (`syscall_prog_func_proto()`): `bpf_sys_bpf`, `bpf_sys_close`
 * (kernel/bpf/syscall.c), `bpf_btf_find_by_name_kind` (kernel/bpf/btf.c)
 * and `bpf_kallsyms_lookup_name` (kernel/bpf/syscall.c).
 *
 * ## What the simulated machine has, and so what they return
 * - `bpf_sys_bpf`: the commands of `syscall_bpf.ts` on the simulated
 *   process of `syscall_fds.ts` (fds 0–2 are the standard streams; new fds
 *   are the lowest free ones).
 * - `bpf_sys_close(fd)`: `close_fd()` on that process: 0, or -EBADF for a
 *   free fd. Closing a map's last fd frees a map the program created.
 * - `bpf_btf_find_by_name_kind`: the simulated vmlinux BTF is the kfunc
 *   table of `kfunc_ids.ts` (no module BTF): each name of `KERNEL_KFUNCS`
 *   (bpfsim's aliases `bpf_kptr_new` / `bpf_kptr_drop` included) is a
 *   `BTF_KIND_FUNC` with its simulated id ({@link SIM_BTF_KIND_FUNC}).
 *   Any other name or kind is -ENOENT — including every type and function
 *   a real vmlinux has (`task_struct`, …), which bpfsim does not describe.
 *   As in the kernel, `kind` is cut to 8 bits (`btf_find_by_name_kind()`
 *   takes a u8) and the name ends at its first NUL.
 * - `bpf_kallsyms_lookup_name`: the simulated kallsyms holds
 *   `__bpf_call_base` at {@link SIM_BPF_CALL_BASE} and each kfunc of the
 *   simulated BTF at `__bpf_call_base + imm`, where imm is the address id
 *   a rewritten call of it carries (`kfuncAddrId()`), as
 *   `fixup_kfunc_call()` makes imm = address − `__bpf_call_base`. Helpers
 *   are not given addresses (bpfsim calls them by id), so their names, like
 *   every other symbol, are -ENOENT. `*res` is 0 after any failure. The task is root and
 *   `kptr_restrict` is 0 (as on the oracle), so `bpf_dump_raw_ok()` holds.
 * @module
 */
import type { CallContext, HelperFn } from "../../exec/state.ts";
import { EINVAL, ENOENT } from "../../uapi/errno.ts";
import { KERNEL_KFUNCS, kfuncAddrId, kfuncBtfId } from "../kfunc_ids.ts";
import type { ObjectHelperEnv } from "../object_helpers.ts";
import { sysBpf } from "./syscall_bpf.ts";
import { simProcess } from "./syscall_fds.ts";

/** Helper ids (include/uapi/linux/bpf.h). */
export const SYSCALL_HELPER = {
  sys_bpf: 166,
  btf_find_by_name_kind: 167,
  sys_close: 168,
  kallsyms_lookup_name: 179,
} as const;

/** `BTF_KIND_FUNC`: the kind of every type of the simulated vmlinux BTF. */
export const SIM_BTF_KIND_FUNC = 12;

/** Address of `__bpf_call_base` in the simulated kernel's text. */
export const SIM_BPF_CALL_BASE = 0xffffffff81200000n;

/** The syscall-program helpers of `env.loaded`, by id. */
export function syscallHelpers(env: ObjectHelperEnv): Map<number, HelperFn> {
  const kernel = env.loaded.kernel;
  const H = SYSCALL_HELPER;
  return new Map<number, HelperFn>([
    [H.sys_bpf, (vm) => sysBpf(env, vm)],
    // bpf_sys_close(): close_fd() of the u32 fd
    [H.sys_close, (vm) => simProcess(kernel).close(vm.argLo(1) >>> 0)],
    [H.btf_find_by_name_kind, btfFindByNameKind],
    [H.kallsyms_lookup_name, kallsymsLookupName],
  ]);
}

/**
 * The name argument of both lookups: -EINVAL unless `name_sz` > 1 and
 * `name[name_sz - 1]` is NUL; else the C string (up to its first NUL).
 */
function nameArg(vm: CallContext, nameSz: number): string | number {
  if (nameSz <= 1) return -EINVAL;
  const raw = vm.mem.readBytes(vm.arg(1), nameSz);
  if (raw[nameSz - 1] !== 0) return -EINVAL;
  return String.fromCharCode(...raw.subarray(0, raw.indexOf(0)));
}

/**
 * The id of `name` of kind `kind` in the simulated vmlinux BTF, or -ENOENT
 * (`bpf_find_btf_id()`: vmlinux, then the modules, of which there are none).
 */
export function simBtfFindByNameKind(name: string, kind: number): number {
  const id = kind === SIM_BTF_KIND_FUNC ? kfuncBtfId(name) : undefined;
  return id ?? -ENOENT;
}

/** The address of `name` in the simulated kallsyms, or 0n (`kallsyms_lookup_name()`). */
export function simKallsymsLookupName(name: string): bigint {
  if (name === "__bpf_call_base") return SIM_BPF_CALL_BASE;
  const id = kfuncBtfId(name);
  if (id === undefined) return 0n;
  return SIM_BPF_CALL_BASE + BigInt(kfuncAddrId(id));
}

/** Every symbol of the simulated kallsyms, by name. */
export function simKallsyms(): Map<string, bigint> {
  const out = new Map([["__bpf_call_base", SIM_BPF_CALL_BASE]]);
  for (const name of KERNEL_KFUNCS) {
    out.set(name, simKallsymsLookupName(name));
  }
  return out;
}

/** Mirrors `bpf_btf_find_by_name_kind()`: flags, the name, then the search. */
function btfFindByNameKind(vm: CallContext): number {
  if (vm.argLo(4) !== 0) return -EINVAL;
  const name = nameArg(vm, vm.argLo(2));
  if (typeof name === "number") return name;
  // btf_find_by_name_kind() takes the kind as a u8
  return simBtfFindByNameKind(name, vm.argLo(3) & 0xff);
}

/**
 * Mirrors `bpf_kallsyms_lookup_name()`: `*res` gets the address, or 0 on
 * every error (6.18 zeroes the former `ARG_PTR_TO_LONG` whenever it fails,
 * flags and name checks included, as the oracle shows).
 */
function kallsymsLookupName(vm: CallContext): number {
  const name = vm.argLo(3) !== 0 ? -EINVAL : nameArg(vm, vm.argLo(2));
  const address = typeof name === "number" ? 0n : simKallsymsLookupName(name);
  const res = new Uint8Array(8);
  new DataView(res.buffer).setBigUint64(0, address, true);
  vm.mem.writeBytes(vm.arg(4), res);
  if (typeof name === "number") return name;
  return address !== 0n ? 0 : -ENOENT;
}
