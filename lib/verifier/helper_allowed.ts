/**
 * The `allowed()` callbacks of helper prototypes (kernel/trace/bpf_trace.c,
 * kernel/bpf/bpf_lsm.c, net/core/bpf_sk_storage.c) and the attach-target
 * lists they consult: `btf_allowlist_d_path` and `sleepable_lsm_hooks`.
 * @module
 */
import type { ChainContext } from "./helper_table_chains.ts";

/**
 * `btf_allowlist_d_path` (kernel/trace/bpf_trace.c): the functions whose
 * trampoline programs may call `bpf_d_path` (the oracle's kernel has
 * CONFIG_SECURITY and CONFIG_SECURITY_PATH, which add the security_* ones).
 */
const D_PATH_ALLOWLIST: ReadonlySet<string> = new Set([
  "security_file_permission",
  "security_inode_getattr",
  "security_file_open",
  "security_path_truncate",
  "vfs_truncate",
  "vfs_fallocate",
  "dentry_open",
  "vfs_getattr",
  "filp_close",
]);

/**
 * `sleepable_lsm_hooks` (kernel/bpf/bpf_lsm.c), without the `bpf_lsm_`
 * prefix: the LSM hooks a sleepable program may attach to, and the ones
 * whose programs may call `bpf_d_path` (CONFIG_SECURITY_NETWORK and
 * CONFIG_KEYS included, as on the oracle's kernel).
 */
const SLEEPABLE_LSM_HOOKS: ReadonlySet<string> = new Set([
  "bpf",
  "bpf_map",
  "bpf_map_alloc_security",
  "bpf_map_free_security",
  "bpf_prog",
  "bprm_check_security",
  "bprm_committed_creds",
  "bprm_committing_creds",
  "bprm_creds_for_exec",
  "bprm_creds_from_file",
  "capget",
  "capset",
  "cred_prepare",
  "file_ioctl",
  "file_lock",
  "file_open",
  "file_receive",
  "inet_conn_established",
  "inode_create",
  "inode_free_security",
  "inode_getattr",
  "inode_getxattr",
  "inode_mknod",
  "inode_need_killpriv",
  "inode_post_setxattr",
  "inode_readlink",
  "inode_rename",
  "inode_rmdir",
  "inode_setattr",
  "inode_setxattr",
  "inode_symlink",
  "inode_unlink",
  "kernel_module_request",
  "kernel_read_file",
  "kernfs_init_security",
  "key_free",
  "mmap_file",
  "netlink_send",
  "path_notify",
  "release_secctx",
  "sb_alloc_security",
  "sb_eat_lsm_opts",
  "sb_kern_mount",
  "sb_mount",
  "sb_remount",
  "sb_set_mnt_opts",
  "sb_show_options",
  "sb_statfs",
  "sb_umount",
  "settime",
  "socket_accept",
  "socket_bind",
  "socket_connect",
  "socket_create",
  "socket_getpeername",
  "socket_getpeersec_dgram",
  "socket_getsockname",
  "socket_getsockopt",
  "socket_listen",
  "socket_post_create",
  "socket_recvmsg",
  "socket_sendmsg",
  "socket_shutdown",
  "socket_socketpair",
  "syslog",
  "task_alloc",
  "current_getsecid_subj",
  "task_getsecid_obj",
  "task_prctl",
  "task_setscheduler",
  "task_to_inode",
]);

// The kernel's allowed() callbacks, from what the program declares and
// its attach target (by name: the kernel compares BTF ids). A freplace
// program (`dst_prog`) is not modelled.
/**
 * The kernel's `allowed()` callbacks of helper prototypes, by name: whether
 * the loading program (type, attach type and target) may call the helper.
 */
export const ALLOWED: Readonly<
  Record<string, (c: ChainContext) => boolean>
> = {
  // mirrors bpf_sk_storage_tracing_allowed(): iter and tp_btf, and
  // trampolines not attached to a bpf_sk_storage* function
  bpf_sk_storage_tracing_allowed: (c) =>
    c.attachType === "trace_iter" || c.attachType === "trace_raw_tp" ||
    ((c.attachType === "trace_fentry" || c.attachType === "trace_fexit") &&
      !c.attachTarget.startsWith("bpf_sk_storage")),
  // mirrors bpf_d_path_allowed(): iterators, LSM programs on sleepable
  // hooks (sleepable or not), trampolines on btf_allowlist_d_path
  bpf_d_path_allowed: (c) =>
    (c.progType === "tracing" && c.attachType === "trace_iter") ||
    (c.progType === "lsm"
      ? SLEEPABLE_LSM_HOOKS.has(c.attachTarget)
      : D_PATH_ALLOWLIST.has(c.attachTarget)),
  // mirrors bpf_ima_inode_hash_allowed(): LSM programs on sleepable hooks
  // (bpf_lsm_func_proto() offers the helper to sleepable programs only)
  bpf_ima_inode_hash_allowed: (c) => SLEEPABLE_LSM_HOOKS.has(c.attachTarget),
};
