/**
 * The simulated LSM environment: the kernel objects BPF LSM programs are
 * handed (`struct file`, `struct inode`, `struct linux_binprm`, and what
 * they point to), each a read-only `kernel` region laid out at the offsets
 * of the 6.18 x86-64 vmlinux BTF — the oracle machine's — as far as
 * programs read them. What is laid out:
 * - `struct inode`: `i_mode`, `i_uid`/`i_gid` (root), `i_ino`, `i_nlink`,
 *   `i_size`. Each inode owns inode local storage (its BPF LSM blob in
 *   `i_security`, which the bpf LSM — in this kernel's `CONFIG_LSM` — gives
 *   every inode), freed when the inode is destroyed
 *   (`security_inode_free()` → `bpf_inode_storage_free()`);
 * - `struct file`: `f_mode`, `private_data` (the `struct socket` of a socket
 *   file), `f_inode`, `f_flags`, `f_path` (`mnt` 0: one mount, whose root is
 *   the task's root; `dentry`), `f_pos` 0;
 * - `struct dentry`: `d_name` (`name` points to the last path component,
 *   NUL-terminated; `hash` is not computed: 0) and `d_inode`; `d_parent`
 *   is not laid out (0) — the path lives in {@link SimFile.path};
 * - `struct socket` (socket files): `state` SS_UNCONNECTED, `type`, `file`;
 *   `sk` is NULL (no `struct sock` behind it);
 * - `struct linux_binprm`: the flag bits (`secureexec` is bit 2 of the
 *   word at 40), `file`, `argc`, `envc`, `filename` (a NUL-terminated
 *   string).
 * Everything else reads as zero. The objects of a kernel live in its
 * {@link LsmEnv} ({@link lsmEnv}), where the LSM helpers find them by
 * address.
 * @module
 */
import type { AddressSpace } from "../../../exec/memory.ts";
import type { Kernel } from "../../kernel.ts";
import {
  BINPRM_LAYOUT,
  BINPRM_SECUREEXEC_BIT,
  DENTRY_LAYOUT,
  FILE_LAYOUT,
  FMODE_READ,
  INODE_LAYOUT,
  PATH_LAYOUT,
  S_IFREG_0644,
  S_IFSOCK_0777,
  SIM_FIRST_INO,
  SOCK_STREAM,
  SOCKET_LAYOUT,
} from "./lsm_layout.ts";
import { localStorageDestroy, StorageOwner } from "../../maps/local_storage.ts";

/** Options of {@link LsmEnv.createInode}. */
export interface SimInodeOptions {
  /** `i_ino`; default the next number from {@link SIM_FIRST_INO}. */
  readonly ino?: bigint | number;
  /** `i_mode`; default {@link S_IFREG_0644}. */
  readonly mode?: number;
  /** `i_size`; default 0. */
  readonly size?: bigint | number;
}

/** A simulated `struct inode`. */
export class SimInode {
  /** Its address. */
  readonly address: bigint;
  /** `i_ino`. */
  readonly ino: bigint;
  /** The owner of its inode local storage. */
  readonly owner: StorageOwner;
  /** Its bytes (the region's backing). */
  readonly bytes: Uint8Array;

  /** Builds the inode over `bytes`, mapped at `address`. */
  constructor(address: bigint, ino: bigint, bytes: Uint8Array) {
    this.address = address;
    this.ino = ino;
    this.bytes = bytes;
    this.owner = new StorageOwner("inode", `inode ${ino}`);
  }

  /** Its inode storage now: map name → a copy of the value. */
  storage(): Map<string, Uint8Array> {
    const out = new Map<string, Uint8Array>();
    for (const [map, elem] of this.owner.elems) {
      out.set(map.attr.name, elem.bytes.slice());
    }
    return out;
  }
}

/** Options of {@link LsmEnv.openFile}. */
export interface SimFileOptions {
  /** Its inode; default a new regular-file inode. */
  readonly inode?: SimInode;
  /** Unlinked since it was opened: `d_path()` appends " (deleted)". */
  readonly unlinked?: boolean;
  /** `f_flags` (default 0, `O_RDONLY`). */
  readonly flags?: number;
}

/** A simulated open `struct file`: a path's, or a socket's. */
export class SimFile {
  /** Its address. */
  readonly address: bigint;
  /** Absolute path (for a socket, empty). */
  readonly path: string;
  /** Its inode. */
  readonly inode: SimInode;
  /** Unlinked (`d_unlinked()`). */
  readonly unlinked: boolean;
  /** Its `struct socket`'s address, or 0 for a file that is not a socket. */
  readonly socket: bigint;
  /** Regions it mapped besides itself (dentry, name, socket). */
  readonly parts: readonly bigint[];

  /** Records what {@link LsmEnv} mapped. */
  constructor(
    address: bigint,
    path: string,
    inode: SimInode,
    unlinked: boolean,
    socket: bigint,
    parts: readonly bigint[],
  ) {
    this.address = address;
    this.path = path;
    this.inode = inode;
    this.unlinked = unlinked;
    this.socket = socket;
    this.parts = parts;
  }

