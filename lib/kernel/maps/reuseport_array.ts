/**
 * `BPF_MAP_TYPE_REUSEPORT_SOCKARRAY` (kernel/bpf/reuseport_array.c): an
 * array of sockets of `SO_REUSEPORT` groups, indexed by u32, that
 * `bpf_sk_select_reuseport()` picks from. User space puts a socket in
 * by fd; the simulated host has no fd table, so a test puts a simulated
 * socket in with {@link ReuseportArray.updateSock} — what
 * `bpf_fd_reuseport_array_update_elem()` does after `sockfd_lookup()`
 * found it — while the generic syscall update, whose fd names no socket
 * here, fails as a closed fd does (-EBADF). The socket remembers its slot
 * (`sk_user_data`), so one socket sits in at most one slot (-EBUSY) and
 * leaves it when it leaves its group (`bpf_sk_reuseport_detach()`).
 * User space reads back the socket's cookie (8-byte values only,
 * else -ENOSPC). Programs cannot use the map except through
 * `bpf_sk_select_reuseport()` (the verifier refuses the rest).
 * @module
 */
import { MapBase } from "./base.ts";
import {
  arrayIndex,
  BPF_EXIST,
  BPF_NOEXIST,
  checkKey,
  type MapAttr,
  type MapEnv,
  MapError,
  u32Key,
} from "./map.ts";
import {
  E2BIG,
  EBADF,
  EBUSY,
  EEXIST,
  EINVAL,
  ENOENT,
  ENOSPC,
  ENOTSUPP,
  EPERM,
} from "../../uapi/errno.ts";

const S32_MAX = 0x7fffffff;
/** `IPPROTO_TCP` / `IPPROTO_UDP`, `AF_INET` / `AF_INET6`, `SOCK_STREAM` / `SOCK_DGRAM`. */
const IPPROTO_TCP = 6, IPPROTO_UDP = 17, AF_INET = 2, AF_INET6 = 10;
const SOCK_STREAM = 1, SOCK_DGRAM = 2;

/** A reuseport array slot as a socket's `sk_user_data` points at it. */
export interface ReuseportArraySlot {
  /** `RCU_INIT_POINTER(*socks, NULL)`: empties the slot. */
  clear(): void;
}

/** What the array needs of a socket. */
export interface ReuseportArraySocket {
  /** The `struct sock` address. */
  readonly address: bigint;
  /** `sk_protocol`, `sk_family`, `sk_type`. */
  readonly protocol: number;
  /** See {@link protocol}. */
  readonly family: number;
  /** See {@link protocol}. */
  readonly type: number;
  /** `sk_hashed()`: listening (TCP) or bound (UDP). */
  readonly hashed: boolean;
  /** `sock_flag(sk, SOCK_RCU_FREE)`. */
  readonly rcuFree: boolean;
  /** `sk_reuseport_cb` is set. */
  readonly reuseportCb: unknown;
  /** `sk_user_data`. */
  userData: ReuseportArraySlot | undefined;
  /** `__sock_gen_cookie()` on `cpu`. */
  genCookie(cpu: number): bigint;
}

/** `reuseport_array_alloc_check()` (then `array_map_alloc_check()`, in create.ts). */
export function reuseportArrayAllocCheck(a: MapAttr): number {
  return a.valueSize === 4 || a.valueSize === 8 ? 0 : -EINVAL;
}

/** A reuseport socket array: `ptrs[max_entries]`, all empty at creation. */
export class ReuseportArray extends MapBase {
  private readonly ptrs = new Map<number, ReuseportArraySocket>();

  /** `reuseport_array_alloc()`: empty (the simulated user is root). */
  constructor(attr: MapAttr, env: MapEnv) {
    super(attr, null, env, attr.valueSize);
  }

  /** `reuseport_array_lookup_elem()`: the socket at `index`, if any. */
  sockAtIndex(index: number): ReuseportArraySocket | undefined {
    return this.ptrs.get(index >>> 0);
  }

  /** `reuseport_array_lookup_elem()` of `key`'s index. */
  sockAt(key: Uint8Array): ReuseportArraySocket | undefined {
    checkKey(this.attr, key);
    return this.ptrs.get(arrayIndex(key));
  }

  /** The map's lookup op: the socket's address (only the helper reaches it). */
  lookup(key: Uint8Array, _cpu?: number): bigint | null {
    return this.sockAt(key)?.address ?? null;
  }

  /** Programs cannot update the map (the verifier refuses the call). */
  update(): number {
    throw new MapError(
      this.attr.name,
      "a program's update of a reuseport array is not possible",
    );
  }

