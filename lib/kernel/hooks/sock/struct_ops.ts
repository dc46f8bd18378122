/**
 * Running a struct_ops program that implements a `struct tcp_congestion_ops`
 * member, as the TCP stack's call through the member's struct_ops
 * trampoline would (kernel/bpf/bpf_struct_ops.c,
 * `bpf_struct_ops_prepare_trampoline()` → `arch_prepare_bpf_trampoline()`).
 *
 * ## The context
 * The trampoline saves the member's argument registers as an array of u64
 * and passes the program a pointer to it (r1), as for fentry
 * (trampoline.ts); the values are what the caller gives, as the registers
 * held them. A `struct sock *` argument is the address of the socket's
 * `struct tcp_sock` ({@link TcpSockView}, tcp_ca.ts); a pointer to an
 * `ack_sample` or `rate_sample` is the address of the bytes given, mapped
 * read-only for the call. A member returning a value gives the caller the
 * program's r0 cut to the member's return type (u32), the trampoline's
 * `BPF_TRAMP_F_RET_FENTRY_RET`.
 *
 * The argument counts and types come from {@link TCP_CONGESTION_OPS_PROTOS}
 * (the 6.18 members, include/net/tcp.h). `get_info` is refused, as
 * `check_struct_ops_btf_id()` refuses it (-ENOTSUPP). A program the
 * object's `.struct_ops` map gives a member (`BpfProgram.structOps`, from
 * the map's relocations as libbpf reads them) runs only as that member.
 *
 * ## Verification
 * A program of an object loaded to verify (the default) runs as the
 * verifier accepted and rewrote it, through `runInContext`; one the
 * verifier rejects (a store `bpf_tcp_ca_btf_struct_access()` refuses, a
 * helper `release` may not call …) is refused with `ProgramRejectedError`,
 * as the kernel refuses to load it. Loaded with `verify: false`, a program
 * runs as compiled, and a store outside the writable fields faults
 * (tcp_ca.ts keeps the rule at run time too).
 *
 * ## What is not modelled
 * - Helpers: the object's and the kernel's, plus `bpf_tcp_send_ack`
 *   bound to the call's sockets; the socket-storage and
 *   get/setsockopt helpers do not know a `struct tcp_sock` address.
 * @module
 */
import { regionAddress } from "../../../exec/memory.ts";
import type { HelperFn } from "../../../exec/state.ts";
import type { BtfTargetProto } from "../../../verifier/ctx_access/btf_targets.ts";
import {
  TCP_CONGESTION_OPS_PROTOS,
  type TcpCongestionMember,
} from "../../../verifier/ctx_access/struct_ops.ts";
import { EINVAL, ENOTSUPP } from "../../../uapi/errno.ts";
import type { LoadedObject } from "../../object_loader.ts";
import { SimTcpSock } from "./sock_ops_sock.ts";
import { tcpCaHelpers, type TcpSockView, tcpSockView } from "./tcp_ca.ts";
import {
  programOfType,
  type RunContext,
  runInContext,
  TestRunError,
  type TestRunOptions,
  type TestRunResult,
} from "../../test_run.ts";

export {
  TCP_CONGESTION_OPS_PROTOS,
  type TcpCongestionMember,
} from "../../../verifier/ctx_access/struct_ops.ts";

/**
 * One member argument: a socket (for `struct sock *`), the bytes of the
 * struct a pointer argument points to, or a scalar register value.
 */
export type StructOpsArg = SimTcpSock | Uint8Array | bigint | number;

/** What {@link runStructOpsProgram} reports. */
export interface StructOpsRunResult extends TestRunResult {
  /** The member run. */
  readonly member: TcpCongestionMember;
  /** What the caller gets: r0 as a u32 for a member returning u32, undefined for a void one. */
  readonly ret: number | undefined;
}

