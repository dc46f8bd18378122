/**
 * The message an `sk_msg` program judges (`struct sk_msg`,
 * include/linux/skmsg.h): a ring of at most {@link MAX_MSG_FRAGS}
 * scatterlist elements, each a window (`offset`, `length`) on a page, with
 * `sg.size` the bytes of all of them and `data … data_end` a window on one
 * element. The message helpers of net/core/filter.c reshape it:
 * `bpf_msg_pull_data()` linearises a range into one element,
 * `bpf_msg_push_data()` inserts bytes, `bpf_msg_pop_data()` removes them.
 *
 * The ring is kept as the list of its used slots in ring order: which slot
 * number an element sits in never shows, only the order and the count
 * (`sk_msg_elem_used()`) do. What is modelled, and what is not:
 * - every element owns its page (`sg.copy` clear), as `tcp_bpf_sendmsg()`
 *   builds them by copying the caller's bytes; pages shared through
 *   sendpage/splice (which force `bpf_msg_pull_data()` to copy) are not;
 * - pushed bytes are zero: the kernel's `alloc_pages()` leaves them
 *   uninitialised, whatever the page held before;
 * - an allocation fails only when it is larger than `alloc_pages()` ever
 *   gives (order > `MAX_PAGE_ORDER`, 4 MiB): -ENOMEM;
 * - the behaviour is that of 6.13+ (Zijian Zhang's fixes: push at the very
 *   end allowed, pop of the whole message allowed, pop's front length
 *   `start - offset`), and of the 2026 fix that makes the right half of a
 *   split element start at `start - offset` within it (6.18 before it adds
 *   the absolute `start`, pointing the tail at the wrong bytes of the page);
 * - a push at the very end of a full ring, which 6.18 turns into a ring
 *   whose end meets its start (an empty-looking, corrupt message), fails
 *   here with -ENOMEM and changes nothing.
 * @module
 */
import { EINVAL, ENOMEM } from "../../../uapi/errno.ts";

/** `MAX_MSG_FRAGS` (= `MAX_SKB_FRAGS`, 17): elements a message can hold. */
export const MAX_MSG_FRAGS = 17;
/** `NR_MSG_FRAG_IDS`: slots of the ring (one stays free to tell full from empty). */
export const NR_MSG_FRAG_IDS: number = MAX_MSG_FRAGS + 1;
/** `PAGE_SIZE << MAX_PAGE_ORDER` on x86-64: the largest `alloc_pages()` gives. */
export const MAX_ALLOC_BYTES: number = 4096 << 10;

/** One scatterlist element: `length` bytes at `offset` of `page`. */
export interface MsgElement {
  /** The page (or compound page) the element points into. */
  readonly page: Uint8Array;
  /** `sge->offset`. */
  offset: number;
  /** `sge->length`. */
  length: number;
}

/** `data … data_end`: a window of `element`, in bytes from its start. */
export interface MsgWindow {
  /** Index (ring order) of the element, -1 for an empty message. */
  readonly element: number;
  /** First byte, from the element's start. */
  readonly start: number;
  /** One past the last byte. */
  readonly end: number;
}

/**
 * A `struct sk_msg`: the elements, `sg.size`, the window `data … data_end`
 * and what the program asked with `bpf_msg_apply_bytes()` /
 * `bpf_msg_cork_bytes()`.
 */
export class SkMsg {
  /** The used slots of the ring, from `sg.start` to `sg.end`. */
  readonly elements: MsgElement[];
  /** `sg.size`: bytes in all elements. */
  size: number;
  /** `msg->apply_bytes`. */
  applyBytes = 0;
  /** `msg->cork_bytes`. */
  corkBytes = 0;
  /** `data … data_end`. */
  window: MsgWindow = { element: -1, start: 0, end: 0 };
  /** Told each time `data … data_end` moves (the ctx remaps its packet). */
  onWindowChange: (() => void) | undefined = undefined;

  /**
   * A message of one element per fragment (each 1 byte or more, at most
   * {@link MAX_MSG_FRAGS} of them), each on a page of its own, with the
   * window on the first (`sk_msg_compute_data_pointers()`).
   */
  constructor(fragments: readonly Uint8Array[]) {
    if (fragments.length === 0 || fragments.length > MAX_MSG_FRAGS) {
      throw new RangeError(
        `a message has 1 to ${MAX_MSG_FRAGS} fragments, not ${fragments.length}`,
      );
    }
    if (fragments.some((f) => f.length === 0)) {
      throw new RangeError("a message fragment cannot be empty");
    }
    this.elements = fragments.map((f) => ({
      page: f.slice(),
      offset: 0,
      length: f.length,
    }));
    this.size = fragments.reduce((n, f) => n + f.length, 0);
    this.computeDataPointers();
  }

  /** The bytes of `element` (a view: writes reach the page). */
  elementBytes(index: number): Uint8Array {
    const e = this.elements[index];
    return e.page.subarray(e.offset, e.offset + e.length);
  }

  /** The message's bytes, element after element. */
  bytes(): Uint8Array {
    const out = new Uint8Array(this.size);
    let at = 0;
    for (let i = 0; i < this.elements.length; i++) {
      const b = this.elementBytes(i);
      out.set(b, at);
      at += b.length;
    }
    return out;
  }

  /** Each element's length, in ring order. */
  fragmentSizes(): number[] {
    return this.elements.map((e) => e.length);
  }

  /** Mirrors `sk_msg_compute_data_pointers()`: the window is the first element. */
  computeDataPointers(): void {
    const first = this.elements[0];
    this.setWindow(
      first === undefined
        ? { element: -1, start: 0, end: 0 }
        : { element: 0, start: 0, end: first.length },
    );
  }

