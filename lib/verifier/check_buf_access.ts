/**
 * What iterator programs dereference: the `PTR_TO_BUF` key and value an
 * iterator hands over (`check_buffer_access()`, which also records how far
 * the program reads them — `prog->aux->max_rdonly_access` /
 * `max_rdwr_access`, checked against the map's sizes when the iterator is
 * attached), and `struct bpf_iter_meta`, the one kernel struct whose layout
 * bpfsim knows (no vmlinux BTF): loading its `seq` gives the trusted
 * `struct seq_file *` the seq helpers take (`BTF_TYPE_SAFE_TRUSTED(struct
 * bpf_iter_meta)` in verifier.c).
 * @module
 */
import type { AccessType } from "./check_mem.ts";
import { EACCES, type Env } from "./env.ts";
import { markRegPointer, markRegUnknown, type RegState } from "./reg_state.ts";
import {
  MEM_RDONLY,
  PTR_TO_BTF_ID,
  PTR_TRUSTED,
  regTypeStr,
} from "./reg_types.ts";
import { curFrame } from "./state.ts";
import { tnumIsConst, tnumStr } from "./tnum.ts";

/** `sizeof(struct bpf_iter_meta)`: `seq` (a pointer), `session_id`, `seq_num`. */
export const BPF_ITER_META_SIZE = 24;

/**
 * Mirrors `check_buffer_access()` for `size` bytes at `off` (the
 * instruction's offset plus the register's fixed one) through `reg`, a
 * `PTR_TO_BUF`: a negative or variable offset is refused; the furthest byte
 * is recorded for the attach-time check.
 */
export function checkBufferAccess(
  env: Env,
  reg: RegState,
  regno: number,
  off: number,
  size: number,
): void {
  const rdonly = (reg.type & MEM_RDONLY) !== 0;
  if (off < 0) {
    env.fail(
      EACCES,
      `R${regno} invalid ${
        rdonly ? "rdonly" : "rdwr"
      } buffer access: off=${off}, size=${size}`,
    );
  }
  if (!tnumIsConst(reg.s.varOff) || reg.s.varOff.value !== 0n) {
    env.fail(
      EACCES,
      `R${regno} invalid variable buffer offset: off=${off}, var_off=${
        tnumStr(reg.s.varOff)
      }`,
    );
  }
  if (rdonly) env.maxRdonlyAccess = Math.max(env.maxRdonlyAccess, off + size);
  else env.maxRdwrAccess = Math.max(env.maxRdwrAccess, off + size);
}

/**
 * The `PTR_TO_BUF` arm of `check_mem_access()`: no stores into a read-only
 * buffer, then {@link checkBufferAccess}; a load gives an unknown scalar.
 */
export function checkBufMemAccess(
  env: Env,
  reg: RegState,
  regno: number,
  off: number,
  size: number,
  t: AccessType,
  valueRegno: number,
): void {
  if (t === "write" && (reg.type & MEM_RDONLY)) {
    env.fail(EACCES, `R${regno} cannot write into ${regTypeStr(reg.type)}`);
  }
  checkBufferAccess(env, reg, regno, off, size);
  if (t === "read" && valueRegno >= 0) {
    markRegUnknown(curFrame(env.cur).regs[valueRegno]);
  }
}

/**
 * Mirrors `check_ptr_to_btf_access()` + `btf_struct_walk()` on a pointer
 * to `struct bpf_iter_meta`: reads only, inside the struct; `seq` must be
 * loaded whole and gives a trusted `struct seq_file *`; the two u64
 * counters load scalars.
 */
export function checkIterMetaAccess(
  env: Env,
  reg: RegState,
  regno: number,
  off: number,
  size: number,
  t: AccessType,
  valueRegno: number,
): void {
  const what = `R${regno} is ptr_bpf_iter_meta`;
  if (off < 0) {
    env.fail(EACCES, `${what} invalid negative access: off=${off}`);
  }
  if (!tnumIsConst(reg.s.varOff)) {
    env.fail(
      EACCES,
      `${what} invalid variable offset: off=${off}, var_off=${
        tnumStr(reg.s.varOff)
      }`,
    );
  }
  if (t !== "read") env.fail(EACCES, "only read is supported");
  const start = off + Number(reg.s.varOff.value);
  if (start + size > BPF_ITER_META_SIZE) {
    env.fail(
      EACCES,
      `access beyond struct bpf_iter_meta at off ${start} size ${size}`,
    );
  }
  if (start < 8 && (start !== 0 || size !== 8)) {
    env.fail(
      EACCES,
      // `seq` sits in an anonymous union (__bpf_md_ptr()): the walk names it
      `cannot access ptr member seq with moff 0 in struct (anon) with off ${start} size ${size}`,
    );
  }
  if (valueRegno < 0) return;
  const dst = curFrame(env.cur).regs[valueRegno];
  if (start === 0) {
    markRegPointer(dst, PTR_TO_BTF_ID | PTR_TRUSTED);
    dst.btfName = "seq_file";
  } else markRegUnknown(dst);
}

/**
 * Kernel structs whose layout bpfsim knows: none begins with an embedded
 * struct a helper expects (sk_buff's first members are list and tree
 * nodes; xdp_buff begins with a pointer).
 */
const KNOWN_LAYOUTS: ReadonlySet<string> = new Set([
  "bpf_iter_meta",
  "seq_file",
  "sk_buff",
  "xdp_buff",
]);

/**
 * The struct check of `check_reg_type()` for an `ARG_PTR_TO_BTF_ID`
 * argument expecting `expected`, when the register points to a struct
 * whose layout bpfsim knows: `btf_struct_ids_match()` can only match the
 * same struct (its walk into first members finds no struct in these).
 */
export function checkKnownBtfArg(
  env: Env,
  regno: number,
  reg: RegState,
  expected: string,
): void {
  if (!KNOWN_LAYOUTS.has(reg.btfName) || reg.btfName === expected) return;
  env.fail(
    EACCES,
    `R${regno} is of type ${reg.btfName} but ${expected} is expected`,
  );
}