  /**
   * `bpf_fd_reuseport_array_update_elem()` with `sk`'s fd as value:
   * -EPERM when user space may not write, -EINVAL for flags past
   * `BPF_EXIST`, -E2BIG past the end, then `reuseport_array_update_check()`.
   * On success the slot holds `sk` and `sk` knows its slot; the socket it
   * replaced forgets its own.
   */
  updateSock(key: Uint8Array, sk: ReuseportArraySocket, flags: number): number {
    if (!this.syscallWritable()) return -EPERM;
    checkKey(this.attr, key);
    if (flags > BPF_EXIST || flags < 0) return -EINVAL;
    const index = arrayIndex(key);
    if (index >= this.attr.maxEntries) return -E2BIG;
    const old = this.ptrs.get(index);
    const err = updateCheck(sk, old, flags);
    if (err) return err;
    sk.userData = { clear: () => this.clearIf(index, sk) };
    this.ptrs.set(index, sk);
    if (old !== undefined) old.userData = undefined;
    return 0;
  }

  /** Empties `index` if it still holds `sk`. */
  private clearIf(index: number, sk: ReuseportArraySocket): void {
    if (this.ptrs.get(index) === sk) this.ptrs.delete(index);
  }

  /**
   * The generic syscall update: its value is an fd. Flags past
   * `BPF_EXIST` -EINVAL, past the end -E2BIG, an fd past `S32_MAX`
   * -EINVAL; any other names no socket here (-EBADF): use {@link updateSock}.
   */
  protected updateSys(
    key: Uint8Array,
    value: Uint8Array,
    flags: number,
  ): number {
    if (flags > BPF_EXIST || flags < 0) return -EINVAL;
    if (arrayIndex(key) >= this.attr.maxEntries) return -E2BIG;
    const v = new DataView(value.buffer, value.byteOffset, value.length);
    if (value.length === 8 && v.getBigUint64(0, true) > BigInt(S32_MAX)) {
      return -EINVAL;
    }
    return -EBADF;
  }

  /** `reuseport_array_delete_elem()`: -E2BIG past the end, -ENOENT when empty. */
  delete(key: Uint8Array): number {
    checkKey(this.attr, key);
    const index = arrayIndex(key);
    if (index >= this.attr.maxEntries) return -E2BIG;
    const sk = this.ptrs.get(index);
    if (sk === undefined) return -ENOENT;
    sk.userData = undefined;
    this.ptrs.delete(index);
    return 0;
  }

  /** `reuseport_array_get_next_key()`: 0 after an absent or out-of-range key. */
  getNextKey(key: Uint8Array | null): Uint8Array | number {
    const index = key === null ? 0xffffffff : arrayIndex(key);
    if (index >= this.attr.maxEntries) return u32Key(0);
    if (index === this.attr.maxEntries - 1) return -ENOENT;
    return u32Key(index + 1);
  }

  /**
   * `bpf_fd_reuseport_array_lookup_elem()`: the socket's cookie (u64),
   * -ENOSPC for 4-byte values, -ENOENT for an empty slot.
   */
  override lookupValueCopy(key: Uint8Array, flags = 0): Uint8Array | number {
    const r = super.lookupValueCopy(key, flags);
    return r === -ENOENT && this.attr.valueSize !== 8 ? -ENOSPC : r;
  }

  /** See {@link lookupValueCopy}. */
  protected copyOut(key: Uint8Array): Uint8Array | null {
    if (this.attr.valueSize !== 8) return null;
    const sk = this.sockAt(key);
    if (sk === undefined) return null;
    const out = new Uint8Array(8);
    new DataView(out.buffer).setBigUint64(0, sk.genCookie(0), true);
    return out;
  }

  /** `reuseport_array_free()`: every socket forgets its slot. */
  destroy(): void {
    for (const sk of this.ptrs.values()) sk.userData = undefined;
    this.ptrs.clear();
    this.destroyed = true;
  }
}

/** Mirrors `reuseport_array_update_check()`. */
function updateCheck(
  nsk: ReuseportArraySocket,
  osk: ReuseportArraySocket | undefined,
  flags: number,
): number {
  if (osk !== undefined && flags === BPF_NOEXIST) return -EEXIST;
  if (osk === undefined && flags === BPF_EXIST) return -ENOENT;
  if (nsk.protocol !== IPPROTO_UDP && nsk.protocol !== IPPROTO_TCP) {
    return -ENOTSUPP;
  }
  if (nsk.family !== AF_INET && nsk.family !== AF_INET6) return -ENOTSUPP;
  if (nsk.type !== SOCK_STREAM && nsk.type !== SOCK_DGRAM) return -ENOTSUPP;
  // hashed (listening / bound), RCU-freed, and in a reuseport group
  if (!nsk.rcuFree || !nsk.hashed || nsk.reuseportCb === undefined) {
    return -EINVAL;
  }
  if (nsk.userData !== undefined) return -EBUSY;
  return 0;
}
