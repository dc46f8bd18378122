// Shared set-up of the sock_addr tests: the fixtures
// (tests/fixtures/runtime/sockaddr/) loaded into a fresh kernel, the
// request/result global `st` of sockaddr.c, address shorthands, and one run
// of a program on an engine.
import assert from "node:assert/strict";
import { loadObject } from "../../../../lib/elf/object.ts";
import type { ObjectFile } from "../../../../lib/elf/types.ts";
import type { Engine } from "../../../../lib/exec/jit/step_jit.ts";
import { Kernel } from "../../../../lib/kernel/kernel.ts";
import type { LoadedObject } from "../../../../lib/kernel/object_loader.ts";
import { loadObjectWithRuntime } from "../../../../lib/kernel/object_runtime.ts";
import { AF } from "../../../../lib/kernel/net/packet_sock.ts";
import {
  runSockAddrProgram,
  type SockAddrResult,
  type SockAddrRun,
} from "../../../../lib/kernel/hooks/cgroup/sock_addr.ts";
import type { SockAddr } from "../../../../lib/kernel/hooks/cgroup/sock_addr_ctx.ts";

/** The fixtures' directory. */
export const SOCKADDR_DIR: URL = new URL(
  "../../../fixtures/runtime/sockaddr/",
  import.meta.url,
);

/** The parsed fixture `name` (sockaddr, rejects). */
export function objectOf(name: string): ObjectFile {
  return loadObject(
    Deno.readFileSync(new URL(`${name}.o`, SOCKADDR_DIR)),
    `${name}.o`,
  );
}

const sockaddrObject = objectOf("sockaddr");

/** A fresh one-CPU kernel (its own port table) with sockaddr.o, verified. */
export function load(): LoadedObject {
  return loadObjectWithRuntime(new Kernel({ cpus: 1 }), sockaddrObject, {
    verify: true,
  });
}

/** The results of sockaddr.c's `struct state st` (offsets in its comments). */
export interface State {
  bindRet: number;
  optRet: [number, number];
  info: number[];
  gotRetval: number;
}

/** `st`'s size: the layout check of {@link state}. */
const ST_SIZE = 104;

function stMap(loaded: LoadedObject) {
  return loaded.maps.find((m) => m.name.endsWith(".bss"))!.map!;
}

/** Writes the request half of `st` (and zeroes the results). */
export function request(
  loaded: LoadedObject,
  req: { addr?: Uint8Array; len?: number; retval?: number; verdict?: number },
): void {
  const v = new Uint8Array(ST_SIZE);
  const view = new DataView(v.buffer);
  if (req.addr) v.set(req.addr.subarray(0, 32), 56);
  view.setUint32(88, req.len ?? req.addr?.length ?? 0, true);
  view.setInt32(92, req.retval ?? 0, true);
  view.setUint32(96, req.verdict ?? 0, true);
  assert.equal(stMap(loaded).updateFromSyscall(new Uint8Array(4), v, 0), 0);
}

/** Reads the results of `st`. */
export function state(loaded: LoadedObject): State {
  const b = stMap(loaded).lookupValueCopy(new Uint8Array(4));
  assert.ok(b instanceof Uint8Array);
  assert.equal(b.length, ST_SIZE);
  const v = new DataView(b.buffer, b.byteOffset);
  return {
    bindRet: Number(v.getBigInt64(0, true)),
    optRet: [Number(v.getBigInt64(8, true)), Number(v.getBigInt64(16, true))],
    info: Array.from({ length: 8 }, (_, i) => v.getUint32(24 + 4 * i, true)),
    gotRetval: v.getInt32(100, true),
  };
}

/** The u32 a little-endian load of these network-order bytes gives. */
export const le32 = (...b: number[]): number =>
  (b[0] | (b[1] << 8) | (b[2] << 16) | (b[3] << 24)) >>> 0;

/** An IPv4 socket address. */
export const v4 = (ip: string, port = 0): SockAddr => ({
  family: AF.INET,
  ip,
  port,
});

/** An IPv6 socket address, as decodeSockAddr() reports one. */
export const v6 = (ip: string, port = 0, scopeId = 0): SockAddr => ({
  family: AF.INET6,
  ip,
  port,
  flowinfo: 0,
  scopeId,
});

/** Runs programs of `loaded` on `engine`. */
export function runner(
  loaded: LoadedObject,
  engine: Engine,
): (name: string, run: SockAddrRun) => SockAddrResult {
  return (name, run) => runSockAddrProgram(loaded, name, run, { engine });
}
