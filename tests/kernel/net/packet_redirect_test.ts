// Redirect maps, cgroup arrays, the redirect helpers and the raw SYN
// cookies, against hand-computed expectations from net/core/filter.c,
// kernel/bpf/{devmap,cpumap,arraymap}.c, net/xdp/xskmap.c and
// net/ipv{4,6}/syncookies.c. The fixtures' kernel results
// (tests/fixtures/runtime/redirect) are compared by test_run_test.ts; here
// the runs the kernel could not make: maps user space filled.
import { equal, ok } from "node:assert/strict";
import { AddressSpace } from "../../../lib/exec/memory.ts";
import { createMap } from "../../../lib/kernel/maps/create.ts";
import {
  BPF_EXIST,
  BPF_NOEXIST,
  type BpfMap,
  type MapAttr,
  MapError,
  u32Key,
} from "../../../lib/kernel/maps/map.ts";
import { CgroupArrayMap } from "../../../lib/kernel/maps/cgroup_array.ts";
import { RedirectMap } from "../../../lib/kernel/maps/redirect_maps.ts";
import { xdpRedirectMap } from "../../../lib/kernel/net/packet_redirect.ts";
import {
  rawCheckSyncookie,
  rawGenSyncookie,
  siphash,
  tcpCookieTime,
  tcpParseMssOption,
} from "../../../lib/kernel/net/packet_syncookie.ts";
import { loadObject } from "../../../lib/elf/object.ts";
import { Kernel } from "../../../lib/kernel/kernel.ts";
import { loadObjectWithRuntime } from "../../../lib/kernel/object_runtime.ts";
import { testRun } from "../../../lib/kernel/test_run.ts";

const M = {
  cgroup_array: 8,
  devmap: 14,
  cpumap: 16,
  xskmap: 17,
  devmap_hash: 25,
};

function attr(type: number, over: Partial<MapAttr> = {}): MapAttr {
  return {
    name: "m",
    type,
    keySize: 4,
    valueSize: 4,
    maxEntries: 4,
    flags: 0,
    ...over,
  };
}

/** The errno BPF_MAP_CREATE refuses `a` with, or 0. */
function createErr(a: MapAttr, nrCpus = 2): number {
  try {
    createMap(new AddressSpace(), a, { nrCpus }).destroy();
    return 0;
  } catch (e) {
    if (e instanceof MapError) return -e.errno;
    throw e;
  }
}

function u32s(...words: number[]): Uint8Array {
  const b = new Uint8Array(4 * words.length);
  words.forEach((w, i) => new DataView(b.buffer).setInt32(4 * i, w, true));
  return b;
}

function make(a: MapAttr): BpfMap {
  return createMap(new AddressSpace(), a, { nrCpus: 2 });
}

Deno.test("BPF_MAP_CREATE of cgroup arrays and redirect maps", () => {
  const { cgroup_array: CG, devmap: DEV, cpumap: CPU, xskmap: XSK } = M;
  const DEVH = M.devmap_hash;
  equal(createErr(attr(CG)), 0);
  equal(createErr(attr(CG, { valueSize: 8 })), -22); // an fd is a u32
  equal(createErr(attr(CG, { flags: 1 << 7 })), -22); // BPF_F_RDONLY_PROG
  equal(createErr(attr(CG, { maxEntries: 0 })), -22);
  equal(createErr(attr(CG, { flags: 1 << 10 })), -22); // BPF_F_MMAPABLE
  equal(createErr(attr(DEV, { valueSize: 8 })), 0);
  equal(createErr(attr(DEV, { valueSize: 6 })), -22);
  equal(createErr(attr(DEV, { flags: 1 << 3 })), 0); // BPF_F_RDONLY
  equal(createErr(attr(DEV, { flags: 1 << 7 })), -22);
  equal(createErr(attr(DEVH, { maxEntries: 2 ** 31 + 1 })), -22);
  equal(createErr(attr(CPU, { maxEntries: 8192 })), 0);
  equal(createErr(attr(CPU, { maxEntries: 8193 })), -7); // > NR_CPUS
  equal(createErr(attr(CPU, { flags: 1 << 3 })), -22); // only NUMA_NODE
  equal(createErr(attr(XSK)), 0);
  equal(createErr(attr(XSK, { valueSize: 8 })), -22);
  equal(createErr(attr(XSK, { keySize: 8 })), -22);
});

