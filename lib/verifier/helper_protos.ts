/**
 * Helper prototypes as data: the simulator's `struct bpf_func_proto`
 * (include/linux/bpf.h) and the per-program-type `get_func_proto` chains
 * that decide which helpers a program may call (Linux 6.18).
 *
 * The verifier core asks {@link resolveHelperCall} at every `call imm`
 * with src_reg 0; it answers the prototype or the kernel's rejection text,
 * in the order check_helper_call() tests them.
 * @module
 */
import { BPF_FUNC_MAX_ID, helperName } from "../isa/helper_ids.ts";
import { PROG_TYPE } from "../uapi/bpf.ts";
import {
  MAP_PROTOS,
  MISC_PROTOS,
  OBJECT_PROTOS,
  PROBE_PROTOS,
  RINGBUF_PROTOS,
} from "./helper_table_base.ts";
import type { Chain, ChainContext } from "./helper_table_chains.ts";
import { ALLOWED } from "./helper_allowed.ts";
import {
  REDIRECT_PROTOS,
  SKB_PROTOS,
  SOCK_CTX_PROTOS,
  SOCK_PROTOS,
  XDP_PROTOS,
} from "./helper_table_net.ts";
import { NET_CHAINS } from "./helper_table_progs.ts";
import {
  BTF_TRACE_PROTOS,
  LSM_PROTOS,
  TRACE_PROTOS,
} from "./helper_table_tracing.ts";
import {
  hasTrampoline,
  TRACING_CHAINS,
} from "./helper_table_tracing_chains.ts";

export {
  helperChangesPktData,
  isAcquireFunction,
  isAsyncCallbackCallingFunction,
  isCallbackCallingFunction,
  isDynptrRefFunction,
  isPtrCastFunction,
  isReleaseFunction,
  isStorageGetFunction,
  isSyncCallbackCallingFunction,
} from "./helper_table_facts.ts";

/** `enum bpf_arg_type` base values (the low byte; flags live in {@link TypeFlag}). */
export type ArgBase =
  | "ARG_DONTCARE"
  | "ARG_CONST_MAP_PTR"
  | "ARG_PTR_TO_MAP_KEY"
  | "ARG_PTR_TO_MAP_VALUE"
  | "ARG_PTR_TO_MEM"
  | "ARG_PTR_TO_ARENA"
  | "ARG_CONST_SIZE"
  | "ARG_CONST_SIZE_OR_ZERO"
  | "ARG_PTR_TO_CTX"
  | "ARG_ANYTHING"
  | "ARG_PTR_TO_SPIN_LOCK"
  | "ARG_PTR_TO_SOCK_COMMON"
  | "ARG_PTR_TO_SOCKET"
  | "ARG_PTR_TO_BTF_ID"
  | "ARG_PTR_TO_RINGBUF_MEM"
  | "ARG_CONST_ALLOC_SIZE_OR_ZERO"
  | "ARG_PTR_TO_BTF_ID_SOCK_COMMON"
  | "ARG_PTR_TO_PERCPU_BTF_ID"
  | "ARG_PTR_TO_FUNC"
  | "ARG_PTR_TO_STACK"
  | "ARG_PTR_TO_CONST_STR"
  | "ARG_PTR_TO_TIMER"
  | "ARG_KPTR_XCHG_DEST"
  | "ARG_PTR_TO_DYNPTR";

/** `enum bpf_return_type` base values. */
export type RetBase =
  | "RET_INTEGER"
  | "RET_VOID"
  | "RET_PTR_TO_MAP_VALUE"
  | "RET_PTR_TO_SOCKET"
  | "RET_PTR_TO_TCP_SOCK"
  | "RET_PTR_TO_SOCK_COMMON"
  | "RET_PTR_TO_MEM"
  | "RET_PTR_TO_MEM_OR_BTF_ID"
  | "RET_PTR_TO_BTF_ID";