  /** Address of its `f_path` (what `bpf_d_path()` is given). */
  get pathAddress(): bigint {
    return this.address + BigInt(FILE_LAYOUT.f_path);
  }
}

/** Options of {@link LsmEnv.createBinprm}. */
export interface SimBinprmOptions {
  /** `bprm->filename`; default the file's path. */
  readonly filename?: string;
  /** `argc` (default 1). */
  readonly argc?: number;
  /** `envc` (default 0). */
  readonly envc?: number;
}

/** A simulated `struct linux_binprm` (an exec in progress). */
export class SimBinprm {
  /** Its address. */
  readonly address: bigint;
  /** The file being executed. */
  readonly file: SimFile;
  /** Its bytes (the region's backing). */
  readonly bytes: Uint8Array;
  /** The `filename` string's region. */
  readonly filenameAddress: bigint;

  /** Records what {@link LsmEnv} mapped. */
  constructor(
    address: bigint,
    file: SimFile,
    bytes: Uint8Array,
    filenameAddress: bigint,
  ) {
    this.address = address;
    this.file = file;
    this.bytes = bytes;
    this.filenameAddress = filenameAddress;
  }

  /** `bprm->secureexec`. */
  get secureexec(): boolean {
    return ((this.bytes[BINPRM_LAYOUT.flags] >> BINPRM_SECUREEXEC_BIT) & 1) ===
      1;
  }

  /** Sets or clears `bprm->secureexec` (what `bpf_bprm_opts_set()` assigns). */
  set secureexec(on: boolean) {
    const bit = 1 << BINPRM_SECUREEXEC_BIT;
    const i = BINPRM_LAYOUT.flags;
    this.bytes[i] = on ? this.bytes[i] | bit : this.bytes[i] & ~bit;
  }
}

/** Any simulated LSM object. */
export type SimLsmObject = SimInode | SimFile | SimBinprm;

/** The simulated LSM objects of one kernel, found by address. */
export class LsmEnv {
  private readonly space: AddressSpace;
  private readonly byAddress = new Map<bigint, SimLsmObject>();
  private nextIno = SIM_FIRST_INO;

  /** The environment of `kernel` (use {@link lsmEnv}: one per kernel). */
  constructor(kernel: Kernel) {
    this.space = kernel.space;
  }

  /** A new inode (`new_inode()`), with no storage yet. */
  createInode(opts: SimInodeOptions = {}): SimInode {
    const ino = BigInt(opts.ino ?? this.nextIno++);
    const bytes = new Uint8Array(INODE_LAYOUT.size);
    const view = new DataView(bytes.buffer);
    view.setUint16(INODE_LAYOUT.i_mode, opts.mode ?? S_IFREG_0644, true);
    view.setBigUint64(INODE_LAYOUT.i_ino, ino, true);
    view.setUint32(INODE_LAYOUT.i_nlink, 1, true);
    view.setBigInt64(INODE_LAYOUT.i_size, BigInt(opts.size ?? 0), true);
    const address = this.map(bytes, `inode ${ino}`);
    const inode = new SimInode(address, ino, bytes);
    this.byAddress.set(address, inode);
    return inode;
  }

  /**
   * The inode goes (`evict()` → `destroy_inode()`): its storage is freed
   * (`security_inode_free()` → `bpf_inode_storage_free()`), then its
   * region is unmapped — a program still holding it would fault.
   */
  destroyInode(inode: SimInode): void {
    localStorageDestroy(inode.owner);
    this.unmap(inode.address);
  }

  /** Opens the file at absolute `path` (a `struct file` with its dentry). */
  openFile(path: string, opts: SimFileOptions = {}): SimFile {
    if (!path.startsWith("/") || path.includes("\0")) {
      throw new TypeError(`'${path}' is not an absolute path without NULs`);
    }
    const inode = opts.inode ?? this.createInode();
    const last = path.split("/").filter((c) => c !== "").at(-1) ?? "/";
    return this.buildFile(path, inode, last, opts, 0n, []);
  }

  /** A socket's file (`sock_alloc_file()`): a `struct socket` of `type`. */
  openSocket(opts: { ino?: bigint | number; type?: number } = {}): SimFile {
    const inode = this.createInode({ ino: opts.ino, mode: S_IFSOCK_0777 });
    const sock = new Uint8Array(SOCKET_LAYOUT.size);
    new DataView(sock.buffer).setInt16(
      SOCKET_LAYOUT.type,
      opts.type ?? SOCK_STREAM,
      true,
    );
    const sockAddress = this.map(sock, `socket ${inode.ino}`);
    const file = this.buildFile("", inode, "", {}, sockAddress, [sockAddress]);
    // socket->file points back to the file
    new DataView(sock.buffer).setBigUint64(
      SOCKET_LAYOUT.file,
      file.address,
      true,
    );
    return file;
  }

