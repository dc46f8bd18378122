/**
 * Helper arguments: `check_func_arg()` for the argument kinds of
 * helper_protos.ts — register types (`compatible_reg_types[]`, in
 * helper_arg_reg_types.ts), map keys and values, memory and size pairs
 * (`check_helper_mem_access()`, in check_helper_mem.ts), the
 * constant array key that makes a lookup non-NULL — plus the prototypes
 * used for map element helpers until helper_protos.ts knows them.
 * @module
 */
import { checkKnownBtfArg } from "./check_buf_access.ts";
import type { BtfField } from "../btf/field_types.ts";
import { processSpinLock } from "./graph_state.ts";
import { processDynptrArg } from "./dynptr.ts";
import { mapKptrMatchType, processKptrFunc } from "./kptr.ts";
import { helperName } from "../isa/helper_ids.ts";
import { checkRegArg } from "./check_alu.ts";
import { checkHelperMem } from "./check_helper_mem.ts";
import { checkRegType, COMPATIBLE_REG_TYPES } from "./helper_arg_reg_types.ts";
import { EACCES, EINVAL, type Env } from "./env.ts";
import type { ArgType, HelperProto } from "./helper_protos.ts";
import { registerIsNull, type RegState } from "./reg_state.ts";
import {
  PTR_TO_STACK,
  SCALAR_VALUE,
  typeIsPktPointer,
  typeMayBeNull,
} from "./reg_types.ts";
import { mayAccessDirectPktData } from "./check_mem.ts";
import { curFrame, STACK_SPILL, STACK_ZERO } from "./state.ts";
import { checkMapArg } from "./map_compat.ts";
import { tnumIsConst } from "./tnum.ts";

/** Helper ids with verifier-side state of their own. */
const BPF_FUNC_SPIN_LOCK = 93;
const BPF_FUNC_KPTR_XCHG = 194;

const BPF_MAX_VAR_SIZ = 1 << 29;
const BPF_MAP_TYPE_ARRAY = 2;
const BPF_MAP_TYPE_PERCPU_ARRAY = 6;
const BPF_MAP_TYPE_SOCKMAP = 15;
const BPF_MAP_TYPE_SOCKHASH = 18;

const A = (base: ArgType["base"], ...flags: ArgType["flags"][number][]) => ({
  base,
  flags,
});

/** Prototypes used until helper_protos.ts knows a helper (map element helpers). */
export const FALLBACK_PROTOS: Record<number, HelperProto> = {
  1: proto(1, { base: "RET_PTR_TO_MAP_VALUE", flags: ["PTR_MAYBE_NULL"] }, [
    A("ARG_CONST_MAP_PTR"),
    A("ARG_PTR_TO_MAP_KEY"),
  ]),
  2: proto(2, { base: "RET_INTEGER", flags: [] }, [
    A("ARG_CONST_MAP_PTR"),
    A("ARG_PTR_TO_MAP_KEY"),
    A("ARG_PTR_TO_MAP_VALUE"),
    A("ARG_ANYTHING"),
  ]),
  3: proto(3, { base: "RET_INTEGER", flags: [] }, [
    A("ARG_CONST_MAP_PTR"),
    A("ARG_PTR_TO_MAP_KEY"),
  ]),
};

function proto(
  id: number,
  ret: HelperProto["ret"],
  args: ArgType[],
): HelperProto {
  return {
    id,
    name: helperName(id) ?? `#${id}`,
    symbol: `bpf_${helperName(id) ?? id}_proto`,
    gplOnly: false,
    pktAccess: true,
    mightSleep: false,
    allowFastcall: false,
    ret,
    args,
  };
}

/** What argument checking learned (`struct bpf_call_arg_meta`). */
export interface CallMeta {
  /** Register holding the map argument, -1 if none. */
  mapRegno: number;
  /** A constant array key (`const_map_key`), -1 if none. */
  constMapKey: bigint;
  /** Register of a raw (uninitialised) memory argument, -1 if none. */
  rawRegno: number;
  /** Its size. */
  rawSize: number;
  /** Register passed to a release function, -1 if none. */
  releaseRegno: number;
  /** Constant size of an allocation (`mem_size`). */
  memSize: number;
  /** `bpf_kptr_xchg`: the kptr field its destination points to. */
  kptrField?: BtfField;
  /** `ret_btf`/`ret_btf_id` from a per-CPU BTF pointer argument. */
  retBtfFrom?: RegState;
  /** The release argument is a dynptr (released with its stack slots). */
  releaseDynptr?: boolean;
}