/**
 * `enum bpf_type_flag`: modifiers shared by argument, return and register
 * types. Since 6.12 the old ARG_PTR_TO_INT / ARG_PTR_TO_LONG are spelled
 * `ARG_PTR_TO_MEM | MEM_FIXED_SIZE | MEM_UNINIT | MEM_WRITE | MEM_ALIGNED`
 * with an `arg_size` of 4 or 8.
 */
export type TypeFlag =
  | "PTR_MAYBE_NULL"
  | "MEM_RDONLY"
  | "MEM_RINGBUF"
  | "MEM_USER"
  | "MEM_PERCPU"
  | "OBJ_RELEASE"
  | "PTR_UNTRUSTED"
  | "MEM_UNINIT"
  | "DYNPTR_TYPE_LOCAL"
  | "DYNPTR_TYPE_RINGBUF"
  | "MEM_FIXED_SIZE"
  | "MEM_ALLOC"
  | "PTR_TRUSTED"
  | "MEM_RCU"
  | "NON_OWN_REF"
  | "DYNPTR_TYPE_SKB"
  | "DYNPTR_TYPE_XDP"
  | "MEM_ALIGNED"
  | "MEM_WRITE";

/** One `argN_type` of a prototype: base plus flags (flags sorted as declared). */
export interface ArgType {
  /** The base argument kind. */
  readonly base: ArgBase;
  /** Modifier flags OR-ed into the kernel's value. */
  readonly flags: readonly TypeFlag[];
}

/** The `ret_type` of a prototype. */
export interface RetType {
  /** The base return kind. */
  readonly base: RetBase;
  /** Modifier flags (PTR_MAYBE_NULL, MEM_RINGBUF, PTR_TRUSTED …). */
  readonly flags: readonly TypeFlag[];
  /** `ret_btf_id`, as the kernel BTF struct name (e.g. `"task_struct"`). */
  readonly btfId?: string;
}

/** `struct bpf_func_proto`, minus the function pointer. */
export interface HelperProto {
  /** `enum bpf_func_id` value. */
  readonly id: number;
  /** Name as the verifier log prints it (`bpf_map_lookup_elem`). */
  readonly name: string;
  /** The kernel variable this mirrors (`bpf_xdp_sk_lookup_tcp_proto`); ids can have several. */
  readonly symbol: string;
  /** `gpl_only`: callable only from GPL-compatible programs. */
  readonly gplOnly: boolean;
  /** `pkt_access`: may be passed packet pointers directly. */
  readonly pktAccess: boolean;
  /** `might_sleep`: callable only from sleepable programs. */
  readonly mightSleep: boolean;
  /** `allow_fastcall`: the callee preserves caller-saved registers it does not use. */
  readonly allowFastcall: boolean;
  /** `ret_type` (+ `ret_btf_id`). */
  readonly ret: RetType;
  /** `arg1_type` … `arg5_type`; trailing ARG_DONTCARE entries are omitted. */
  readonly args: readonly ArgType[];
  /** `arg_size[i]` for MEM_FIXED_SIZE arguments (index = argument number − 1). */
  readonly argSizes?: readonly (number | undefined)[];
  /** `arg_btf_id[i]` as kernel BTF struct names, for ARG_PTR_TO_BTF_ID arguments. */
  readonly argBtfIds?: readonly (string | undefined)[];
  /**
   * The kernel's `allowed()` callback, by name (`bpf_d_path_allowed`,
   * `bpf_sk_storage_tracing_allowed`, `bpf_ima_inode_hash_allowed`).
   */
  readonly allowed?: string;
}

/** What the loading program looks like, for the checks that depend on it. */
export interface HelperCallOptions {
  /** `prog->gpl_compatible` (license is GPL-compatible). Default true. */
  readonly gplCompatible?: boolean;
  /** `prog->sleepable` (BPF_F_SLEEPABLE, `.s` sections). Default: true for syscall programs only. */
  readonly sleepable?: boolean;
  /** `expected_attach_type`, libbpf's name (`"trace_fentry"`, `"cgroup_inet4_connect"` …). */
  readonly attachType?: string;
  /** The BTF attach target (`fentry/NAME`, `lsm/NAME`): NAME. */
  readonly attachTarget?: string;
  /**
   * Loader capabilities (bpf_token_capable); default: all, as the oracle runs
   * as root. CAP_BPF and CAP_PERFMON gate tiers of bpf_base_func_proto();
   * CAP_SYS_ADMIN is carried for callers but no 6.18 chain consults it.
   */
  readonly caps?: {
    readonly bpf: boolean;
    readonly perfmon: boolean;
    readonly sysAdmin: boolean;
  };
  /** Kernel configuration; default {@link ORACLE_KERNEL_CONFIG}. */
  readonly config?: KernelConfig;
}

