/**
 * `BPF_MAP_TYPE_SOCKMAP` and `BPF_MAP_TYPE_SOCKHASH` (net/core/sock_map.c):
 * sockets by u32 index or by key, for the redirect helpers of sk_msg and
 * sk_skb programs. User space fills them with socket fds; the simulated
 * host has no fd table, so a test puts a simulated socket in with
 * {@link SockMap.updateSock} — `sock_map_update_elem_sys()` after
 * `sockfd_lookup()` found it — while an update through the generic
 * syscall path, whose value is an fd no socket here owns, fails as a
 * closed fd does (-EBADF). User space reads back the socket's cookie
 * (`sock_map_lookup_sys()`: only with 8-byte values, else -ENOSPC); a
 * program's lookup yields the socket itself.
 *
 * Not modelled: programs attached to the map (`BPF_PROG_ATTACH`, the
 * psock and its -EBUSY checks) and updates from programs
 * (`sock_map_update_elem()`: a tc / XDP / iterator program passing a
 * socket pointer), which stop the program with a MapError.
 * @module
 */
import { MAX_BPF_STACK } from "../../isa/opcodes.ts";
import { MapBase } from "./base.ts";
import {
  arrayIndex,
  BPF_EXIST,
  BPF_F_NUMA_NODE,
  BPF_F_RDONLY,
  BPF_F_WRONLY,
  BPF_NOEXIST,
  checkKey,
  type MapAttr,
  type MapEnv,
  MapError,
  u32Key,
} from "./map.ts";
import { MAP_TYPE } from "../../uapi/bpf.ts";
import {
  E2BIG,
  EBADF,
  EEXIST,
  EINVAL,
  ENOENT,
  ENOSPC,
  EOPNOTSUPP,
  EPERM,
} from "../../uapi/errno.ts";
import { jhash } from "./jhash.ts";

const M = MAP_TYPE;
/** The map types of this module. */
export const SOCK_MAP_TYPES: readonly number[] = [M.sockmap, M.sockhash];
/** `sizeof(struct bpf_shtab_bucket)` on x86-64 (hlist head + raw spinlock, padded). */
const SHTAB_BUCKET_SIZE = 16;
/** `TCP_ESTABLISHED`, `TCP_LISTEN`. */
const TCP_ESTABLISHED = 1, TCP_LISTEN = 10;
const S32_MAX = 0x7fffffff;

/** What a sockmap keeps of a socket. */
export interface SockmapSocket {
  /** The `struct sock` address programs get (`PTR_TO_SOCKET`). */
  readonly address: bigint;
  /** `sk_state`. */
  readonly state: number;
  /** `sk_is_tcp()`. */
  readonly isTcp: boolean;
  /** `__sock_gen_cookie()`, asked on `cpu`. */
  genCookie(cpu: number): bigint;
}

/**
 * `sock_map_alloc()` / `sock_hash_alloc()` checks: 0 or a negative errno.
 * (CAP_NET_ADMIN is assumed: the simulated user is root.)
 */
export function sockMapAllocCheck(a: MapAttr): number {
  const mask = BPF_F_NUMA_NODE | BPF_F_RDONLY | BPF_F_WRONLY;
  const valueOk = a.valueSize === 4 || a.valueSize === 8;
  if (a.maxEntries === 0 || !valueOk || (a.flags & ~mask)) return -EINVAL;
  if (a.type === M.sockmap) return a.keySize !== 4 ? -EINVAL : 0;
  if (a.keySize === 0) return -EINVAL;
  if (a.keySize > MAX_BPF_STACK) return -E2BIG;
  // buckets_num = roundup_pow_of_two(max_entries) in a u32: 0 past 2^31
  const buckets = 2 ** Math.ceil(Math.log2(a.maxEntries));
  if (buckets > 2 ** 31 || buckets > 0xffffffff / SHTAB_BUCKET_SIZE) {
    return -EINVAL;
  }
  return 0;
}

/**
 * Mirrors `sock_map_redirect_allowed()`: a TCP socket that is not
 * listening, any other one only once established.
 */
export function sockMapRedirectAllowed(sk: SockmapSocket): boolean {
  return sk.isTcp ? sk.state !== TCP_LISTEN : sk.state === TCP_ESTABLISHED;
}

/** One sockhash element. */
interface HashElem {
  readonly key: Uint8Array;
  readonly hash: number;
  readonly sk: SockmapSocket;
}

