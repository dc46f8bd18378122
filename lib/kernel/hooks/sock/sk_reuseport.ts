/**
 * Running an sk_reuseport program as a reuseport group's selector
 * (net/core/sock_reuseport.c): the kernel cannot test-run the type, so
 * this is the simulator's own entry point, built on `runInContext()`.
 *
 * A packet: `reuseport_select_sock()` runs the program through
 * `bpf_run_sk_reuseport()` — `SK_PASS` (1) with a socket selected gives
 * that socket, `SK_PASS` without one falls back to
 * `reuseport_select_sock_by_hash()`, any other return is
 * `ERR_PTR(-ECONNREFUSED)`: no socket gets the packet.
 *
 * A migration (`migrating` given): `reuseport_migrate_sock()` runs only
 * programs attached as `BPF_SK_REUSEPORT_SELECT_OR_MIGRATE`
 * (`SEC("sk_reuseport/migrate")`) with `migrating_sk` set and the
 * migrating socket's `sk_hash` as hash; the same verdicts, except that
 * a refusal is the migration failing.
 * @module
 */
import { EINVAL } from "../../../uapi/errno.ts";
import type { LoadedObject } from "../../object_loader.ts";
import {
  programOfType,
  runInContext,
  TestRunError,
  type TestRunOptions,
  type TestRunResult,
} from "../../test_run.ts";
import type { TestRunSock } from "../../net/packet_sock.ts";
import {
  type ReuseportGroup,
  type ReuseportSock,
  selectSockByHash,
} from "./sk_reuseport_group.ts";
import { SkReuseportContext, skReuseportHelpers } from "./sk_reuseport_ctx.ts";
export { ECONNREFUSED } from "../../../uapi/errno.ts";

/** `SK_PASS`. */
const SK_PASS = 1;
/** The attach type `reuseport_migrate_sock()` demands. */
const SELECT_OR_MIGRATE = "sk_reuseport_select_or_migrate";

/** The group, packet and hash of {@link runSkReuseportProgram}. */
export interface SkReuseportInput {
  /** The reuseport group the lookup reached (at least one listening socket). */
  readonly group: ReuseportGroup;
  /**
   * The received Ethernet frame (MAC header on; `data` will be its
   * transport header). Omitted for a migration without an skb.
   */
  readonly packet?: Uint8Array;
  /** The flow hash (`inet_ehashfn()` / `udp_ehashfn()`; a migrating socket's `sk_hash`). */
  readonly hash: number;
  /** `reuse_kern->sk` (default the group's first listening socket). */
  readonly sk?: ReuseportSock;
  /** The request or child socket that migrates from the closed `sk`. */
  readonly migrating?: TestRunSock;
}

/** What {@link runSkReuseportProgram} reports. */
export interface SkReuseportRunResult {
  /** r0 as a u32. */
  readonly retval: number;
  /** The full r0. */
  readonly r0: bigint;
  /** Instructions retired. */
  readonly steps: number;
  /** Lines `bpf_trace_printk` printed. */
  readonly printk: readonly string[];
  /** `reuse_kern.selected_sk` when the program ended, whatever it returned. */
  readonly programSelected: ReuseportSock | undefined;
  /**
   * `"selected"`: `SK_PASS` with a selection; `"hash"`: `SK_PASS` without
   * one, the hash chose; `"refused"`: any other return
   * (`-ECONNREFUSED`).
   */
  readonly verdict: "selected" | "hash" | "refused";
  /**
   * The socket the packet (or migrating request) goes to: the program's,
   * the hash's (undefined when every listening socket is a connected UDP
   * one), none when refused.
   */
  readonly selected: ReuseportSock | undefined;
}

/**
 * Runs sk_reuseport program `name` of `loaded` once for `input`. Throws
 * `TestRunError` (EINVAL) for a program of another type, an empty group,
 * and a migration with a program `reuseport_migrate_sock()` would not run.
 */
export function runSkReuseportProgram(
  loaded: LoadedObject,
  name: string,
  input: SkReuseportInput,
  opts: Omit<TestRunOptions, "data" | "repeat"> = {},
): SkReuseportRunResult {
  const prog = programOfType(loaded, name, "sk_reuseport");
  const { group } = input;
  const socks = group.sockets.length;
  if (socks === 0) {
    // reuseport_select_sock() / _migrate_sock(): no listener, no program run
    throw new TestRunError(
      "the reuseport group has no listening socket",
      EINVAL,
    );
  }
  if (
    input.migrating !== undefined &&
    prog.expectedAttachType !== SELECT_OR_MIGRATE
  ) {
    throw new TestRunError(
      `program '${name}' is not attached as ${SELECT_OR_MIGRATE}: ` +
        "reuseport_migrate_sock() does not run it",
      EINVAL,
    );
  }
  const space = loaded.kernel.space;
  const ctx = new SkReuseportContext(space, {
    group,
    sk: input.sk ?? group.sockets[0],
    frame: input.packet,
    hash: input.hash,
    migrating: input.migrating,
  });
  const run: TestRunResult = runInContext(loaded, name, {
    r1: ctx.address,
    helpers: skReuseportHelpers(ctx, loaded.registry),
    dataOut: () => ctx.data().slice(),
    release: () => ctx.release(),
  }, { ...opts, repeat: 1 });
  // bpf_run_sk_reuseport(): action == SK_PASS ? selected_sk : ERR_PTR(-ECONNREFUSED)
  const passed = run.retval === SK_PASS;
  const chosen = passed ? ctx.selected : undefined;
  const verdict = !passed ? "refused" : chosen ? "selected" : "hash";
  return {
    retval: run.retval,
    r0: run.r0,
    steps: run.steps,
    printk: run.printk,
    programSelected: ctx.selected,
    verdict,
    selected: verdict === "hash"
      ? selectSockByHash(group, input.hash, socks)
      : chosen,
  };
}
