/**
 * Which register types each helper argument kind accepts: the kernel's
 * `compatible_reg_types[]` (with its `mem_types`, `btf_ptr_types` and
 * `sock_types` lists) and `check_reg_type()`, as used by `check_func_arg()`.
 * @module
 */
import { EACCES, type Env } from "./env.ts";
import type { ArgType } from "./helper_protos.ts";
import type { RegState } from "./reg_state.ts";
import {
  CONST_PTR_TO_DYNPTR,
  CONST_PTR_TO_MAP,
  MEM_ALLOC,
  MEM_PERCPU,
  MEM_RCU,
  MEM_RDONLY,
  MEM_RINGBUF,
  PTR_MAYBE_NULL,
  PTR_TO_BTF_ID,
  PTR_TO_BUF,
  PTR_TO_CTX,
  PTR_TO_FUNC,
  PTR_TO_MAP_KEY,
  PTR_TO_MAP_VALUE,
  PTR_TO_MEM,
  PTR_TO_PACKET,
  PTR_TO_PACKET_META,
  PTR_TO_SOCK_COMMON,
  PTR_TO_SOCKET,
  PTR_TO_STACK,
  PTR_TO_TCP_SOCK,
  PTR_TO_XDP_SOCK,
  PTR_TRUSTED,
  regTypeStr,
  SCALAR_VALUE,
} from "./reg_types.ts";

const MEM_TYPES = [
  PTR_TO_STACK,
  PTR_TO_PACKET,
  PTR_TO_PACKET_META,
  PTR_TO_MAP_KEY,
  PTR_TO_MAP_VALUE,
  PTR_TO_MEM,
  PTR_TO_MEM | MEM_RINGBUF,
  PTR_TO_BUF,
  PTR_TO_BTF_ID | PTR_TRUSTED,
];

const BTF_PTR_TYPES = [
  PTR_TO_BTF_ID,
  PTR_TO_BTF_ID | PTR_TRUSTED,
  PTR_TO_BTF_ID | MEM_RCU,
];
const SOCK_COMMON_TYPES = [
  PTR_TO_SOCK_COMMON,
  PTR_TO_SOCKET,
  PTR_TO_TCP_SOCK,
  PTR_TO_XDP_SOCK,
];

/** `compatible_reg_types[]`: register types each argument kind accepts, in the kernel's order. */
export const COMPATIBLE_REG_TYPES: Partial<
  Record<ArgType["base"], readonly number[]>
> = {
  ARG_PTR_TO_MAP_KEY: MEM_TYPES,
  ARG_PTR_TO_MAP_VALUE: MEM_TYPES,
  ARG_CONST_SIZE: [SCALAR_VALUE],
  ARG_CONST_SIZE_OR_ZERO: [SCALAR_VALUE],
  ARG_CONST_ALLOC_SIZE_OR_ZERO: [SCALAR_VALUE],
  ARG_CONST_MAP_PTR: [CONST_PTR_TO_MAP],
  ARG_PTR_TO_CTX: [PTR_TO_CTX],
  ARG_PTR_TO_SOCK_COMMON: SOCK_COMMON_TYPES,
  ARG_PTR_TO_BTF_ID_SOCK_COMMON: [
    ...SOCK_COMMON_TYPES,
    PTR_TO_BTF_ID,
    PTR_TO_BTF_ID | PTR_TRUSTED,
  ],
  ARG_PTR_TO_SOCKET: [PTR_TO_SOCKET],
  ARG_PTR_TO_BTF_ID: BTF_PTR_TYPES,
  ARG_PTR_TO_SPIN_LOCK: [PTR_TO_MAP_VALUE, PTR_TO_BTF_ID | MEM_ALLOC],
  ARG_PTR_TO_MEM: MEM_TYPES,
  ARG_PTR_TO_RINGBUF_MEM: [PTR_TO_MEM | MEM_RINGBUF],
  ARG_PTR_TO_PERCPU_BTF_ID: [
    PTR_TO_BTF_ID | MEM_PERCPU,
    PTR_TO_BTF_ID | MEM_PERCPU | MEM_RCU,
    PTR_TO_BTF_ID | MEM_PERCPU | PTR_TRUSTED,
  ],
  ARG_PTR_TO_FUNC: [PTR_TO_FUNC],
  ARG_PTR_TO_STACK: [PTR_TO_STACK],
  ARG_PTR_TO_CONST_STR: [PTR_TO_MAP_VALUE],
  ARG_PTR_TO_TIMER: [PTR_TO_MAP_VALUE],
  ARG_KPTR_XCHG_DEST: [PTR_TO_MAP_VALUE, PTR_TO_BTF_ID | MEM_ALLOC],
  ARG_PTR_TO_DYNPTR: [PTR_TO_STACK, CONST_PTR_TO_DYNPTR],
};

/**
 * Mirrors `check_reg_type()`: the register's type must be one of `types`
 * (`kptrXchgSrc`: the source argument of `bpf_kptr_xchg`, which may be a
 * local kptr).
 */
export function checkRegType(
  env: Env,
  regno: number,
  reg: RegState,
  types: readonly number[],
  arg: ArgType,
  kptrXchgSrc = false,
): void {
  let t = reg.type;
  if (arg.flags.includes("MEM_RDONLY")) t &= ~MEM_RDONLY;
  if (arg.flags.includes("PTR_MAYBE_NULL")) t &= ~PTR_MAYBE_NULL;
  // local kptrs are the source argument of bpf_kptr_xchg
  if (kptrXchgSrc && (t & MEM_ALLOC)) t &= ~(MEM_ALLOC | MEM_PERCPU);
  if (types.includes(t)) return;
  env.fail(
    EACCES,
    `R${regno} type=${regTypeStr(reg.type)} expected=${
      types.map(regTypeStr).join(", ")
    }`,
  );
}