/**
 * Runs struct_ops program `name` of `loaded` as member `member` of a
 * `tcp_congestion_ops` with arguments `args` (see the module comment), on
 * one CPU as `runInContext` runs. The sockets keep what the program wrote
 * (their fields, and `icsk_ca_priv` in their {@link tcpSockView}). Throws
 * {@link TestRunError} for a program that is not struct_ops (-EINVAL),
 * `get_info` (-ENOTSUPP), a member other than the one its `.struct_ops`
 * map gives it (-EINVAL), arguments that do not fit the prototype
 * (-EINVAL), and what stopped the program; `ProgramRejectedError` when
 * the object was loaded to verify and the verifier rejects the program.
 */
export function runStructOpsProgram(
  loaded: LoadedObject,
  name: string,
  member: TcpCongestionMember,
  args: readonly StructOpsArg[],
  opts: Omit<TestRunOptions, "data"> = {},
): StructOpsRunResult {
  const prog = programOfType(loaded, name, "struct_ops");
  const proto = TCP_CONGESTION_OPS_PROTOS[member];
  if (proto === undefined) {
    throw new TestRunError(
      `tcp_congestion_ops has no member '${member}'`,
      EINVAL,
    );
  }
  if (member === "get_info") {
    // check_struct_ops_btf_id(): tcp_congestion_ops has no cfi stub for it
    throw new TestRunError(
      "tcp_congestion_ops.get_info cannot be a BPF program",
      ENOTSUPP,
    );
  }
  const linked = prog.structOps;
  if (linked !== undefined && linked.member !== member) {
    throw new TestRunError(
      `program '${name}' implements ${linked.structName}.${linked.member}, not ${member}`,
      EINVAL,
    );
  }
  if (args.length !== proto.args.length) {
    throw new TestRunError(
      `${member} takes ${proto.args.length} arguments, ${args.length} given`,
      EINVAL,
    );
  }
  const ctx = memberFrame(loaded, member, proto, args);
  const result = runInContext(loaded, name, ctx, opts);
  const ret = proto.ret.kind === "void"
    ? undefined
    : Number(BigInt.asUintN(32, result.r0));
  return { ...result, member, ret };
}

/** Maps the member's argument array (and its struct arguments) as the run's context. */
function memberFrame(
  loaded: LoadedObject,
  member: TcpCongestionMember,
  proto: BtfTargetProto,
  args: readonly StructOpsArg[],
): RunContext {
  const space = loaded.kernel.space;
  const socks: TcpSockView[] = [];
  const mapped: bigint[] = [];
  const words: bigint[] = [];
  try {
    args.forEach((a, i) => {
      const want = proto.args[i];
      const where = `${member} argument ${i} (${want.typeName})`;
      if (want.kind === "ptr" && want.typeName === "sock") {
        if (!(a instanceof SimTcpSock)) {
          throw new TestRunError(`${where} must be a SimTcpSock`, EINVAL);
        }
        const view = tcpSockView(space, a);
        socks.push(view);
        words.push(view.address);
      } else if (want.kind === "ptr" && want.pointsToStruct) {
        if (!(a instanceof Uint8Array) || a.length < (want.size ?? 0)) {
          throw new TestRunError(
            `${where} must be the ${want.size} bytes of a struct ${want.typeName}`,
            EINVAL,
          );
        }
        const at = space.mapRegion("kernel", a.slice(), {
          name: `${want.typeName} (struct_ops)`,
          write: false,
        });
        mapped.push(at);
        words.push(at);
      } else {
        if (typeof a !== "bigint" && typeof a !== "number") {
          throw new TestRunError(`${where} is a scalar`, EINVAL);
        }
        words.push(BigInt.asUintN(64, BigInt(a)));
      }
    });
  } catch (e) {
    for (const at of mapped) space.unmapRegion(at);
    throw e;
  }
  const bytes = new Uint8Array(8 * Math.max(1, words.length));
  const view = new DataView(bytes.buffer);
  words.forEach((w, i) => view.setBigUint64(8 * i, w, true));
  const id = space.mapRegionId("ctx", bytes, {
    name: `struct_ops tcp_congestion_ops.${member}`,
    write: false,
  });
  const helpers: ReadonlyMap<number, HelperFn> = tcpCaHelpers(socks);
  return {
    r1: regionAddress(id),
    helpers,
    release: () => {
      space.unmapRegion(regionAddress(id));
      for (const at of mapped) space.unmapRegion(at);
    },
  };
}
