/**
 * Explanations for rejections about references and locks: besides the
 * kernel's message, where the reference or lock came from and the path
 * that reached the failure (the thing the kernel log leaves the reader to
 * reconstruct). Built from the failing state's trail (state.ts `TrailNode`)
 * and its acquired references.
 * @module
 */
import type { Env } from "./env.ts";
import { regTypeStr } from "./reg_types.ts";
import type { RefState, TrailNode, VerifierState } from "./state.ts";

const MAX_PATH_STEPS = 12;

/** Trail nodes oldest first. */
function trailOf(vs: VerifierState): TrailNode[] {
  const out: TrailNode[] = [];
  for (let n = vs.trail ?? null; n; n = n.prev) out.push(n);
  return out.reverse();
}

/** "A → t1 → … → X": the branches the path took after instruction `from`'s event. */
function pathFrom(trail: TrailNode[], marker: number, at: number): string {
  const steps: number[] = [];
  const start = marker >= 0 ? marker : 0;
  for (let i = start + 1; i < trail.length; i++) {
    const n = trail[i];
    if (n.regs === undefined) steps.push(n.to); // markers and events carry regs
  }
  const origin = marker >= 0 ? trail[marker].from : 0;
  let shown = steps;
  if (steps.length > MAX_PATH_STEPS) {
    shown = [...steps.slice(0, 4), -1, ...steps.slice(-(MAX_PATH_STEPS - 5))];
  }
  const parts = [origin, ...shown, at].map((s) => s < 0 ? "…" : String(s));
  return parts.filter((p, i) => i === 0 || p !== parts[i - 1]).join(" → ");
}

function markerOf(trail: TrailNode[], why: string): number {
  for (let i = trail.length - 1; i >= 0; i--) {
    if (trail[i].why === why) return i;
  }
  return -1;
}

function refPath(trail: TrailNode[], r: RefState, at: number): string {
  const m = markerOf(trail, `acquire:${r.id}`);
  return m >= 0 ? pathFrom(trail, m, at) : `${r.insnIdx} → … → ${at}`;
}

function heldLock(vs: VerifierState): RefState | undefined {
  return vs.refs.find((r) => r.type === "lock");
}

function lockText(trail: TrailNode[], lock: RefState, at: number): string {
  const m = markerOf(trail, "lock");
  const path = m >= 0 ? pathFrom(trail, m, at) : `${lock.insnIdx} → … → ${at}`;
  return `the bpf_spin_lock taken at insn ${lock.insnIdx} is still held at insn ${at} (path ${path})`;
}

// the last event on the path that invalidated register `regno`
function invalidation(
  trail: TrailNode[],
  regno: number,
): TrailNode | undefined {
  for (let i = trail.length - 1; i >= 0; i--) {
    const n = trail[i];
    if (n.regs?.includes(regno)) return n; // markers have empty regs
  }
  return undefined;
}

/**
 * Why the program was rejected, in terms of where references and locks
 * came from, or undefined when the message is not about them.
 */
export function explainRejection(
  env: Env,
  message: string,
): string | undefined {
  const vs = env.cur;
  if (!vs) return undefined;
  const at = env.insnIdx;
  const trail = trailOf(vs);
  if (message.endsWith("would lead to reference leak")) {
    return vs.refs.filter((r) => r.type === "ptr").map((r) =>
      `${
        r.what ?? "the reference"
      } acquired at insn ${r.insnIdx} is not released on the path ${
        refPath(trail, r, at)
      }: drop it, push it into a list or tree, or bpf_kptr_xchg it into a map on every path`
    ).join("\n") || undefined;
  }
  const lock = heldLock(vs);
  if (
    message.endsWith("cannot be used inside bpf_spin_lock-ed region") && lock
  ) {
    return `${lockText(trail, lock, at)}: call bpf_spin_unlock before leaving`;
  }
  if (
    message === "function calls are not allowed while holding a lock" && lock
  ) {
    return `${
      lockText(trail, lock, at)
    }: only bpf_spin_unlock and the list/rbtree kfuncs may be called under it`;
  }
  if (message === "Locking two bpf_spin_locks are not allowed" && lock) {
    return `${lockText(trail, lock, at)}: release it before taking another`;
  }
  const needLock = /^bpf_spin_lock at off=(\d+) must be held for (\S+)$/.exec(
    message,
  );
  if (needLock) {
    const [, off, what] = needLock;
    if (!lock) {
      return `no bpf_spin_lock is held at insn ${at} (path ${
        pathFrom(trail, -1, at)
      }): take the bpf_spin_lock at off=${off} of the same map value or object before using its ${what}`;
    }
    return `the bpf_spin_lock held since insn ${lock.insnIdx} belongs to another map value or object: this ${what} is protected by the bpf_spin_lock at off=${off} next to it`;
  }
  if (message === "bpf_spin_unlock without taking a lock") {
    return `no bpf_spin_lock is held at insn ${at} on the path ${
      pathFrom(trail, -1, at)
    }`;
  }
  const regUse =
    /^R(\d+) (invalid mem access 'scalar'|must be referenced or trusted|type=scalar )/
      .exec(message);
  const argUse =
    /^arg#(\d+) (expected pointer to allocated object|is neither owning or non-owning ref)$/
      .exec(message);
  const regno = regUse
    ? Number(regUse[1])
    : argUse
    ? Number(argUse[1]) + 1
    : -1;
  if (regno >= 0) {
    const ev = invalidation(trail, regno);
    if (ev) return `R${regno} at insn ${ev.from}: ${ev.why}`;
    const reg = vs.frames[vs.curframe].regs[regno];
    if (reg && /referenced or trusted/.test(message)) {
      return `R${regno} is ${
        regTypeStr(reg.type)
      }, not an object this program owns: only what bpf_obj_new, a list or rbtree pop, or bpf_kptr_xchg returned may be released`;
    }
  }
  const maybeNull = /^R(\d+) invalid mem access '.*or_null.*'$/.exec(message) ??
    /^Possibly NULL pointer passed to (?:trusted|helper) arg(\d+)$/.exec(
      message,
    );
  if (maybeNull) {
    return `the pointer may be NULL at insn ${at}: compare it with 0 (if (!p) …) before using it`;
  }
  return undefined;
}
