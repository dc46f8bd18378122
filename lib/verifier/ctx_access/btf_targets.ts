/**
 * Prototypes of a few kernel attach targets, standing in for vmlinux BTF
 * (`prog->aux->attach_func_proto`) when `btf_ctx_access()` needs to know a
 * BTF-typed tracing program's arguments. Only targets the test programs use
 * are listed; any other target keeps the kernel's no-prototype fallback.
 *
 * Transcribed from the 6.18 sources: TP_PROTO() of include/trace/events/
 * (tp_btf targets, without the hidden `void *__data`), the function
 * definitions in fs/, net/core/filter.c and net/bpf/test_run.c, and LSM_HOOK() of
 * include/linux/lsm_hook_defs.h.
 * @module
 */
import type { BtfCtxArg } from "./types.ts";

/** The arguments and return type of one attach target. */
export interface BtfTargetProto {
  /** The arguments in order (a by-value struct gives its `size`). */
  readonly args: readonly BtfCtxArg[];
  /** The return type (`{ kind: "void" }` for none). */
  readonly ret: BtfCtxArg;
}

const structPtr = (typeName: string): BtfCtxArg => ({
  kind: "ptr",
  pointsToStruct: true,
  typeName,
});
const int = (typeName: string, size = 8): BtfCtxArg => ({
  kind: "int",
  typeName,
  size,
});
const VOID: BtfCtxArg = Object.freeze({ kind: "void" });
const INT: BtfCtxArg = Object.freeze(int("int", 4));

/** tp_btf targets: the tracepoint's TP_PROTO(). */
const RAW_TP_PROTOS: Readonly<Record<string, BtfTargetProto>> = Object.freeze({
  // include/trace/events/sched.h
  sched_switch: {
    args: [
      int("bool", 1),
      structPtr("task_struct"),
      structPtr("task_struct"),
      int("unsigned int", 4),
    ],
    ret: VOID,
  },
  // include/trace/events/syscalls.h
  sys_enter: { args: [structPtr("pt_regs"), int("long")], ret: VOID },
  sys_exit: { args: [structPtr("pt_regs"), int("long")], ret: VOID },
  // include/trace/events/skb.h; rx_sk may be NULL (btf.c raw_tp_null_args)
  kfree_skb: {
    args: [
      structPtr("sk_buff"),
      { kind: "ptr", typeName: "void" },
      { kind: "enum", typeName: "skb_drop_reason", size: 4 },
      { ...structPtr("sock"), nullable: true },
    ],
    ret: VOID,
  },
  consume_skb: {
    args: [structPtr("sk_buff"), { kind: "ptr", typeName: "void" }],
    ret: VOID,
  },
});

/** fentry/fexit/fmod_ret targets: the kernel function's prototype. */
const FUNC_PROTOS: Readonly<Record<string, BtfTargetProto>> = Object.freeze({
  // net/bpf/test_run.c
  bpf_fentry_test1: { args: [int("int", 4)], ret: INT },
  bpf_modify_return_test: {
    args: [int("int", 4), { kind: "ptr", typeName: "int" }],
    ret: INT,
  },
  // net/core/filter.c
  xdp_do_redirect: {
    args: [
      structPtr("net_device"),
      structPtr("xdp_buff"),
      structPtr("bpf_prog"),
    ],
    ret: INT,
  },
  // fs/namei.c
  do_unlinkat: { args: [int("int", 4), structPtr("filename")], ret: INT },
});

/** LSM hooks: `LSM_HOOK(ret, default, name, args…)`. */
const LSM_PROTOS: Readonly<Record<string, BtfTargetProto>> = Object.freeze({
  file_open: { args: [structPtr("file")], ret: INT },
  inode_permission: { args: [structPtr("inode"), INT], ret: INT },
  inode_create: {
    args: [structPtr("inode"), structPtr("dentry"), int("umode_t", 2)],
    ret: INT,
  },
  bprm_creds_for_exec: { args: [structPtr("linux_binprm")], ret: INT },
  bprm_committed_creds: { args: [structPtr("linux_binprm")], ret: VOID },
});

/**
 * The prototype of attach target `name` for a program of libbpf attach type
 * `attachType` (`trace_raw_tp`, `trace_fentry`, `trace_fexit`,
 * `modify_return`, `lsm_mac`), or undefined when it is not listed.
 */
export function knownBtfTarget(
  attachType: string | undefined,
  name: string | undefined,
): BtfTargetProto | undefined {
  if (!name) return undefined;
  const table = tableFor(attachType);
  return table && Object.hasOwn(table, name) ? table[name] : undefined;
}

function tableFor(
  attachType: string | undefined,
): Readonly<Record<string, BtfTargetProto>> | undefined {
  switch (attachType) {
    case "trace_raw_tp":
      return RAW_TP_PROTOS;
    case "trace_fentry":
    case "trace_fexit":
    case "modify_return":
      return FUNC_PROTOS;
    case "lsm_mac":
      return LSM_PROTOS;
    default:
      return undefined;
  }
}
