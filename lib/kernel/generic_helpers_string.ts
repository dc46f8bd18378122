/**
 * The string helpers (kernel/bpf/helpers.c, kernel/trace/bpf_trace.c):
 * `bpf_strtol`, `bpf_strtoul`, `bpf_strncmp`, `bpf_snprintf` and
 * `bpf_trace_vprintk` (whose lines join `bpf_trace_printk`'s in the log).
 * @module
 */
import type { CallContext, HelperFn } from "../exec/state.ts";
import type { MapHelperLog } from "./map_helpers.ts";
import { EINVAL } from "./maps/map.ts";
import { ERANGE } from "../uapi/errno.ts";
import {
  bprintfPrepare,
  bstrPrintf,
  cBuffer,
  MAX_BPRINTF_BUF,
  varargs,
} from "./generic_helpers_printf.ts";

/** Helper ids (include/uapi/linux/bpf.h). */
export const STRING_HELPER = {
  strtol: 105,
  strtoul: 106,
  snprintf: 165,
  trace_vprintk: 177,
  strncmp: 182,
} as const;

/** `BPF_STRTOX_BASE_MASK`: the base part of strtol's flags. */
const BASE_MASK = 0x1fn;
const U64_MAX = (1n << 64n) - 1n;

/** Kernel `isspace()` (lib/ctype.c: also 0xa0). */
function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13) || c === 0xa0;
}

/** What `__bpf_strtoull()` parsed: the bytes consumed, the value, its sign. */
interface Parsed {
  readonly consumed: number;
  readonly value: bigint;
  readonly negative: boolean;
}

/**
 * Mirrors `__bpf_strtoull()`: skips spaces, takes one `-`, then (on at
 * most 63 bytes) `_parse_integer_fixup_radix()` and `_parse_integer()`.
 * A negative errno on failure (-ERANGE on overflow).
 */
export function bpfStrtoull(buf: Uint8Array, flags: bigint): Parsed | number {
  let base = Number(flags & BASE_MASK);
  if (buf.length === 0) return -EINVAL;
  if (base !== 0 && base !== 8 && base !== 10 && base !== 16) return -EINVAL;
  if (flags & ~BASE_MASK) return -EINVAL;
  let cur = 0;
  while (cur < buf.length && isSpace(buf[cur])) cur++;
  const negative = cur < buf.length && buf[cur] === 45;
  if (negative) cur++;
  if (cur === buf.length) return -EINVAL;
  const consumedBefore = cur;
  // the kernel copies at most 63 bytes into a NUL-terminated string
  const str = buf.subarray(cur, cur + Math.min(buf.length - cur, 63));
  const at = (i: number) => (i < str.length ? str[i] : 0);
  const lower = (c: number) => c | 0x20;
  const isXdigit = (c: number) =>
    (c >= 48 && c <= 57) || (lower(c) >= 97 && lower(c) <= 102);
  let s = 0;
  if (base === 0) {
    if (at(0) === 48) {
      base = lower(at(1)) === 120 && isXdigit(at(2)) ? 16 : 8;
    } else base = 10;
  }
  if (base === 16 && at(0) === 48 && lower(at(1)) === 120) s = 2;
  // _parse_integer(): digits below the base, overflow remembered
  let value = 0n;
  let overflow = false;
  let n = 0;
  for (;; n++) {
    const c = at(s + n);
    let digit: number;
    if (c >= 48 && c <= 57) digit = c - 48;
    else if (lower(c) >= 97 && lower(c) <= 102) digit = lower(c) - 97 + 10;
    else break;
    if (digit >= base) break;
    value = value * BigInt(base) + BigInt(digit);
    if (value > U64_MAX) overflow = true;
    value &= U64_MAX;
  }
  if (overflow) return -ERANGE;
  if (n === 0) return -EINVAL;
  return { consumed: consumedBefore + s + n, value, negative };
}

