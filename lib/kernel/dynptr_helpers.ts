/**
 * Runtime of the dynptr helpers (kernel/bpf/helpers.c, ringbuf.c), and the
 * table that gathers them with the map-iteration (`for_each_map.ts`) and
 * timer (`timer_helpers.ts`) helpers.
 *
 * A dynptr is the 16-byte `struct bpf_dynptr_kern` the program keeps on its
 * stack, laid out as the kernel lays it out, so a program reading it sees
 * the kernel's bytes:
 *
 * | bytes | field                                                   |
 * |-------|---------------------------------------------------------|
 * | 0–7   | `data`: address of the memory                           |
 * | 8–11  | `size`: bits 0–23 size, 28–30 type, 31 read-only        |
 * | 12–15 | `offset` into `data`                                    |
 *
 * A null dynptr is all zeroes (`bpf_dynptr_set_null()`).
 * @module
 */
import { ExecError } from "../exec/fault.ts";
import type { CallContext, HelperFn } from "../exec/state.ts";
import { forEachMapHelpers } from "./for_each_map.ts";
import { RingBuf } from "./maps/ringbuf.ts";
import type { ObjectHelperEnv } from "./object_helpers.ts";
import { timerHelpers } from "./timer_helpers.ts";
import { E2BIG, EFAULT, EINVAL } from "../uapi/errno.ts";

/** Helper ids (include/uapi/linux/bpf.h `___BPF_FUNC_MAPPER`). */
export const DYNPTR_HELPER = {
  dynptr_from_mem: 197,
  ringbuf_reserve_dynptr: 198,
  ringbuf_submit_dynptr: 199,
  ringbuf_discard_dynptr: 200,
  dynptr_read: 201,
  dynptr_write: 202,
  dynptr_data: 203,
} as const;

/** `enum bpf_dynptr_type`. */
export const BPF_DYNPTR_TYPE = {
  invalid: 0,
  local: 1,
  ringbuf: 2,
  skb: 3,
  xdp: 4,
} as const;

/** `DYNPTR_MAX_SIZE`: the size field has 24 bits. */
export const DYNPTR_MAX_SIZE = 0xffffff;
/** `DYNPTR_TYPE_SHIFT`. */
export const DYNPTR_TYPE_SHIFT = 28;
/** `DYNPTR_SIZE_MASK`. */
export const DYNPTR_SIZE_MASK = 0xffffff;
/** `DYNPTR_RDONLY_BIT` (bit 31 of `size`). */
export const DYNPTR_RDONLY_BIT: number = 2 ** 31;
/** `sizeof(struct bpf_dynptr_kern)`. */
export const BPF_DYNPTR_SIZE = 16;

/** A decoded `struct bpf_dynptr_kern`. */
export interface DynptrKern {
  /** `data`. */
  readonly data: bigint;
  /** The whole `size` word (size, type and read-only bit). */
  readonly sizeWord: number;
  /** `offset`. */
  readonly offset: number;
}

/** Reads the dynptr at `addr`. */
export function readDynptr(vm: CallContext, addr: bigint): DynptrKern {
  return {
    data: vm.mem.read(addr, 8),
    sizeWord: Number(vm.mem.read(addr + 8n, 4)),
    offset: Number(vm.mem.read(addr + 12n, 4)),
  };
}

/** `bpf_dynptr_init()`: writes a dynptr of `type` over `size` bytes at `data`. */
export function initDynptr(
  vm: CallContext,
  addr: bigint,
  data: bigint,
  type: number,
  offset: number,
  size: number,
): void {
  vm.mem.write(addr, 8, data);
  vm.mem.write(
    addr + 8n,
    4,
    BigInt((size | (type << DYNPTR_TYPE_SHIFT)) >>> 0),
  );
  vm.mem.write(addr + 12n, 4, BigInt(offset >>> 0));
}

/** `bpf_dynptr_set_null()`: zeroes all 16 bytes. */
export function setDynptrNull(vm: CallContext, addr: bigint): void {
  vm.mem.writeBytes(addr, new Uint8Array(BPF_DYNPTR_SIZE));
}

