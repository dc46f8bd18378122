/**
 * Builders for the helper tables: spell a `struct bpf_func_proto` in a line.
 * @module
 */
import { helperName } from "../isa/helper_ids.ts";
import type {
  ArgBase,
  ArgType,
  HelperProto,
  RetBase,
  RetType,
  TypeFlag,
} from "./helper_protos.ts";

/** Flag order of `enum bpf_type_flag`, so equal types compare equal. */
const FLAG_ORDER: readonly TypeFlag[] = [
  "PTR_MAYBE_NULL",
  "MEM_RDONLY",
  "MEM_RINGBUF",
  "MEM_USER",
  "MEM_PERCPU",
  "OBJ_RELEASE",
  "PTR_UNTRUSTED",
  "MEM_UNINIT",
  "DYNPTR_TYPE_LOCAL",
  "DYNPTR_TYPE_RINGBUF",
  "MEM_FIXED_SIZE",
  "MEM_ALLOC",
  "PTR_TRUSTED",
  "MEM_RCU",
  "NON_OWN_REF",
  "DYNPTR_TYPE_SKB",
  "DYNPTR_TYPE_XDP",
  "MEM_ALIGNED",
  "MEM_WRITE",
];

function sortFlags(flags: readonly TypeFlag[]): readonly TypeFlag[] {
  return [...new Set(flags)].sort((a, b) =>
    FLAG_ORDER.indexOf(a) - FLAG_ORDER.indexOf(b)
  );
}

/** An argument type: base plus flags. */
export function arg(base: ArgBase, ...flags: TypeFlag[]): ArgType {
  return { base, flags: sortFlags(flags) };
}

/** A return type; `btfId` names the kernel struct of `ret_btf_id`. */
export function ret(
  base: RetBase,
  flags: TypeFlag[] = [],
  btfId?: string,
): RetType {
  return btfId === undefined
    ? { base, flags: sortFlags(flags) }
    : { base, flags: sortFlags(flags), btfId };
}

// The kernel's composite names (include/linux/bpf.h), for readable tables.
/** ARG_CONST_MAP_PTR */
export const MAP: ArgType = arg("ARG_CONST_MAP_PTR");
/** ARG_PTR_TO_MAP_KEY */
export const KEY: ArgType = arg("ARG_PTR_TO_MAP_KEY");
/** ARG_PTR_TO_MAP_VALUE */
export const VALUE: ArgType = arg("ARG_PTR_TO_MAP_VALUE");
/** ARG_PTR_TO_MAP_VALUE_OR_NULL */
export const VALUE_OR_NULL: ArgType = arg(
  "ARG_PTR_TO_MAP_VALUE",
  "PTR_MAYBE_NULL",
);
/** ARG_ANYTHING */
export const ANY: ArgType = arg("ARG_ANYTHING");
/** ARG_PTR_TO_CTX */
export const CTX: ArgType = arg("ARG_PTR_TO_CTX");
/** ARG_PTR_TO_CTX_OR_NULL */
export const CTX_OR_NULL: ArgType = arg("ARG_PTR_TO_CTX", "PTR_MAYBE_NULL");
/** ARG_PTR_TO_MEM | MEM_RDONLY: memory the helper only reads. */
export const MEM_RO: ArgType = arg("ARG_PTR_TO_MEM", "MEM_RDONLY");
/** ARG_PTR_TO_MEM | PTR_MAYBE_NULL | MEM_RDONLY */
export const MEM_RO_OR_NULL: ArgType = arg(
  "ARG_PTR_TO_MEM",
  "PTR_MAYBE_NULL",
  "MEM_RDONLY",
);
/** ARG_PTR_TO_MEM | MEM_WRITE: memory read and written (must be initialized). */
export const MEM_RW: ArgType = arg("ARG_PTR_TO_MEM", "MEM_WRITE");
/** ARG_PTR_TO_UNINIT_MEM = ARG_PTR_TO_MEM | MEM_UNINIT | MEM_WRITE (6.12+). */
export const UNINIT_MEM: ArgType = arg(
  "ARG_PTR_TO_MEM",
  "MEM_UNINIT",
  "MEM_WRITE",
);
/** ARG_CONST_SIZE */
export const SIZE: ArgType = arg("ARG_CONST_SIZE");
/** ARG_CONST_SIZE_OR_ZERO */
export const SIZE_OR_ZERO: ArgType = arg("ARG_CONST_SIZE_OR_ZERO");
/**
 * The former ARG_PTR_TO_LONG / ARG_PTR_TO_INT (removed in 6.12): fixed-size,
 * aligned, written-only memory; pair it with an `argSizes` entry of 8 or 4.
 */
