/**
 * Shared types of the context-access rules: what the verifier asks
 * (`is_valid_access(off, size, type, prog, info)`) and what the answer
 * carries (the fields of the kernel's `struct bpf_insn_access_aux`).
 * @module
 */

/** `enum bpf_access_type`: `BPF_READ` (a load) or `BPF_WRITE` (a store). */
export type CtxAccessType = "read" | "write";

/**
 * The register type a load from the context produces (`info->reg_type`).
 * Most fields load a `SCALAR_VALUE`; the packet pointers, socket pointers
 * and BTF-typed tracing arguments load pointers.
 */
export type CtxRegType =
  | "SCALAR_VALUE"
  | "PTR_TO_PACKET"
  | "PTR_TO_PACKET_META"
  | "PTR_TO_PACKET_END"
  | "PTR_TO_SOCK_COMMON_OR_NULL"
  | "PTR_TO_SOCKET_OR_NULL"
  | "PTR_TO_SOCKET"
  | "PTR_TO_FLOW_KEYS"
  | "PTR_TO_BTF_ID"
  | "PTR_TO_BTF_ID_OR_NULL"
  | "PTR_TO_TP_BUFFER"
  | "PTR_TO_BUF_OR_NULL"
  | "PTR_TO_RDONLY_BUF_OR_NULL";

/**
 * What the verifier knows about one argument of a BTF-typed tracing target
 * (fentry/fexit/fmod_ret/tp_btf/lsm), after skipping modifiers and typedefs.
 * Without vmlinux BTF the caller describes the target's prototype with these.
 */
export interface BtfCtxArg {
  /**
   * `"int"` (a small int, ≤ 8 bytes), `"enum"`, `"struct"` (passed by value,
   * read as scalar slots), `"ptr"` (pointer: loads PTR_TO_BTF_ID when it
   * points to a struct, a scalar otherwise), `"void"` (only as a return
   * type) or `"other"` (a type btf_ctx_access rejects, e.g. a float).
   */
  kind: "int" | "enum" | "struct" | "ptr" | "void" | "other";
  /** For `"ptr"`: the pointee is a struct (so the load is PTR_TO_BTF_ID). */
  pointsToStruct?: boolean;
  /** For `"ptr"`: the pointee's BTF type id, copied to the result. */
  btfId?: number;
  /** For `"ptr"`: the argument may be NULL (tagged `__nullable`, or a raw_tp arg). */
  nullable?: boolean;
  /** The type's BTF name (for log lines), e.g. `"task_struct"`. */
  typeName?: string;
  /**
   * Size in bytes (default 8): a by-value struct occupies ceil(size/8) u64
   * slots, anything else but a pointer or void one slot.
   */
  size?: number;
}

/** Optional facts about the program beyond its type. */
export interface CtxAccessOptions {
  /** libbpf's name of `prog->expected_attach_type` (`"cgroup_inet_egress"`, `"trace_fexit"` …). */
  expectedAttachType?: string;
  /**
   * The attach target's arguments (`prog->aux->attach_func_proto`), for
   * `tracing` and `lsm`. Absent: the kernel's fallback of
   * MAX_BPF_FUNC_REG_ARGS (5) scalar u64 slots.
   */
  btfCtxArgs?: readonly BtfCtxArg[];
  /**
   * The attach target's return type, for fexit/fmod_ret/lsm reading the
   * slot after the args. Absent: void (no slot).
   */
  btfCtxRet?: BtfCtxArg;
  /** The load is a sign-extending BPF_MEMSX (`info->is_ldsx`). */
  isLdsx?: boolean;
  /**
   * `bpf_capable()` of the loader (cgroup_skb needs it for packet pointers
   * and tstamp stores). Default true: the oracle loads as root.
   */
  bpfCapable?: boolean;
  /** The XDP program is bound to a device (`bpf_prog_is_dev_bound()`): it may store rx_queue_index. */
  devBound?: boolean;
  /**
   * For `ext` (freplace) programs: the program type of the program they
   * replace a function of, whose rule they follow (check_attach_btf_id()
   * swaps `env->ops` to the target's).
   */
  targetProgType?: string;
  /** The function name, only used in btf_ctx_access's log lines; a struct_ops program's member. */
  attachFuncName?: string;
  /** For `struct_ops`: the struct whose member the program implements (`tcp_congestion_ops`). */
  structOpsName?: string;
}

