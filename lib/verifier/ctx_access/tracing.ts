/**
 * Context rules of the tracing program types (kernel/trace/bpf_trace.c,
 * include/linux/bpf.h, kernel/bpf/btf.c): kprobe (`struct pt_regs`),
 * tracepoint (the perf trace record), raw_tracepoint (u64 args), perf_event
 * (`struct bpf_perf_event_data`) and the BTF-typed tracing/lsm programs
 * (`btf_ctx_access()` over the target's prototype).
 *
 * Sizes are x86_64's: the oracle machine is x86_64.
 * @module
 */

import {
  type BtfCtxArg,
  type CtxAccessOptions,
  type CtxAccessResult,
  type CtxAccessType,
  DENIED,
  narrowableRead,
  pointerAccess,
  scalarAccess,
} from "./types.ts";

/** `sizeof(struct pt_regs)` on x86_64: 21 unsigned longs. */
export const PT_REGS_SIZE = 168;

/** `PERF_MAX_TRACE_SIZE` (include/linux/trace_events.h): the largest tracepoint record. */
export const PERF_MAX_TRACE_SIZE = 8192;

/** `MAX_BPF_FUNC_ARGS`: a raw_tp/tracing context holds this many u64 slots. */
export const MAX_BPF_FUNC_ARGS = 12;

/** `MAX_BPF_FUNC_REG_ARGS`: the slots a tracing program gets when the target has no prototype. */
export const MAX_BPF_FUNC_REG_ARGS = 5;

/** `offsetof(struct bpf_perf_event_data, …)` on x86_64 (`regs` is a `struct pt_regs`). */
export const PERF_EVENT_DATA_OFFSETS: Readonly<Record<string, number>> = Object
  .freeze({
    regs: 0,
    sample_period: PT_REGS_SIZE,
    addr: PT_REGS_SIZE + 8,
  });

/** `sizeof(struct bpf_perf_event_data)` on x86_64. */
export const PERF_EVENT_DATA_SIZE: number = PT_REGS_SIZE + 16;

/**
 * Mirrors `kprobe_prog_is_valid_access()`: aligned loads inside `pt_regs`,
 * no stores (6.18 refuses them, as the oracle shows).
 */
export function kprobeIsValidAccess(
  off: number,
  size: number,
  type: CtxAccessType,
): CtxAccessResult {
  if (off < 0 || off >= PT_REGS_SIZE) return DENIED;
  if (type !== "read") return DENIED;
  if (off % size !== 0) return DENIED;
  // Kept for 32-bit: a u64 load of the last u32 member would overrun.
  if (off + size > PT_REGS_SIZE) return DENIED;
  return scalarAccess();
}

/**
 * Mirrors `tp_prog_is_valid_access()`: loads from the trace record, minus
 * its first 8 bytes (the hidden `struct pt_regs *` the tp helpers use).
 * Whether the record really is that long is checked at attach time against
 * `prog->aux->max_ctx_offset`, not here.
 */
export function tracepointIsValidAccess(
  off: number,
  size: number,
  type: CtxAccessType,
): CtxAccessResult {
  if (off < 8 || off >= PERF_MAX_TRACE_SIZE) return DENIED;
  if (type !== "read") return DENIED;
  if (off % size !== 0) return DENIED;
  return scalarAccess();
}

/** Mirrors `bpf_tracing_ctx_access()` (raw_tp_prog_is_valid_access()): aligned loads of the 12 u64 arg slots. */
export function rawTracepointIsValidAccess(
  off: number,
  size: number,
  type: CtxAccessType,
): CtxAccessResult {
  if (off < 0 || off >= 8 * MAX_BPF_FUNC_ARGS) return DENIED;
  if (type !== "read") return DENIED;
  if (off % size !== 0) return DENIED;
  return scalarAccess();
}