export const FIXED_OUT: ArgType = arg(
  "ARG_PTR_TO_MEM",
  "MEM_FIXED_SIZE",
  "MEM_UNINIT",
  "MEM_WRITE",
  "MEM_ALIGNED",
);
/** ARG_PTR_TO_FUNC */
export const FUNC: ArgType = arg("ARG_PTR_TO_FUNC");
/** ARG_PTR_TO_STACK_OR_NULL */
export const STACK_OR_NULL: ArgType = arg("ARG_PTR_TO_STACK", "PTR_MAYBE_NULL");
/** ARG_PTR_TO_BTF_ID_SOCK_COMMON */
export const BTF_SOCK_COMMON: ArgType = arg("ARG_PTR_TO_BTF_ID_SOCK_COMMON");
/** ARG_PTR_TO_BTF_ID (pair with an `argBtfIds` entry) */
export const BTF_ID: ArgType = arg("ARG_PTR_TO_BTF_ID");
/** ARG_PTR_TO_BTF_ID_OR_NULL */
export const BTF_ID_OR_NULL: ArgType = arg(
  "ARG_PTR_TO_BTF_ID",
  "PTR_MAYBE_NULL",
);
/** ARG_PTR_TO_SOCK_COMMON */
export const SOCK_COMMON: ArgType = arg("ARG_PTR_TO_SOCK_COMMON");

/** RET_INTEGER */
export const INTEGER: RetType = ret("RET_INTEGER");
/** RET_VOID */
export const VOID: RetType = ret("RET_VOID");

/** The optional parts of a prototype, as the tables write them. */
export interface ProtoSpec {
  /** `gpl_only` */
  readonly gpl?: boolean;
  /** `pkt_access` */
  readonly pkt?: boolean;
  /** `might_sleep` */
  readonly sleeps?: boolean;
  /** `allow_fastcall` */
  readonly fastcall?: boolean;
  /** `ret_type`; RET_INTEGER when absent. */
  readonly ret?: RetType;
  /** `argN_type`, in order. */
  readonly args?: readonly ArgType[];
  /** `argN_size` by argument index (0-based). */
  readonly sizes?: Readonly<Record<number, number>>;
  /** `argN_btf_id` struct names by argument index (0-based). */
  readonly btf?: Readonly<Record<number, string>>;
  /** Kernel `allowed()` callback, by the name of the rule in helper_protos.ts. */
  readonly allowed?: string;
}

/** A prototype keyed by its kernel symbol (`bpf_map_lookup_elem_proto`). */
export interface NamedProto {
  /** The kernel's `struct bpf_func_proto` variable name. */
  readonly symbol: string;
  /** The prototype. */
  readonly proto: HelperProto;
}

function spread(
  n: number,
  by: Readonly<Record<number, number | string>> | undefined,
) {
  if (!by) return undefined;
  const out: (number | string | undefined)[] = [];
  for (let i = 0; i < n; i++) out.push(by[i]);
  return out;
}

/** Builds one prototype; the printed name comes from the helper id. */
export function proto(
  symbol: string,
  id: number,
  spec: ProtoSpec = {},
): NamedProto {
  const args = spec.args ?? [];
  const base: HelperProto = {
    id,
    name: helperName(id) ?? `unknown#${id}`,
    symbol,
    gplOnly: spec.gpl ?? false,
    pktAccess: spec.pkt ?? false,
    mightSleep: spec.sleeps ?? false,
    allowFastcall: spec.fastcall ?? false,
    ret: spec.ret ?? INTEGER,
    args,
    ...(spec.sizes
      ? { argSizes: spread(args.length, spec.sizes) as (number | undefined)[] }
      : {}),
    ...(spec.btf
      ? { argBtfIds: spread(args.length, spec.btf) as (string | undefined)[] }
      : {}),
    ...(spec.allowed ? { allowed: spec.allowed } : {}),
  };
  return { symbol, proto: base };
}
