/**
 * The verifier environment (`struct bpf_verifier_env`): the program and its
 * object, the pre-pass results, the maps, the log, the branch stack, the
 * explored states and the counters the statistics trailer prints.
 * @module
 */
import type { Insn } from "../isa/insn.ts";
import type { BpfProgram, ObjectFile } from "../elf/types.ts";
import type { BpfMapDef } from "../elf/maps.ts";
import type { InsnAux } from "./insn_aux.ts";
import type { SubprogLayout } from "./subprogs.ts";
import type { MapRef, RegBtf } from "./reg_state.ts";
import type { Btf } from "../btf/btf.ts";
import type { BtfRecord } from "../btf/field_types.ts";
import { mapCheckBtfFields, parseStructMetas } from "../btf/struct_meta.ts";
import {
  addTrail,
  copyVerifierState,
  type SlotStates,
  type VerifierState,
} from "./state.ts";
import { VerifierLog } from "./log.ts";
import type { KfuncAux } from "./check_kfunc.ts";
import { isGplCompatible } from "./used_maps.ts";

/** errno values the main pass returns (positive; results carry them negated). */
export {
  E2BIG,
  EACCES,
  EBUSY,
  EFAULT,
  EINVAL,
  ENOTSUPP,
} from "../uapi/errno.ts";
import { E2BIG } from "../uapi/errno.ts";

/**
 * Thrown inside the main pass when the kernel would `return -E…` after
 * logging; the caller turns it into a rejection.
 */
export class VerifyAbort extends Error {
  /** The (negative) errno of the load. */
  readonly errno: number;
  /** Slot being verified. */
  readonly insnIndex: number;

  /** Builds the abort for `-errno` at `insnIndex`. */
  constructor(errno: number, insnIndex: number, message: string) {
    super(message);
    this.name = "VerifyAbort";
    this.errno = -errno;
    this.insnIndex = insnIndex;
  }
}

/** `BPF_COMPLEXITY_LIMIT_JMP_SEQ`: at most this many queued branches. */
export const BPF_COMPLEXITY_LIMIT_JMP_SEQ = 8192;

/** A branch waiting on the stack (`struct bpf_verifier_stack_elem`). */
export interface StackElem {
  /** The state to resume. */
  readonly state: VerifierState;
  /** Slot to resume at. */
  readonly insnIdx: number;
  /** Slot that branched. */
  readonly prevInsnIdx: number;
  /** Log position to rewind to (level 1). */
  readonly logPos: number;
}

/** `struct bpf_verifier_env` for one program. */
export class Env {
  /** The object the program came from. */
  readonly obj: ObjectFile;
  /** The program. */
  readonly prog: BpfProgram;
  /** Decoded slots. */
  readonly insns: readonly Insn[];
  /** Subprograms (from the pre-pass). */
  readonly layout: SubprogLayout;
  /** Per-slot flags (from the pre-pass). */
  readonly aux: InsnAux;
  /** The object's maps as registers refer to them. */
  readonly maps: readonly MapRef[];
  /** The program's BTF with its struct metas (`prog->aux->btf`), null without BTF. */
  readonly progBtf: RegBtf | null;
  /** The log. */
  readonly log: VerifierLog;
  /** `insn_processed`. */
  insnProcessed = 0;
  /** `id_gen`. */
  idGen = 0;
  /** The state being explored. */
  cur!: VerifierState;
  /** `env->insn_idx`. */
  insnIdx = 0;
  /** `env->prev_insn_idx`. */
  prevInsnIdx = -1;
  /** The branch stack (`env->head`). */
  readonly stack: StackElem[] = [];
  /** Explored states by slot (`explored_states`). */
  readonly explored: Map<number, SlotStates> = new Map();
  /** `jmps_processed`. */
  jmpsProcessed = 0;
  /** `prev_jmps_processed`. */
  prevJmpsProcessed = 0;
  /** `prev_insn_processed`. */
  prevInsnProcessed = 0;
  /** `total_states`. */
  totalStates = 0;
  /** `peak_states`. */
  peakStates = 0;
  /** Live explored states (`explored_states` count). */
  liveStates = 0;
  /** `max_states_per_insn`. */
  maxStatesPerInsn = 0;
  /** `prog->aux->max_rdonly_access`: bytes read through read-only PTR_TO_BUF (iterator keys). */
  maxRdonlyAccess = 0;
  /** `prog->aux->max_rdwr_access`: bytes accessed through writable PTR_TO_BUF (iterator values). */
  maxRdwrAccess = 0;
  /** The state to print after a pop (`do_print_state`). */
  doPrintState = false;
  /** Global subprograms called so far (verified after the main pass). */
  readonly calledGlobals: Set<number> = new Set();
  /** Whether subprogram `i` is a global function (BTF linkage). */
  isGlobal: (subprog: number) => boolean = () => false;
  /** Name of subprogram `i` for the log. */
  funcName: (subprog: number) => string = (i) => `func#${i}`;
  /** `prog->gpl_compatible`. */
  readonly gplCompatible: boolean;
  /** Per kfunc call slot: what the rewriting after verification needs. */
  readonly kfuncAux: Map<number, KfuncAux> = new Map();
  /** Per slot: the pointer type a load/store first used (`aux->ptr_type`), -1 unset. */
  readonly ptrTypes: Int32Array;