/** Outcome of {@link resolveHelperCall}: the prototype, or the kernel's log line. */
export type HelperCallResolution =
  | { readonly ok: true; readonly proto: HelperProto }
  | { readonly ok: false; readonly message: string };

/** Kernel build and boot facts that change which helpers exist. */
export interface KernelConfig {
  /** CONFIG_BPF_KPROBE_OVERRIDE (bpf_override_return). */
  readonly kprobeOverride: boolean;
  /** Lockdown LSM mode: integrity hides probe_write_user, confidentiality also probe_read_kernel. */
  readonly lockdown: "none" | "integrity" | "confidentiality";
}

/**
 * The oracle machine's kernel (6.18, lockdown=integrity, no kprobe override):
 * the default, so that the model agrees with `oracle verify` out of the box.
 */
export const ORACLE_KERNEL_CONFIG: KernelConfig = {
  kprobeOverride: false,
  lockdown: "integrity",
};

/** `__BPF_FUNC_MAX_ID` for 6.18: ids at or above it are `invalid func`. */
export const HELPER_ID_LIMIT: number = BPF_FUNC_MAX_ID;

const PROTOS_BY_SYMBOL: ReadonlyMap<string, HelperProto> = indexBySymbol(
  [
    ...MAP_PROTOS,
    ...RINGBUF_PROTOS,
    ...OBJECT_PROTOS,
    ...MISC_PROTOS,
    ...PROBE_PROTOS,
    ...TRACE_PROTOS,
    ...BTF_TRACE_PROTOS,
    ...LSM_PROTOS,
    ...SKB_PROTOS,
    ...REDIRECT_PROTOS,
    ...XDP_PROTOS,
    ...SOCK_PROTOS,
    ...SOCK_CTX_PROTOS,
  ],
);

function indexBySymbol(
  protos: readonly { symbol: string; proto: HelperProto }[],
): ReadonlyMap<string, HelperProto> {
  const bySymbol = new Map<string, HelperProto>();
  for (const { symbol, proto } of protos) {
    if (bySymbol.has(symbol)) {
      throw new Error(`helper table: ${symbol} defined twice`);
    }
    bySymbol.set(symbol, proto);
  }
  return bySymbol;
}

const CHAINS: Readonly<Record<string, Chain>> = {
  ...NET_CHAINS,
  ...TRACING_CHAINS,
};

/** Program types (libbpf names) whose `get_func_proto` chain is modelled. */
export const MODELLED_PROG_TYPES: readonly string[] = Object.keys(CHAINS);

function chainContext(progType: string, opts: HelperCallOptions): ChainContext {
  const config = opts.config ?? ORACLE_KERNEL_CONFIG;
  const caps = opts.caps ?? { bpf: true, perfmon: true, sysAdmin: true };
  return {
    progType,
    attachType: opts.attachType ?? "",
    attachTarget: opts.attachTarget ?? "",
    sleepable: opts.sleepable ?? progType === "syscall",
    capBpf: caps.bpf,
    capPerfmon: caps.perfmon,
    lockdownWriteUser: config.lockdown !== "none",
    lockdownReadKernel: config.lockdown === "confidentiality",
    kprobeOverride: config.kprobeOverride,
  };
}

/** A kernel prototype by its variable name (`bpf_skb_load_bytes_proto`), or null. */
export function protoBySymbol(symbol: string): HelperProto | null {
  return PROTOS_BY_SYMBOL.get(symbol) ?? null;
}

