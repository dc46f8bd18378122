/**
 * The sysctl helpers of the cgroup sysctl hook (kernel/bpf/cgroup.c),
 * bound to one {@link SysctlContext}: the name, current and new value
 * getters and `bpf_sysctl_set_new_value()`.
 * @module
 */
import type { CallContext, HelperFn } from "../../../exec/state.ts";
import { E2BIG, EINVAL } from "../../../uapi/errno.ts";
import {
  BPF_F_SYSCTL_BASE_NAME,
  SYSCTL_HELPER,
  SYSCTL_PAGE_SIZE,
  type SysctlContext,
} from "./sysctl_ctx.ts";

const ENCODER = new TextEncoder();

/**
 * `strscpy(dst, src, count)` into program memory: copies `src` and a NUL
 * when they fit in `count` bytes (returns the length), else `count - 1`
 * bytes and a NUL (-E2BIG; nothing at all when `count` is 0). Bytes after
 * the NUL are left as they were.
 */
function strscpy(
  vm: CallContext,
  dst: bigint,
  src: Uint8Array,
  count: number,
): number {
  if (count <= 0) return -E2BIG;
  const n = Math.min(src.length, count - 1);
  const out = new Uint8Array(n + 1);
  out.set(src.subarray(0, n));
  vm.mem.writeBytes(dst, out);
  return src.length < count ? src.length : -E2BIG;
}

/** Mirrors `copy_sysctl_value()`. */
function copySysctlValue(
  vm: CallContext,
  dst: bigint,
  dstLen: number,
  src: Uint8Array | undefined,
  srcLen: number,
): number {
  if (dst === 0n) return -EINVAL;
  if (dstLen === 0) return -E2BIG;
  if (src === undefined || srcLen === 0) {
    vm.mem.writeBytes(dst, new Uint8Array(dstLen));
    return -EINVAL;
  }
  const out = new Uint8Array(dstLen);
  out.set(src.subarray(0, Math.min(dstLen, srcLen)));
  if (dstLen > srcLen) {
    vm.mem.writeBytes(dst, out); // the rest zeroed
    return srcLen;
  }
  out[dstLen - 1] = 0;
  vm.mem.writeBytes(dst, out);
  return -E2BIG;
}

/**
 * The sysctl helpers bound to `ctx`. `bpf_sysctl_get_name()` copies
 * `dir/dir/procname` (`sysctl_cpy_dir()` then the procname, each piece by
 * `strscpy()`, so a short buffer ends in a NUL and the call fails with
 * -E2BIG) or, with `BPF_F_SYSCTL_BASE_NAME`, the procname alone; the value
 * getters copy with `copy_sysctl_value()` (zero-padded; -E2BIG and a
 * final NUL when the buffer is not longer than the value);
 * `bpf_sysctl_get_new_value()` on a read zeroes the buffer and fails with
 * -EINVAL; `bpf_sysctl_set_new_value()` needs a nonempty write and at most
 * `PAGE_SIZE - 1` bytes, and sets `new_updated`.
 */
export function sysctlHelpers(ctx: SysctlContext): Map<number, HelperFn> {
  const enc = (s: string) => ENCODER.encode(s);
  return new Map<number, HelperFn>([
    [SYSCTL_HELPER.get_name, (vm) => {
      let buf = vm.arg(2);
      let len = Number(vm.arg(3));
      if (buf === 0n) return -EINVAL;
      let dirTotal = 0;
      if ((vm.arg(4) & BPF_F_SYSCTL_BASE_NAME) === 0n) {
        // mirrors sysctl_cpy_dir(): parents first, then "name/" unless empty
        const chain = ["", ...ctx.dirs]; // the root dir's procname is ""
        const cpyDir = (level: number): number => {
          let tmp = 0;
          if (level > 0) {
            tmp = cpyDir(level - 1);
            if (tmp < 0) return tmp;
          }
          let ret = strscpy(vm, buf, enc(chain[level]), len);
          if (ret < 0) return ret;
          buf += BigInt(ret);
          len -= ret;
          ret += tmp;
          if (ret === 0) return ret; // no leading slash
          tmp = strscpy(vm, buf, enc("/"), len);
          if (tmp < 0) return tmp;
          buf += BigInt(tmp);
          len -= tmp;
          return ret + tmp;
        };
        dirTotal = cpyDir(chain.length - 1);
        if (dirTotal < 0) return dirTotal;
      }
      const ret = strscpy(vm, buf, enc(ctx.procname), len);
      return ret < 0 ? ret : dirTotal + ret;
    }],
    [SYSCTL_HELPER.get_current_value, (vm) =>
      copySysctlValue(
        vm,
        vm.arg(2),
        Number(vm.arg(3)),
        ctx.curVal.length > 0 ? ctx.curVal : undefined,
        ctx.curVal.length,
      )],
    [SYSCTL_HELPER.get_new_value, (vm) => {
      const buf = vm.arg(2), len = Number(vm.arg(3));
      if (!ctx.write) {
        if (buf !== 0n && len > 0) vm.mem.writeBytes(buf, new Uint8Array(len));
        return -EINVAL;
      }
      return copySysctlValue(vm, buf, len, ctx.newVal, ctx.newLen);
    }],
    [SYSCTL_HELPER.set_new_value, (vm) => {
      const buf = vm.arg(2), len = Number(vm.arg(3));
      if (
        !ctx.write || ctx.newVal === undefined || ctx.newLen === 0 ||
        buf === 0n || len === 0
      ) {
        return -EINVAL;
      }
      if (len > SYSCTL_PAGE_SIZE - 1) return -E2BIG;
      ctx.newVal.set(vm.mem.readBytes(buf, len));
      ctx.newLen = len;
      ctx.newUpdated = true;
      return 0;
    }],
  ]);
}
