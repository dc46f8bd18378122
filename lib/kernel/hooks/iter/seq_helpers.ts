/**
 * The seq_file an iterator prints into and the helpers that print:
 * `bpf_seq_printf` and `bpf_seq_write` (kernel/trace/bpf_trace.c) over
 * `seq_bprintf()` / `seq_write()` (fs/seq_file.c).
 *
 * A seq_file here is its page buffer and `count`: the buffer
 * `bpf_seq_read()` allocates (`PAGE_SIZE << 3`, 32 KiB), filled by the
 * program; when a write does not fit, the file is marked overflowed
 * (`seq_set_overflow()`: `count = size`) and the helper returns
 * -EOVERFLOW — `bpf_seq_read()` then drops what that call printed. The
 * format rules are `bpf_bprintf_prepare()`'s, shared with `bpf_snprintf`
 * (generic_helpers_printf.ts). `bpf_seq_printf_btf` prints an object
 * with the kernel's BTF printer (btf_print_helpers.ts), the program's own
 * BTF standing in for vmlinux's.
 * @module
 */
import { ExecError } from "../../../exec/fault.ts";
import type { CallContext, HelperFn } from "../../../exec/state.ts";
import type { Btf } from "../../../btf/btf.ts";
import { EINVAL, EOVERFLOW } from "../../../uapi/errno.ts";
import { seqPrintfBtf } from "./btf_print_helpers.ts";
import {
  bprintfPrepare,
  bstrPrintf,
  varargs,
} from "../../generic_helpers_printf.ts";

/** Helper ids (include/uapi/linux/bpf.h). */
export const SEQ_HELPER = {
  seq_printf: 126,
  seq_write: 127,
  seq_printf_btf: 150,
} as const;

/** `PAGE_SIZE << 3`: the buffer `bpf_seq_read()` gives an iterator's seq_file. */
export const SEQ_BUF_SIZE = 4096 << 3;

/** `struct seq_file`'s buffer, as the seq helpers fill it. */
export class SeqFile {
  /** `seq->size`. */
  readonly size: number;
  /** `seq->buf`. */
  readonly buf: Uint8Array;
  /** `seq->count`: bytes printed so far (equal to size once overflowed). */
  count = 0;

  /** A seq_file with a buffer of `size` bytes. */
  constructor(size: number = SEQ_BUF_SIZE) {
    this.size = size;
    this.buf = new Uint8Array(size);
  }

  /** `seq_has_overflowed()`. */
  hasOverflowed(): boolean {
    return this.count === this.size;
  }

  /** `seq_set_overflow()`. */
  setOverflow(): void {
    this.count = this.size;
  }

  /** `seq_write()`: 0, or -1 (and overflowed) when `data` does not fit with room to spare. */
  write(data: Uint8Array): number {
    if (this.count + data.length < this.size) {
      this.buf.set(data, this.count);
      this.count += data.length;
      return 0;
    }
    this.setOverflow();
    return -1;
  }

  /** `seq_bprintf()` of the formatted `text` (one byte per char). */
  bprintf(text: string): void {
    if (this.count < this.size && this.count + text.length < this.size) {
      for (let i = 0; i < text.length; i++) {
        this.buf[this.count + i] = text.charCodeAt(i) & 0xff;
      }
      this.count += text.length;
      return;
    }
    this.setOverflow();
  }
}

/** The format's bytes before its NUL, which must lie within `size` bytes (else undefined). */
function formatBytes(
  vm: CallContext,
  address: bigint,
  size: number,
): Uint8Array | undefined {
  const bytes = vm.mem.readBytes(address, size);
  const nul = bytes.indexOf(0);
  return nul < 0 ? undefined : bytes.subarray(0, nul);
}

/**
 * `bpf_seq_printf`, `bpf_seq_write` and `bpf_seq_printf_btf`, by id,
 * printing into the seq_file `seqAt` finds at the helper's first argument
 * (the verifier makes it the iterator's `meta->seq`); `btf` is the types
 * `bpf_seq_printf_btf` prints with (the loaded object's).
 */
export function seqHelpers(
  seqAt: (address: bigint) => SeqFile | undefined,
  btf?: Btf,
): Map<number, HelperFn> {
  const seqOf = (vm: CallContext): SeqFile => {
    const seq = seqAt(vm.arg(1));
    if (seq === undefined) {
      throw new ExecError(
        vm.insnIndex,
        `R1 0x${vm.arg(1).toString(16)} is not this iterator's seq_file`,
      );
    }
    return seq;
  };
  return new Map<number, HelperFn>([
    [SEQ_HELPER.seq_printf, (vm) => {
      // mirrors bpf_seq_printf(): args checked, bpf_bprintf_prepare(), seq_bprintf()
      const seq = seqOf(vm);
      const args = varargs(vm, vm.arg(4), vm.argLo(5) >>> 0);
      if (typeof args === "number") return args;
      const fmt = formatBytes(vm, vm.arg(2), vm.argLo(3) >>> 0);
      if (fmt === undefined) return -EINVAL;
      const pieces = bprintfPrepare(vm, fmt, args);
      if (typeof pieces === "number") return pieces;
      seq.bprintf(bstrPrintf(pieces));
      return seq.hasOverflowed() ? -EOVERFLOW : 0;
    }],
    [SEQ_HELPER.seq_write, (vm) => {
      // mirrors bpf_seq_write()
      const seq = seqOf(vm);
      const len = vm.argLo(3) >>> 0;
      const data = len === 0 ? new Uint8Array(0) : vm.mem.readBytes(
        vm.arg(2),
        len,
      );
      return seq.write(data) === 0 ? 0 : -EOVERFLOW;
    }],
    [SEQ_HELPER.seq_printf_btf, (vm) => seqPrintfBtf(vm, seqOf(vm), btf)],
  ]);
}