// mirrors get_constant_map_key(): a constant key spilled on the stack
function constantMapKey(env: Env, key: RegState, keySize: number): bigint {
  if (key.type !== PTR_TO_STACK || !tnumIsConst(key.s.varOff)) return -1n;
  const f = env.cur.frames[key.frameno];
  const stackOff = key.off + Number(key.s.varOff.value);
  const slot = -stackOff - 1;
  const spi = Math.floor(slot / 8);
  const off = slot % 8;
  if (spi >= f.stack.length) return -1n;
  const stype = f.stack[spi].slotType;
  let zero = 0;
  for (let i = off; i >= 0 && stype[i] === STACK_ZERO; i--) zero++;
  if (zero >= keySize) return 0n;
  if (stype[7] !== STACK_SPILL || f.stack[spi].spilled.type !== SCALAR_VALUE) {
    return -1n;
  }
  let spill = 0;
  for (let i = off; i >= 0 && stype[i] === STACK_SPILL; i--) spill++;
  if (spill !== keySize) return -1n;
  const r = f.stack[spi].spilled;
  return tnumIsConst(r.s.varOff) ? BigInt.asIntN(64, r.s.varOff.value) : -1n;
}

/** Mirrors `check_func_arg()` for argument `argNo` of `p`. */
export function checkFuncArg(
  env: Env,
  p: HelperProto,
  argNo: number,
  meta: CallMeta,
): void {
  const arg = p.args[argNo];
  const regno = argNo + 1;
  if (arg.base === "ARG_DONTCARE") return;
  const reg = checkRegArg(env, regno, "src");
  if (arg.base === "ARG_ANYTHING") return;
  if (
    typeIsPktPointer(reg.type) &&
    !mayAccessDirectPktData(env.progType, "read", p.pktAccess)
  ) {
    env.fail(EACCES, "helper access to the packet is not allowed");
  }
  const mayBeNull = arg.flags.includes("PTR_MAYBE_NULL");
  if (mayBeNull && registerIsNull(reg)) return;
  const regs = curFrame(env.cur).regs;
  let compatible = COMPATIBLE_REG_TYPES[arg.base];
  const argMap = meta.mapRegno >= 0 ? regs[meta.mapRegno].map : null;
  if (
    arg.base === "ARG_PTR_TO_MAP_VALUE" && argMap &&
    (argMap.typeId === BPF_MAP_TYPE_SOCKMAP ||
      argMap.typeId === BPF_MAP_TYPE_SOCKHASH)
  ) {
    // resolve_map_arg_type(): sockmap values are sockets
    compatible = COMPATIBLE_REG_TYPES.ARG_PTR_TO_BTF_ID_SOCK_COMMON;
    checkRegType(env, regno, reg, compatible!, arg);
    return;
  }
  const kptrXchgSrc = p.id === BPF_FUNC_KPTR_XCHG && regno === 2;
  if (compatible) checkRegType(env, regno, reg, compatible, arg, kptrXchgSrc);
  const btfName = p.argBtfIds?.[argNo];
  if (arg.base === "ARG_PTR_TO_BTF_ID" && btfName !== undefined) {
    checkKnownBtfArg(env, regno, reg, btfName);
  }
  if (kptrXchgSrc && meta.kptrField) {
    if (typeMayBeNull(reg.type)) {
      env.fail(EACCES, `Possibly NULL pointer passed to helper arg${regno}`);
    }
    mapKptrMatchType(env, meta.kptrField, reg, regno);
  }
  if (arg.flags.includes("OBJ_RELEASE")) meta.releaseRegno = regno;
  switch (arg.base) {
    case "ARG_CONST_MAP_PTR": {
      meta.mapRegno = regno;
      const err = reg.map ? checkMapArg(reg.map.typeId, p.id) : null;
      if (err) env.fail(EINVAL, err);
      return;
    }
    case "ARG_PTR_TO_MAP_KEY":
    case "ARG_PTR_TO_MAP_VALUE": {
      const map = meta.mapRegno >= 0 ? regs[meta.mapRegno].map : null;
      if (!map) {
        env.fail(
          EACCES,
          `invalid map_ptr to access map->${
            arg.base === "ARG_PTR_TO_MAP_KEY" ? "key" : "value"
          }`,
        );
      }
      const isKey = arg.base === "ARG_PTR_TO_MAP_KEY";
      const size = isKey ? map.keySize : map.valueSize;
      const uninit = arg.flags.includes("MEM_UNINIT");
      checkHelperMem(env, regno, size, uninit, false, uninit);
      if (
        isKey &&
        (map.typeId === BPF_MAP_TYPE_ARRAY ||
          map.typeId === BPF_MAP_TYPE_PERCPU_ARRAY)
      ) meta.constMapKey = constantMapKey(env, reg, size);
      return;
    }
    case "ARG_PTR_TO_CTX":
      if (reg.off) {
        env.fail(
          EACCES,
          `dereference of modified ctx ptr R${regno} off=${reg.off} disallowed`,
        );
      }
      return;
    case "ARG_CONST_SIZE":
    case "ARG_CONST_SIZE_OR_ZERO":
    case "ARG_CONST_ALLOC_SIZE_OR_ZERO": {
      const zeroOk = arg.base !== "ARG_CONST_SIZE";
      if (reg.s.smin < 0n) {
        env.fail(
          EACCES,
          `R${regno} min value is negative, either use unsigned or 'var &= const'`,
        );
      }
      if (reg.s.umin === 0n && !zeroOk) {
        env.fail(
          EACCES,
          `R${regno} invalid zero-sized read: u64=[${reg.s.umin},${reg.s.umax}]`,
        );
      }
      if (reg.s.umax >= BigInt(BPF_MAX_VAR_SIZ)) {
        env.fail(
          EACCES,
          `R${regno} unbounded memory access, use 'var &= const' or 'if (var < const)'`,
        );
      }
      if (arg.base === "ARG_CONST_ALLOC_SIZE_OR_ZERO") {
        if (tnumIsConst(reg.s.varOff)) {
          meta.memSize = Number(reg.s.varOff.value);
        }
        return;
      }
      const prev = p.args[argNo - 1];
      const write = prev.flags.includes("MEM_UNINIT") ||
        prev.flags.includes("MEM_WRITE");
      checkHelperMem(
        env,
        regno - 1,
        Number(reg.s.umax),
        write,
        zeroOk,
        prev.flags.includes("MEM_UNINIT"),
      );
      return;
    }
    case "ARG_PTR_TO_MEM": {
      const size = p.argSizes?.[argNo];
      if (arg.flags.includes("MEM_FIXED_SIZE") && size !== undefined) {
        const write = arg.flags.includes("MEM_UNINIT") ||
          arg.flags.includes("MEM_WRITE");
        const raw = arg.flags.includes("MEM_UNINIT");
        checkHelperMem(env, regno, size, write, false, raw);
      }
      return;
    }
    case "ARG_PTR_TO_PERCPU_BTF_ID":
      if (!reg.btfId) {
        env.fail(EACCES, `Helper has invalid btf_id in R${regno}`);
      }
      meta.retBtfFrom = { ...reg };
      return;
    case "ARG_PTR_TO_DYNPTR":
      processDynptrArg(env, regno, arg);
      if (arg.flags.includes("OBJ_RELEASE")) meta.releaseDynptr = true;
      return;
    case "ARG_PTR_TO_SPIN_LOCK":
      processSpinLock(env, regno, p.id === BPF_FUNC_SPIN_LOCK);
      return;
    case "ARG_KPTR_XCHG_DEST":
      meta.kptrField = processKptrFunc(env, regno);
      return;
    default:
      // other kinds (BTF ids, dynptrs, timers, functions, strings) are
      // checked for their register type only
      return;
  }
}
