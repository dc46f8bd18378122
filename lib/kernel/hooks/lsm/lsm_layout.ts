/**
 * Offsets of the kernel structures the simulated LSM environment
 * (`lsm_env.ts`) lays out, and the constants it fills them with: those of
 * the 6.18 x86-64 kernel, read from the oracle machine's vmlinux BTF
 * (`bpftool btf dump file /sys/kernel/btf/vmlinux`).
 * @module
 */

/** `sizeof(struct file)` and the offsets bpfsim lays out (6.18, x86-64). */
export const FILE_LAYOUT = {
  size: 184,
  f_mode: 4,
  private_data: 24,
  f_inode: 32,
  f_flags: 40,
  f_path: 64,
  f_pos: 112,
} as const;
/** `sizeof(struct path)` and its members. */
export const PATH_LAYOUT = { size: 16, mnt: 0, dentry: 8 } as const;
/** `sizeof(struct inode)` and the offsets bpfsim lays out. */
export const INODE_LAYOUT = {
  size: 616,
  i_mode: 0,
  i_uid: 4,
  i_gid: 8,
  i_ino: 64,
  i_nlink: 72,
  i_size: 80,
} as const;
/** `sizeof(struct dentry)` and the offsets bpfsim lays out (`d_name` is a `struct qstr`). */
export const DENTRY_LAYOUT = {
  size: 192,
  d_parent: 24,
  d_name_hash_len: 32,
  d_name_name: 40,
  d_inode: 48,
} as const;
/** `sizeof(struct socket)` and its members bpfsim lays out. */
export const SOCKET_LAYOUT = {
  size: 128,
  state: 0,
  type: 4,
  file: 16,
  sk: 24,
} as const;
/** `sizeof(struct linux_binprm)` and the offsets bpfsim lays out. */
export const BINPRM_LAYOUT = {
  size: 408,
  /** The word holding the one-bit flags (`have_execfd` is bit 0). */
  flags: 40,
  executable: 48,
  interpreter: 56,
  file: 64,
  argc: 88,
  envc: 92,
  filename: 96,
} as const;
/** Bit of `secureexec` in the flag word at {@link BINPRM_LAYOUT.flags}. */
export const BINPRM_SECUREEXEC_BIT = 2;

/** `S_IFREG | 0644`: the default mode of a simulated file's inode. */
export const S_IFREG_0644 = 0o100644;
/** `S_IFSOCK | 0777`: a socket inode's mode (`sock_alloc()`). */
export const S_IFSOCK_0777 = 0o140777;
/** `SOCK_STREAM`. */
export const SOCK_STREAM = 1;
/** `FMODE_READ`: the simulated files are opened for reading. */
export const FMODE_READ = 1;
/** The first inode number {@link LsmEnv.createInode} hands out by default. */
export const SIM_FIRST_INO = 1000;
