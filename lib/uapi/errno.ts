/**
 * Linux errno numbers (include/uapi/asm-generic/errno-base.h, errno.h, and
 * the kernel-internal include/linux/errno.h): the one table every part of
 * the simulator returns them from, positive as defined; results carry them
 * negated, as the kernel's do.
 * @module
 */

/** Operation not permitted. */
export const EPERM = 1;
/** No such file or directory: a missing element, type or symbol. */
export const ENOENT = 2;
/** Argument list too long: too many fields, too deep nesting, too big. */
export const E2BIG = 7;
/** Bad file number: an fd the simulation has no table for. */
export const EBADF = 9;
/** Try again (a full ring buffer). */
export const EAGAIN = 11;
/** Out of memory (here: the simulated address space). */
export const ENOMEM = 12;
/** Permission denied. */
export const EACCES = 13;
/** Bad address: also the kernel's "should not happen". */
export const EFAULT = 14;
/** Device or resource busy. */
export const EBUSY = 16;
/** Object already exists. */
export const EEXIST = 17;
/** No such device. */
export const ENODEV = 19;
/** Invalid argument: the kernel's default refusal. */
export const EINVAL = 22;
/** Too many open files (past the process's RLIMIT_NOFILE). */
export const EMFILE = 24;
/** No space left on device (a full output buffer). */
export const ENOSPC = 28;
/** Numerical result out of range. */
export const ERANGE = 34;
/** Resource deadlock would occur. */
export const EDEADLK = 35;
/** File name too long (a path that does not fit the buffer). */
export const ENAMETOOLONG = 36;
/** Too many levels of symbolic links: the kernel's ownership-cycle errno. */
export const ELOOP = 40;
/** No message of desired type (a TCP header option not found). */
export const ENOMSG = 42;
/** Protocol error. */
export const EPROTO = 71;
/** Not a data message (a malformed or unexpected header). */
export const EBADMSG = 74;
/** Value too large for defined data type. */
export const EOVERFLOW = 75;
/** File descriptor in bad state (a socket in another reuseport group). */
export const EBADFD = 77;
/** Protocol wrong type for socket. */
export const EPROTOTYPE = 91;
/** Protocol not available (a socket option that cannot be set). */
export const ENOPROTOOPT = 92;
/** Protocol not supported. */
export const EPROTONOSUPPORT = 93;
/** Socket type not supported. */
export const ESOCKTNOSUPPORT = 94;
/** Operation not supported (userspace `EOPNOTSUPP`). */
export const EOPNOTSUPP = 95;
/** Address family not supported by protocol. */
export const EAFNOSUPPORT = 97;
/** Address already in use. */
export const EADDRINUSE = 98;
/** Cannot assign requested address (not local). */
export const EADDRNOTAVAIL = 99;
/** Network is unreachable. */
export const ENETUNREACH = 101;
/** Connection refused (no socket takes the packet). */
export const ECONNREFUSED = 111;
/** Operation already in progress. */
export const EALREADY = 114;
/** Kernel-internal "not supported" (`ENOTSUPP`, 524). */
export const ENOTSUPP = 524;
