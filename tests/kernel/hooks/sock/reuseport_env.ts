// Shared set-up of the sk_reuseport tests: the fixture
// tests/fixtures/runtime/reuseport/select.o loaded with verification on,
// a reuseport group of simulated sockets, and the frames they receive.
import { loadObject } from "../../../../lib/elf/object.ts";
import { Kernel } from "../../../../lib/kernel/kernel.ts";
import type { ReuseportArray } from "../../../../lib/kernel/maps/reuseport_array.ts";
import type { SockMap } from "../../../../lib/kernel/maps/sockmap.ts";
import type { LoadedObject } from "../../../../lib/kernel/object_loader.ts";
import { loadObjectWithRuntime } from "../../../../lib/kernel/object_runtime.ts";
import {
  IPPROTO,
  ReuseportGroup,
  ReuseportSock,
  type ReuseportSockInit,
} from "../../../../lib/kernel/hooks/sock/sk_reuseport_group.ts";
import { Globals } from "./skmsg_env.ts";

/** The loaded fixture, its maps and globals. */
export interface ReuseportEnv {
  readonly loaded: LoadedObject;
  readonly globals: Globals;
  readonly array: ReuseportArray;
  readonly sockmap: SockMap;
  readonly sockhash: SockMap;
}

/** Loads select.o (verified) into a fresh one-CPU kernel. */
export function loadReuseportFixture(): ReuseportEnv {
  const bytes = Deno.readFileSync(
    new URL("../../../fixtures/runtime/reuseport/select.o", import.meta.url),
  );
  const loaded = loadObjectWithRuntime(
    new Kernel({ cpus: 1 }),
    loadObject(bytes, "select.o"),
    { verify: true },
  );
  const map = (name: string) => loaded.maps.find((m) => m.name === name)!.map;
  return {
    loaded,
    globals: new Globals(loaded),
    array: map("rs_array") as ReuseportArray,
    sockmap: map("rs_sockmap") as SockMap,
    sockhash: map("rs_sockhash") as SockMap,
  };
}

/** A group `id` of `n` sockets described by `init` (UDP on port 5000 by default). */
export function makeGroup(
  env: ReuseportEnv,
  id: number,
  n: number,
  init: ReuseportSockInit = {},
  bindInany = false,
): { group: ReuseportGroup; socks: ReuseportSock[] } {
  const group = new ReuseportGroup({ reuseportId: id, bindInany });
  const socks: ReuseportSock[] = [];
  for (let i = 0; i < n; i++) {
    const sk = new ReuseportSock(env.loaded.kernel.space, {
      protocol: IPPROTO.UDP,
      localPort: 5000,
      ...init,
    });
    group.add(sk);
    socks.push(sk);
  }
  return { group, socks };
}

/** UDP source / destination ports of {@link udpFrame}. */
export const SPORT = 1234, DPORT = 5000;

/**
 * An Ethernet frame carrying IPv4 (or IPv6) and a UDP datagram
 * 1234 → 5000 with `payload` bytes (k % 251).
 */
export function udpFrame(payload: number, v6 = false): Uint8Array {
  const ipLen = v6 ? 40 : 20;
  const f = new Uint8Array(14 + ipLen + 8 + payload);
  f.set(v6 ? [0x86, 0xdd] : [0x08, 0x00], 12);
  if (v6) {
    f[14] = 0x60;
    f[14 + 6] = 17; // next header
  } else {
    f[14] = 0x45;
    f[14 + 9] = 17;
  }
  const udp = 14 + ipLen, len = 8 + payload;
  f.set([SPORT >> 8, SPORT & 0xff, DPORT >> 8, DPORT & 0xff], udp);
  f.set([len >> 8, len & 0xff], udp + 4);
  for (let k = 0; k < payload; k++) f[udp + 8 + k] = k % 251;
  return f;
}
