/**
 * `bpf_sk_assign()`, `bpf_tcp_check_syncookie()` and
 * `bpf_tcp_gen_syncookie()` (lib/kernel/net/packet_sock_tcp.ts): each check of
 * net/core/filter.c in the kernel's order against hand-built sockets and
 * headers (errnos from the kernel source; MSS values from msstab), the
 * dummy socket's outcome through `skbHelpers`, and the fixture
 * tests/fixtures/runtime/sock/sk_tcp.o on an IPv4 and an IPv6 frame, which
 * the 6.18 kernel ran (sk_tcp.oracle-data-run.json; the zero-frame runs are
 * compared by test_run_test.ts), on every engine.
 */
import assert from "node:assert/strict";
import { AddressSpace } from "../../../lib/exec/memory.ts";
import { ExecError } from "../../../lib/exec/fault.ts";
import { ENGINES } from "../../../lib/exec/jit/step_jit.ts";
import { loadObject } from "../../../lib/elf/object.ts";
import { Kernel } from "../../../lib/kernel/kernel.ts";
import { loadObjectWithRuntime } from "../../../lib/kernel/object_runtime.ts";
import { testRun } from "../../../lib/kernel/test_run.ts";
import { SkbContext } from "../../../lib/kernel/test_run_ctx.ts";
import { skbHelpers } from "../../../lib/kernel/net/packet_helpers.ts";
import { AF, TCP_STATE } from "../../../lib/kernel/net/packet_sock.ts";
import { rawGenSyncookie } from "../../../lib/kernel/net/packet_syncookie.ts";
import {
  skAssign,
  type SkAssignSkb,
  type SkAssignSock,
  SOCK_TCP_HELPER,
  type SyncookieSock,
  tcpCheckSyncookie,
  tcpGenSyncookie,
} from "../../../lib/kernel/net/packet_sock_tcp.ts";
import { callHelper } from "../helper_call.ts";

const EINVAL = -22, ENOENT = -2, EPROTONOSUPPORT = -93;
const ESOCKTNOSUPPORT = -94, EOPNOTSUPP = -95, ENETUNREACH = -101;

const hex = (s: string) =>
  new Uint8Array(s.match(/../g)!.map((h) => parseInt(h, 16)));

/** 10.0.0.1 → 10.0.0.2, TCP. */
const IPV4 = hex("4500002800000000400600000a0000010a000002");
/** 2001:db8::1 → 2001:db8::2, TCP. */
const IPV6 = hex(
  "6000000000140640" + "20010db8000000000000000000000001" +
    "20010db8000000000000000000000002",
);

/** A TCP header 40000 → 80, seq 1000, `flags`; with an MSS option if `mss`. */
function tcp(flags: number, mss = 0, ackSeq = 0): Uint8Array {
  const th = new Uint8Array(mss ? 24 : 20);
  const dv = new DataView(th.buffer);
  dv.setUint16(0, 40000);
  dv.setUint16(2, 80);
  dv.setUint32(4, 1000);
  dv.setUint32(8, ackSeq);
  th[12] = (th.length / 4) << 4;
  th[13] = flags;
  if (mss) th.set([2, 4, mss >> 8, mss & 0xff], 20);
  return th;
}
const SYN = 0x02, ACK = 0x10, RST = 0x04, FIN = 0x01;

/** A TCP listener of `family`, syncookies sysctl `sysctl`. */
function listener(
  family: number,
  sysctl = 1,
  more: Partial<SyncookieSock> = {},
): SyncookieSock {
  return {
    protocol: 6,
    state: TCP_STATE.LISTEN,
    family,
    ipv6Only: false,
    listener: {
      sysctlSyncookies: sysctl,
      noRecentOverflow: false,
      reqskQueueFull: false,
      acceptqFull: false,
    },
    ...more,
  };
}
/** The test run's dummy socket as the helpers see it. */
const DUMMY: SyncookieSock = {
  protocol: 0,
  state: TCP_STATE.CLOSE,
  family: AF.INET,
  ipv6Only: false,
};

