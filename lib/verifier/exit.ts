/**
 * `exit` of the main function: `check_resource_leak()` (held locks and
 * unreleased references, with the instruction that acquired them) and
 * `check_return_code()` with the return ranges of each program type and
 * 6.18's `At program exit the register R0 has …` message.
 * @module
 */
import { checkRegArg } from "./check_alu.ts";
import { EINVAL, ENOTSUPP, type Env } from "./env.ts";
import { regTypeStr, SCALAR_VALUE } from "./reg_types.ts";
import { S64_MAX, S64_MIN } from "./scalar.ts";
import { curFrame } from "./state.ts";
import type { RegState } from "./reg_state.ts";
import { structOpsReturnsVoid } from "./struct_ops.ts";

/** Mirrors `check_reference_leak()` + `check_resource_leak()` at a main-program exit. */
export function checkResourceLeak(env: Env, prefix: string): void {
  const vs = env.cur;
  if (vs.activeLocks) {
    env.fail(EINVAL, `${prefix} cannot be used inside bpf_spin_lock-ed region`);
  }
  const leaks = vs.refs.filter((r) => r.type === "ptr");
  if (leaks.length) {
    for (const r of leaks) {
      env.log.write(
        `Unreleased reference id=${r.id} alloc_insn=${r.insnIdx}\n`,
      );
    }
    env.fail(EINVAL, `${prefix} would lead to reference leak`);
  }
}

/** `[min, max]` a program type must return, or null when anything goes. */
export function returnRange(env: Env): [number, number] | null {
  const at = env.prog.expectedAttachType ?? "";
  switch (env.progType) {
    case "cgroup_sock_addr":
      if (/recvmsg|getpeername|getsockname/.test(at)) return [1, 1];
      if (at === "cgroup_inet4_bind" || at === "cgroup_inet6_bind") {
        return [0, 3];
      }
      return [0, 1];
    case "cgroup_skb":
      return at === "cgroup_inet_egress" ? [0, 3] : [0, 1];
    case "cgroup_sock":
    case "sock_ops":
    case "cgroup_device":
    case "cgroup_sysctl":
    case "cgroup_sockopt":
      return [0, 1];
    case "raw_tracepoint":
      return null;
    case "tracing":
      if (at === "trace_fentry" || at === "trace_fexit") return [0, 0];
      if (at === "trace_raw_tp" || at === "modify_return") return null;
      if (at === "trace_iter") return [0, 1];
      env.fail(ENOTSUPP, "");
      break;
    case "kprobe":
      return at === "trace_kprobe_session" || at === "trace_uprobe_session"
        ? [0, 1]
        : null;
    case "sk_lookup":
      return [0, 1];
    case "netfilter":
      return [0, 1];
  }
  return null;
}

/** Mirrors `check_return_code()` for R0 at the main program's exit. */
export function checkReturnCode(env: Env): void {
  const frame = env.cur.frames[0];
  const isSubprog = frame.subprogno !== 0;
  // a struct_ops member returning void: R0 is not looked at, not even read
  if (!isSubprog && structOpsReturnsVoid(env)) return;
  checkRegArg(env, 0, "src");
  const reg = curFrame(env.cur).regs[0];
  if (frame.inAsyncCallbackFn) {
    // enforce return zero from async callbacks like timer
    checkRetvalRange(env, reg, [0, 0], "At async callback return");
    return;
  }
  if (isSubprog) {
    if (reg.type !== SCALAR_VALUE) {
      env.fail(
        EINVAL,
        `At subprogram exit the register R0 is not a scalar value (${
          regTypeStr(reg.type)
        })`,
      );
    }
    return;
  }
  const range = returnRange(env);
  if (!range) return;
  if (reg.type !== SCALAR_VALUE) {
    env.fail(
      EINVAL,
      `At program exit the register R0 is not a known value (${
        regTypeStr(reg.type)
      })`,
    );
  }
  checkRetvalRange(env, reg, range, "At program exit");
}

/**
 * Fails unless scalar `reg` lies in `[lo, hi]`, with `verbose_invalid_scalar()`'s
 * message: "`where` the register R0 has smin=… smax=… should have been in [lo, hi]".
 */
export function checkRetvalRange(
  env: Env,
  reg: RegState,
  [lo, hi]: readonly [number, number],
  where: string,
): void {
  if (BigInt(lo) <= reg.s.smin && reg.s.smax <= BigInt(hi)) return;
  let msg = `${where} the register R0 has`;
  let unknown = true;
  if (reg.s.smin > S64_MIN) {
    msg += ` smin=${reg.s.smin}`;
    unknown = false;
  }
  if (reg.s.smax < S64_MAX) {
    msg += ` smax=${reg.s.smax}`;
    unknown = false;
  }
  if (unknown) msg += " unknown scalar value";
  env.fail(EINVAL, `${msg} should have been in [${lo}, ${hi}]`);
}
