/**
 * `bpf_snprintf` and `bpf_trace_vprintk` (kernel/bpf/helpers.c,
 * kernel/trace/bpf_trace.c): the format is checked and its arguments
 * captured as `bpf_bprintf_prepare()` does (strings and IP addresses copied
 * into the 512-byte per-CPU argument buffer, -ENOSPC when it runs out),
 * then printed as `bstr_printf()` prints (`lib/vsprintf.c`: flags `0 + -
 * space`, a width, `%d %i %u %x %X` with `l`/`ll`, `%c`, `%s`, `%p…`).
 *
 * Pointers print unhashed (`%p` and `%pK` as `%px`, as with
 * `no_hash_pointers`): the kernel's hash is a per-boot secret. `%pS`,
 * `%ps` and `%pB` print `0x` and the address (no symbols are known).
 * @module
 */
import type { CallContext } from "../exec/state.ts";
import { kernelString } from "./generic_helpers_mem.ts";
import { EINVAL, ENOSPC } from "../uapi/errno.ts";

/** `MAX_BPRINTF_VARARGS`: the most arguments a format may take. */
export const MAX_BPRINTF_VARARGS = 12;
/** `MAX_BPRINTF_BIN_ARGS`: bytes of the captured-arguments buffer. */
export const MAX_BPRINTF_BIN_ARGS = 512;
/** `MAX_BPRINTF_BUF`: the line `bpf_trace_vprintk` prints into. */
export const MAX_BPRINTF_BUF = 1024;

const LEFT = 2, PLUS = 4, SPACE = 8, ZEROPAD = 16;

/** One conversion of a checked format, with its captured argument. */
type Piece =
  | string
  | {
    readonly conv: "int" | "char" | "str";
    readonly flags: number;
    readonly width: number;
    /** int: the value as captured (4 or 8 bytes); char: the byte; str: the text. */
    readonly value: bigint | string;
    readonly signed?: boolean;
    readonly base?: 10 | 16;
    readonly upper?: boolean;
    readonly bytes?: 4 | 8;
  };

/** Kernel `isspace()` (lib/ctype.c: also 0xa0). */
function isSpace(c: number): boolean {
  return c === 32 || (c >= 9 && c <= 13) || c === 0xa0;
}

/** Kernel `ispunct()` (lib/ctype.c, Latin-1). */
function isPunct(c: number): boolean {
  return (c >= 33 && c <= 47) || (c >= 58 && c <= 64) ||
    (c >= 91 && c <= 96) || (c >= 123 && c <= 126) ||
    (c >= 161 && c <= 191) || c === 215 || c === 247;
}

/** What may follow `%s` or a plain `%p`: the end, a space or punctuation. */
function endsConversion(c: number): boolean {
  return c === 0 || isSpace(c) || isPunct(c);
}

/**
 * Mirrors `bpf_bprintf_prepare()` over `fmt` (its bytes up to the NUL) and
 * the raw 64-bit arguments: the pieces to print, or a negative errno.
 */
export function bprintfPrepare(
  vm: CallContext,
  fmt: Uint8Array,
  args: readonly bigint[],
): Piece[] | number {
  const at = (i: number) => (i < fmt.length ? fmt[i] : 0);
  const pieces: Piece[] = [];
  let text = "";
  let used = 0; // bytes of the bin_args buffer taken so far
  let spec = 0;
  for (let i = 0; i < fmt.length; i++) {
    const c = fmt[i];
    if (c < 0x80 && !(c >= 32 && c <= 126) && !isSpace(c)) return -EINVAL;
    if (c !== 37) {
      text += String.fromCharCode(c);
      continue;
    }
    if (at(i + 1) === 37) {
      text += "%";
      i++;
      continue;
    }
    if (spec >= args.length) return -EINVAL;
    i++;
    if (at(i) >= 0x80) return -EINVAL;
    let flags = 0, width = 0;
    for (;;) {
      const f = at(i);
      if (f === 48) flags |= ZEROPAD;
      else if (f === 43) flags |= PLUS;
      else if (f === 45) flags |= LEFT;
      else if (f === 32) flags |= SPACE;
      else break;
      i++;
    }
    while (at(i) >= 48 && at(i) <= 57) width = width * 10 + at(i++) - 48;
    const raw = args[spec];
    const conv = String.fromCharCode(at(i));
    let piece: Piece;
    if (conv === "p" || conv === "s") {
      let kind = conv === "s" ? "s" : "";
      const next = String.fromCharCode(at(i + 1));
      if (conv === "p") {
        if (endsConversion(at(i + 1))) kind = "p";
        else if ((next === "k" || next === "u") && at(i + 2) === 115) {
          kind = next;
          i += 2;
        } else if ("KxsSB".includes(next)) {
          kind = next === "K" || next === "x" ? "p" : "S";
          i++;
        } else if (
          (next === "i" || next === "I") &&
          (at(i + 2) === 52 || at(i + 2) === 54)
        ) {
          kind = next + String.fromCharCode(at(i + 2));
          i += 2;
        } else return -EINVAL;
      }
      if (kind === "s" || kind === "k" || kind === "u") {
        if (!endsConversion(at(i + 1))) return -EINVAL;
        if (used === MAX_BPRINTF_BIN_ARGS) return -ENOSPC;
        // bpf_trace_copy_string(): %s reads user memory below TASK_SIZE
        const user = kind === "u" ||
          (kind === "s" && BigInt.asUintN(64, raw) < (1n << 47n) - 4096n);
        const got = user
          ? -14
          : kernelString(vm, raw, MAX_BPRINTF_BIN_ARGS - used);
        const bytes = typeof got === "number" ? Uint8Array.of(0) : got;
        used += bytes.length;
        const str = String.fromCharCode(...bytes.subarray(0, bytes.length - 1));
        piece = { conv: "str", flags, width, value: str };
      } else if (kind === "p" || kind === "S") {
        used = ((used + 3) & ~3) + 8;
        if (used > MAX_BPRINTF_BIN_ARGS) return -ENOSPC;
        const hex = BigInt.asUintN(64, raw).toString(16);
        const str = kind === "p" ? hex.padStart(16, "0") : `0x${hex}`;
        piece = { conv: "str", flags, width, value: str };
      } else {
        const v6 = kind.endsWith("6");
        const size = v6 ? 16 : 4;
        if (MAX_BPRINTF_BIN_ARGS - used < size) return -ENOSPC;
        let ip: Uint8Array = new Uint8Array(size);
        try {
          ip = vm.mem.readBytes(raw, size);
        } catch { /* copy_from_kernel_nofault() failed: zeroes */ }
        const str = v6
          ? ip6String(ip, kind[0] === "I")
          : ip4String(ip, kind[0] === "i");
        used += str.length + 1;
        piece = { conv: "str", flags, width, value: str };
      }
    } else if (conv === "c") {
      if (used === MAX_BPRINTF_BIN_ARGS) return -ENOSPC;
      used++;
      piece = {
        conv: "char",
        flags,
        width,
        value: String.fromCharCode(Number(raw & 0xffn)),
      };
    } else {
      let bytes: 4 | 8 = 4;
      if (at(i) === 108) {
        bytes = 8;
        i++;
        if (at(i) === 108) i++;
      }
      const d = String.fromCharCode(at(i));
      if (!["i", "d", "u", "x", "X"].includes(d)) return -EINVAL;
      used = ((used + 3) & ~3) + bytes;
      if (used > MAX_BPRINTF_BIN_ARGS) return -ENOSPC;
      piece = {
        conv: "int",
        flags,
        width,
        value: BigInt.asUintN(bytes * 8, raw),
        signed: d === "i" || d === "d",
        base: d === "x" || d === "X" ? 16 : 10,
        upper: d === "X",
        bytes,
      };
    }
    spec++;
    if (text !== "") pieces.push(text);
    text = "";
    pieces.push(piece);
  }
  if (text !== "") pieces.push(text);
  return pieces;
}

