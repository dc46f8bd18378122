// sock_ops programs reading their ctx, setting their callback flags and
// keeping state across callbacks of one simulated socket
// (lib/kernel/hooks/sock/sock_ops.ts, sock_ops_ctx.ts). Results are hand-derived from
// the 6.18 source (net/core/filter.c: sock_ops_convert_ctx_access(),
// bpf_sock_ops_cb_flags_set(); include/net/tcp.h: tcp_call_bpf()).
import assert from "node:assert/strict";
import { ENGINES } from "../../../../lib/exec/jit/step_jit.ts";
import { SOCK_OPS } from "../../../../lib/kernel/hooks/sock/sock_ops_ctx.ts";
import type { SockOpsRun } from "../../../../lib/kernel/hooks/sock/sock_ops.ts";
import {
  SimTcpSock,
  TCP_STATES,
} from "../../../../lib/kernel/hooks/sock/sock_ops_sock.ts";
import { SO, SOL } from "../../../../lib/kernel/hooks/sock/sock_options.ts";
import { AF } from "../../../../lib/kernel/net/packet_sock.ts";
import { EOPNOTSUPP } from "../../../../lib/uapi/errno.ts";
import { established, loadSockOps, runOn } from "./sockops_env.ts";

for (const engine of ENGINES) {
  Deno.test(`sock_ops cb flags and ctx fields on ${engine}`, async (t) => {
    const loaded = loadSockOps();
    await t.step("unsupported bits come back", () => {
      const sk = established(loaded);
      const r = runOn(loaded, engine, "cb_flags", {
        op: SOCK_OPS.PASSIVE_ESTABLISHED_CB,
        socket: sk,
        args: [0x17f],
      });
      assert.equal(r.reply, 0x100);
      assert.equal(sk.bpfSockOpsCbFlags, 0x7f);
      assert.equal(sk.txhash, 0x7f); // the ctx field reads the new flags
    });

    await t.step("fields of a full and of a request socket", () => {
      const sk = established(loaded, { srttUs: 8000 });
      const field = (
        s: SimTcpSock,
        which: number,
        extra: Partial<SockOpsRun> = {},
      ) =>
        runOn(loaded, engine, "fields", {
          op: SOCK_OPS.RTT_CB,
          socket: s,
          args: [which, 77],
          ...extra,
        }).reply >>> 0;
      assert.equal(field(sk, 0), 10); // TCP_INIT_CWND
      assert.equal(field(sk, 1), 8000);
      assert.equal(field(sk, 2), 8080); // host order
      assert.equal(field(sk, 3), 0xbb010000); // __be16 443 << 16
      assert.equal(field(sk, 4), 1);
      assert.equal(field(sk, 5), TCP_STATES.ESTABLISHED);
      assert.equal(field(sk, 6), AF.INET);
      assert.equal(field(sk, 7), 1448);
      assert.equal(field(sk, 8), 0x0100007f);
      assert.equal(field(sk, 9), 0xbb01); // bpf_sock.dst_port through ctx->sk
      assert.equal(field(sk, 10), 0); // no skb
      const skb = { bytes: new Uint8Array(20), len: 1500, tcpFlags: 0x12 };
      assert.equal(field(sk, 10, { skb }), 1500);
      assert.equal(field(sk, 11, { skb }), 0x12);
      assert.equal(field(sk, 12), 77); // args[1]
      const req = established(loaded, { state: TCP_STATES.NEW_SYN_RECV });
      assert.equal(field(req, 0), 0); // tcp_sock fields need a full socket
      assert.equal(field(req, 4), 0);
      assert.equal(field(req, 5), TCP_STATES.NEW_SYN_RECV);
      assert.equal(field(req, 9), 0xdead); // ctx->sk is NULL
    });

    await t.step("a timestamping callback: full, but not locked", () => {
      // bpf_skops_tx_timestamping() sets is_fullsock, not is_locked_tcp_sock
      const sk = established(loaded, { txhash: 3 });
      const at = (which: number) =>
        runOn(loaded, engine, "fields", {
          op: SOCK_OPS.TSTAMP_SND_SW_CB,
          socket: sk,
          args: [which],
        }).reply >>> 0;
      assert.equal(at(0), 0); // snd_cwnd: SOCK_OPS_GET_FIELD tests the lock
      assert.equal(at(4), 1); // is_fullsock
      assert.equal(at(9), 0xbb01); // ctx->sk: SOCK_OPS_GET_SK tests is_fullsock
      const w = runOn(loaded, engine, "get_int", {
        op: SOCK_OPS.TSTAMP_SND_SW_CB,
        socket: sk,
        args: [SOL.SOCKET, SO.MARK],
      });
      assert.equal(w.reply, -EOPNOTSUPP);
      assert.equal(sk.txhash, 3); // the sk_txhash store is skipped
    });

    await t.step("a connection through its callbacks", () => {
      const sk = new SimTcpSock(loaded.kernel.space, {
        state: TCP_STATES.SYN_SENT,
        num: 40000,
      });
      const step = (op: number) =>
        runOn(loaded, engine, "lifecycle", { op, socket: sk });
      const connect = step(SOCK_OPS.TCP_CONNECT_CB);
      assert.deepEqual([connect.reply, connect.hookResult], [0, 0]);
      assert.equal(sk.sndCwnd, 40);
      sk.state = TCP_STATES.ESTABLISHED;
      assert.equal(step(SOCK_OPS.ACTIVE_ESTABLISHED_CB).reply, 0);
      assert.equal(sk.bpfSockOpsCbFlags, 0x0c); // RTT | STATE
      sk.srttUs = 8 * 250;
      assert.equal(step(SOCK_OPS.RTT_CB).reply, 250);
      assert.equal(step(SOCK_OPS.RTT_CB).reply, 250);
      assert.equal(sk.txhash, 2);
      sk.state = TCP_STATES.FIN_WAIT1;
      assert.equal(step(SOCK_OPS.STATE_CB).reply, 0);
      assert.equal(sk.bpfSockOpsCbFlags, 0);
      assert.equal(step(SOCK_OPS.NEEDS_ECN).hookResult, -1); // reply -1
    });

    await t.step("sk storage lives with the socket across callbacks", () => {
      // bpf_sk_storage_get(F_CREATE) on ctx->sk: one element per socket,
      // freed only when the socket is (bpf_sk_storage_free())
      const sk = established(loaded);
      const other = established(loaded, { num: 8081 });
      const count = (s: SimTcpSock) =>
        runOn(loaded, engine, "count_calls", {
          op: SOCK_OPS.RTT_CB,
          socket: s,
        }).reply;
      assert.equal(count(sk), 1);
      assert.equal(count(sk), 2);
      assert.equal(count(other), 1);
      assert.equal(count(sk), 3);
      const req = established(loaded, { state: TCP_STATES.NEW_SYN_RECV });
      assert.equal(count(req), -1); // ctx->sk is NULL for a request sock
      sk.close();
      other.close();
    });

    await t.step("socket and netns cookies", () => {
      // __sock_gen_cookie(): a fresh host hands out 1, 2, … and a socket
      // keeps its first; the one simulated netns has NETNS_COOKIE (1)
      const a = established(loaded), b = established(loaded);
      const cookie = (s: SimTcpSock) =>
        runOn(loaded, engine, "cookies", { op: SOCK_OPS.RTT_CB, socket: s })
          .reply;
      assert.equal(cookie(a), 1);
      assert.equal(cookie(b), 2);
      assert.equal(cookie(a), 1);
      assert.equal(a.txhash, 1);
    });

    await t.step("a program returning 0: tcp_call_bpf() gives -1", () => {
      const r = runOn(loaded, engine, "deny", {
        op: SOCK_OPS.TIMEOUT_INIT,
        socket: established(loaded),
      });
      assert.deepEqual([r.r0, r.reply, r.hookResult], [0n, 5, -1]);
    });
  });
}
