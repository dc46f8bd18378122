// sock_ops programs setting and reading socket options on a simulated TCP
// socket (lib/kernel/hooks/sock/sock_ops.ts, sock_options.ts, sock_options_tcp.ts).
// The kernel cannot test-run sock_ops, so the fixture
// (tests/fixtures/runtime/sockops/sockops.c) carries only the oracle's
// verdicts (checked here against bpfsim's verifier); every run result is
// hand-derived from the 6.18 source, cited beside it. Where the same code
// runs for a user's setsockopt() (the SO_* clamps, SO_RCVLOWAT, SO_TXREHASH,
// IP_TOS, IPV6_TCLASS, TCP_WINDOW_CLAMP, TCP_MAXSEG, TCP_RTO_MAX_MS'
// default), the expectation was also checked with Python's socket module
// on the oracle's 6.18 host.
import assert from "node:assert/strict";
import { ENGINES } from "../../../../lib/exec/jit/step_jit.ts";
import { SOCK_OPS } from "../../../../lib/kernel/hooks/sock/sock_ops_ctx.ts";
import type { SimTcpSock } from "../../../../lib/kernel/hooks/sock/sock_ops_sock.ts";
import {
  ENOPROTOOPT,
  IP_OPT,
  SO,
  SOL,
  TCP_OPT,
} from "../../../../lib/kernel/hooks/sock/sock_options.ts";
import { AF } from "../../../../lib/kernel/net/packet_sock.ts";
import { TCP_STATES } from "../../../../lib/kernel/hooks/sock/sock_ops_sock.ts";
import {
  EINVAL,
  ENOENT,
  ENOTSUPP,
  EOPNOTSUPP,
} from "../../../../lib/uapi/errno.ts";
import { verifyObject } from "../../../../lib/verifier/verify.ts";
import {
  established,
  loadSockOps,
  runOn,
  SOCKOPS_FIXTURE,
  sockOpsObject,
} from "./sockops_env.ts";

Deno.test("sockops.o: bpfsim's verdicts are the 6.18 kernel's", () => {
  const recorded = Deno.readTextFileSync(
    new URL(SOCKOPS_FIXTURE.href.replace(/\.o$/, ".oracle.json")),
  ).trim().split("\n").map((l) => JSON.parse(l));
  const ours = verifyObject(sockOpsObject);
  assert.equal(recorded.length, ours.length);
  assert.equal(recorded.length, 13);
  for (const r of recorded) {
    const mine = ours.find((v) => v.program === r.program);
    assert.ok(mine !== undefined, r.program);
    assert.equal(mine.verdict, r.verdict, r.program);
    assert.equal(r.verdict, "accept", r.program);
  }
});