/** A sockmap or sockhash. */
export class SockMap extends MapBase {
  /** SOCKMAP: `stab->sks`, by index. */
  private readonly sks = new Map<number, SockmapSocket>();
  /** SOCKHASH: buckets of `roundup_pow_of_two(max_entries)`, newest first. */
  private readonly buckets: HashElem[][] = [];
  /** SOCKHASH: `htab->count`. */
  private count = 0;

  /** `sock_map_alloc()` / `sock_hash_alloc()`: empty. */
  constructor(attr: MapAttr, env: MapEnv) {
    super(attr, null, env, attr.valueSize);
  }

  /** A sockhash (keyed), not a sockmap (indexed). */
  private get isHash(): boolean {
    return this.attr.type === M.sockhash;
  }

  /** `htab->buckets_num`: `roundup_pow_of_two(max_entries)`. */
  private get nBuckets(): number {
    return 2 ** Math.ceil(Math.log2(this.attr.maxEntries));
  }

  /** `sock_hash_select_bucket()`. */
  private bucket(hash: number): HashElem[] {
    return (this.buckets[hash & (this.nBuckets - 1)] ??= []);
  }

  /** `sock_hash_lookup_elem_raw()` in `key`'s bucket. */
  private findElem(key: Uint8Array): HashElem | undefined {
    const hash = jhash(key); // sock_hash_bucket_hash(): seed 0
    return this.bucket(hash).find((e) =>
      e.hash === hash && e.key.every((v, i) => v === key[i])
    );
  }

  /** `__sock_map_lookup_elem()` (index `key`, the u32 a redirect passes). */
  sockAtIndex(key: number): SockmapSocket | undefined {
    return this.sks.get(key >>> 0);
  }

  /** `__sock_map_lookup_elem()` / `__sock_hash_lookup_elem()` of `key`'s bytes. */
  sockAt(key: Uint8Array): SockmapSocket | undefined {
    checkKey(this.attr, key);
    return this.isHash ? this.findElem(key)?.sk : this.sks.get(arrayIndex(key));
  }

  /** `sock_map_lookup()` / `sock_hash_lookup()` from a program: the socket. */
  lookup(key: Uint8Array, _cpu?: number): bigint | null {
    return this.sockAt(key)?.address ?? null;
  }

  /** `sock_map_update_elem()` from a program: not modelled (see the module comment). */
  update(): number {
    throw new MapError(
      this.attr.name,
      "a program's update of a sockmap / sockhash is not modelled",
    );
  }

  /**
   * The update `bpf(BPF_MAP_UPDATE_ELEM)` makes with `sk`'s fd as value
   * (`sock_map_update_elem_sys()`): -EPERM for a map user space may not
   * write, -EOPNOTSUPP for a TCP socket neither established nor
   * listening, then `sock_map_update_common()` (-EINVAL for flags past
   * `BPF_EXIST`, -E2BIG past the end, -EEXIST / -ENOENT) or
   * `sock_hash_update_common()` (the same, -E2BIG when full).
   */
  updateSock(key: Uint8Array, sk: SockmapSocket, flags: number): number {
    if (!this.syscallWritable()) return -EPERM;
    checkKey(this.attr, key);
    if (sk.isTcp && sk.state !== TCP_ESTABLISHED && sk.state !== TCP_LISTEN) {
      return -EOPNOTSUPP; // sock_map_sk_state_allowed()
    }
    return this.updateCommon(key, sk, flags);
  }

  /**
   * Mirrors `sock_map_update_common()` / `sock_hash_update_common()`, the
   * part every update path shares (the sock_ops helpers call it directly):
   * -EINVAL for flags past `BPF_EXIST`, then as {@link updateSock} says.
   */
  updateCommon(key: Uint8Array, sk: SockmapSocket, flags: number): number {
    checkKey(this.attr, key);
    if (flags > BPF_EXIST || flags < 0) return -EINVAL;
    return this.isHash
      ? this.hashUpdate(key, sk, flags)
      : this.mapUpdate(arrayIndex(key), sk, flags);
  }

  /** `sock_map_update_common()` after its flags check. */
  private mapUpdate(idx: number, sk: SockmapSocket, flags: number): number {
    if (idx >= this.attr.maxEntries) return -E2BIG;
    const old = this.sks.get(idx);
    if (old !== undefined && flags === BPF_NOEXIST) return -EEXIST;
    if (old === undefined && flags === BPF_EXIST) return -ENOENT;
    this.sks.set(idx, sk);
    return 0;
  }