/** Every modelled kernel prototype, variants included. */
export function allHelperProtos(): readonly HelperProto[] {
  return [...PROTOS_BY_SYMBOL.values()];
}

/**
 * The prototype a program of `progType` (libbpf name) gets for helper `id`,
 * or null when that type's `get_func_proto` chain returns NULL (or the id is
 * out of range, or the type is not modelled). GPL, `allowed()` and
 * sleepability are not checked here; see {@link resolveHelperCall}.
 * @example
 * helperProto("xdp", 44)?.name; // "bpf_xdp_adjust_head"
 * helperProto("sched_cls", 44); // null
 */
export function helperProto(
  progType: string,
  id: number,
  opts: HelperCallOptions = {},
): HelperProto | null {
  if (!Number.isInteger(id) || id < 0 || id >= HELPER_ID_LIMIT) return null;
  const chain = CHAINS[progType];
  if (!chain) return null;
  const symbol = chain(id, chainContext(progType, opts));
  if (symbol === null) return null;
  const proto = PROTOS_BY_SYMBOL.get(symbol);
  if (!proto) {
    throw new Error(`helper table: chain names unknown prototype ${symbol}`);
  }
  return proto;
}

/** `func_id_name()` of kernel/bpf/disasm.c: `bpf_<name>`, or `unknown` out of range. */
export function funcIdName(id: number): string {
  return (id >= 0 && id < HELPER_ID_LIMIT ? helperName(id) : undefined) ??
    "unknown";
}

/**
 * Mirrors the opening checks of check_helper_call(), in the kernel's order:
 * id range (`invalid func`), the program type's chain (`program of this type
 * cannot use helper`), GPL, the proto's `allowed()`, and `might_sleep`.
 * Returns the prototype, or the verifier log line that rejects the call.
 * @example
 * resolveHelperCall("sched_cls", 44);
 * // { ok: false, message: "program of this type cannot use helper bpf_xdp_adjust_head#44" }
 */
export function resolveHelperCall(
  progType: string,
  id: number,
  opts: HelperCallOptions = {},
): HelperCallResolution {
  const name = funcIdName(id);
  if (!Number.isInteger(id) || id < 0 || id >= HELPER_ID_LIMIT) {
    return { ok: false, message: `invalid func ${name}#${id}` };
  }
  const proto = helperProto(progType, id, opts);
  if (!proto) {
    return {
      ok: false,
      message: `program of this type cannot use helper ${name}#${id}`,
    };
  }
  if (proto.gplOnly && opts.gplCompatible === false) {
    return {
      ok: false,
      message:
        "cannot call GPL-restricted function from non-GPL compatible program",
    };
  }
  const ctx = chainContext(progType, opts);
  if (proto.allowed && !(ALLOWED[proto.allowed]?.(ctx) ?? false)) {
    return { ok: false, message: "helper call is not allowed in probe" };
  }
  if (proto.mightSleep && !ctx.sleepable) {
    return {
      ok: false,
      message: "helper call might sleep in a non-sleepable prog",
    };
  }
  return { ok: true, proto };
}

/**
 * Mirrors check_get_func_ip(), which check_helper_call() runs for
 * bpf_get_func_ip after the arguments: null when allowed, else the log line.
 */
export function checkGetFuncIp(
  progType: string,
  opts: HelperCallOptions = {},
): string | null {
  const ctx = chainContext(progType, opts);
  if (progType === "tracing") {
    return hasTrampoline(ctx)
      ? null
      : "func bpf_get_func_ip#173 supported only for fentry/fexit/fmod_ret programs";
  }
  if (progType === "kprobe") return null;
  const num = (PROG_TYPE as Record<string, number>)[progType] ?? -1;
  return `func bpf_get_func_ip#173 not supported for program type ${num}`;
}

/** The generic prototype of helper `id` (its first modelled variant), whatever the program type. */
export function helperProtoById(id: number): HelperProto | null {
  for (const proto of PROTOS_BY_SYMBOL.values()) {
    if (proto.id === id) return proto;
  }
  return null;
}
