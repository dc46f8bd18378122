/**
 * The red-black tree algorithms of lib/rbtree.c (`rb_insert_color_cached`,
 * `rb_erase_cached`, `rb_next`, postorder walk) over `struct rb_node` /
 * `struct rb_root_cached` words in simulated memory: parent and colour
 * share `__rb_parent_color` (bit 0: black), children at +8 (right) and
 * +16 (left), the root's node at +0 and the cached leftmost at +8.
 *
 * The rebalancing is the textbook one (Cormen et al.): it keeps the same
 * invariants as the kernel's, though the shape after a given sequence of
 * operations may differ from the kernel's in rotations chosen.
 * @module
 */
import type { AddressSpace } from "../../exec/memory.ts";
import {
  GraphCorruption,
  px,
  RB_BLACK,
  RB_LEFT,
  RB_PARENT_COLOR,
  RB_RED,
  RB_RIGHT,
  RB_ROOT_LEFTMOST,
  RB_ROOT_NODE,
  readWord,
  writeWord,
} from "./layouts.ts";

const PC = BigInt(RB_PARENT_COLOR);
const R = BigInt(RB_RIGHT);
const L = BigInt(RB_LEFT);
const TOP = BigInt(RB_ROOT_NODE);
const LEFTMOST = BigInt(RB_ROOT_LEFTMOST);
const COLOR_MASK = 3n;
/** Steps a walk up or down may take: twice the depth of any balanced tree. */
const MAX_RB_STEPS = 256;

/** One `rb_root_cached` and the word accessors of its nodes. */
export class RbTree {
  /** The memory. */
  readonly space: AddressSpace;
  /** Address of the `rb_root_cached`. */
  readonly root: bigint;

  /** Accessors for the tree rooted at `root`. */
  constructor(space: AddressSpace, root: bigint) {
    this.space = space;
    this.root = root;
  }

  /** `rb_root.rb_node`. */
  top(): bigint {
    return readWord(this.space, this.root + TOP);
  }
  /** `rb_leftmost`. */
  leftmost(): bigint {
    return readWord(this.space, this.root + LEFTMOST);
  }
  /** `rb_parent()`. */
  parent(n: bigint): bigint {
    return readWord(this.space, n + PC) & ~COLOR_MASK;
  }
  /** True when `n` is black (NULL counts as black). */
  isBlack(n: bigint): boolean {
    return n === 0n || (readWord(this.space, n + PC) & 1n) === RB_BLACK;
  }
  /** `rb_left`. */
  left(n: bigint): bigint {
    return readWord(this.space, n + L);
  }
  /** `rb_right`. */
  right(n: bigint): bigint {
    return readWord(this.space, n + R);
  }

  /** Sets `rb_root.rb_node`. */
  private setTop(n: bigint): void {
    writeWord(this.space, this.root + TOP, n);
  }
  /** Sets `rb_left`. */
  private setLeft(n: bigint, child: bigint): void {
    writeWord(this.space, n + L, child);
  }
  /** Sets `rb_right`. */
  private setRight(n: bigint, child: bigint): void {
    writeWord(this.space, n + R, child);
  }
  /** Sets the parent, keeping the colour. */
  private setParent(n: bigint, parent: bigint): void {
    const color = readWord(this.space, n + PC) & 1n;
    writeWord(this.space, n + PC, parent | color);
  }
  /** Sets the colour, keeping the parent. */
  private setColor(n: bigint, color: bigint): void {
    writeWord(this.space, n + PC, this.parent(n) | color);
  }

  /**
   * Walks that follow links stop here after more steps than any balanced
   * tree is deep: a tree changed by CPUs racing without its lock may hold
   * a cycle, which the kernel would follow forever.
   */
  private bounded(steps: number): void {
    if (steps > MAX_RB_STEPS) {
      throw new GraphCorruption(
        `rb-tree ${px(this.root)} is corrupt: its links run in a cycle`,
      );
    }
  }

