/**
 * Running an sk_msg program on a message, as `sk_psock_msg_verdict()`
 * (net/core/skmsg.c) does when a socket in a sockmap sends: the kernel
 * cannot test-run the type, so this is the simulator's own entry point,
 * built on `runInContext()` (one CPU, the object's and the kernel's
 * helpers, plus the message helpers bound to this message).
 * @module
 */
import {
  runInContext,
  type TestRunOptions,
  type TestRunResult,
} from "../../test_run.ts";
import { programOfType } from "../../test_run.ts";
import type { LoadedObject } from "../../object_loader.ts";
import { SkMsg } from "./sk_msg.ts";
import { MsgSock, SkMsgContext, type SockEndpoints } from "./sk_msg_ctx.ts";
import { skMsgHelpers } from "./sk_msg_helpers.ts";
import { type SockRedirect, sockVerdict } from "./sock_redirect_helpers.ts";

/** `SK_DROP`, `SK_PASS` (`enum sk_action`). */
export const SK_ACTION = { DROP: 0, PASS: 1 } as const;

/** The message and socket of {@link runSkMsgProgram}. */
export interface SkMsgInput extends SockEndpoints {
  /** The message, one scatterlist element per fragment (1 to 17, none empty). */
  readonly fragments: readonly Uint8Array[];
  /**
   * The sending socket, when the test made it (e.g. to put it in a
   * sockmap too); otherwise one is made from the endpoint fields and
   * released after the run.
   */
  readonly sock?: MsgSock;
}

/** What {@link runSkMsgProgram} reports. */
export interface SkMsgRunResult {
  /** r0 as a u32: `SK_PASS` (1) or `SK_DROP` (0) for a well-behaved program. */
  readonly retval: number;
  /** The full r0. */
  readonly r0: bigint;
  /** Instructions retired. */
  readonly steps: number;
  /** The message's bytes after the run. */
  readonly data: Uint8Array;
  /** Each element's length after the run, in ring order. */
  readonly fragments: readonly number[];
  /** `msg->sg.size` after the run. */
  readonly size: number;
  /** `msg->apply_bytes` (0 unless `bpf_msg_apply_bytes()` set it). */
  readonly applyBytes: number;
  /** `msg->cork_bytes` (0 unless `bpf_msg_cork_bytes()` set it). */
  readonly corkBytes: number;
  /** Lines `bpf_trace_printk` printed. */
  readonly printk: readonly string[];
  /** What `sk_psock_msg_verdict()` makes of r0 and `msg->sk_redir`. */
  readonly verdict: "pass" | "drop" | "redirect";
  /** The redirect recorded (whatever the verdict), if any. */
  readonly redirect: SockRedirect | undefined;
}

/**
 * Runs sk_msg program `name` of `loaded` once over the message of `input`.
 * Throws `TestRunError` (EINVAL) for a program of another type, and the
 * `MemoryFault` / `ExecError` that stopped the program.
 */
export function runSkMsgProgram(
  loaded: LoadedObject,
  name: string,
  input: SkMsgInput,
  opts: Omit<TestRunOptions, "data" | "repeat"> = {},
): SkMsgRunResult {
  programOfType(loaded, name, "sk_msg");
  const space = loaded.kernel.space;
  const msg = new SkMsg(input.fragments);
  const sock = input.sock ?? new MsgSock(space, input);
  const ctx = new SkMsgContext(space, msg, sock, input.sock === undefined);
  const run: TestRunResult = runInContext(loaded, name, {
    r1: ctx.address,
    helpers: skMsgHelpers(ctx, loaded.registry),
    dataOut: () => msg.bytes(),
    release: () => ctx.release(),
  }, { ...opts, repeat: 1 });
  return {
    retval: run.retval,
    r0: run.r0,
    steps: run.steps,
    data: run.dataOut ?? new Uint8Array(),
    fragments: msg.fragmentSizes(),
    size: msg.size,
    applyBytes: msg.applyBytes,
    corkBytes: msg.corkBytes,
    printk: run.printk,
    verdict: sockVerdict(run.retval, ctx.redirect),
    redirect: ctx.redirect,
  };
}
