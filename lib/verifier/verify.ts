/**
 * The verifier's public entry points: `verifyProgram()` runs the pre-pass
 * (`runPrePass()`), the main pass on the entry function, then every global
 * function it called (`do_check_main()` then `do_check_subprogs()`), then
 * `check_max_stack_depth()`, and reports the result with the fields the
 * oracle prints. `VerifierError` carries a rejection for callers that
 * prefer exceptions.
 * @module
 */
import type { BpfProgram, ObjectFile } from "../elf/types.ts";
import { BTF_LINKAGE_GLOBAL } from "../btf/types.ts";
import { runPrePass } from "./cfg.ts";
import { type ArgInit, doCheckCommon, MAIN_ARGS } from "./do_check.ts";
import { Env, VerifyAbort } from "./env.ts";
import { printVerificationStats, VerifierLog } from "./log.ts";
import { markRegPointer, markRegUnknown } from "./reg_state.ts";
import { PTR_MAYBE_NULL, PTR_TO_CTX, PTR_TO_MEM } from "./reg_types.ts";
import { CfgError, checkMaxStackDepth } from "./subprogs.ts";
import { checkStructOpsBtfId } from "./struct_ops.ts";
import { checkUsedMaps, isGplCompatible } from "./used_maps.ts";
import { explainRejection } from "./explain.ts";
import { fixupKfuncCalls, removeDeadCode } from "./fixup.ts";
import { structMetaAddress } from "../kernel/struct_meta_addr.ts";
import type { CallInsn, RawInsn } from "../isa/insn.ts";
import { type CallTraits, helperIdCallTraits } from "./insn_aux.ts";
import { KFUNCS } from "./kfunc_table.ts";
import { resolveKsyms } from "../elf/ksyms.ts";
import { LoadError } from "../elf/errors.ts";
import { kfuncBtfId, kfuncName } from "../kernel/kfunc_ids.ts";

/** Options of {@link verifyProgram}. */
export interface VerifyOptions {
  /** 0: only the decisive lines; 1: the failing path (default); 2: every path. */
  readonly logLevel?: 0 | 1 | 2;
}

/** One program's verdict, with the oracle's fields. */
export interface VerifyResult {
  /** The object's file name as given to `loadObject`. */
  readonly object: string;
  /** libbpf's program name. */
  readonly program: string;
  /** ELF section. */
  readonly section: string;
  /** The verdict. */
  readonly verdict: "accept" | "reject";
  /** 0, or the load's negative errno. */
  readonly errno: number;
  /** On reject, the decisive log line (last before the trailer); else "". */
  readonly message: string;
  /** `insn_processed`. */
  readonly processed: number;
  /** Program length in slots. */
  readonly insns: number;
  /** The whole log at the requested level, trailer included. */
  readonly log: string;
  /**
   * For rejections about references and locks: where the reference or lock
   * came from and the path to the failure (bpfsim's addition to the log).
   */
  readonly explain?: string;
  /**
   * For accepted programs: the program as rewritten after verification
   * (the graph kfuncs' arguments filled in, see fixup.ts), as
   * `bpftool prog dump xlated` would list it.
   */
  readonly xlated?: readonly RawInsn[];
  /**
   * For accepted programs that read iterator buffers: the furthest byte
   * accessed through read-only and writable `PTR_TO_BUF`
   * (`prog->aux->max_rdonly_access`, `max_rdwr_access`), which attaching
   * the iterator checks against the map's key and value sizes.
   */
  readonly bufAccess?: { readonly rdonly: number; readonly rdwr: number };
}

/** A rejection as an exception: program, slot and the kernel's message. */
export class VerifierError extends Error {
  /** The rejected program's name. */
  readonly program: string;
  /** Slot the verifier stopped at (-1 when not about one slot). */
  readonly insnIndex: number;
  /** The negative errno. */
  readonly errno: number;
  /** The log. */
  readonly log: string;

  /** Builds the error from a rejecting result. */
  constructor(result: VerifyResult, insnIndex: number) {
    super(`${result.program}: ${result.message}`);
    this.name = "VerifierError";
    this.program = result.program;
    this.insnIndex = insnIndex;
    this.errno = result.errno;
    this.log = result.log;
  }
}

// the struct a program type's context pointer points at, for global function args
const CTX_STRUCTS: Record<string, string> = {
  socket_filter: "__sk_buff",
  sched_cls: "__sk_buff",
  sched_act: "__sk_buff",
  cgroup_skb: "__sk_buff",
  xdp: "xdp_md",
  syscall: "",
};