Deno.test("a cgroup array stays empty: no cgroup fds in the simulation", () => {
  const m = make(attr(M.cgroup_array));
  ok(m instanceof CgroupArrayMap);
  equal(m.updateFromSyscall(u32Key(0), u32s(3), 0), -9); // EBADF
  equal(m.updateFromSyscall(u32Key(0), u32s(3), BPF_EXIST), -22);
  equal(m.updateFromSyscall(u32Key(4), u32s(3), 0), -7);
  equal(m.lookupValueCopy(u32Key(0)), -524); // no map_fd_sys_lookup_elem
  equal(m.deleteFromSyscall(u32Key(0)), -2);
  equal(m.deleteFromSyscall(u32Key(4)), -7);
  equal(m.cgroupAt(3), -11); // the helpers: empty slot, -EAGAIN
  equal(m.cgroupAt(4), -7); // past the end, -E2BIG
  equal(m.cgroupAt(-1), -7); // u32 index
  equal(m.getNextKey(null).toString(), u32Key(0).toString());
  equal(m.getNextKey(u32Key(3)), -2);
});

Deno.test("devmap: lo is the one device an entry can name", () => {
  const m = make(attr(M.devmap, { valueSize: 8 }));
  ok(m instanceof RedirectMap);
  equal(m.updateFromSyscall(u32Key(0), u32s(1, 0), 0), 0);
  equal(m.lookupValueCopy(u32Key(0)).toString(), u32s(1, 0).toString());
  equal(m.updateFromSyscall(u32Key(1), u32s(2, 0), 0), -22); // no device 2
  equal(m.updateFromSyscall(u32Key(1), u32s(1, 3), 0), -22); // no prog fd 3
  equal(m.updateFromSyscall(u32Key(1), u32s(0, 3), 0), -22); // fd without device
  equal(m.updateFromSyscall(u32Key(1), u32s(1, -1), 0), 0); // fd <= 0: none
  equal(m.updateFromSyscall(u32Key(4), u32s(1, 0), 0), -7);
  equal(m.updateFromSyscall(u32Key(2), u32s(1, 0), BPF_NOEXIST), -17);
  equal(m.updateFromSyscall(u32Key(2), u32s(1, 0), 3), -22);
  // the helper: a target at 0 and 1, none at 2
  equal(xdpRedirectMap(m, 0n, 2n), 4);
  equal(xdpRedirectMap(m, 1n | (1n << 32n), 0n), 4); // u32 key
  equal(xdpRedirectMap(m, 2n, 2n), 2);
  equal(xdpRedirectMap(m, 2n, 8n), 4); // BPF_F_BROADCAST
  equal(xdpRedirectMap(m, 0n, 4n), 0); // unknown flag: XDP_ABORTED
  ok(m.lookup(u32Key(0), 0) !== null);
  equal(m.lookup(u32Key(2), 0), null);
  equal(m.updateFromSyscall(u32Key(0), u32s(0, 0), 0), 0); // ifindex 0 empties
  equal(m.lookupValueCopy(u32Key(0)), -2);
  equal(m.deleteFromSyscall(u32Key(1)), 0);
  equal(m.deleteFromSyscall(u32Key(1)), 0); // an empty slot too
  equal(m.deleteFromSyscall(u32Key(4)), -22);
  equal(xdpRedirectMap(m, 1n, 3n), 3);
});

Deno.test("devmap_hash: entries, the max_entries limit and the bucket walk", () => {
  const m = make(attr(M.devmap_hash));
  for (const k of [1000, 5, 1, 2]) {
    equal(m.updateFromSyscall(u32Key(k), u32s(1), 0), 0);
  }
  equal(m.updateFromSyscall(u32Key(7), u32s(1), 0), -7); // 4 items already
  equal(m.updateFromSyscall(u32Key(5), u32s(1), 0), 0); // replacing is fine
  equal(m.updateFromSyscall(u32Key(5), u32s(1), BPF_NOEXIST), -17);
  equal(m.updateFromSyscall(u32Key(8), u32s(0), 0), -22); // ifindex 0
  // 4 buckets: 1000 in 0; 5 then 1 (newest first; 5 re-added last) in 1; 2 in 2
  const keys: number[] = [];
  let k = m.getNextKey(null);
  while (typeof k !== "number") {
    keys.push(new DataView(k.buffer).getUint32(0, true));
    k = m.getNextKey(k);
  }
  equal(keys.join(","), "1000,5,1,2");
  equal(m.deleteFromSyscall(u32Key(9)), -2);
  equal(m.deleteFromSyscall(u32Key(1000)), 0);
  ok(m instanceof RedirectMap);
  equal(xdpRedirectMap(m, 1000n, 1n), 1);
  equal(xdpRedirectMap(m, 2n, 1n), 4);
});

