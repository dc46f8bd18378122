/**
 * `read()` of an open BPF iterator: `bpf_seq_read()` (kernel/bpf/bpf_iter.c),
 * the seq_file loop that fills the 32 KiB page buffer element by element
 * (`show()` runs the program) and copies it out. Its rules:
 * - an element whose `show()` fails (the program returned non-zero:
 *   -EAGAIN) or overflowed the buffer is dropped: `count` goes back to
 *   where it was; if nothing was printed before it, the read fails with
 *   that error (-E2BIG for an overflow), else the read returns what was
 *   printed and the next read starts at that element again;
 * - `seq_num` counts the elements shown (it is incremented when `next()`
 *   finds one); the final call (`stop()` with no element) runs the program
 *   once per session (`done_stop`), unless it overflows, in which case it
 *   is made again by the next read;
 * - a read stops early once `count >= size` or after MAX_ITER_OBJECTS.
 * @module
 */
import { SeqFile } from "./seq_helpers.ts";
import { E2BIG, EAGAIN } from "../../../uapi/errno.ts";

/** `MAX_ITER_OBJECTS`: elements one read visits at most. */
export const MAX_ITER_OBJECTS = 1_000_000;

/** A target's `seq_operations`; show returns 0 or a negative errno. */
export interface SeqIterOps<T> {
  /** `start(seq, &seq->index)`. */
  start(pos: { index: number }): T | null;
  /** `next(seq, v, &seq->index)`. */
  next(v: T, pos: { index: number }): T | null;
  /** `show(seq, v)`: runs the program on `v`. */
  show(v: T): number;
  /** `stop(seq, v)`: with v null, the final program call. */
  stop(v: T | null): void;
}

/** An open iterator (`struct seq_file` + `struct bpf_iter_priv_data`). */
export class IterSeqRead<T> {
  /** The seq_file the program prints into. */
  readonly seq: SeqFile = new SeqFile();
  /** `session_id`. */
  readonly sessionId: bigint;
  /** `seq_num`. */
  seqNum = 0n;
  /** `done_stop`: the final call was made. */
  doneStop = false;
  /** Program runs so far. */
  runs = 0;
  /** Lines `bpf_trace_printk` printed. */
  readonly printk: string[] = [];
  /** `seq->from`: where the unread rest of the buffer starts. */
  private from = 0;
  /** `seq->index`. */
  private readonly pos = { index: 0 };
  private readonly ops: SeqIterOps<T>;
  private readonly onClose: () => void;
  private closed = false;

  /** An open iterator walking with `ops`; `onClose` frees its regions. */
  constructor(
    sessionId: bigint,
    ops: SeqIterOps<T>,
    onClose: () => void,
  ) {
    this.sessionId = sessionId;
    this.ops = ops;
    this.onClose = onClose;
  }

  /** Mirrors `bpf_seq_read()`: up to `size` bytes, or a negative errno. */
  read(size: number): Uint8Array | number {
    const seq = this.seq;
    if (seq.count > 0) {
      const n = Math.min(seq.count, size);
      const out = seq.buf.slice(this.from, this.from + n);
      seq.count -= n;
      this.from += n;
      return out;
    }
    this.from = 0;
    const { ops, pos } = this;
    let p = ops.start(pos);
    if (p !== null) {
      const err = ops.show(p);
      if (err < 0 || seq.hasOverflowed()) {
        ops.stop(p);
        seq.count = 0;
        return err < 0 ? err : -E2BIG;
      }
      for (let numObjs = 1;; numObjs++) {
        const before = pos.index;
        const offs = seq.count;
        p = ops.next(p, pos);
        if (pos.index === before) pos.index++; // "buggy seq_file .next function"
        if (p === null) break;
        this.seqNum++;
        if (seq.count >= size) break;
        if (numObjs >= MAX_ITER_OBJECTS) {
          if (offs === 0) {
            ops.stop(p);
            return -EAGAIN;
          }
          break;
        }
        const e = ops.show(p);
        if (e < 0 || seq.hasOverflowed()) {
          seq.count = offs;
          if (offs === 0) {
            ops.stop(p);
            return e < 0 ? e : -E2BIG;
          }
          break;
        }
      }
    }
    // stop: the program's final call when the walk ended
    const offs = seq.count;
    ops.stop(p);
    if (p === null) {
      if (!seq.hasOverflowed()) this.doneStop = true;
      else {
        seq.count = offs;
        if (offs === 0) return -E2BIG;
      }
    }
    const n = Math.min(seq.count, size);
    const out = seq.buf.slice(0, n);
    seq.count -= n;
    this.from = n;
    return out;
  }

  /** `iter_release()`: frees the iterator's regions. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.onClose();
  }
}