// mirrors btf_prepare_func_args() for scalars, ctx and sized pointers
function globalFuncArgs(env: Env, obj: ObjectFile, typeId: number): ArgInit {
  const btf = obj.btf;
  return (regs) => {
    if (!btf) return;
    const fn = btf.typeById(typeId);
    if (fn.kind !== "FUNC") return;
    const proto = btf.typeById(fn.type);
    if (proto.kind !== "FUNC_PROTO") return;
    proto.params.forEach((p, i) => {
      const reg = regs[i + 1];
      if (!reg) return;
      const t = btf.resolve(p.type).type;
      if (t.kind !== "PTR") {
        markRegUnknown(reg);
        return;
      }
      const target = btf.resolve(t.type).type;
      if (target.name && target.name === CTX_STRUCTS[env.progType]) {
        markRegPointer(reg, PTR_TO_CTX);
        return;
      }
      markRegPointer(reg, PTR_TO_MEM | PTR_MAYBE_NULL);
      reg.memSize = target.kind === "VOID" ? 0 : btf.sizeOf(target.id);
      reg.id = env.newId();
    });
  };
}

/**
 * The return-type check of `btf_prepare_func_args()`, which do_check_common()
 * runs on the main function when it has BTF: not fatal there, but logged
 * for a global function returning neither an int nor an enum (a void
 * struct_ops member, say). The argument checks after it are not modelled.
 */
function checkMainFuncReturn(env: Env, obj: ObjectFile, typeId: number): void {
  const btf = obj.btf;
  if (!btf || !typeId) return;
  const fn = btf.typeById(typeId);
  if (fn.kind !== "FUNC" || fn.linkage !== BTF_LINKAGE_GLOBAL) return;
  const proto = btf.typeById(fn.type);
  if (proto.kind !== "FUNC_PROTO") return;
  const ret = proto.returnType === 0
    ? undefined
    : btf.resolve(proto.returnType).type;
  if (ret?.kind === "INT" || ret?.kind === "ENUM" || ret?.kind === "ENUM64") {
    return;
  }
  env.log.write(
    `Global function ${fn.name}() doesn't return scalar. Only those are supported.\n`,
  );
}

// the accepted program after fixup_kfunc_call()
function xlatedOf(program: BpfProgram, env: Env): readonly RawInsn[] {
  const live = removeDeadCode(program.raw, env.aux.seen);
  const aux = new Map(
    [...env.kfuncAux].map(([slot, a]) => [live.newIndex[slot], a]),
  );
  return fixupKfuncCalls(live.insns, aux, structMetaAddress).insns;
}

// the pre-pass's view of kfunc calls: iterator `next` (a forced checkpoint)
// and the callback-calling rbtree_add, besides what helper ids tell
function kfuncCallTraits(insn: CallInsn): CallTraits {
  const base = helperIdCallTraits(insn);
  if (insn.callee !== "kfunc" || insn.off !== 0) return base;
  const k = KFUNCS.get(kfuncName(insn.imm >>> 0) ?? "");
  return {
    ...base,
    iterNext: k?.iter?.op === "next",
    syncCallback: k?.name === "bpf_rbtree_add_impl",
  };
}

// the object with its kfunc calls resolved, once per object
const RESOLVED = new WeakMap<ObjectFile, ObjectFile>();

function withKsyms(obj: ObjectFile): ObjectFile {
  let resolved = RESOLVED.get(obj);
  if (!resolved) {
    resolved = resolveKsyms(obj, kfuncBtfId);
    RESOLVED.set(obj, resolved);
  }
  return resolved;
}

function result(
  obj: ObjectFile,
  program: BpfProgram,
  log: VerifierLog,
  errno: number,
  env: Env | null,
  depths: readonly number[],
): VerifyResult {
  const message = errno ? log.lastLine() : "";
  const explain = errno && env ? explainRejection(env, message) : undefined;
  const processed = env?.insnProcessed ?? 0;
  printVerificationStats(log, {
    stackDepths: depths,
    processed,
    maxStatesPerInsn: env?.maxStatesPerInsn ?? 0,
    totalStates: env?.totalStates ?? 0,
    peakStates: env?.peakStates ?? 0,
  });
  return {
    object: obj.file,
    program: program.name,
    section: program.section,
    verdict: errno ? "reject" : "accept",
    errno,
    message,
    processed,
    insns: program.raw.length,
    log: log.text,
    ...(explain ? { explain } : {}),
    ...(!errno && env ? { xlated: xlatedOf(program, env) } : {}),
    ...(!errno && env && (env.maxRdonlyAccess || env.maxRdwrAccess)
      ? { bufAccess: { rdonly: env.maxRdonlyAccess, rdwr: env.maxRdwrAccess } }
      : {}),
  };
}