Deno.test("cpumap: an entry per simulated CPU; xskmap: no sockets", () => {
  const m = make(attr(M.cpumap, { valueSize: 8 }));
  equal(m.updateFromSyscall(u32Key(1), u32s(64, 0), 0), 0);
  equal(m.lookupValueCopy(u32Key(1)).toString(), u32s(64, 0).toString());
  equal(m.updateFromSyscall(u32Key(2), u32s(64, 0), 0), -19); // CPU 2 of 2
  equal(m.updateFromSyscall(u32Key(4), u32s(64, 0), 0), -7);
  equal(m.updateFromSyscall(u32Key(0), u32s(16385, 0), 0), -75);
  equal(m.updateFromSyscall(u32Key(0), u32s(64, 5), 0), -12); // prog fd 5
  equal(m.updateFromSyscall(u32Key(0), u32s(64, 0), BPF_NOEXIST), -17);
  ok(m instanceof RedirectMap);
  equal(xdpRedirectMap(m, 1n, 0n), 4);
  equal(xdpRedirectMap(m, 0n, 3n), 3);
  equal(xdpRedirectMap(m, 1n, 8n), 0); // BPF_F_BROADCAST is devmap-only
  equal(m.updateFromSyscall(u32Key(1), u32s(0, 0), 0), 0); // qsize 0 empties
  equal(m.lookupValueCopy(u32Key(1)), -2);
  const x = make(attr(M.xskmap));
  equal(x.updateFromSyscall(u32Key(0), u32s(3), 0), -9);
  equal(x.updateFromSyscall(u32Key(4), u32s(3), 0), -7);
  equal(x.updateFromSyscall(u32Key(0), u32s(3), 3), -22);
  equal(x.lookupValueCopy(u32Key(0)), -95);
  equal(x.deleteFromSyscall(u32Key(0)), 0);
  equal(x.deleteFromSyscall(u32Key(4)), -22);
});

Deno.test("bpf_redirect_map on a devmap user space filled (fixture redirect.o)", () => {
  const obj = loadObject(
    Deno.readFileSync(
      new URL("../../fixtures/runtime/redirect/redirect.o", import.meta.url),
    ),
    "redirect.o",
  );
  const loaded = loadObjectWithRuntime(new Kernel({ cpus: 2 }), obj);
  const devs = loaded.maps.find((m) => m.name === "devs")?.map;
  ok(devs);
  // the kernel's run, on the empty map
  equal(testRun(loaded, "xdp_redirect_devmap").retval, 0x10432);
  equal(devs.updateFromSyscall(u32Key(0), u32s(1), 0), 0);
  // key 0 now redirects (PASS, EXCLUDE_INGRESS); the unknown flag still aborts
  equal(testRun(loaded, "xdp_redirect_devmap").retval, 0x14434);
  equal(testRun(loaded, "tc_skb_under_cgroup").retval, 0x7070b);
});

/** SipHash-2-4 under key 00…0f of the messages 00, 00 01, … (the reference vectors). */
Deno.test("siphash: the SipHash-2-4 reference vectors", () => {
  const key = Uint8Array.from({ length: 16 }, (_, i) => i);
  const msg = (n: number) => Uint8Array.from({ length: n }, (_, i) => i);
  equal(siphash(msg(0), key), 0x726fdb47dd0e0e31n);
  equal(siphash(msg(1), key), 0x74f839c593dc67fdn);
  equal(siphash(msg(8), key), 0x93f5f5799a932462n);
  equal(siphash(msg(15), key), 0xa129ca6149be45e5n);
  equal(siphash(msg(16), key), 0x3f2acc7f57c29bdbn);
});

/** A TCP header of `seq`, ports 40000 → 80, with `opts` (doff from their length). */
function tcp(seq: number, ackSeq: number, opts: number[] = []): Uint8Array {
  const th = new Uint8Array(20 + opts.length);
  const v = new DataView(th.buffer);
  v.setUint16(0, 40000);
  v.setUint16(2, 80);
  v.setUint32(4, seq);
  v.setUint32(8, ackSeq);
  th[12] = (th.length / 4) << 4;
  th.set(opts, 20);
  return th;
}