  /** Sets up the environment for `prog` of `obj`. */
  constructor(
    obj: ObjectFile,
    prog: BpfProgram,
    layout: SubprogLayout,
    aux: InsnAux,
    logLevel: number,
  ) {
    this.obj = obj;
    this.prog = prog;
    this.insns = prog.insns;
    this.layout = layout;
    this.aux = aux;
    this.log = new VerifierLog(logLevel);
    const loaded = loadedBtfAndMaps(obj);
    this.progBtf = loaded.progBtf;
    this.maps = loaded.maps;
    this.gplCompatible = isGplCompatible(obj.license);
    this.ptrTypes = new Int32Array(prog.insns.length).fill(-1);
  }

  /**
   * Mirrors `push_stack()`: queues a copy of the current state to resume at
   * `insnIdx` and returns that copy (callers then adjust it).
   */
  pushStack(insnIdx: number, prevInsnIdx: number): VerifierState {
    const state = copyVerifierState(this.cur);
    state.insnIdx = insnIdx;
    addTrail(state, prevInsnIdx, insnIdx);
    if (state.parent) state.parent.branches++;
    this.stack.push({ state, insnIdx, prevInsnIdx, logPos: this.log.endPos });
    if (this.stack.length > BPF_COMPLEXITY_LIMIT_JMP_SEQ) {
      this.fail(
        E2BIG,
        `The sequence of ${this.stack.length} jumps is too complex.`,
      );
    }
    return state;
  }

  /**
   * Mirrors `push_async_cb()`: queues `state`, a fresh state (not a copy of
   * the current one: an async callback starts on its own stack), to be
   * explored from slot `insnIdx`.
   */
  pushAsync(state: VerifierState, insnIdx: number, prevInsnIdx: number): void {
    this.stack.push({ state, insnIdx, prevInsnIdx, logPos: this.log.endPos });
    if (this.stack.length > BPF_COMPLEXITY_LIMIT_JMP_SEQ) {
      this.fail(
        E2BIG,
        `The sequence of ${this.stack.length} jumps is too complex for async cb.`,
      );
    }
  }

  /** Logs `message` (one line) and aborts with `-errno`. */
  fail(errno: number, message: string): never {
    this.log.write(message + "\n");
    throw new VerifyAbort(errno, this.insnIdx, message);
  }

  /** Aborts with `-errno` after the caller has logged `message` itself. */
  abort(errno: number, message: string): never {
    throw new VerifyAbort(errno, this.insnIdx, message);
  }

  /** A fresh id (`++env->id_gen`). */
  newId(): number {
    return ++this.idGen;
  }

  /** Program type (libbpf name). */
  get progType(): string {
    return this.prog.type;
  }
}

/** What loading an object gives every one of its programs: BTF and maps. */
interface LoadedBtfAndMaps {
  readonly progBtf: RegBtf | null;
  readonly maps: readonly MapRef[];
}

// one object's BTF records and map records, computed once for all its
// programs (the kernel, too, loads BTF and creates maps once per object)
const LOADED = new WeakMap<ObjectFile, LoadedBtfAndMaps>();

function loadedBtfAndMaps(obj: ObjectFile): LoadedBtfAndMaps {
  let loaded = LOADED.get(obj);
  if (loaded) return loaded;
  // a BTF the kernel refuses is dropped by libbpf: no prog BTF, maps
  // created without BTF
  const metas = obj.btf ? structMetas(obj.btf) : null;
  const btf = metas ? obj.btf : undefined;
  loaded = {
    progBtf: btf && metas ? { btf, metas } : null,
    maps: obj.maps.map((m, index) => mapRef(m, index, btf, metas ?? new Map())),
  };
  LOADED.set(obj, loaded);
  return loaded;
}

// btf_parse_struct_metas(): a BTF the kernel would refuse has none here
function structMetas(btf: Btf): ReadonlyMap<number, BtfRecord> | null {
  try {
    return parseStructMetas(btf);
  } catch {
    return null;
  }
}

// map->record as map_check_btf() leaves it (an error pointer reads as none)
// (undefined: map creation with BTF fails, libbpf retries without BTF)
function mapRecord(
  m: BpfMapDef,
  btf: Btf | undefined,
  metas: ReadonlyMap<number, BtfRecord>,
): BtfRecord | null | undefined {
  if (!btf || !m.btfValueTypeId) return null;
  try {
    return mapCheckBtfFields(
      btf,
      m.btfValueTypeId,
      m.valueSize,
      m.typeId,
      metas,
      { mapFlags: m.flags },
    ).record;
  } catch {
    return undefined;
  }
}

function mapRef(
  m: BpfMapDef,
  index: number,
  btf?: Btf,
  metas: ReadonlyMap<number, BtfRecord> = new Map(),
): MapRef {
  const record = mapRecord(m, btf, metas);
  return {
    hasBtf: btf !== undefined && m.btfValueTypeId !== 0 &&
      record !== undefined,
    record: record ?? null,
    index,
    name: m.name,
    typeId: m.typeId,
    keySize: m.keySize,
    valueSize: m.valueSize,
    maxEntries: m.maxEntries,
    flags: m.flags,
    inner: m.innerMap ? mapRef(m.innerMap, -1, btf, metas) : undefined,
  };
}