/** The access is allowed; the load yields `regType`. */
export interface CtxAccessAllowed {
  /** Discriminant. */
  ok: true;
  /** `info->reg_type`: what a load puts in the destination register. */
  regType: CtxRegType;
  /**
   * `info->ctx_field_size`: the size of the underlying field recorded by
   * `bpf_ctx_record_field_size()`, or 0 when none was recorded (then the
   * access is taken as it is, without narrow-load rewriting).
   */
  ctxFieldSize: number;
  /**
   * The field accepts loads narrower than `ctxFieldSize` (the rule called
   * `bpf_ctx_narrow_access_ok()`); `convert_ctx_accesses()` then widens the
   * load and shifts/masks it.
   */
  narrowAllowed: boolean;
  /** For PTR_TO_BTF_ID loads: the pointee's BTF id, when known. */
  btfId?: number;
  /** For PTR_TO_BTF_ID loads: the pointer is PTR_TRUSTED (`prog_args_trusted()`). */
  trusted?: boolean;
  /** For PTR_TO_BTF_ID loads: the pointee struct's name (no vmlinux BTF id here). */
  btfName?: string;
  /** The load reads an LSM hook's return value (`info->is_retval`). */
  isRetval?: boolean;
  /** Lines the rule logs on the way (btf_ctx_access's `arg%d has btf_id`). */
  log?: string[];
}

/** The access is refused: the verifier prints {@link CtxAccessDenied.log} lines then the generic message. */
export interface CtxAccessDenied {
  /** Discriminant. */
  ok: false;
  /** Lines the rule itself logs before the verifier's `invalid bpf_context access` (btf_ctx_access does). */
  log?: string[];
}

/** The answer of an `is_valid_access` callback. */
export type CtxAccessResult = CtxAccessAllowed | CtxAccessDenied;

/** The result every refusing rule returns. */
export const DENIED: CtxAccessDenied = Object.freeze({ ok: false });

/** A scalar load with no recorded field size. */
export function scalarAccess(): CtxAccessAllowed {
  return {
    ok: true,
    regType: "SCALAR_VALUE",
    ctxFieldSize: 0,
    narrowAllowed: false,
  };
}

/** A load of type `regType` with no recorded field size. */
export function pointerAccess(
  regType: CtxRegType,
  btfId?: number,
): CtxAccessAllowed {
  const r: CtxAccessAllowed = {
    ok: true,
    regType,
    ctxFieldSize: 0,
    narrowAllowed: false,
  };
  if (btfId !== undefined) r.btfId = btfId;
  return r;
}

/**
 * Mirrors `bpf_ctx_narrow_access_ok()`: a load narrower than the field is
 * fine when it is 1, 2, 4 or 8 bytes and no wider than the field. The
 * alignment `off % size == 0` is each caller's own check.
 */
export function narrowAccessOk(
  off: number,
  size: number,
  sizeDefault: number,
): boolean {
  void off; // the kernel takes it but only size matters (alignment is checked by callers)
  return size <= sizeDefault && (size & (size - 1)) === 0;
}

/**
 * A load of a scalar field of `fieldSize` bytes that may be read narrower
 * (`bpf_ctx_record_field_size()` + `bpf_ctx_narrow_access_ok()`).
 */
export function narrowableRead(
  off: number,
  size: number,
  fieldSize: number,
): CtxAccessResult {
  if (!narrowAccessOk(off, size, fieldSize)) return DENIED;
  return {
    ok: true,
    regType: "SCALAR_VALUE",
    ctxFieldSize: fieldSize,
    narrowAllowed: true,
  };
}
