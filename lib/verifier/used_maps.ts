/**
 * What `resolve_pseudo_ldimm64()` checks for each map a program uses:
 * `check_map_prog_compatibility()` — maps with a bpf_spin_lock, list or
 * rb-tree root, timer or workqueue are refused to program types where
 * they are unsafe (tracing programs can run in NMI, socket filters on any
 * socket), struct_ops maps are not for programs — and the license rule.
 * @module
 */
import {
  BPF_LIST_HEAD,
  BPF_RB_ROOT,
  BPF_SPIN_LOCK,
  BPF_TIMER,
  BPF_WORKQUEUE,
  recordHasField,
} from "../btf/field_types.ts";
import {
  BPF_PSEUDO_MAP_FD,
  BPF_PSEUDO_MAP_IDX,
  BPF_PSEUDO_MAP_IDX_VALUE,
  BPF_PSEUDO_MAP_VALUE,
} from "../isa/opcodes.ts";
import { EBUSY, EINVAL, type Env } from "./env.ts";
import type { MapRef } from "./reg_state.ts";

const BPF_MAP_TYPE_STRUCT_OPS = 26;
/** `BPF_MAP_TYPE_CGROUP_STORAGE`, `BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE`. */
const CGROUP_STORAGE_TYPES: readonly number[] = [19, 21];

/** `is_tracing_prog_type()` over libbpf program type names. */
export function isTracingProgType(progType: string): boolean {
  return progType === "kprobe" || progType === "tracepoint" ||
    progType === "perf_event" || progType === "raw_tracepoint" ||
    progType === "raw_tracepoint_writable";
}

/** Mirrors `check_map_prog_compatibility()`: an error message, or null. */
export function mapProgIncompatibility(
  map: MapRef,
  progType: string,
): string | null {
  const rec = map.record ?? null;
  const tracing = isTracingProgType(progType);
  if (
    (recordHasField(rec, BPF_LIST_HEAD) || recordHasField(rec, BPF_RB_ROOT)) &&
    tracing
  ) return "tracing progs cannot use bpf_{list_head,rb_root} yet";
  if (recordHasField(rec, BPF_SPIN_LOCK)) {
    if (progType === "socket_filter") {
      return "socket filter progs cannot use bpf_spin_lock yet";
    }
    if (tracing) return "tracing progs cannot use bpf_spin_lock yet";
  }
  if (recordHasField(rec, BPF_TIMER) && tracing) {
    return "tracing progs cannot use bpf_timer yet";
  }
  if (recordHasField(rec, BPF_WORKQUEUE) && tracing) {
    return "tracing progs cannot use bpf_wq yet";
  }
  if (map.typeId === BPF_MAP_TYPE_STRUCT_OPS) {
    return "bpf_struct_ops map cannot be used in prog";
  }
  return null;
}

/**
 * Checks every map the program's `lddw`s name, in instruction order: a
 * second cgroup storage map of one type is refused as `__add_used_map()`
 * refuses it (`bpf_cgroup_storage_assign()`: a program has one storage of
 * each type), then `check_map_prog_compatibility()`.
 */
export function checkUsedMaps(env: Env): void {
  const storageOfType = new Map<number, MapRef>();
  env.insns.forEach((insn, i) => {
    if (insn.kind !== "ld_imm64") return;
    if (
      insn.src !== BPF_PSEUDO_MAP_FD && insn.src !== BPF_PSEUDO_MAP_IDX &&
      insn.src !== BPF_PSEUDO_MAP_VALUE && insn.src !== BPF_PSEUDO_MAP_IDX_VALUE
    ) return;
    const map = env.maps[insn.imm];
    if (!map) return;
    if (CGROUP_STORAGE_TYPES.includes(map.typeId)) {
      const first = storageOfType.get(map.typeId) ?? map;
      storageOfType.set(map.typeId, first);
      if (first !== map) {
        env.insnIdx = i;
        env.fail(EBUSY, "only one cgroup storage of each type is allowed");
      }
    }
    const err = mapProgIncompatibility(map, env.progType);
    if (err) {
      env.insnIdx = i;
      env.fail(EINVAL, err);
    }
  });
}

/** Mirrors `license_is_gpl_compatible()`. */
export function isGplCompatible(license: string): boolean {
  return [
    "GPL",
    "GPL v2",
    "GPL and additional rights",
    "Dual BSD/GPL",
    "Dual MIT/GPL",
    "Dual MPL/GPL",
  ].includes(license);
}