/** Verifies one program of `obj` as the kernel would when libbpf loads it alone. */
export function verifyProgram(
  obj: ObjectFile,
  program: BpfProgram,
  options: VerifyOptions = {},
): VerifyResult {
  const level = options.logLevel ?? 1;
  if (program.decodeError) {
    const log = new VerifierLog(level);
    log.write(program.decodeError.reason + "\n");
    return result(obj, program, log, -22, null, [0]);
  }
  try {
    // libbpf resolves __ksym kfuncs against the kernel's BTF first
    obj = withKsyms(obj);
    program = obj.programs.find((p) => p.name === program.name) ?? program;
  } catch (e) {
    if (!(e instanceof LoadError)) throw e;
    const log = new VerifierLog(level);
    log.write(`load failed before verification: ${e.message}\n`);
    return result(obj, program, log, -22, null, [0]);
  }
  let pre;
  try {
    pre = runPrePass(program.insns, {
      bpfCapable: true,
      gplCompatible: isGplCompatible(obj.license),
      kfuncIsFunction: (id, off) => off !== 0 || kfuncName(id) !== undefined,
      callTraits: kfuncCallTraits,
      funcInfoInsnOffs: program.funcInfo?.map((f) => f.insnOff),
    });
  } catch (e) {
    if (!(e instanceof CfgError)) throw e;
    const log = new VerifierLog(level);
    for (const line of e.logLines) log.write(line + "\n");
    return result(obj, program, log, e.errno, null, [0]);
  }
  const env = new Env(obj, program, pre.layout, pre.aux, level);
  const funcType = (i: number) =>
    program.funcInfo?.find((f) => f.insnOff === pre.layout.subprogs[i].start)
      ?.typeId ?? 0;
  env.isGlobal = (i) => {
    const id = funcType(i);
    if (!id || !obj.btf || i === 0) return false;
    const t = obj.btf.typeById(id);
    return t.kind === "FUNC" && t.linkage === BTF_LINKAGE_GLOBAL;
  };
  env.funcName = (i) => {
    const id = funcType(i);
    return id && obj.btf ? obj.btf.typeById(id).name : "";
  };
  const depths = () => pre.layout.subprogs.map((s) => s.stackDepth);
  try {
    checkUsedMaps(env);
    if (env.progType === "struct_ops") {
      const refusal = checkStructOpsBtfId(env);
      if (refusal && refusal[1]) env.fail(refusal[0], refusal[1]);
      if (refusal) env.abort(refusal[0], "");
    }
    if (level) checkMainFuncReturn(env, obj, funcType(0));
    doCheckCommon(env, 0, MAIN_ARGS);
    const verified = new Set<number>();
    for (let again = true; again;) {
      again = false;
      for (const i of [...env.calledGlobals].sort((a, b) => a - b)) {
        if (verified.has(i)) continue;
        doCheckCommon(env, i, globalFuncArgs(env, obj, funcType(i)));
        if (level) {
          env.log.write(
            `Func#${i} ('${
              env.funcName(i)
            }') is safe for any args that match its prototype\n`,
          );
        }
        verified.add(i);
        again = true;
      }
    }
    checkMaxStackDepth(program.insns, pre.layout);
  } catch (e) {
    if (e instanceof VerifyAbort) {
      return result(obj, program, env.log, e.errno, env, depths());
    }
    if (e instanceof CfgError) {
      for (const line of e.logLines) env.log.write(line + "\n");
      return result(obj, program, env.log, e.errno, env, depths());
    }
    throw e;
  }
  return result(obj, program, env.log, 0, env, depths());
}

/** Verifies every program of `obj`, each alone, in libbpf's order. */
export function verifyObject(
  obj: ObjectFile,
  options: VerifyOptions = {},
): VerifyResult[] {
  return obj.programs.map((p) => verifyProgram(obj, p, options));
}

/** Throws a {@link VerifierError} when `r` is a rejection. */
export function assertAccepted(r: VerifyResult): void {
  if (r.verdict === "reject") throw new VerifierError(r, -1);
}
