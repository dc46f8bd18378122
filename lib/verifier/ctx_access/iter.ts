/**
 * Context rules of BPF iterator programs (`SEC("iter/<target>")`, tracing
 * programs of attach type `BPF_TRACE_ITER`): `btf_ctx_access()` over the
 * target's `bpf_iter_<target>()` prototype, with the target's
 * `ctx_arg_info` (kernel/bpf/map_iter.c, task_iter.c) overriding what some
 * arguments load — the element's key and value are `PTR_TO_BUF` (read-only
 * for the key), NULL in the final call, and the element pointer of the
 * `bpf_map` / `task` targets may be NULL.
 *
 * Without vmlinux BTF the prototypes are transcribed here
 * (`DEFINE_BPF_ITER_FUNC()` of the 6.18 sources); a target not listed keeps
 * the no-prototype fallback of `btfCtxAccess()`.
 * @module
 */
import { btfCtxAccess } from "./tracing.ts";
import type {
  BtfCtxArg,
  CtxAccessOptions,
  CtxAccessResult,
  CtxAccessType,
  CtxRegType,
} from "./types.ts";

/** `BPF_ITER_FUNC_PREFIX`: an iterator's attach function is `bpf_iter_<target>`. */
export const BPF_ITER_FUNC_PREFIX = "bpf_iter_";

/** What one `ctx_arg_info` entry makes a load of its offset yield. */
interface CtxArgInfo {
  readonly regType: CtxRegType;
  /** The pointee's struct, for PTR_TO_BTF_ID. */
  readonly btfName?: string;
}

/** An iterator target: its prototype and `ctx_arg_info` by context offset. */
interface IterTarget {
  readonly args: readonly BtfCtxArg[];
  readonly argInfo: Readonly<Record<number, CtxArgInfo>>;
}

const structPtr = (typeName: string): BtfCtxArg => ({
  kind: "ptr",
  pointsToStruct: true,
  typeName,
});
const VOID_PTR: BtfCtxArg = Object.freeze({ kind: "ptr", typeName: "void" });
const META = structPtr("bpf_iter_meta");

/** The targets bpfsim runs (lib/kernel/hooks/iter/bpf_iter.ts), by target name. */
const ITER_TARGETS: Readonly<Record<string, IterTarget>> = Object.freeze({
  // kernel/bpf/map_iter.c: bpf_map_elem_reg_info
  bpf_map_elem: {
    args: [META, structPtr("bpf_map"), VOID_PTR, VOID_PTR],
    argInfo: {
      16: { regType: "PTR_TO_RDONLY_BUF_OR_NULL" },
      24: { regType: "PTR_TO_BUF_OR_NULL" },
    },
  },
  // kernel/bpf/map_iter.c: bpf_map_reg_info
  bpf_map: {
    args: [META, structPtr("bpf_map")],
    argInfo: { 8: { regType: "PTR_TO_BTF_ID_OR_NULL", btfName: "bpf_map" } },
  },
  // kernel/bpf/task_iter.c: task_reg_info
  task: {
    args: [META, structPtr("task_struct")],
    argInfo: {
      8: { regType: "PTR_TO_BTF_ID_OR_NULL", btfName: "task_struct" },
    },
  },
});

/** Whether bpfsim knows iterator target `name` (`bpf_map_elem`, `bpf_map`, `task`). */
export function isKnownIterTarget(name: string): boolean {
  return Object.hasOwn(ITER_TARGETS, name);
}

/**
 * Mirrors `btf_ctx_access()` for an iterator program whose section names
 * target `opts.attachFuncName` (`bpf_map_elem`, …): the prototype's
 * checks first, then the target's `ctx_arg_info` for the offset.
 */
export function iterCtxAccess(
  off: number,
  size: number,
  type: CtxAccessType,
  opts: CtxAccessOptions = {},
): CtxAccessResult {
  const name = opts.attachFuncName ?? "";
  const target = isKnownIterTarget(name) ? ITER_TARGETS[name] : undefined;
  if (target === undefined) return btfCtxAccess(off, size, type, opts);
  const base = btfCtxAccess(off, size, type, {
    ...opts,
    btfCtxArgs: target.args,
    attachFuncName: BPF_ITER_FUNC_PREFIX + name,
  });
  if (!base.ok) return base;
  const info = Object.hasOwn(target.argInfo, off)
    ? target.argInfo[off]
    : undefined;
  if (info !== undefined) {
    return {
      ok: true,
      regType: info.regType,
      ctxFieldSize: 0,
      narrowAllowed: false,
      trusted: true,
      ...(info.btfName ? { btfName: info.btfName } : {}),
    };
  }
  const arg = target.args[off / 8];
  return arg?.pointsToStruct && arg.typeName
    ? { ...base, btfName: arg.typeName }
    : base;
}
