// Shared set-up of the sock_ops tests: the fixture
// (tests/fixtures/runtime/sockops/sockops.c) loaded into a fresh kernel,
// simulated sockets, and one run of a program on an engine.
import type { Engine } from "../../../../lib/exec/jit/step_jit.ts";
import { loadObject } from "../../../../lib/elf/object.ts";
import type { ObjectFile } from "../../../../lib/elf/types.ts";
import { Kernel } from "../../../../lib/kernel/kernel.ts";
import { loadObjectWithRuntime } from "../../../../lib/kernel/object_runtime.ts";
import type { LoadedObject } from "../../../../lib/kernel/object_loader.ts";
import {
  runSockOpsProgram,
  type SockOpsResult,
  type SockOpsRun,
} from "../../../../lib/kernel/hooks/sock/sock_ops.ts";
import {
  SimTcpSock,
  type SimTcpSockInit,
  TCP_STATES,
} from "../../../../lib/kernel/hooks/sock/sock_ops_sock.ts";

/** The fixture's path (its `.oracle.json` sits beside it). */
export const SOCKOPS_FIXTURE: URL = new URL(
  "../../../fixtures/runtime/sockops/sockops.o",
  import.meta.url,
);

/** The parsed fixture. */
export const sockOpsObject: ObjectFile = loadObject(
  Deno.readFileSync(SOCKOPS_FIXTURE),
  "sockops.o",
);

/** A fresh one-CPU kernel with the fixture loaded (verified, as the kernel would). */
export function loadSockOps(): LoadedObject {
  return loadObjectWithRuntime(new Kernel({ cpus: 1 }), sockOpsObject, {
    verify: true,
  });
}

/**
 * An established IPv4 connection 127.0.0.1:8080 -> 127.0.0.1:443 (MSS
 * 1448) in `loaded`'s kernel, with `init`'s fields over that.
 */
export function established(
  loaded: LoadedObject,
  init: SimTcpSockInit = {},
): SimTcpSock {
  return new SimTcpSock(loaded.kernel.space, {
    state: TCP_STATES.ESTABLISHED,
    num: 8080,
    remotePort: 443,
    mssCache: 1448,
    ...init,
  });
}

/** Runs `prog` for `run` on `engine`. */
export function runOn(
  loaded: LoadedObject,
  engine: Engine,
  prog: string,
  run: SockOpsRun,
): SockOpsResult {
  return runSockOpsProgram(loaded, prog, run, { engine });
}