  /** `sock_hash_update_common()` after its flags check. */
  private hashUpdate(
    key: Uint8Array,
    sk: SockmapSocket,
    flags: number,
  ): number {
    const old = this.findElem(key);
    if (old !== undefined && flags === BPF_NOEXIST) return -EEXIST;
    if (old === undefined && flags === BPF_EXIST) return -ENOENT;
    // sock_hash_alloc_elem(): a new key past max_entries does not fit
    if (old === undefined && this.count + 1 > this.attr.maxEntries) {
      return -E2BIG;
    }
    const hash = jhash(key);
    const bucket = this.bucket(hash);
    if (old !== undefined) bucket.splice(bucket.indexOf(old), 1);
    else this.count++;
    bucket.unshift({ key: key.slice(), hash, sk }); // hlist_add_head_rcu()
    return 0;
  }

  /**
   * The generic syscall update: its value is an fd (u32, or u64 for 8-byte
   * values). Past `S32_MAX` -EINVAL; any other fd names no socket of the
   * simulated host (-EBADF): use {@link updateSock}.
   */
  protected updateSys(key: Uint8Array, value: Uint8Array): number {
    checkKey(this.attr, key);
    const v = new DataView(value.buffer, value.byteOffset, value.length);
    const fd = value.length === 8
      ? v.getBigUint64(0, true)
      : BigInt(v.getUint32(0, true));
    return fd > BigInt(S32_MAX) ? -EINVAL : -EBADF;
  }

  /**
   * `sock_map_delete_elem()`: -EINVAL past the end or on an empty slot;
   * `sock_hash_delete_elem()`: -ENOENT when absent.
   */
  delete(key: Uint8Array): number {
    checkKey(this.attr, key);
    if (this.isHash) {
      const elem = this.findElem(key);
      if (elem === undefined) return -ENOENT;
      const bucket = this.bucket(elem.hash);
      bucket.splice(bucket.indexOf(elem), 1);
      this.count--;
      return 0;
    }
    const i = arrayIndex(key);
    if (i >= this.attr.maxEntries || !this.sks.has(i)) return -EINVAL;
    this.sks.delete(i);
    return 0;
  }

  /** `sock_map_get_next_key()` (array order) / `sock_hash_get_next_key()` (bucket order). */
  getNextKey(key: Uint8Array | null): Uint8Array | number {
    if (this.isHash) return this.hashNextKey(key);
    const i = key === null ? 0xffffffff : arrayIndex(key);
    if (i === this.attr.maxEntries - 1) return -ENOENT;
    return u32Key(i >= this.attr.maxEntries ? 0 : i + 1);
  }

  /** `sock_hash_get_next_key()`: an absent key restarts from the first bucket. */
  private hashNextKey(key: Uint8Array | null): Uint8Array | number {
    let from = 0;
    const elem = key === null ? undefined : this.findElem(key);
    if (elem !== undefined) {
      const bucket = this.bucket(elem.hash);
      const next = bucket[bucket.indexOf(elem) + 1];
      if (next !== undefined) return next.key.slice();
      from = (elem.hash & (this.nBuckets - 1)) + 1;
    }
    for (let i = from; i < this.buckets.length; i++) {
      const first = this.buckets[i]?.[0];
      if (first !== undefined) return first.key.slice();
    }
    return -ENOENT;
  }

  /**
   * `BPF_MAP_LOOKUP_ELEM` (`sock_map_lookup_sys()` /
   * `sock_hash_lookup_sys()`): the socket's cookie (u64), -ENOSPC for
   * 4-byte values, -ENOENT when absent.
   */
  override lookupValueCopy(key: Uint8Array, flags = 0): Uint8Array | number {
    const r = super.lookupValueCopy(key, flags);
    return r === -ENOENT && this.attr.valueSize !== 8 ? -ENOSPC : r;
  }

  /** See {@link lookupValueCopy}: the cookie, generated on first request. */
  protected copyOut(key: Uint8Array): Uint8Array | null {
    if (this.attr.valueSize !== 8) return null;
    const sk = this.sockAt(key);
    if (sk === undefined) return null;
    const out = new Uint8Array(8);
    new DataView(out.buffer).setBigUint64(0, sk.genCookie(0), true);
    return out;
  }

  /** `sock_map_free()` / `sock_hash_free()`: the sockets are unlinked, not freed. */
  destroy(): void {
    this.sks.clear();
    this.buckets.length = 0;
    this.count = 0;
    this.destroyed = true;
  }
}
