/**
 * Context rules of `BPF_PROG_TYPE_SYSCALL`: the context is a plain buffer
 * the caller passes to BPF_PROG_TEST_RUN, of any layout.
 * @module
 */

import {
  type CtxAccessResult,
  type CtxAccessType,
  DENIED,
  scalarAccess,
} from "./types.ts";

/** U16_MAX: the largest context a syscall program may address (bpf_prog_test_run_syscall caps ctx_size_in there too). */
export const SYSCALL_CTX_MAX = 0xffff;

/**
 * Mirrors `syscall_prog_is_valid_access()` (kernel/bpf/syscall.c): any
 * in-range offset, read or write, aligned to the access size.
 */
export function syscallIsValidAccess(
  off: number,
  size: number,
  _type: CtxAccessType,
): CtxAccessResult {
  if (off < 0 || off >= SYSCALL_CTX_MAX) return DENIED;
  if (off % size !== 0) return DENIED;
  return scalarAccess();
}