  /** `rb_link_node()` + `rb_insert_color_cached()`. */
  insert(n: bigint, parent: bigint, asLeft: boolean, leftmost: boolean): void {
    writeWord(this.space, n + PC, parent | RB_RED);
    this.setLeft(n, 0n);
    this.setRight(n, 0n);
    if (parent === 0n) this.setTop(n);
    else if (asLeft) this.setLeft(parent, n);
    else this.setRight(parent, n);
    if (leftmost) writeWord(this.space, this.root + LEFTMOST, n);
    this.insertFixup(n);
  }

  /** Restores the red-black rules after linking red `z` (`__rb_insert`). */
  private insertFixup(z: bigint): void {
    let p = this.parent(z);
    for (let steps = 0; p !== 0n && !this.isBlack(p); steps++) {
      this.bounded(steps);
      const g = this.parent(p); // a red node is never the root
      const pIsLeft = p === this.left(g);
      const uncle = pIsLeft ? this.right(g) : this.left(g);
      if (!this.isBlack(uncle)) {
        this.setColor(p, RB_BLACK);
        this.setColor(uncle, RB_BLACK);
        this.setColor(g, RB_RED);
        z = g;
      } else {
        if (z === (pIsLeft ? this.right(p) : this.left(p))) {
          z = p;
          if (pIsLeft) this.rotateLeft(z);
          else this.rotateRight(z);
        }
        const zp = this.parent(z);
        this.setColor(zp, RB_BLACK);
        this.setColor(g, RB_RED);
        if (pIsLeft) this.rotateRight(g);
        else this.rotateLeft(g);
      }
      p = this.parent(z);
    }
    this.setColor(this.top(), RB_BLACK);
  }

  /** Replaces `u` by `v` under `u`'s parent (`__rb_change_child`). */
  private transplant(u: bigint, v: bigint): void {
    const p = this.parent(u);
    if (p === 0n) this.setTop(v);
    else if (u === this.left(p)) this.setLeft(p, v);
    else this.setRight(p, v);
    if (v !== 0n) this.setParent(v, p);
  }

  /** Left rotation at `x`. */
  private rotateLeft(x: bigint): void {
    const y = this.right(x);
    const b = this.left(y);
    this.setRight(x, b);
    if (b !== 0n) this.setParent(b, x);
    this.transplant(x, y);
    this.setLeft(y, x);
    this.setParent(x, y);
  }

  /** Right rotation at `x`. */
  private rotateRight(x: bigint): void {
    const y = this.left(x);
    const b = this.right(y);
    this.setLeft(x, b);
    if (b !== 0n) this.setParent(b, x);
    this.transplant(x, y);
    this.setRight(y, x);
    this.setParent(x, y);
  }

  /** `rb_first()` of the subtree at `n`. */
  private minimum(n: bigint): bigint {
    for (let l = this.left(n), steps = 0; l !== 0n; l = this.left(n)) {
      this.bounded(steps++);
      n = l;
    }
    return n;
  }

  /** `rb_next()`: in-order successor, or 0n. */
  next(n: bigint): bigint {
    const r = this.right(n);
    if (r !== 0n) return this.minimum(r);
    let p = this.parent(n);
    for (let steps = 0; p !== 0n && n === this.right(p); steps++) {
      this.bounded(steps);
      n = p;
      p = this.parent(n);
    }
    return p;
  }

