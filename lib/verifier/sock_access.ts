/**
 * Loads and stores through the socket pointers helpers and context loads
 * hand out (PTR_TO_SOCK_COMMON, PTR_TO_SOCKET, PTR_TO_TCP_SOCK,
 * PTR_TO_XDP_SOCK): the `type_is_sk_pointer()` arm of `check_mem_access()`
 * and `check_sock_access()` in kernel/bpf/verifier.c. The per-struct field
 * tables (`bpf_sock_common_is_valid_access()` & co. of net/core/filter.c)
 * live in ctx_access/sock_ptr.ts.
 * @module
 */
import { EACCES, type Env } from "./env.ts";
import type { RegState } from "./reg_state.ts";
import {
  PTR_TO_SOCK_COMMON,
  PTR_TO_SOCKET,
  PTR_TO_TCP_SOCK,
  PTR_TO_XDP_SOCK,
} from "./reg_types.ts";
import {
  sockAccessMessage,
  sockPtrAccess,
  type SockPtrType,
} from "./ctx_access/sock_ptr.ts";

/** The register types `type_is_sk_pointer()` accepts, by their kernel names. */
const SK_POINTER_TYPES: ReadonlyMap<number, SockPtrType> = new Map([
  [PTR_TO_SOCK_COMMON, "PTR_TO_SOCK_COMMON"],
  [PTR_TO_SOCKET, "PTR_TO_SOCKET"],
  [PTR_TO_TCP_SOCK, "PTR_TO_TCP_SOCK"],
  [PTR_TO_XDP_SOCK, "PTR_TO_XDP_SOCK"],
]);

/**
 * Mirrors `type_is_sk_pointer()`: the exact types only — a `_OR_NULL`
 * variant must be NULL-checked first (it then falls through to
 * `invalid mem access`).
 */
export function typeIsSkPointer(type: number): boolean {
  return SK_POINTER_TYPES.has(type);
}

/**
 * Mirrors the socket arm of `check_mem_access()` with `check_sock_access()`:
 * stores are refused (`R%d cannot write into %s`); a load of `size` bytes at
 * `off` (the instruction offset plus the register's fixed offset) must be a
 * field the pointee's `*_is_valid_access()` allows, else
 * `R%d invalid %s access off=%d size=%d`. Throws through `env.fail()`.
 */
export function checkSockAccess(
  env: Env,
  reg: RegState,
  regno: number,
  off: number,
  size: number,
  access: "read" | "write",
): void {
  const sockType = SK_POINTER_TYPES.get(reg.type);
  if (sockType === undefined) {
    env.fail(EACCES, `R${regno} invalid mem access`);
  }
  if (access === "write") {
    env.fail(EACCES, sockAccessMessage(regno, sockType, off, size, access));
  }
  // Pointer arithmetic on socket pointers is refused earlier
  // (adjust_ptr_min_max_vals()), so smin is 0 here; the kernel still checks.
  if (reg.s.smin < 0n) {
    env.fail(
      EACCES,
      `R${regno} min value is negative, either use unsigned index or do a if (index >=0) check.`,
    );
  }
  if (!sockPtrAccess(sockType, off, size, access).ok) {
    env.fail(EACCES, sockAccessMessage(regno, sockType, off, size, access));
  }
}
