/**
 * Which helpers the verifier knows that the simulated kernel does not run,
 * and why: each needs a piece of the kernel bpfsim does not simulate —
 * sockets and the socket-level hooks, LSM and tracing attachments
 * (trampolines, perf events, branch records), inode storage, or
 * the internals of syscall programs. A program calling one fails at the
 * call with an ExecError naming the helper ("… is not modelled by bpfsim's
 * runtime"); the verifier still judges it as the kernel does. Every other
 * helper the verifier knows has a runtime (tests/kernel/helper_coverage_test.ts
 * checks both ways).
 * @module
 */

/** Why a family of helpers has no runtime. */
const SOCKETS =
  "needs sockets beyond the test run's dummy skb->sk, which bpfsim does not simulate";
const SOCK_HOOKS =
  "runs in a socket-level hook (sock_ops, sk_msg, sk_skb, sk_reuseport, cgroup sockopt) bpfsim does not simulate";
const LSM = "needs the LSM environment (files, inodes, binprm)";
const TRACING =
  "needs a tracing attachment (trampoline, kprobe, perf event) bpfsim does not simulate";
const STORAGE = "needs an inode to own the storage (LSM), not modelled";
const SYSCALL = "a syscall program's access to bpf() and BTF, not modelled";
const LIRC = "needs a lirc (IR remote) device";
const LWT = "needs the lightweight-tunnel or SRv6 data path";
const SYSCTL = "needs a cgroup sysctl hook";
const CGROUP = "needs cgroup hooks (and their cgroup storage), not modelled";
const ITER = "needs a seq_file iterator";

/** Helper names (as the verifier prints them) with no runtime, and why. */
export const NOT_MODELLED_HELPERS: Readonly<Record<string, string>> = {
  bpf_override_return: TRACING,
  bpf_get_func_arg: TRACING,
  bpf_get_func_ret: TRACING,
  bpf_get_func_arg_cnt: TRACING,
  bpf_skb_output: TRACING,
  bpf_xdp_output: TRACING,
  bpf_snprintf_btf: "needs vmlinux BTF to print kernel objects",
  bpf_get_local_storage: CGROUP,
  bpf_get_retval: CGROUP,
  bpf_set_retval: CGROUP,
  bpf_setsockopt: SOCK_HOOKS,
  bpf_getsockopt: SOCK_HOOKS,
  bpf_bind: SOCK_HOOKS,
  bpf_sock_ops_cb_flags_set: SOCK_HOOKS,
  bpf_load_hdr_opt: SOCK_HOOKS,
  bpf_store_hdr_opt: SOCK_HOOKS,
  bpf_reserve_hdr_opt: SOCK_HOOKS,
  bpf_sock_map_update: SOCK_HOOKS,
  bpf_sock_hash_update: SOCK_HOOKS,
  bpf_sk_redirect_map: SOCK_HOOKS,
  bpf_sk_redirect_hash: SOCK_HOOKS,
  bpf_msg_redirect_map: SOCK_HOOKS,
  bpf_msg_redirect_hash: SOCK_HOOKS,
  bpf_msg_apply_bytes: SOCK_HOOKS,
  bpf_msg_cork_bytes: SOCK_HOOKS,
  bpf_msg_pull_data: SOCK_HOOKS,
  bpf_msg_push_data: SOCK_HOOKS,
  bpf_msg_pop_data: SOCK_HOOKS,
  bpf_sk_select_reuseport: SOCK_HOOKS,
  bpf_tcp_send_ack: SOCKETS,
  bpf_sock_from_file: SOCKETS,
  bpf_inode_storage_get: STORAGE,
  bpf_inode_storage_delete: STORAGE,
  bpf_d_path: LSM,
  bpf_bprm_opts_set: LSM,
  bpf_ima_inode_hash: LSM,
  bpf_ima_file_hash: LSM,
  bpf_seq_printf: ITER,
  bpf_seq_write: ITER,
  bpf_seq_printf_btf: ITER,
  bpf_sys_bpf: SYSCALL,
  bpf_btf_find_by_name_kind: SYSCALL,
  bpf_sys_close: SYSCALL,
  bpf_kallsyms_lookup_name: SYSCALL,
  bpf_rc_repeat: LIRC,
  bpf_rc_keydown: LIRC,
  bpf_rc_pointer_rel: LIRC,
  bpf_lwt_push_encap: LWT,
  bpf_lwt_seg6_store_bytes: LWT,
  bpf_lwt_seg6_adjust_srh: LWT,
  bpf_lwt_seg6_action: LWT,
  bpf_sysctl_get_name: SYSCTL,
  bpf_sysctl_get_current_value: SYSCTL,
  bpf_sysctl_get_new_value: SYSCTL,
  bpf_sysctl_set_new_value: SYSCTL,
};
