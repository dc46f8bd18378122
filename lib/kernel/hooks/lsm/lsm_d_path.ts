/**
 * `d_path()` (fs/d_path.c) over a simulated file, byte for byte: the name
 * is built backwards from the end of the caller's buffer with the
 * `prepend_buffer` primitives, so that on overflow the buffer holds what
 * the kernel leaves in it (the path's tail) and the result is
 * -ENAMETOOLONG. The simulated file system is one mount whose root is the
 * task's root, so `prepend_path()` walks the path's components up to `/`.
 * A socket file has no path: its dentry's `d_dname` is `sockfs_dname()`,
 * "socket:[ino]" (`dynamic_dname()`).
 * @module
 */
import type { SimFile } from "./lsm_env.ts";
import { ENAMETOOLONG } from "../../../uapi/errno.ts";
export { ENAMETOOLONG } from "../../../uapi/errno.ts";

const encoder = new TextEncoder();

/** Mirrors `struct prepend_buffer`: `pos` is `buf`'s offset, `len` the room left (-1: overflowed). */
class PrependBuffer {
  pos: number;
  len: number;

  constructor(readonly bytes: Uint8Array) {
    this.pos = bytes.length;
    this.len = bytes.length;
  }

  /** Mirrors `prepend_char()`. */
  char(c: number): boolean {
    if (this.len > 0) {
      this.len--;
      this.bytes[--this.pos] = c;
      return true;
    }
    this.len = -1;
    return false;
  }

  /** Mirrors `prepend()`: on overflow, fills what room is left with the string's tail. */
  str(s: Uint8Array): boolean {
    if (this.len < 0) return false;
    if (this.len < s.length) {
      this.pos -= this.len;
      this.bytes.set(s.subarray(s.length - this.len), this.pos);
      this.len = -1;
      return false;
    }
    this.len -= s.length;
    this.pos -= s.length;
    this.bytes.set(s, this.pos);
    return true;
  }

  /** Mirrors `prepend_name()`: the name, then its '/'. */
  name(s: Uint8Array): boolean {
    return this.str(s) && this.char(0x2f);
  }
}

/**
 * Mirrors `d_path(&file->f_path, buf, buf.length)` on `buf` (changed in
 * place): the offset in `buf` where the NUL-terminated name starts, or
 * -ENAMETOOLONG (`buf` then holds whatever the kernel had written).
 * `buf` must not be empty (`bpf_d_path()` returns before for size 0).
 */
export function dPath(file: SimFile, buf: Uint8Array): number {
  if (file.socket !== 0n) {
    // sockfs_dname() → dynamic_dname(): all or nothing, at the end
    const text = encoder.encode(`socket:[${file.inode.ino}]\0`);
    if (text.length > 64 || text.length > buf.length) return -ENAMETOOLONG;
    buf.set(text, buf.length - text.length);
    return buf.length - text.length;
  }
  const b = new PrependBuffer(buf);
  if (file.unlinked) b.str(encoder.encode(" (deleted)\0"));
  else b.char(0);
  // prepend_path(): from the dentry up to the root, a name at a time
  const start = b.len;
  const components = file.path.split("/").filter((c) => c !== "");
  for (let i = components.length - 1; i >= 0; i--) {
    if (!b.name(encoder.encode(components[i]))) break;
  }
  if (b.len === start) b.char(0x2f); // the root itself: "/"
  return b.len >= 0 ? b.pos : -ENAMETOOLONG; // extract_string()
}