const IP4 = Uint8Array.from([
  0x45,
  0,
  0,
  40,
  0,
  0,
  0,
  0,
  64,
  6,
  0,
  0,
  10,
  0,
  0,
  1,
  10,
  0,
  0,
  2,
]);
const MSS = (mss: number) => [2, 4, mss >> 8, mss & 0xff];

Deno.test("tcp_parse_mss_option", () => {
  equal(tcpParseMssOption(tcp(0, 0, [1, 1, ...MSS(1400), 1, 1])), 1400);
  // doff covers NOP NOP and half the option: a partial option ends the walk
  equal(tcpParseMssOption(tcp(0, 0, [1, 1, ...MSS(1400)])), 0);
  equal(tcpParseMssOption(tcp(0, 0, [0, 0, ...MSS(1400)])), 0); // EOL first
  equal(tcpParseMssOption(tcp(0, 0, [8, 1, 0, 0, ...MSS(9)])), 0); // silly size
  equal(tcpParseMssOption(tcp(0, 0, [2, 4, 0, 0])), 0); // MSS 0 ignored
  equal(tcpParseMssOption(tcp(0, 0, [3, 3, 7, 1, ...MSS(1000)])), 1000);
});

Deno.test("raw syncookies: MSS encoding, argument checks, round trips, ageing", () => {
  const gen = (th: Uint8Array, ns = 0) => rawGenSyncookie(0, IP4, th, ns);
  equal(gen(tcp(1000, 0, MSS(1400))) >> 32n, 1300n);
  equal(gen(tcp(1000, 0, MSS(1299))) >> 32n, 536n);
  equal(gen(tcp(1000, 0, MSS(1460))) >> 32n, 1460n);
  equal(gen(tcp(1000, 0)) >> 32n, 536n); // TCP_MSS_DEFAULT
  const ip6 = new Uint8Array(40);
  ip6[0] = 0x60;
  equal(rawGenSyncookie(1, ip6, tcp(1, 0, MSS(9000)), 0) >> 32n, 8940n);
  equal(rawGenSyncookie(1, ip6, tcp(1, 0, MSS(1419)), 0) >> 32n, 1220n);
  equal(rawGenSyncookie(1, ip6, tcp(1, 0), 0) >> 32n, 1220n);
  equal(gen(tcp(1000, 0).subarray(0, 16)), -22n); // th_len < 20
  const long = tcp(1000, 0, MSS(1400));
  long[12] = 5 << 4; // doff * 4 != th_len
  equal(gen(long), -22n);
  // jiffies start 5 minutes before the u32 wrap: (2^32 - 75000) / 15000
  equal(tcpCookieTime(0), 286326);
  equal(tcpCookieTime(60e9), 286327);
  const cookie = Number(gen(tcp(1000, 0, MSS(1400))) & 0xffffffffn);
  const ackOf = (c: number) => tcp(1001, (c + 1) >>> 0);
  const check = (th: Uint8Array, ns = 0) => rawCheckSyncookie(0, IP4, th, ns);
  equal(check(ackOf(cookie)), 0);
  equal(check(ackOf(cookie), 60e9), 0); // one minute old
  equal(check(ackOf(cookie), 120e9), -13); // MAX_SYNCOOKIE_AGE
  // seq - 1 is subtracted from the cookie: one more decodes MSS index 0
  // instead of 1 (still valid), 0x10000 more leaves the table
  equal(check(tcp(1002, (cookie + 1) >>> 0)), 0);
  equal(check(tcp(1001 + 0x10000, (cookie + 1) >>> 0)), -13);
  const other = ackOf(cookie);
  other[1] ^= 1; // source port
  equal(check(other), -13);
  const ip6b = ip6.slice();
  ip6b[39] = 9;
  const c6 = Number(
    rawGenSyncookie(1, ip6, tcp(7, 0, MSS(1500)), 0) & 0xffffffffn,
  );
  equal(rawCheckSyncookie(1, ip6, tcp(8, (c6 + 1) >>> 0), 0), 0);
  equal(rawCheckSyncookie(1, ip6b, tcp(8, (c6 + 1) >>> 0), 0), -13);
});
