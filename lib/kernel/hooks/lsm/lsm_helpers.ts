/**
 * Runtime of the BPF LSM helpers over the simulated LSM environment
 * (`lsm_env.ts`) — kernel/bpf/bpf_lsm.c, kernel/trace/bpf_trace.c
 * (`bpf_d_path`), net/core/filter.c (`bpf_sock_from_file`). The inode
 * storage helpers are with the other local-storage helpers
 * (`local_storage_helpers.ts`).
 *
 * What the simulated kernel has, and so what they return:
 * - `bpf_d_path()`: 0 for a 0-byte buffer; else `d_path()` of the file
 *   (`lsm_d_path.ts`) moved to the buffer's start, returning its length
 *   with the NUL — or -ENAMETOOLONG with the buffer as `d_path()` left it;
 * - `bpf_bprm_opts_set()`: -EINVAL for flags beyond
 *   `BPF_F_BPRM_SECUREEXEC`, else `bprm->secureexec` is *assigned* the
 *   flag (0 clears it) and 0 is returned;
 * - `bpf_ima_inode_hash()` / `bpf_ima_file_hash()`: the kernel bpfsim
 *   models is the oracle's 6.18, built without IMA (`CONFIG_INTEGRITY` is
 *   not set), so `ima_inode_hash()` and `ima_file_hash()` are
 *   include/linux/ima.h's stubs: -EOPNOTSUPP, the buffer untouched;
 * - `bpf_sock_from_file()`: `sock_from_file()`, the file's `struct socket`
 *   (`private_data`) for a socket file, NULL for any other.
 * A pointer that is none of the environment's live objects (the verifier
 * lets only trusted hook arguments through) stops the program with an
 * ExecError.
 * @module
 */
import { ExecError } from "../../../exec/fault.ts";
import type { CallContext, HelperFn } from "../../../exec/state.ts";
import { EOPNOTSUPP } from "../../../uapi/errno.ts";
import { dPath } from "./lsm_d_path.ts";
import { lsmEnv, type SimBinprm, type SimFile } from "./lsm_env.ts";
import { EINVAL } from "../../maps/map.ts";
import type { ObjectHelperEnv } from "../../object_helpers.ts";

/** Helper ids (include/uapi/linux/bpf.h). */
export const LSM_HELPER = {
  d_path: 147,
  bprm_opts_set: 159,
  ima_inode_hash: 161,
  sock_from_file: 162,
  ima_file_hash: 193,
} as const;

/** `BPF_F_BPRM_SECUREEXEC`, the one `bpf_bprm_opts_set()` flag. */
export const BPF_F_BPRM_SECUREEXEC = 1;

/** The LSM helpers, by id. */
export function lsmHelpers(env: ObjectHelperEnv): Map<number, HelperFn> {
  const objects = lsmEnv(env.loaded.kernel);
  const H = LSM_HELPER;
  const unknown = (vm: CallContext, arg: number, what: string): never => {
    throw new ExecError(
      vm.insnIndex,
      `R${arg}: 0x${vm.arg(arg).toString(16)} is not ${what} bpfsim models`,
    );
  };
  const file = (vm: CallContext): SimFile =>
    objects.fileAt(vm.arg(1)) ?? unknown(vm, 1, "an open file");
  const bprm = (vm: CallContext): SimBinprm =>
    objects.binprmAt(vm.arg(1)) ?? unknown(vm, 1, "a linux_binprm");
  return new Map<number, HelperFn>([
    [H.d_path, (vm) => {
      // mirrors bpf_d_path(): nothing for size 0; then d_path() into the
      // buffer and, on success, memmove() of the name to its start
      const size = vm.argLo(3) >>> 0;
      if (size === 0) return 0;
      const f = objects.fileOfPath(vm.arg(1)) ??
        unknown(vm, 1, "the f_path of an open file");
      const bufPtr = vm.arg(2);
      const buf = vm.mem.readBytes(bufPtr, size, vm.insnIndex);
      const start = dPath(f, buf);
      if (start >= 0) buf.copyWithin(0, start);
      vm.mem.writeBytes(bufPtr, buf, vm.insnIndex);
      return start >= 0 ? size - start : start;
    }],
    [H.bprm_opts_set, (vm) => {
      const b = bprm(vm);
      const flags = vm.arg(2);
      if ((flags & ~BigInt(BPF_F_BPRM_SECUREEXEC)) !== 0n) return -EINVAL;
      b.secureexec = flags !== 0n;
      return 0;
    }],
    // the CONFIG_IMA=n stubs: whatever the inode or file
    [H.ima_inode_hash, () => -EOPNOTSUPP],
    [H.ima_file_hash, () => -EOPNOTSUPP],
    // sock_from_file(): f_op == &socket_file_ops ? private_data : NULL
    [H.sock_from_file, (vm) => file(vm).socket],
  ]);
}