/** Mirrors `raw_tp_writable_prog_is_valid_access()`: slot 0 is the writable tracepoint buffer. */
export function rawTracepointWritableIsValidAccess(
  off: number,
  size: number,
  type: CtxAccessType,
): CtxAccessResult {
  if (off === 0) {
    if (size !== 8 || type !== "read") return DENIED;
    const base = rawTracepointIsValidAccess(off, size, type);
    return base.ok ? pointerAccess("PTR_TO_TP_BUFFER") : base;
  }
  return rawTracepointIsValidAccess(off, size, type);
}

/**
 * Mirrors `pe_prog_is_valid_access()` on a 64-bit kernel: `regs` words are
 * loaded whole (8 bytes); `sample_period` and `addr` are u64 fields that may
 * be loaded narrower.
 */
export function perfEventIsValidAccess(
  off: number,
  size: number,
  type: CtxAccessType,
): CtxAccessResult {
  const o = PERF_EVENT_DATA_OFFSETS;
  if (off < 0 || off >= PERF_EVENT_DATA_SIZE) return DENIED;
  if (type !== "read") return DENIED;
  // (32-bit kernels also accept a u64 load at off % 8 == 4 of a regs word.)
  if (off % size !== 0) return DENIED;
  const inU64 = (start: number) => off >= start && off < start + 8;
  if (inU64(o.sample_period) || inU64(o.addr)) {
    return narrowableRead(off, size, 8);
  }
  return size === 8 ? scalarAccess() : DENIED;
}

/**
 * Mirrors `bpf_tracing_btf_ctx_access()` = `bpf_tracing_ctx_access()` +
 * `btf_ctx_access()`, for `tracing` (fentry/fexit/fmod_ret/tp_btf/iter),
 * `lsm` and `struct_ops` (bpf_tcp_ca_is_valid_access()) programs. The target's prototype comes from `opts.btfCtxArgs` /
 * `opts.btfCtxRet` (no vmlinux BTF here); without it the kernel's fallback
 * applies: 5 u64 scalar slots (and the return slot for fexit/lsm).
 *
 * Not modelled: iterator `ctx_arg_info` (PTR_TO_BUF / per-offset btf ids),
 * `tgt_prog` translation for freplace/fentry-on-BPF, type tags (`__user`,
 * `__percpu`), the raw_tp IS_ERR table, bpf_lsm_is_trusted()'s exceptions —
 * the caller's BtfCtxArg (`nullable`, `pointsToStruct`) stands for them.
 */
