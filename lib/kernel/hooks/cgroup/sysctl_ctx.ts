/**
 * The context of the cgroup sysctl hook (kernel/bpf/cgroup.c): the
 * `struct bpf_sysctl_kern` `__cgroup_bpf_run_filter_sysctl()` builds for one
 * read or write of a sysctl file, behind the program's `struct bpf_sysctl`.
 *
 * The simulated sysctl is what the caller describes: its path under
 * /proc/sys (`net/ipv4/tcp_mem`: the directories become the
 * `ctl_table_header` parents `sysctl_cpy_dir()` walks, the last part the
 * table's `procname`), the text its proc handler reads now (`cur_val`: the
 * handler's output, e.g. `"600\n"` — numbers end with a newline; absent
 * when the handler fails, leaving `cur_len` 0) and, on a write, the bytes
 * written.
 * @module
 */
import type { AddressSpace, RegionAccessHook } from "../../../exec/memory.ts";
import {
  BPF_SYSCTL_OFFSETS,
  BPF_SYSCTL_SIZE,
} from "../../../verifier/ctx_access/cgroup.ts";
import { EINVAL } from "../../../uapi/errno.ts";
import { readLe } from "../../test_run_ctx.ts";
import { TestRunError } from "../../test_run.ts";

/** Helper ids (include/uapi/linux/bpf.h). */
export const SYSCTL_HELPER = {
  get_name: 101,
  get_current_value: 102,
  get_new_value: 103,
  set_new_value: 104,
} as const;

/** `BPF_F_SYSCTL_BASE_NAME`: `bpf_sysctl_get_name()` copies the procname only. */
export const BPF_F_SYSCTL_BASE_NAME = 1n;
/** x86-64 `PAGE_SIZE`: the hook's value buffers. */
export const SYSCTL_PAGE_SIZE = 4096;

/** One access to a sysctl file, as the sysctl hook sees it. */
export interface SysctlAccess {
  /** Path under /proc/sys, `/`-separated (`"net/ipv4/tcp_mem"`). */
  readonly name: string;
  /** The text the proc handler reads now; undefined: the handler fails. */
  readonly current?: string | Uint8Array;
  /** A write (`ctx->write` = 1) rather than a read. */
  readonly write: boolean;
  /** On a write: the bytes written (empty or absent: a zero-length write). */
  readonly newValue?: string | Uint8Array;
  /** `*ppos`: the file position of the access (default 0). */
  readonly filePos?: number | bigint;
}

/** `v` as bytes (a string is UTF-8 encoded). */
export function sysctlBytes(v: string | Uint8Array): Uint8Array {
  return typeof v === "string" ? new TextEncoder().encode(v) : v;
}

/**
 * `struct bpf_sysctl_kern` of one access: the table's path, the current
 * and new values, `new_updated`, `write` and `*ppos`; its ctx region is
 * the program's `struct bpf_sysctl` (`write` and `file_pos` read, and
 * `file_pos` written, as `sysctl_convert_ctx_access()` rewrites them).
 */
export class SysctlContext implements RegionAccessHook {
  /** Directory names from the top (`["net", "ipv4"]`). */
  readonly dirs: readonly string[];
  /** `table->procname`. */
  readonly procname: string;
  /** `ctx->write`. */
  readonly write: boolean;
  /** `cur_val[0 … cur_len)`; empty when the handler failed. */
  readonly curVal: Uint8Array;
  /** `new_val`: a page on a nonempty write, else undefined (NULL). */
  readonly newVal: Uint8Array | undefined;
  /** `new_len`. */
  newLen: number;
  /** `new_updated`: a program replaced the new value. */
  newUpdated = false;
  /** `*ppos` (`loff_t`). */
  filePos: bigint;
  /** Address of the ctx region (r1). */
  readonly address: bigint;
  private readonly space: AddressSpace;

  /** Builds the context as `__cgroup_bpf_run_filter_sysctl()` does and maps it. */
  constructor(space: AddressSpace, access: SysctlAccess) {
    const parts = access.name.split("/");
    if (parts.some((p) => p === "")) {
      throw new TestRunError(`bad sysctl name '${access.name}'`, EINVAL);
    }
    this.procname = parts[parts.length - 1];
    this.dirs = parts.slice(0, -1);
    this.write = access.write;
    // the handler reads into a page: cur_len = what it produced, or 0
    const cur = access.current === undefined
      ? new Uint8Array(0)
      : sysctlBytes(access.current);
    this.curVal = cur.slice(0, SYSCTL_PAGE_SIZE);
    const written = sysctlBytes(access.newValue ?? "");
    this.newLen = 0;
    if (access.write && written.length > 0) {
      // a page, so a program may write more than the user did
      this.newVal = new Uint8Array(SYSCTL_PAGE_SIZE);
      this.newLen = Math.min(SYSCTL_PAGE_SIZE, written.length);
      this.newVal.set(written.subarray(0, this.newLen));
    }
    this.filePos = BigInt.asIntN(64, BigInt(access.filePos ?? 0));
    this.space = space;
    this.address = space.mapRegion("ctx", BPF_SYSCTL_SIZE, {
      name: "bpf_sysctl",
      hook: this,
    });
  }

  /** See {@link RegionAccessHook.load}: `write`, or the low half of `*ppos`. */
  load(offset: number, size: number): bigint | undefined {
    const o = BPF_SYSCTL_OFFSETS;
    if (offset >= o.write && offset + size <= o.write + 4) {
      return readLe(u32Bytes(this.write ? 1 : 0), offset - o.write, size);
    }
    if (offset >= o.file_pos && offset + size <= o.file_pos + 4) {
      const low = Number(BigInt.asUintN(32, this.filePos));
      return readLe(u32Bytes(low), offset - o.file_pos, size);
    }
    return undefined;
  }

  /** See {@link RegionAccessHook.store}: a u32 store to `file_pos` sets the low half of `*ppos`. */
  store(offset: number, size: number, value: bigint): boolean {
    if (offset !== BPF_SYSCTL_OFFSETS.file_pos || size !== 4) return false;
    const high = this.filePos & ~0xffffffffn;
    this.filePos = BigInt.asIntN(64, high | BigInt.asUintN(32, value));
    return true;
  }

  /** Unmaps the ctx region. */
  release(): void {
    this.space.unmapRegion(this.address);
  }
}

function u32Bytes(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n >>> 0, true);
  return b;
}