  /** Moves `data … data_end` and tells the listener. */
  private setWindow(w: MsgWindow): void {
    this.window = w;
    this.onWindowChange?.();
  }

  /**
   * The element holding byte `start` and the offset of its first byte, as
   * the helpers' first loop finds them; past the last byte, the loop ends
   * on `sg.end` (index = element count) with the last element's offset and
   * length.
   */
  private locate(start: number): { i: number; offset: number; l: number } {
    let offset = 0, l = 0, i = 0;
    do {
      offset += l;
      l = this.elements[i].length;
      if (start < offset + l) break;
      i++;
    } while (i !== this.elements.length);
    return { i, offset, l };
  }

  /**
   * Mirrors `bpf_msg_pull_data()`: makes bytes `[start, end)` one window.
   * -EINVAL for flags, `end <= start`, `start` past the message or `end`
   * past it; a range inside one element only moves the window, else the
   * elements it spans are copied into one new page.
   */
  pullData(start: number, end: number, flags: bigint): number {
    if (flags !== 0n || end <= start) return -EINVAL;
    const bytes = end - start;
    const { i, offset, l } = this.locate(start);
    if (start >= offset + l) return -EINVAL;
    const total = start - offset + bytes; // the element's head counts too
    if (total > l) {
      let copy = 0, last = i;
      do {
        copy += this.elements[last].length;
        last++;
      } while (total > copy && last !== this.elements.length);
      if (total > copy) return -EINVAL;
      if (copy > MAX_ALLOC_BYTES) return -ENOMEM;
      const page = new Uint8Array(copy);
      let at = 0;
      for (let k = i; k < last; k++) {
        page.set(this.elementBytes(k), at);
        at += this.elements[k].length;
      }
      this.elements.splice(i, last - i, { page, offset: 0, length: copy });
    }
    this.setWindow({
      element: i,
      start: start - offset,
      end: start - offset + bytes,
    });
    return 0;
  }

  /**
   * Mirrors `bpf_msg_push_data()`: inserts `len` zero bytes at `start`
   * (`start` = size appends). An element split in two needs two free
   * slots, one inserted before needs one; with too few the element is
   * copied into a new page with the gap inside (`copy`). -EINVAL for
   * flags or `start` past the end; 0 at once for `len` 0.
   */
  pushData(start: number, len: number, flags: bigint): number {
    if (flags !== 0n) return -EINVAL;
    if (len === 0) return 0;
    const n = this.elements.length;
    const { i, offset, l } = this.locate(start);
    if (start > offset + l) return -EINVAL;
    const space = MAX_MSG_FRAGS - n;
    const front = start - offset;
    // `msg->sg.data[i].length`: the free slot at sg.end has none
    const copy = !space || (space === 1 && front !== 0)
      ? (i < n ? this.elements[i].length : 0)
      : 0;
    if (copy + len > MAX_ALLOC_BYTES) return -ENOMEM;
    if (copy !== 0) {
      const page = new Uint8Array(copy + len);
      page.set(this.elementBytes(i).subarray(0, front), 0);
      page.set(this.elementBytes(i).subarray(front), front + len);
      this.elements[i] = { page, offset: 0, length: copy + len };
    } else {
      if (space === 0) return -ENOMEM; // see the module comment: 6.18 corrupts its ring
      const added: MsgElement = {
        page: new Uint8Array(len),
        offset: 0,
        length: len,
      };
      if (front === 0) {
        this.elements.splice(i, 0, added);
      } else {
        const at = i === n ? n - 1 : i; // appending: after the last element
        const psge = this.elements[at];
        const rest = psge.length - front;
        psge.length = front;
        const tail: MsgElement[] = rest > 0
          ? [{ page: psge.page, offset: psge.offset + front, length: rest }]
          : [];
        this.elements.splice(at + 1, 0, added, ...tail);
      }
    }
    this.size += len;
    this.computeDataPointers();
    return 0;
  }

  /**
   * Mirrors `bpf_msg_pop_data()`: removes bytes `[start, start + len)`.
   * Removing from inside an element keeps its head and makes its tail a
   * new element (one free slot needed; without it head and tail are copied
   * into one new page). -EINVAL for flags, `start` past the end or a range
   * past it; 0 at once for `len` 0.
   */
  popData(start: number, len: number, flags: bigint): number {
    if (flags !== 0n) return -EINVAL;
    if (len === 0) return 0;
    const { offset, l, ...found } = this.locate(start);
    let i = found.i;
    if (start >= offset + l || start + len > this.size) return -EINVAL;
    const space = MAX_MSG_FRAGS - this.elements.length;
    let pop = len;
    if (start !== offset) {
      const sge = this.elements[i];
      const a = start - offset;
      const b = sge.length - pop - a;
      if (b > 0) {
        if (space) {
          sge.length = a;
          this.elements.splice(i + 1, 0, {
            page: sge.page,
            offset: sge.offset + a + pop,
            length: b,
          });
        } else {
          const whole = this.elementBytes(i);
          const page = new Uint8Array(a + b);
          page.set(whole.subarray(0, a), 0);
          page.set(whole.subarray(a + pop, a + pop + b), a);
          this.elements[i] = { page, offset: 0, length: a + b };
        }
        pop = 0;
      } else {
        pop -= sge.length - a;
        sge.length = a;
      }
      i++;
    }
    while (pop) {
      const sge = this.elements[i];
      if (pop < sge.length) {
        sge.length -= pop;
        sge.offset += pop;
        pop = 0;
      } else {
        pop -= sge.length;
        this.elements.splice(i, 1); // sk_msg_shift_left()
      }
    }
    this.size -= len;
    this.computeDataPointers();
    return 0;
  }
}