  /** Closes `file` (the last `fput()`): its regions go; its inode stays. */
  closeFile(file: SimFile): void {
    for (const part of file.parts) this.space.unmapRegion(part);
    this.unmap(file.address);
  }

  /** An exec of `file` (`alloc_bprm()`), `secureexec` clear. */
  createBinprm(file: SimFile, opts: SimBinprmOptions = {}): SimBinprm {
    const bytes = new Uint8Array(BINPRM_LAYOUT.size);
    const view = new DataView(bytes.buffer);
    const filename = this.mapString(opts.filename ?? file.path, "filename");
    view.setBigUint64(BINPRM_LAYOUT.file, file.address, true);
    view.setInt32(BINPRM_LAYOUT.argc, opts.argc ?? 1, true);
    view.setInt32(BINPRM_LAYOUT.envc, opts.envc ?? 0, true);
    view.setBigUint64(BINPRM_LAYOUT.filename, filename, true);
    const address = this.map(bytes, `linux_binprm ${file.path}`);
    const bprm = new SimBinprm(address, file, bytes, filename);
    this.byAddress.set(address, bprm);
    return bprm;
  }

  /** Frees `bprm` (`free_bprm()`); its file stays open. */
  freeBinprm(bprm: SimBinprm): void {
    this.space.unmapRegion(bprm.filenameAddress);
    this.unmap(bprm.address);
  }

  /** The live inode whose `struct inode` starts at `address`, if any. */
  inodeAt(address: bigint): SimInode | undefined {
    const o = this.byAddress.get(address);
    return o instanceof SimInode ? o : undefined;
  }

  /** The open file whose `struct file` starts at `address`, if any. */
  fileAt(address: bigint): SimFile | undefined {
    const o = this.byAddress.get(address);
    return o instanceof SimFile ? o : undefined;
  }

  /** The open file whose `f_path` is at `address`, if any. */
  fileOfPath(address: bigint): SimFile | undefined {
    return this.fileAt(address - BigInt(FILE_LAYOUT.f_path));
  }

  /** The live binprm starting at `address`, if any. */
  binprmAt(address: bigint): SimBinprm | undefined {
    const o = this.byAddress.get(address);
    return o instanceof SimBinprm ? o : undefined;
  }

  /** Lays out and maps a `struct file` (and its `f_path`). */
  private buildFile(
    path: string,
    inode: SimInode,
    name: string,
    opts: SimFileOptions,
    socket: bigint,
    parts: bigint[],
  ): SimFile {
    const nameAddress = this.mapString(name, "d_name");
    const dentry = new Uint8Array(DENTRY_LAYOUT.size);
    const dv = new DataView(dentry.buffer);
    const nameLen = BigInt(new TextEncoder().encode(name).length);
    dv.setBigUint64(DENTRY_LAYOUT.d_name_hash_len, nameLen << 32n, true);
    dv.setBigUint64(DENTRY_LAYOUT.d_name_name, nameAddress, true);
    dv.setBigUint64(DENTRY_LAYOUT.d_inode, inode.address, true);
    const dentryAddress = this.map(dentry, `dentry ${name}`);
    const bytes = new Uint8Array(FILE_LAYOUT.size);
    const fv = new DataView(bytes.buffer);
    fv.setUint32(FILE_LAYOUT.f_mode, FMODE_READ, true);
    fv.setBigUint64(FILE_LAYOUT.private_data, socket, true);
    fv.setBigUint64(FILE_LAYOUT.f_inode, inode.address, true);
    fv.setUint32(FILE_LAYOUT.f_flags, opts.flags ?? 0, true);
    fv.setBigUint64(
      FILE_LAYOUT.f_path + PATH_LAYOUT.dentry,
      dentryAddress,
      true,
    );
    const address = this.map(bytes, `file ${path || `socket ${inode.ino}`}`);
    const file = new SimFile(
      address,
      path,
      inode,
      opts.unlinked ?? false,
      socket,
      [...parts, nameAddress, dentryAddress],
    );
    this.byAddress.set(address, file);
    return file;
  }

  /** Maps `bytes` as a read-only kernel region named `name`. */
  private map(bytes: Uint8Array, name: string): bigint {
    return this.space.mapRegion("kernel", bytes, { name, write: false });
  }

  /** Maps `s` NUL-terminated (a dentry name, say). */
  private mapString(s: string, what: string): bigint {
    const text = new TextEncoder().encode(s);
    const bytes = new Uint8Array(text.length + 1);
    bytes.set(text);
    return this.map(bytes, `${what} "${s}"`);
  }

  /** Unmaps a region this environment mapped. */
  private unmap(address: bigint): void {
    this.byAddress.delete(address);
    this.space.unmapRegion(address);
  }
}

const ENVS = new WeakMap<Kernel, LsmEnv>();

/** The LSM environment of `kernel` (created empty on first use). */
export function lsmEnv(kernel: Kernel): LsmEnv {
  let env = ENVS.get(kernel);
  if (env === undefined) ENVS.set(kernel, env = new LsmEnv(kernel));
  return env;
}
