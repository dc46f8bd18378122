/**
 * Context rules of the cgroup hooks defined in kernel/bpf/cgroup.c:
 * cgroup_device (`struct bpf_cgroup_dev_ctx`), cgroup_sysctl
 * (`struct bpf_sysctl`) and cgroup_sockopt (`struct bpf_sockopt`).
 * @module
 */

import {
  type CtxAccessOptions,
  type CtxAccessResult,
  type CtxAccessType,
  DENIED,
  narrowableRead,
  pointerAccess,
  scalarAccess,
} from "./types.ts";

/** `offsetof(struct bpf_cgroup_dev_ctx, field)`. */
export const CGROUP_DEV_CTX_OFFSETS: Readonly<Record<string, number>> = Object
  .freeze({
    access_type: 0,
    major: 4,
    minor: 8,
  });
/** `sizeof(struct bpf_cgroup_dev_ctx)`. */
export const CGROUP_DEV_CTX_SIZE = 12;

/** `offsetof(struct bpf_sysctl, field)`. */
export const BPF_SYSCTL_OFFSETS: Readonly<Record<string, number>> = Object
  .freeze({
    write: 0,
    file_pos: 4,
  });
/** `sizeof(struct bpf_sysctl)`. */
export const BPF_SYSCTL_SIZE = 8;

/** `offsetof(struct bpf_sockopt, field)`. */
export const BPF_SOCKOPT_OFFSETS: Readonly<Record<string, number>> = Object
  .freeze({
    sk: 0, // __bpf_md_ptr
    optval: 8, // __bpf_md_ptr
    optval_end: 16, // __bpf_md_ptr
    level: 24,
    optname: 28,
    optlen: 32,
    retval: 36,
  });
/** `sizeof(struct bpf_sockopt)`. */
export const BPF_SOCKOPT_SIZE = 40;

const within = (off: number, start: number, len: number): boolean =>
  off >= start && off < start + len;

/**
 * Mirrors `cgroup_dev_is_valid_access()`: read-only; `access_type` may be
 * loaded narrow (to mask the access bits), major/minor only whole.
 */
export function cgroupDevIsValidAccess(
  off: number,
  size: number,
  type: CtxAccessType,
): CtxAccessResult {
  if (type === "write") return DENIED;
  if (off < 0 || off + size > CGROUP_DEV_CTX_SIZE) return DENIED;
  if (off % size !== 0) return DENIED;
  if (within(off, CGROUP_DEV_CTX_OFFSETS.access_type, 4)) {
    return narrowableRead(off, size, 4);
  }
  return size === 4 ? scalarAccess() : DENIED;
}

/** Mirrors `sysctl_is_valid_access()`: `write` is read-only, `file_pos` stored whole. */
export function sysctlIsValidAccess(
  off: number,
  size: number,
  type: CtxAccessType,
): CtxAccessResult {
  const o = BPF_SYSCTL_OFFSETS;
  if (off < 0 || off + size > BPF_SYSCTL_SIZE || off % size !== 0) {
    return DENIED;
  }
  if (within(off, o.write, 4)) {
    return type === "read" ? narrowableRead(off, size, 4) : DENIED;
  }
  if (within(off, o.file_pos, 4)) {
    if (type === "read") return narrowableRead(off, size, 4);
    return size === 4 ? scalarAccess() : DENIED;
  }
  return DENIED;
}

/**
 * Mirrors `cg_sockopt_is_valid_access()`: level/optname writable from
 * setsockopt hooks, retval readable and writable from getsockopt hooks,
 * optlen writable from both; optval/optval_end are the packet bounds.
 */
export function cgSockoptIsValidAccess(
  off: number,
  size: number,
  type: CtxAccessType,
  opts: CtxAccessOptions = {},
): CtxAccessResult {
  const o = BPF_SOCKOPT_OFFSETS;
  const getsockopt = opts.expectedAttachType === "cgroup_getsockopt";
  const setsockopt = opts.expectedAttachType === "cgroup_setsockopt";
  if (off < 0 || off >= BPF_SOCKOPT_SIZE) return DENIED;
  if (off % size !== 0) return DENIED;
  if (type === "write") {
    // exact offsets here (the narrower offsets of a field match nothing)
    if (off === o.retval) {
      return size === 4 && getsockopt ? scalarAccess() : DENIED;
    }
    if (off === o.optname || off === o.level) {
      return size === 4 && setsockopt ? scalarAccess() : DENIED;
    }
    if (off === o.optlen) return size === 4 ? scalarAccess() : DENIED;
    return DENIED;
  }
  if (within(off, o.sk, 8)) {
    return size === 8 ? pointerAccess("PTR_TO_SOCKET") : DENIED;
  }
  if (within(off, o.optval, 8)) {
    return size === 8 ? pointerAccess("PTR_TO_PACKET") : DENIED;
  }
  if (within(off, o.optval_end, 8)) {
    return size === 8 ? pointerAccess("PTR_TO_PACKET_END") : DENIED;
  }
  if (within(off, o.retval, 4)) {
    return size === 4 && getsockopt ? scalarAccess() : DENIED;
  }
  return size === 4 ? scalarAccess() : DENIED;
}