for (const engine of ENGINES) {
  Deno.test(`sock_ops options on ${engine}`, async (t) => {
    const loaded = loadSockOps();
    const op = SOCK_OPS.ACTIVE_ESTABLISHED_CB;
    /** bpf_setsockopt(level, opt, val) on `sk`: the helper's return. */
    const set = (sk: SimTcpSock, level: number, opt: number, val: number) =>
      runOn(loaded, engine, "set_int", {
        op,
        socket: sk,
        args: [level, opt, val >>> 0],
      }).reply;
    /** bpf_getsockopt(level, opt): [return, value read] (value via sk_txhash). */
    const get = (sk: SimTcpSock, level: number, opt: number) => {
      const r = runOn(loaded, engine, "get_int", {
        op,
        socket: sk,
        args: [level, opt],
      });
      return [r.reply, sk.txhash | 0];
    };

    await t.step("SO_SNDBUF / SO_RCVBUF: doubled, clamped, floored", () => {
      // sk_setsockopt(): max(min(min_t(u32, val, wmem_max), INT_MAX/2) * 2,
      // SOCK_MIN_SNDBUF 4608 / SOCK_MIN_RCVBUF 2304); wmem_max 4 MiB
      const sk = established(loaded);
      assert.deepEqual(get(sk, SOL.SOCKET, SO.SNDBUF), [0, 16384]); // tcp_wmem[1]
      assert.deepEqual(get(sk, SOL.SOCKET, SO.RCVBUF), [0, 131072]); // tcp_rmem[1]
      const cases: [number, number, number][] = [
        [1000, 4608, 2304],
        [100000, 200000, 200000],
        [1 << 30, 8388608, 8388608],
        [-1, 8388608, 8388608], // min_t(u32, …): -1 is huge
      ];
      for (const [val, snd, rcv] of cases) {
        assert.equal(set(sk, SOL.SOCKET, SO.SNDBUF, val), 0);
        assert.equal(set(sk, SOL.SOCKET, SO.RCVBUF, val), 0);
        assert.deepEqual(get(sk, SOL.SOCKET, SO.SNDBUF), [0, snd], `${val}`);
        assert.deepEqual(get(sk, SOL.SOCKET, SO.RCVBUF), [0, rcv], `${val}`);
      }
      assert.equal(sk.userlocks, 3); // SOCK_SNDBUF_LOCK | SOCK_RCVBUF_LOCK
    });

    await t.step("the other SOL_SOCKET options", () => {
      const sk = established(loaded);
      assert.equal(set(sk, SOL.SOCKET, SO.MARK, 7), 0);
      assert.equal(sk.mark, 7);
      assert.deepEqual(get(sk, SOL.SOCKET, SO.MARK), [0, 7]);
      // a BPF caller is capable: priorities above 6 are allowed
      assert.equal(set(sk, SOL.SOCKET, SO.PRIORITY, 9), 0);
      assert.deepEqual(get(sk, SOL.SOCKET, SO.PRIORITY), [0, 9]);
      // SO_TXREHASH: -1 means the sysctl's (1); 2 is out of [-1, 1]
      assert.equal(set(sk, SOL.SOCKET, SO.TXREHASH, 0), 0);
      assert.equal(set(sk, SOL.SOCKET, SO.TXREHASH, -1), 0);
      assert.deepEqual(get(sk, SOL.SOCKET, SO.TXREHASH), [0, 1]);
      assert.equal(set(sk, SOL.SOCKET, SO.TXREHASH, 2), -EINVAL);
      // no pacing limit reads as ~0U in 4 bytes
      assert.deepEqual(get(sk, SOL.SOCKET, SO.MAX_PACING_RATE), [0, -1]);
      assert.equal(set(sk, SOL.SOCKET, SO.MAX_PACING_RATE, 1000), 0);
      assert.deepEqual(get(sk, SOL.SOCKET, SO.MAX_PACING_RATE), [0, 1000]);
      assert.equal(sk.pacingRate, 1000n); // pulled down to the new limit
      // SO_RCVLOWAT: negative is INT_MAX, capped at tcp_rmem[2] / 2 while
      // the rcvbuf is not locked (tcp_set_rcvlowat()), 0 becomes 1
      assert.equal(set(sk, SOL.SOCKET, SO.RCVLOWAT, -5), 0);
      assert.deepEqual(get(sk, SOL.SOCKET, SO.RCVLOWAT), [0, 16777216]);
      assert.equal(set(sk, SOL.SOCKET, SO.RCVLOWAT, 0), 0);
      assert.deepEqual(get(sk, SOL.SOCKET, SO.RCVLOWAT), [0, 1]);
      assert.equal(set(sk, SOL.SOCKET, SO.RCVBUF, 5000), 0); // now locked
      assert.equal(set(sk, SOL.SOCKET, SO.RCVLOWAT, 1 << 20), 0);
      assert.deepEqual(get(sk, SOL.SOCKET, SO.RCVLOWAT), [0, 5000]);
      const child = established(loaded, { hasSocket: false }); // not accept()ed yet
      assert.equal(set(child, SOL.SOCKET, SO.RCVLOWAT, -5), 0);
      assert.deepEqual(get(child, SOL.SOCKET, SO.RCVLOWAT), [0, 0x7fffffff]);
      assert.equal(set(sk, SOL.SOCKET, SO.KEEPALIVE, 5), 0);
      assert.deepEqual(get(sk, SOL.SOCKET, SO.KEEPALIVE), [0, 1]);
      assert.equal(set(sk, SOL.SOCKET, SO.REUSEADDR, 3), 0);
      assert.deepEqual(get(sk, SOL.SOCKET, SO.REUSEADDR), [0, 1]);
      assert.equal(set(sk, SOL.SOCKET, SO.BINDTOIFINDEX, 3), 0);
      assert.deepEqual(get(sk, SOL.SOCKET, SO.BINDTOIFINDEX), [0, 3]);
      assert.equal(set(sk, SOL.SOCKET, SO.BINDTOIFINDEX, -1), -EINVAL);
      // SO_BINDTODEVICE cannot be read (sol_socket_sockopt())
      assert.deepEqual(get(sk, SOL.SOCKET, SO.BINDTODEVICE), [-EINVAL, 0]);
      // SK_BPF_CB_FLAGS: only SK_BPF_CB_TX_TIMESTAMPING (1) exists
      assert.equal(set(sk, SOL.SOCKET, SO.SK_BPF_CB_FLAGS, 2), -EINVAL);
      assert.equal(set(sk, SOL.SOCKET, SO.SK_BPF_CB_FLAGS, 1), 0);
      assert.deepEqual(get(sk, SOL.SOCKET, SO.SK_BPF_CB_FLAGS), [0, 1]);
    });

    await t.step("SOL_TCP options: ranges and read-back", () => {
      const sk = established(loaded);
      assert.equal(set(sk, SOL.TCP, TCP_OPT.NODELAY, 7), 0);
      assert.deepEqual(get(sk, SOL.TCP, TCP_OPT.NODELAY), [0, 1]);
      // tcp_sock_set_maxseg(): 0 or [TCP_MIN_MSS 88, MAX_TCP_WINDOW 32767]
      assert.equal(set(sk, SOL.TCP, TCP_OPT.MAXSEG, 50), -EINVAL);
      assert.equal(set(sk, SOL.TCP, TCP_OPT.MAXSEG, 1000), 0);
      // an established socket reports mss_cache, not the user's MSS
      assert.deepEqual(get(sk, SOL.TCP, TCP_OPT.MAXSEG), [0, 1448]);
      // the sysctl defaults until set: 7200 s, 75 s, 9, 6
      assert.deepEqual(get(sk, SOL.TCP, TCP_OPT.KEEPIDLE), [0, 7200]);
      assert.deepEqual(get(sk, SOL.TCP, TCP_OPT.KEEPINTVL), [0, 75]);
      assert.deepEqual(get(sk, SOL.TCP, TCP_OPT.KEEPCNT), [0, 9]);
      assert.deepEqual(get(sk, SOL.TCP, TCP_OPT.SYNCNT), [0, 6]);
      assert.equal(set(sk, SOL.TCP, TCP_OPT.KEEPIDLE, 0), -EINVAL);
      assert.equal(set(sk, SOL.TCP, TCP_OPT.KEEPIDLE, 32768), -EINVAL);
      assert.equal(set(sk, SOL.TCP, TCP_OPT.KEEPIDLE, 60), 0);
      assert.deepEqual(get(sk, SOL.TCP, TCP_OPT.KEEPIDLE), [0, 60]);
      assert.equal(set(sk, SOL.TCP, TCP_OPT.KEEPCNT, 128), -EINVAL);
      assert.equal(set(sk, SOL.TCP, TCP_OPT.SYNCNT, 127), 0);
      assert.deepEqual(get(sk, SOL.TCP, TCP_OPT.SYNCNT), [0, 127]);
      // tcp_set_window_clamp(): at least SOCK_MIN_RCVBUF / 2; 0 only when closed
      assert.equal(set(sk, SOL.TCP, TCP_OPT.WINDOW_CLAMP, 5), 0);
      assert.deepEqual(get(sk, SOL.TCP, TCP_OPT.WINDOW_CLAMP), [0, 1152]);
      assert.equal(set(sk, SOL.TCP, TCP_OPT.WINDOW_CLAMP, 0), -EINVAL);
      assert.equal(set(sk, SOL.TCP, TCP_OPT.THIN_LINEAR_TIMEOUTS, 2), -EINVAL);
      assert.equal(set(sk, SOL.TCP, TCP_OPT.SAVE_SYN, 3), -EINVAL);
      assert.equal(set(sk, SOL.TCP, TCP_OPT.USER_TIMEOUT, -1), -EINVAL);
      // TCP_RTO_MAX_MS: [1000, 120000] ms, kept in jiffies (HZ 250: 4 ms)
      assert.deepEqual(get(sk, SOL.TCP, TCP_OPT.RTO_MAX_MS), [0, 120000]);
      assert.equal(set(sk, SOL.TCP, TCP_OPT.RTO_MAX_MS, 999), -EINVAL);
      assert.equal(set(sk, SOL.TCP, TCP_OPT.RTO_MAX_MS, 1001), 0);
      assert.deepEqual(get(sk, SOL.TCP, TCP_OPT.RTO_MAX_MS), [0, 1004]);
      // TCP_SAVED_SYN cannot be set: do_tcp_setsockopt() does not know it
      assert.equal(set(sk, SOL.TCP, TCP_OPT.SAVED_SYN, 1), -ENOPROTOOPT);
    });

    await t.step("TCP_BPF_* options (bpf_sol_tcp_setsockopt())", () => {
      const sk = established(loaded);
      assert.equal(set(sk, SOL.TCP, TCP_OPT.BPF_IW, 0), -EINVAL);
      assert.equal(set(sk, SOL.TCP, TCP_OPT.BPF_IW, 40), 0);
      assert.equal(sk.sndCwnd, 40);
      // once data went out beyond the SYN's, the initial window is gone
      sk.dataSegsOut = 3;
      assert.equal(set(sk, SOL.TCP, TCP_OPT.BPF_IW, 20), -EINVAL);
      assert.equal(set(sk, SOL.TCP, TCP_OPT.BPF_SNDCWND_CLAMP, 30), 0);
      assert.equal(sk.sndCwndClamp, 30);
      assert.equal(sk.sndSsthresh, 30);
      // usecs_to_jiffies() (HZ 250) must land in [TCP_TIMEOUT_MIN 2, HZ/5 50]
      assert.equal(set(sk, SOL.TCP, TCP_OPT.BPF_RTO_MIN, 4000), -EINVAL);
      assert.equal(set(sk, SOL.TCP, TCP_OPT.BPF_RTO_MIN, 4001), 0);
      assert.deepEqual(get(sk, SOL.TCP, TCP_OPT.BPF_RTO_MIN), [0, 8000]);
      assert.equal(set(sk, SOL.TCP, TCP_OPT.BPF_DELACK_MAX, 200001), -EINVAL);
      assert.deepEqual(get(sk, SOL.TCP, TCP_OPT.BPF_DELACK_MAX), [0, 200000]);
      assert.equal(
        set(sk, SOL.TCP, TCP_OPT.BPF_SOCK_OPS_CB_FLAGS, 0x80),
        -EINVAL,
      );
      assert.equal(set(sk, SOL.TCP, TCP_OPT.BPF_SOCK_OPS_CB_FLAGS, 0x11), 0);
      assert.deepEqual(get(sk, SOL.TCP, TCP_OPT.BPF_SOCK_OPS_CB_FLAGS), [
        0,
        0x11,
      ]);
      // TCP_BPF_IW cannot be read: -EINVAL and the buffer zeroed
      assert.deepEqual(get(sk, SOL.TCP, TCP_OPT.BPF_IW), [-EINVAL, 0]);
    });

    await t.step("IP_TOS and IPV6_TCLASS keep the ECN bits", () => {
      const v4 = established(loaded);
      assert.equal(set(v4, SOL.IP, IP_OPT.TOS, 0xff), 0);
      assert.deepEqual(get(v4, SOL.IP, IP_OPT.TOS), [0, 0xfc]);
      assert.equal(v4.priority, 4); // rt_tos2priority(0xfc)
      assert.equal(set(v4, SOL.IPV6, IP_OPT.IPV6_TCLASS, 1), -EINVAL); // not AF_INET6
      const v6 = established(loaded, { family: AF.INET6 });
      assert.equal(set(v6, SOL.IP, IP_OPT.TOS, 0x10), -EINVAL); // not AF_INET
      assert.equal(set(v6, SOL.IPV6, IP_OPT.IPV6_TCLASS, 256), -EINVAL);
      assert.equal(set(v6, SOL.IPV6, IP_OPT.IPV6_TCLASS, 0xff), 0);
      assert.deepEqual(get(v6, SOL.IPV6, IP_OPT.IPV6_TCLASS), [0, 0xfc]);
      assert.equal(set(v6, SOL.IPV6, IP_OPT.IPV6_TCLASS, -1), 0);
      assert.deepEqual(get(v6, SOL.IPV6, IP_OPT.IPV6_TCLASS), [0, 0]);
      assert.deepEqual(get(v6, SOL.IPV6, IP_OPT.IPV6_AUTOFLOWLABEL), [0, 1]);
    });

    await t.step("bad level, option, optlen; zeroed on error", () => {
      const sk = established(loaded);
      assert.equal(set(sk, 99, 1, 1), -EINVAL);
      assert.deepEqual(get(sk, 99, 1), [-EINVAL, 0]);
      assert.equal(set(sk, SOL.SOCKET, 1, /* SO_DEBUG */ 1), -EINVAL);
      assert.equal(set(sk, SOL.TCP, 999, 1), -EINVAL);
      // optlen 2 for an int option; the 8-byte get comes back all zero
      const r = runOn(loaded, engine, "bad_optlen", {
        op,
        socket: sk,
        args: [SOL.SOCKET, SO.MARK],
      });
      assert.equal(r.reply, -EINVAL);
      assert.equal(sk.txhash | 0, -EINVAL);
      const tos = runOn(loaded, engine, "bad_optlen", {
        op,
        socket: sk,
        args: [SOL.IP, IP_OPT.TOS],
      });
      assert.equal(tos.reply, -EINVAL);
      assert.equal(sk.txhash | 0, -EINVAL);
    });

    await t.step("outside the locked callbacks: -EOPNOTSUPP", () => {
      const sk = established(loaded);
      for (const prog of ["set_int", "get_int", "cb_flags"]) {
        const r = runOn(loaded, engine, prog, {
          op: SOCK_OPS.TSTAMP_SCHED_CB,
          socket: sk,
          args: [SOL.SOCKET, SO.MARK, 1],
        });
        assert.equal(r.reply, -EOPNOTSUPP, prog);
      }
      assert.equal(sk.mark, 0);
    });

    await t.step("a request socket is not full: -EINVAL, no sk_txhash", () => {
      const req = established(loaded, {
        state: TCP_STATES.NEW_SYN_RECV,
        txhash: 9,
      });
      assert.equal(set(req, SOL.SOCKET, SO.MARK, 1), -EINVAL);
      const r = runOn(loaded, engine, "get_int", {
        op: SOCK_OPS.TIMEOUT_INIT,
        socket: req,
        args: [SOL.SOCKET, SO.MARK],
      });
      assert.equal(r.reply, -EINVAL);
      assert.equal(req.txhash, 9); // the store is skipped on a request sock
      const cb = runOn(loaded, engine, "cb_flags", {
        op: SOCK_OPS.TIMEOUT_INIT,
        socket: req,
        args: [1],
      });
      assert.equal(cb.reply, -EINVAL);
    });

    await t.step("TCP_CONGESTION: cubic and reno exist", () => {
      const sk = established(loaded);
      const cc = (which: number) =>
        runOn(loaded, engine, "congestion", {
          op,
          socket: sk,
          args: [which],
        }).reply;
      const name4 = () => new TextDecoder().decode(u32Bytes(sk.txhash));
      assert.equal(cc(0), 0);
      assert.equal(sk.congestion, "reno");
      assert.equal(name4(), "reno");
      assert.equal(cc(2), -ENOENT); // bbr: not registered here
      assert.equal(name4(), "reno");
      assert.equal(cc(3), -ENOTSUPP); // cdg: refused by name
      assert.equal(cc(1), 0);
      assert.equal(name4(), "cubi");
    });
  });
}

function u32Bytes(v: number): Uint8Array {
  return Uint8Array.of(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24);
}
