/**
 * The user-space layout of per-CPU map values: `BPF_MAP_LOOKUP_ELEM` and
 * `BPF_MAP_UPDATE_ELEM` on a per-CPU map exchange `num_possible_cpus()`
 * values back to back, each `round_up(value_size, 8)` bytes
 * (`bpf_percpu_array_copy()`, `bpf_percpu_hash_update()`); and how a
 * per-CPU hash element's copies are written.
 * @module
 */
import type { BtfRecord } from "../../btf/field_types.ts";
import { copyMapValue, zeroMapValue } from "./special_fields.ts";

/** Concatenates one `stride`-byte value per CPU, CPU 0 first. */
export function packPercpu(
  parts: readonly Uint8Array[],
  stride: number,
): Uint8Array {
  const out = new Uint8Array(stride * parts.length);
  parts.forEach((p, c) => out.set(p.subarray(0, stride), c * stride));
  return out;
}

/** Splits a user-space per-CPU value into `nrCpus` views of `stride` bytes. */
export function unpackPercpu(
  value: Uint8Array,
  stride: number,
  nrCpus: number,
): Uint8Array[] {
  return Array.from(
    { length: nrCpus },
    (_, c) => value.subarray(c * stride, (c + 1) * stride),
  );
}

/**
 * `pcpu_copy_value()`: `value` (`value_size` bytes) into CPU `target`'s
 * copy, or with `target < 0` a user-space value holding one
 * `round_up(value_size, 8)`-byte value per CPU into every copy
 * (`copy_map_value_long()`). Special fields keep their state.
 */
export function pcpuCopyValue(
  rec: BtfRecord | null,
  copies: readonly Uint8Array[],
  value: Uint8Array,
  target: number,
  valueSize: number,
): void {
  if (target >= 0) {
    copyMapValue(rec, copies[target], value, valueSize);
    return;
  }
  const stride = copies[0].length;
  const parts = unpackPercpu(value, stride, copies.length);
  copies.forEach((c, i) => copyMapValue(rec, c, parts[i], stride));
}

/**
 * `pcpu_init_value()` for a new element: from a program (`target` = its
 * CPU) the other CPUs' copies are zeroed (special fields excepted), so no
 * stale data shows through; from user space (`target < 0`) every copy is
 * written.
 */
export function pcpuInitValue(
  rec: BtfRecord | null,
  copies: readonly Uint8Array[],
  value: Uint8Array,
  target: number,
  valueSize: number,
): void {
  if (target < 0) {
    pcpuCopyValue(rec, copies, value, target, valueSize);
    return;
  }
  copies.forEach((c, i) => {
    if (i === target) {
      // copy_map_value_long() also copies the padding up to 8 bytes from
      // the program's buffer, whatever follows the value; here zeros.
      copyMapValue(rec, c, value, valueSize);
      c.fill(0, valueSize);
    } else zeroMapValue(rec, c, c.length);
  });
}