/** `bstr_printf()`'s whole output (untruncated) of prepared pieces. */
export function bstrPrintf(pieces: readonly Piece[]): string {
  let out = "";
  for (const p of pieces) {
    if (typeof p === "string") {
      out += p;
      continue;
    }
    if (p.conv === "int") {
      out += formatNumber(p.value as bigint, p);
      continue;
    }
    const s = p.value as string;
    const pad = " ".repeat(Math.max(0, p.width - s.length));
    out += p.flags & LEFT ? s + pad : pad + s;
  }
  return out;
}

/** `number()` of lib/vsprintf.c without precision or `#`. */
function formatNumber(
  value: bigint,
  p: {
    flags: number;
    width: number;
    signed?: boolean;
    base?: number;
    upper?: boolean;
    bytes?: number;
  },
): string {
  let flags = p.flags;
  if (flags & LEFT) flags &= ~ZEROPAD;
  let num = value;
  let sign = "";
  if (p.signed) {
    num = BigInt.asIntN((p.bytes ?? 4) * 8, value);
    if (num < 0n) {
      sign = "-";
      num = -num;
    } else if (flags & PLUS) sign = "+";
    else if (flags & SPACE) sign = " ";
  }
  let digits = num.toString(p.base ?? 10);
  if (p.upper) digits = digits.toUpperCase();
  const padLen = Math.max(0, p.width - sign.length - digits.length);
  if (flags & LEFT) return sign + digits + " ".repeat(padLen);
  if (flags & ZEROPAD) return sign + "0".repeat(padLen) + digits;
  return " ".repeat(padLen) + sign + digits;
}

/** `%pI4` (`1.2.3.4`) or, with `leadingZeros`, `%pi4` (`001.002.003.004`). */
function ip4String(ip: Uint8Array, leadingZeros: boolean): string {
  return [...ip].map((b) =>
    leadingZeros ? String(b).padStart(3, "0") : String(b)
  )
    .join(".");
}

/** `%pI6` (colon-separated words) or `%pi6` (32 hex digits). */
function ip6String(ip: Uint8Array, colons: boolean): string {
  const words = Array.from(
    { length: 8 },
    (_, i) => (ip[2 * i] << 8) | ip[2 * i + 1],
  );
  if (!colons) {
    return words.map((w) => w.toString(16).padStart(4, "0")).join("");
  }
  return words.map((w) => w.toString(16).padStart(4, "0")).join(":");
}

/** Renders `pieces` into a C buffer of `size` bytes as `bstr_printf()`: truncated, NUL-terminated. */
export function cBuffer(text: string, size: number): Uint8Array {
  const out = new Uint8Array(size);
  if (size === 0) return out;
  const n = Math.min(text.length, size - 1);
  for (let i = 0; i < n; i++) out[i] = text.charCodeAt(i);
  return out;
}

/** The args array of a printf-like helper: `data_len / 8` u64s, or -EINVAL. */
export function varargs(
  vm: CallContext,
  address: bigint,
  dataLen: number,
): bigint[] | number {
  // mirrors the check of bpf_snprintf() / bpf_trace_vprintk()
  if (dataLen % 8 !== 0 || dataLen > MAX_BPRINTF_VARARGS * 8) return -EINVAL;
  if (dataLen !== 0 && address === 0n) return -EINVAL;
  const args: bigint[] = [];
  for (let i = 0; i < dataLen / 8; i++) {
    args.push(vm.mem.read(address + BigInt(8 * i), 8));
  }
  return args;
}