  /** `rb_erase_cached()`. */
  erase(z: bigint): void {
    if (this.leftmost() === z) {
      writeWord(this.space, this.root + LEFTMOST, this.next(z));
    }
    let removedBlack = this.isBlack(z);
    let x: bigint;
    let xParent: bigint;
    const zl = this.left(z), zr = this.right(z);
    if (zl === 0n || zr === 0n) {
      x = zl === 0n ? zr : zl;
      xParent = this.parent(z);
      this.transplant(z, x);
    } else {
      const y = this.minimum(zr);
      removedBlack = this.isBlack(y);
      x = this.right(y);
      if (this.parent(y) === z) xParent = y;
      else {
        xParent = this.parent(y);
        this.transplant(y, x);
        this.setRight(y, zr);
        this.setParent(zr, y);
      }
      this.transplant(z, y);
      this.setLeft(y, zl);
      this.setParent(zl, y);
      this.setColor(y, this.isBlack(z) ? RB_BLACK : RB_RED);
    }
    if (removedBlack) this.eraseFixup(x, xParent);
  }

  /** Restores the black heights after removing a black node (`____rb_erase_color`). */
  private eraseFixup(x: bigint, xp: bigint): void {
    for (let steps = 0; x !== this.top() && this.isBlack(x); steps++) {
      this.bounded(steps);
      const isLeft = x === this.left(xp);
      let w = isLeft ? this.right(xp) : this.left(xp);
      if (!this.isBlack(w)) {
        this.setColor(w, RB_BLACK);
        this.setColor(xp, RB_RED);
        if (isLeft) this.rotateLeft(xp);
        else this.rotateRight(xp);
        w = isLeft ? this.right(xp) : this.left(xp);
      }
      const near = isLeft ? this.left(w) : this.right(w);
      const far = isLeft ? this.right(w) : this.left(w);
      if (this.isBlack(near) && this.isBlack(far)) {
        this.setColor(w, RB_RED);
        x = xp;
        xp = this.parent(x);
      } else {
        if (this.isBlack(far)) {
          this.setColor(near, RB_BLACK);
          this.setColor(w, RB_RED);
          if (isLeft) this.rotateRight(w);
          else this.rotateLeft(w);
          w = isLeft ? this.right(xp) : this.left(xp);
        }
        this.setColor(w, this.isBlack(xp) ? RB_BLACK : RB_RED);
        this.setColor(xp, RB_BLACK);
        const farNow = isLeft ? this.right(w) : this.left(w);
        if (farNow !== 0n) this.setColor(farNow, RB_BLACK);
        if (isLeft) this.rotateLeft(xp);
        else this.rotateRight(xp);
        x = this.top();
        break;
      }
    }
    if (x !== 0n) this.setColor(x, RB_BLACK);
  }

  /** Every node in postorder (children before parents), as the free walk visits them. */
  postorder(limit: number): bigint[] {
    const out: bigint[] = [];
    const visit = (n: bigint): void => {
      if (n === 0n) return;
      if (out.length >= limit) throw new RangeError("rb-tree walk over limit");
      visit(this.left(n));
      visit(this.right(n));
      out.push(n);
    };
    visit(this.top());
    return out;
  }

  /**
   * Checks the red-black invariants and parent links; returns the in-order
   * node list, or throws a description of the first broken invariant.
   */
  check(): bigint[] {
    const out: bigint[] = [];
    const walk = (n: bigint, parent: bigint): number => {
      if (n === 0n) return 1;
      if (this.parent(n) !== parent) {
        throw new Error(`bad parent link at ${n.toString(16)}`);
      }
      if (
        !this.isBlack(n) &&
        (!this.isBlack(this.left(n)) || !this.isBlack(this.right(n)))
      ) {
        throw new Error(`red node ${n.toString(16)} has a red child`);
      }
      const lh = walk(this.left(n), n);
      out.push(n);
      const rh = walk(this.right(n), n);
      if (lh !== rh) {
        throw new Error(`black heights differ under ${n.toString(16)}`);
      }
      return lh + (this.isBlack(n) ? 1 : 0);
    };
    const top = this.top();
    if (!this.isBlack(top)) throw new Error("red root");
    walk(top, 0n);
    if ((out[0] ?? 0n) !== this.leftmost()) {
      throw new Error("stale rb_leftmost");
    }
    return out;
  }
}
