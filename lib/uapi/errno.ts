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
/** Too many open files (past the process's RLIMIT_NOFILE). */
export const EMFILE = 24;
/** Invalid argument: the kernel's default refusal. */
export const EINVAL = 22;
/** No space left on device (a full output buffer). */
export const ENOSPC = 28;
/** Numerical result out of range. */
export const ERANGE = 34;
/** Resource deadlock would occur. */
export const EDEADLK = 35;
/** Too many levels of symbolic links: the kernel's ownership-cycle errno. */
export const ELOOP = 40;
/** Protocol error. */
export const EPROTO = 71;
/** Not a data message (a malformed or unexpected header). */
export const EBADMSG = 74;
/** Value too large for defined data type. */
export const EOVERFLOW = 75;
/** Protocol not supported. */
export const EPROTONOSUPPORT = 93;
/** Socket type not supported. */
export const ESOCKTNOSUPPORT = 94;
/** Operation not supported (userspace `EOPNOTSUPP`). */
export const EOPNOTSUPP = 95;
/** Address family not supported by protocol. */
export const EAFNOSUPPORT = 97;
/** Network is unreachable. */
export const ENETUNREACH = 101;
/** Operation already in progress. */
export const EALREADY = 114;
/** Kernel-internal "not supported" (`ENOTSUPP`, 524). */
export const ENOTSUPP = 524;