/** The string helpers, by id; `log` gets `bpf_trace_vprintk`'s lines. */
export function stringHelpers(log: MapHelperLog): Map<number, HelperFn> {
  const H = STRING_HELPER;
  const input = (vm: CallContext) =>
    vm.mem.readBytes(vm.arg(1), Number(vm.arg(2)));
  return new Map<number, HelperFn>([
    [H.strtol, (vm) => {
      // mirrors bpf_strtol(): *res = 0 first; a result outside s64 is -ERANGE
      vm.mem.write(vm.arg(4), 8, 0n);
      const p = bpfStrtoull(input(vm), vm.arg(3));
      if (typeof p === "number") return p;
      const v = p.negative ? -p.value : p.value;
      if (BigInt.asIntN(64, v) !== v) {
        // the kernel's test: (long long)-res > 0, or (long long)res < 0
        if (!(p.negative && v === -(1n << 63n))) return -ERANGE;
      }
      vm.mem.write(vm.arg(4), 8, v);
      return p.consumed;
    }],
    [H.strtoul, (vm) => {
      // mirrors bpf_strtoul(): a leading '-' is -EINVAL
      vm.mem.write(vm.arg(4), 8, 0n);
      const p = bpfStrtoull(input(vm), vm.arg(3));
      if (typeof p === "number") return p;
      if (p.negative) return -EINVAL;
      vm.mem.write(vm.arg(4), 8, p.value);
      return p.consumed;
    }],
    [H.strncmp, (vm) => strncmp(vm, vm.arg(1), vm.argLo(2) >>> 0, vm.arg(3))],
    [H.snprintf, (vm) => {
      // mirrors bpf_snprintf(): returns the untruncated length + 1 (the NUL)
      const args = varargs(vm, vm.arg(4), vm.argLo(5) >>> 0);
      if (typeof args === "number") return args;
      const fmt = cString(vm, vm.arg(3), Infinity);
      if (fmt === undefined) return -EINVAL;
      const pieces = bprintfPrepare(vm, fmt, args);
      if (typeof pieces === "number") return pieces;
      const text = bstrPrintf(pieces);
      const size = vm.argLo(2) >>> 0;
      if (size > 0) vm.mem.writeBytes(vm.arg(1), cBuffer(text, size));
      return text.length + 1;
    }],
    [H.trace_vprintk, (vm) => {
      // mirrors bpf_trace_vprintk(): the format must hold a NUL within fmt_size
      const args = varargs(vm, vm.arg(3), vm.argLo(4) >>> 0);
      if (typeof args === "number") return args;
      const fmt = cString(vm, vm.arg(1), vm.argLo(2) >>> 0);
      if (fmt === undefined) return -EINVAL;
      const pieces = bprintfPrepare(vm, fmt, args);
      if (typeof pieces === "number") return pieces;
      const text = bstrPrintf(pieces);
      log.printk.push(text.slice(0, MAX_BPRINTF_BUF - 1));
      return text.length;
    }],
  ]);
}

/** The bytes at `address` before the first NUL within `max`, or undefined without one. */
function cString(
  vm: CallContext,
  address: bigint,
  max: number,
): Uint8Array | undefined {
  const out: number[] = [];
  for (let i = 0; i < max; i++) {
    const c = Number(vm.mem.read(address + BigInt(i), 1));
    if (c === 0) return Uint8Array.from(out);
    out.push(c);
  }
  return undefined;
}

/** `strncmp()` of lib/string.c: -1, 0 or 1, comparing unsigned bytes. */
function strncmp(
  vm: CallContext,
  s1: bigint,
  count: number,
  s2: bigint,
): number {
  for (let i = 0; i < count; i++) {
    const c1 = Number(vm.mem.read(s1 + BigInt(i), 1));
    const c2 = Number(vm.mem.read(s2 + BigInt(i), 1));
    if (c1 !== c2) return c1 < c2 ? -1 : 1;
    if (c1 === 0) break;
  }
  return 0;
}