/** `__bpf_dynptr_size()`. */
export function dynptrSize(d: DynptrKern): number {
  return d.sizeWord & DYNPTR_SIZE_MASK;
}

/** `bpf_dynptr_get_type()`. */
export function dynptrType(d: DynptrKern): number {
  return ((d.sizeWord & ~DYNPTR_RDONLY_BIT) >>> 0) >>> DYNPTR_TYPE_SHIFT;
}

/** `__bpf_dynptr_is_rdonly()`. */
export function dynptrIsRdonly(d: DynptrKern): boolean {
  return (d.sizeWord & DYNPTR_RDONLY_BIT) !== 0;
}

/** `bpf_dynptr_check_off_len()`: 0 or -E2BIG (u32 arithmetic). */
function checkOffLen(d: DynptrKern, offset: number, len: number): number {
  const size = dynptrSize(d);
  if (len > size || offset > size - len) return -E2BIG;
  return 0;
}

/** Address of byte `offset` of the dynptr's data. */
function dataAt(d: DynptrKern, offset: number): bigint {
  return BigInt.asUintN(64, d.data + BigInt(d.offset) + BigInt(offset));
}

/** Only local and ring buffer dynptrs can be made by helpers the simulator models. */
function unmodelledType(helper: string, type: number): never {
  const what = type === BPF_DYNPTR_TYPE.skb || type === BPF_DYNPTR_TYPE.xdp
    ? "skb/xdp dynptrs are not modelled"
    : `unknown dynptr type ${type}`;
  throw new ExecError(-1, `${helper}: ${what}`);
}

/**
 * The dynptr, ring-buffer-dynptr, `bpf_for_each_map_elem` and timer
 * helpers, by id.
 */
export function dynptrHelpers(env: ObjectHelperEnv): Map<number, HelperFn> {
  const rings = (): RingBuf[] => {
    const out: RingBuf[] = [];
    for (const m of env.loaded.maps) {
      if (m.map instanceof RingBuf) out.push(m.map);
    }
    return out;
  };
  const H = DYNPTR_HELPER;
  const helpers = new Map<number, HelperFn>([
    [H.dynptr_from_mem, dynptrFromMem],
    [H.dynptr_read, dynptrRead],
    [H.dynptr_write, dynptrWrite],
    [H.dynptr_data, dynptrData],
    [H.ringbuf_reserve_dynptr, (vm) => {
      // mirrors bpf_ringbuf_reserve_dynptr()
      const ptr = vm.arg(4);
      const map = env.loaded.registry.at(vm.arg(1));
      if (!(map instanceof RingBuf)) {
        throw new ExecError(
          -1,
          `R1: ${
            map === undefined
              ? env.loaded.registry.describe(vm.arg(1))
              : `map ${map.attr.name} is not a ring buffer`
          }`,
        );
      }
      const size = vm.argLo(2) >>> 0;
      let err = 0;
      if (vm.arg(3) !== 0n) err = -EINVAL;
      else if (size > DYNPTR_MAX_SIZE) err = -E2BIG;
      const sample = err === 0 ? map.reserve(size) : null;
      if (sample === null) {
        setDynptrNull(vm, ptr);
        return err === 0 ? -EINVAL : err;
      }
      initDynptr(vm, ptr, sample, BPF_DYNPTR_TYPE.ringbuf, 0, size);
      return 0;
    }],
    [H.ringbuf_submit_dynptr, (vm) => commitDynptr(vm, rings(), false)],
    [H.ringbuf_discard_dynptr, (vm) => commitDynptr(vm, rings(), true)],
  ]);
  for (const [id, fn] of forEachMapHelpers(env)) helpers.set(id, fn);
  for (const [id, fn] of timerHelpers(env)) helpers.set(id, fn);
  return helpers;
}