export function btfCtxAccess(
  off: number,
  size: number,
  type: CtxAccessType,
  opts: CtxAccessOptions = {},
  progType: "tracing" | "lsm" | "struct_ops" = "tracing",
): CtxAccessResult {
  const base = rawTracepointIsValidAccess(off, size, type);
  if (!base.ok) return base;
  const name = opts.attachFuncName ?? "";
  const refuse = (line: string): CtxAccessResult => ({
    ok: false,
    log: [line],
  });
  if (off % 8 !== 0) {
    return refuse(`func '${name}' offset ${off} is not multiple of 8`);
  }

  const args = opts.btfCtxArgs;
  const nrArgs = args ? args.length : MAX_BPF_FUNC_REG_ARGS;
  // tp_btf targets are btf_trace_<tp>(void *__data, args…): the kernel sizes
  // the slots over the whole prototype, then skips __data when indexing.
  const slots = args && opts.expectedAttachType === "trace_raw_tp"
    ? [{ kind: "ptr" } as const, ...args]
    : args;
  const arg = slots ? ctxArgIndex(slots, opts.btfCtxRet, off) : off / 8;
  const missing = () =>
    refuse(`func '${name}' doesn't have ${arg + 1}-th argument`);
  if (arg > nrArgs) return missing();

  let t: BtfCtxArg;
  let isRetval = false;
  if (arg === nrArgs) {
    switch (opts.expectedAttachType) {
      case "lsm_mac":
      case "lsm_cgroup":
      case "trace_fexit":
        // lsm_mac marks the load so the verifier bounds it by the hook's return range
        isRetval = opts.expectedAttachType === "lsm_mac";
        // LSM hooks return void or int; the check is not done here.
        if (!args) {
          return isRetval ? { ...scalarAccess(), isRetval } : scalarAccess();
        }
        t = opts.btfCtxRet ?? { kind: "void" };
        break;
      case "modify_return":
        if (!args) return DENIED;
        t = opts.btfCtxRet ?? { kind: "void" };
        if (t.kind !== "int") {
          return refuse(`ret type ${btfKindName(t)} not allowed for fmod_ret`);
        }
        break;
      default:
        return missing();
    }
  } else {
    if (!args) return scalarAccess();
    t = args[arg];
  }

  if (t.kind === "int" || t.kind === "enum" || t.kind === "struct") {
    return isRetval ? { ...scalarAccess(), isRetval } : scalarAccess();
  }
  if (t.kind !== "ptr") {
    return refuse(
      `func '${name}' arg${arg} '${t.typeName ?? ""}' has type ${
        btfKindName(t)
      }. Only pointer access is allowed`,
    );
  }
  // A pointer is loaded whole (a late-2024 fix for partial raw_tp pointer loads).
  if (size !== 8) return refuse(`func '${name}' size ${size} must be 8`);
  // void *, pointers to ints and multilevel pointers are scalars: no walking.
  if (!t.pointsToStruct) return scalarAccess();
  const result = pointerAccess(
    t.nullable ? "PTR_TO_BTF_ID_OR_NULL" : "PTR_TO_BTF_ID",
    t.btfId,
  );
  if (progArgsTrusted(progType, opts.expectedAttachType)) result.trusted = true;
  // stands for info->btf_id: the struct a helper's arg_btf_id is matched with
  if (t.typeName !== undefined) result.btfName = t.typeName;
  // the kernel logs every struct argument's id; bpfsim knows few of them
  if (t.btfId !== undefined) {
    result.log = [
      `func '${name}' arg${arg} has btf_id ${t.btfId} type STRUCT '${
        t.typeName ?? ""
      }'`,
    ];
  }
  return result;
}

/**
 * Mirrors `prog_args_trusted()`: tp_btf and iterator arguments are
 * PTR_TRUSTED; so are LSM hook arguments (the kernel excludes a few hooks
 * in bpf_lsm_is_trusted(), not modelled) and struct_ops member arguments.
 */
function progArgsTrusted(
  progType: "tracing" | "lsm" | "struct_ops",
  attachType: string | undefined,
): boolean {
  if (progType === "lsm" || progType === "struct_ops") return true;
  return attachType === "trace_raw_tp" || attachType === "trace_iter";
}

/**
 * Mirrors `btf_ctx_arg_idx()`: which argument an offset falls in, when
 * by-value structs take `ceil(size / 8)` slots. `args.length` means the
 * return-value slot (none for a void function), beyond it nothing.
 */
function ctxArgIndex(
  args: readonly BtfCtxArg[],
  ret: BtfCtxArg | undefined,
  off: number,
): number {
  let end = 0;
  for (let i = 0; i < args.length; i++) {
    end += slotBytes(args[i]);
    if (off < end) return i;
  }
  end += slotBytes(ret ?? { kind: "void" });
  return off < end ? args.length : args.length + 1;
}

/**
 * Bytes an argument occupies in the context: pointers 8, void 0 (its BTF
 * size), others their size rounded up to 8 (8 when not given).
 */
function slotBytes(a: BtfCtxArg): number {
  if (a.kind === "ptr") return 8;
  if (a.kind === "void") return 0;
  return Math.ceil((a.size ?? 8) / 8) * 8;
}

/** `btf_kind_str[]` for the kinds a BtfCtxArg can name. */
function btfKindName(a: BtfCtxArg): string {
  switch (a.kind) {
    case "int":
      return "INT";
    case "enum":
      return "ENUM";
    case "struct":
      return "STRUCT";
    case "ptr":
      return "PTR";
    case "void":
      return "UNKN";
    case "other":
      return "FLOAT";
  }
}