Deno.test("bpf_sk_assign: flags, ingress, netns, reuseport, refcount, then skb->sk", () => {
  const sk = (more: Partial<SkAssignSock> = {}): SkAssignSock => ({
    netns: 1,
    fullsock: true,
    reuseport: false,
    refcounted: true,
    refcnt: 1,
    ...more,
  });
  const skb = (atTcIngress: boolean): SkAssignSkb => ({
    atTcIngress,
    netns: 1,
    sk: undefined,
    destructor: "none",
  });
  // flags before the ingress test: every bit counts
  assert.equal(skAssign(skb(false), sk(), 1n << 63n), EINVAL);
  assert.equal(skAssign(skb(false), sk(), 0n), EOPNOTSUPP);
  assert.equal(skAssign(skb(true), sk({ netns: 2 }), 0n), ENETUNREACH);
  assert.equal(
    skAssign(skb(true), sk({ reuseport: true }), 0n),
    ESOCKTNOSUPPORT,
  );
  // a request socket with sk_reuseport bits is not tested for them
  const req = sk({ fullsock: false, reuseport: true });
  const s1 = skb(true);
  assert.equal(skAssign(s1, req, 0n), 0);
  assert.equal(req.refcnt, 2);
  assert.equal(skAssign(skb(true), sk({ refcnt: 0 }), 0n), ENOENT);
  // SOCK_RCU_FREE: no reference taken, even at refcount 0
  const rcu = sk({ refcounted: false, refcnt: 0 });
  assert.equal(skAssign(s1, rcu, 0n), 0);
  assert.equal(rcu.refcnt, 0);
  // skb_orphan() ran sock_pfree on the socket assigned before
  assert.equal(req.refcnt, 1);
  assert.equal(s1.sk, rcu);
  assert.equal(s1.destructor, "sock_pfree");
  // a failed call leaves skb->sk alone
  const s2 = skb(false);
  assert.equal(skAssign(s2, sk(), 0n), EOPNOTSUPP);
  assert.equal(s2.sk, undefined);
  assert.equal(s2.destructor, "none");
});

Deno.test("bpf_tcp_check_syncookie: the kernel's checks in order", () => {
  const ns = 5e9;
  const ackTh = tcp(ACK, 0, 12345);
  // th_len first, then the socket: the dummy socket is -EINVAL on anything
  assert.equal(
    tcpCheckSyncookie(DUMMY, IPV4, ackTh.subarray(0, 19), ns),
    EINVAL,
  );
  assert.equal(tcpCheckSyncookie(DUMMY, IPV4, ackTh, ns), EINVAL);
  assert.equal(
    tcpCheckSyncookie(DUMMY, IPV4.subarray(0, 8), tcp(RST), ns),
    EINVAL,
  );
  // TCP_NEW_SYN_RECV is no listener here
  const reqsk = { ...listener(AF.INET), state: TCP_STATE.NEW_SYN_RECV };
  assert.equal(tcpCheckSyncookie(reqsk, IPV4, ackTh, ns), EINVAL);
  assert.equal(
    tcpCheckSyncookie(listener(AF.INET, 0), IPV4, ackTh, ns),
    EINVAL,
  );
  // header flags before iph_len: not an ACK, or RST / SYN with it
  for (const flags of [0, SYN, ACK | RST, ACK | SYN]) {
    const th = tcp(flags);
    assert.equal(
      tcpCheckSyncookie(listener(AF.INET), IPV4.subarray(0, 8), th, ns),
      ENOENT,
    );
  }
  assert.equal(
    tcpCheckSyncookie(listener(AF.INET), IPV4.subarray(0, 8), ackTh, ns),
    EINVAL,
  );
  const quiet = listener(AF.INET);
  quiet.listener!.noRecentOverflow = true;
  assert.equal(tcpCheckSyncookie(quiet, IPV4, ackTh, ns), ENOENT);
  // the IP version switch
  const v5 = IPV4.slice();
  v5[0] = 0x55;
  assert.equal(
    tcpCheckSyncookie(listener(AF.INET), v5, ackTh, ns),
    EPROTONOSUPPORT,
  );
  const v6only = listener(AF.INET6, 1, { ipv6Only: true });
  assert.equal(tcpCheckSyncookie(v6only, IPV4, ackTh, ns), EINVAL);
  assert.equal(tcpCheckSyncookie(listener(AF.INET), IPV6, ackTh, ns), EINVAL);
  assert.equal(
    tcpCheckSyncookie(listener(AF.INET6), IPV6.subarray(0, 20), ackTh, ns),
    EINVAL,
  );
  // a wrong cookie
  assert.equal(tcpCheckSyncookie(listener(AF.INET), IPV4, ackTh, ns), ENOENT);
});