/** `bpf_dynptr_from_mem(data, size, flags, ptr)`. */
function dynptrFromMem(vm: CallContext): number {
  const ptr = vm.arg(4);
  const size = vm.argLo(2) >>> 0;
  let err = 0;
  if (size > DYNPTR_MAX_SIZE) err = -E2BIG;
  else if (vm.arg(3) !== 0n) err = -EINVAL; // flags are unsupported
  if (err !== 0) {
    setDynptrNull(vm, ptr);
    return err;
  }
  initDynptr(vm, ptr, vm.arg(1), BPF_DYNPTR_TYPE.local, 0, size);
  return 0;
}

/** `bpf_dynptr_read(dst, len, src, offset, flags)`. */
function dynptrRead(vm: CallContext): number {
  const src = readDynptr(vm, vm.arg(3));
  if (src.data === 0n || vm.arg(5) !== 0n) return -EINVAL;
  const len = vm.argLo(2) >>> 0, offset = vm.argLo(4) >>> 0;
  const err = checkOffLen(src, offset, len);
  if (err) return err;
  const type = dynptrType(src);
  if (type !== BPF_DYNPTR_TYPE.local && type !== BPF_DYNPTR_TYPE.ringbuf) {
    if (type === BPF_DYNPTR_TYPE.invalid) return -EFAULT; // WARN_ONCE path
    unmodelledType("bpf_dynptr_read", type);
  }
  // readBytes copies, so overlapping source and destination act as memmove
  if (len > 0) {
    vm.mem.writeBytes(vm.arg(1), vm.mem.readBytes(dataAt(src, offset), len));
  }
  return 0;
}

/** `bpf_dynptr_write(dst, offset, src, len, flags)`. */
function dynptrWrite(vm: CallContext): number {
  const dst = readDynptr(vm, vm.arg(1));
  if (dst.data === 0n || dynptrIsRdonly(dst)) return -EINVAL;
  const offset = vm.argLo(2) >>> 0, len = vm.argLo(4) >>> 0;
  const err = checkOffLen(dst, offset, len);
  if (err) return err;
  const type = dynptrType(dst);
  if (type !== BPF_DYNPTR_TYPE.local && type !== BPF_DYNPTR_TYPE.ringbuf) {
    if (type === BPF_DYNPTR_TYPE.invalid) return -EFAULT;
    unmodelledType("bpf_dynptr_write", type);
  }
  if (vm.arg(5) !== 0n) return -EINVAL;
  if (len > 0) {
    vm.mem.writeBytes(dataAt(dst, offset), vm.mem.readBytes(vm.arg(3), len));
  }
  return 0;
}

/** `bpf_dynptr_data(ptr, offset, len)`: a pointer into the data, or NULL. */
function dynptrData(vm: CallContext): bigint {
  const d = readDynptr(vm, vm.arg(1));
  if (d.data === 0n) return 0n;
  if (checkOffLen(d, vm.argLo(2) >>> 0, vm.argLo(3) >>> 0)) return 0n;
  if (dynptrIsRdonly(d)) return 0n;
  const type = dynptrType(d);
  if (type === BPF_DYNPTR_TYPE.local || type === BPF_DYNPTR_TYPE.ringbuf) {
    return dataAt(d, vm.argLo(2) >>> 0);
  }
  return 0n; // skb / xdp: bpf_dynptr_slice() is the way; unknown: WARN
}

/**
 * `bpf_ringbuf_submit_dynptr()` / `bpf_ringbuf_discard_dynptr()`: a null
 * dynptr is a no-op; otherwise the sample is committed and the dynptr
 * nulled. Returns 0 (the helpers are void).
 */
function commitDynptr(
  vm: CallContext,
  rings: readonly RingBuf[],
  discard: boolean,
): number {
  const ptr = vm.arg(1);
  const d = readDynptr(vm, ptr);
  if (d.data === 0n) return 0;
  const rb = rings.find((r) => r.isReserved(d.data));
  if (rb === undefined) {
    throw new ExecError(
      -1,
      `0x${d.data.toString(16)} is no reserved ring buffer sample`,
    );
  }
  // bpf_ringbuf_commit() takes only the wakeup bits; others are ignored
  const flags = Number(vm.arg(2) & 3n);
  if (discard) rb.discard(d.data, flags);
  else rb.submit(d.data, flags);
  setDynptrNull(vm, ptr);
  return 0;
}