Deno.test("bpf_tcp_gen_syncookie: checks, then a cookie the check accepts", async (t) => {
  const ns = 7e9;
  await t.step("argument and socket checks", () => {
    const synTh = tcp(SYN, 1400);
    assert.equal(tcpGenSyncookie(DUMMY, IPV4, synTh, ns), BigInt(EINVAL));
    assert.equal(
      tcpGenSyncookie(listener(AF.INET), IPV4, synTh.subarray(0, 20), ns),
      BigInt(EINVAL),
    );
    assert.equal(
      tcpGenSyncookie(listener(AF.INET, 0), IPV4, synTh, ns),
      BigInt(ENOENT),
    );
    for (const flags of [ACK, SYN | ACK, SYN | FIN, SYN | RST]) {
      assert.equal(
        tcpGenSyncookie(listener(AF.INET), IPV4, tcp(flags), ns),
        BigInt(EINVAL),
      );
    }
    assert.equal(
      tcpGenSyncookie(listener(AF.INET6), IPV6.subarray(0, 39), synTh, ns),
      BigInt(EINVAL),
    );
    // sysctl 1 and a SYN queue with room: no flood, no cookie
    assert.equal(
      tcpGenSyncookie(listener(AF.INET), IPV4, synTh, ns),
      BigInt(ENOENT),
    );
    const full = listener(AF.INET, 2);
    (full.listener as { acceptqFull: boolean }).acceptqFull = true;
    assert.equal(tcpGenSyncookie(full, IPV4, synTh, ns), BigInt(ENOENT));
  });
  await t.step(
    "sysctl 2: MSS 1400 encodes as msstab's 1300, and checks",
    () => {
      const sk = listener(AF.INET, 2);
      sk.listener!.noRecentOverflow = true;
      const synTh = tcp(SYN, 1400);
      const g = tcpGenSyncookie(sk, IPV4, synTh, ns);
      assert.equal(g >> 32n, 1300n);
      assert.equal(g, rawGenSyncookie(0, IPV4, synTh, ns));
      // tcp_synq_overflow(): the listener now expects cookies
      assert.equal(sk.listener!.noRecentOverflow, false);
      const cookie = Number(g & 0xffffffffn);
      const ackTh = tcp(ACK, 0, (cookie + 1) >>> 0);
      new DataView(ackTh.buffer).setUint32(4, 1001);
      assert.equal(tcpCheckSyncookie(sk, IPV4, ackTh, ns), 0);
      new DataView(ackTh.buffer).setUint16(0, 40001);
      assert.equal(tcpCheckSyncookie(sk, IPV4, ackTh, ns), ENOENT);
    },
  );
  await t.step("IPv6 with a full SYN queue: 9000 encodes as 8940", () => {
    const sk = listener(AF.INET6, 1, {});
    (sk.listener as { reqskQueueFull: boolean }).reqskQueueFull = true;
    assert.equal(tcpGenSyncookie(sk, IPV6, tcp(SYN, 9000), ns) >> 32n, 8940n);
    assert.equal(tcpGenSyncookie(sk, IPV6, tcp(SYN), ns) >> 32n, 1220n);
  });
});

Deno.test("the dummy skb->sk through skbHelpers", () => {
  const space = new AddressSpace();
  const frame = new Uint8Array(64);
  frame.set([0x08, 0x00], 12);
  frame.set(IPV4, 14);
  const skb = new SkbContext(space, frame, { isL2: true });
  const helpers = skbHelpers(skb);
  const env = { mem: space, now: () => 0, owner: undefined };
  const buf = space.mapRegion("kernel", 128, { name: "headers" });
  space.writeBytes(buf, IPV4);
  space.writeBytes(buf + 64n, tcp(SYN, 1400));
  const sk = skb.sock.address;
  const call = (id: number, args: bigint[]) =>
    callHelper(helpers, id, args, env);
  assert.equal(
    call(SOCK_TCP_HELPER.sk_assign, [skb.address, sk, 0n]),
    BigInt(EOPNOTSUPP),
  );
  assert.equal(
    call(SOCK_TCP_HELPER.sk_assign, [skb.address, sk, 4n]),
    BigInt(EINVAL),
  );
  for (
    const id of [
      SOCK_TCP_HELPER.tcp_gen_syncookie,
      SOCK_TCP_HELPER.tcp_check_syncookie,
    ]
  ) {
    assert.equal(call(id, [sk, buf, 20n, buf + 64n, 24n]), BigInt(EINVAL));
  }
  assert.throws(
    () =>
      call(SOCK_TCP_HELPER.tcp_gen_syncookie, [buf, buf, 20n, buf + 64n, 24n]),
    ExecError,
  );
});

/** The retvals sk_tcp.c states beside each program. */
const EXPECTED: Record<string, number> = {
  tc_sk_assign: 0x5f5f5f16,
  tc_sk_assign_flags: 0x16161616,
  tc_check_syncookie: 0x16161616,
  tc_check_syncookie_v6: 0x16161616,
  tc_gen_syncookie: 0x16161616,
  tc_gen_syncookie_v6: 0x116,
};

Deno.test("sk_tcp.o on IPv4 and IPv6 frames agrees with the 6.18 kernel", async (t) => {
  const dir = new URL("../../fixtures/runtime/sock/", import.meta.url);
  const object = loadObject(
    await Deno.readFile(new URL("sk_tcp.o", dir)),
    "sk_tcp.o",
  );
  const runs =
    (await Deno.readTextFile(new URL("sk_tcp.oracle-data-run.json", dir)))
      .split("\n").filter((l) => l.trim()).map((l) =>
        JSON.parse(l) as {
          program: string;
          retval: number;
          data_in_hex: string;
        }
      );
  assert.equal(runs.length, 12);
  for (const run of runs) {
    const v6 = run.data_in_hex.slice(24, 28) === "86dd";
    // the recorded run is the one the fixture's comment expects, on any frame
    assert.equal(run.retval, EXPECTED[run.program]);
    for (const engine of ENGINES) {
      await t.step(`${run.program} ${v6 ? "IPv6" : "IPv4"} ${engine}`, () => {
        const loaded = loadObjectWithRuntime(new Kernel(), object);
        const result = testRun(loaded, run.program, {
          data: hex(run.data_in_hex),
          engine,
        });
        assert.equal(result.retval, run.retval);
      });
    }
  }
});
