/**
 * tcp_congestion_ops struct_ops programs (tests/fixtures/runtime/struct_ops/
 * tcp_ca.c) run with runStructOpsProgram() on both engines, and
 * bpf_tcp_send_ack. The object is loaded to verify, so the programs run
 * as bpfsim's verifier accepted and rewrote them (its verdicts agree with
 * the 6.18 kernel's, tests/verifier/struct_ops_test.ts); sim_release, which
 * the kernel rejects, is refused, and runs (and faults) only when loaded
 * unverified. struct_ops programs cannot be test-run: every expectation is
 * computed by hand from the kernel function named beside it.
 */
import assert from "node:assert/strict";
import { loadObject } from "../../../../lib/elf/object.ts";
import { ExecError, MemoryFault } from "../../../../lib/exec/fault.ts";
import type { Engine } from "../../../../lib/exec/jit/step_jit.ts";
import { Kernel } from "../../../../lib/kernel/kernel.ts";
import type { LoadedObject } from "../../../../lib/kernel/object_loader.ts";
import { loadObjectWithRuntime } from "../../../../lib/kernel/object_runtime.ts";
import {
  SimTcpSock,
  TCP_STATES,
} from "../../../../lib/kernel/hooks/sock/sock_ops_sock.ts";
import {
  runStructOpsProgram,
  TCP_CONGESTION_OPS_PROTOS,
} from "../../../../lib/kernel/hooks/sock/struct_ops.ts";
import {
  TCP_CA_HELPER,
  TCP_SOCK_LAYOUT,
  tcpCaHelpers,
  tcpCaWritableEnd,
  tcpSockView,
} from "../../../../lib/kernel/hooks/sock/tcp_ca.ts";
import { TestRunError } from "../../../../lib/kernel/test_run.ts";
import { ProgramRejectedError } from "../../../../lib/kernel/load_verify.ts";
import { callHelper } from "../../helper_call.ts";

const ENGINES: readonly Engine[] = ["interp", "jit"];
const EINVAL = 22, ENOTSUPP = 524;
/** tcp_ca.c's icsk_ca_priv words. */
const PRIV = {
  init: 0,
  ackRet: 1,
  ack: 2,
  acked: 3,
  state: 4,
  event: 5,
  pkts: 6,
  rtt: 7,
  ctrlAck: 8,
  ctrlFlag: 9,
} as const;
const L = TCP_SOCK_LAYOUT;

/** tcp_ca.o, loaded to verify its programs before they run (unless `verify` is false). */
function load(verify = true): LoadedObject {
  const url = new URL(
    "../../../fixtures/runtime/struct_ops/tcp_ca.o",
    import.meta.url,
  );
  return loadObjectWithRuntime(
    new Kernel({ cpus: 1 }),
    loadObject(Deno.readFileSync(url), "tcp_ca.o"),
    { verify },
  );
}

/** An established connection: rcv_nxt 1000, cwnd 10, clamp 15. */
function established(loaded: LoadedObject): SimTcpSock {
  return new SimTcpSock(loaded.kernel.space, {
    state: TCP_STATES.ESTABLISHED,
    rcvNxt: 1000,
    sndCwnd: 10,
    sndCwndClamp: 15,
  });
}

/** Word `i` of the socket's icsk_ca_priv. */
function priv(loaded: LoadedObject, sock: SimTcpSock, i: number): bigint {
  const bytes = tcpSockView(loaded.kernel.space, sock).caPriv();
  return new DataView(bytes.buffer).getBigUint64(8 * i, true);
}

Deno.test("struct_ops tcp_congestion_ops programs", async (t) => {
  for (const engine of ENGINES) {
    await t.step(
      `${engine}: init() keeps its state in icsk_ca_priv, cwnd in the socket`,
      () => {
        const loaded = load();
        const sk = established(loaded);
        const r = runStructOpsProgram(loaded, "sim_init", "init", [sk], {
          engine,
        });
        assert.equal(r.ret, undefined); // void member
        assert.equal(priv(loaded, sk, PRIV.init), 0x1717n);
        assert.equal(sk.sndCwnd, 4);
      },
    );

    await t.step(
      `${engine}: ssthresh() returns the u32 the caller gets`,
      () => {
        const loaded = load();
        const sk = established(loaded);
        const ssthresh = (cwnd: number) => {
          sk.sndCwnd = cwnd;
          return runStructOpsProgram(loaded, "sim_ssthresh", "ssthresh", [sk], {
            engine,
          }).ret;
        };
        assert.equal(ssthresh(10), 5); // max(cwnd >> 1, 2)
        assert.equal(ssthresh(3), 2);
        assert.equal(ssthresh(0xfffffffe), 0x7fffffff);
      },
    );

    await t.step(
      `${engine}: cong_avoid() sends an ACK of rcv_nxt - 1 and grows cwnd`,
      () => {
        const loaded = load();
        const sk = established(loaded);
        const view = tcpSockView(loaded.kernel.space, sk);
        // a delayed ACK is scheduled with its timer (ICSK_ACK_SCHED | ICSK_ACK_TIMER)
        view.poke(L.icsk_ack_pending, 1, 3n);
        // ack as the caller's register held it: the program reads its u32
        const r = runStructOpsProgram(
          loaded,
          "sim_cong_avoid",
          "cong_avoid",
          [sk, 0x1_0000_0fa0n, 3],
          { engine },
        );
        assert.equal(r.ret, undefined);
        // bpf_tcp_send_ack() returns 0; __tcp_send_ack() sent ack_seq 999
        assert.equal(priv(loaded, sk, PRIV.ackRet), 0n);
        assert.deepEqual(sk.acksSent, [{ rcvNxt: 999 }]);
        assert.equal(priv(loaded, sk, PRIV.ack), 0xfa0n);
        assert.equal(priv(loaded, sk, PRIV.acked), 3n);
        assert.equal(sk.sndCwnd, 13); // 10 + 3, under the clamp
        // __tcp_transmit_skb(): one more segment out; tcp_select_window():
        // rcv_wup is tp->rcv_nxt (1000), not the ACK's 999
        assert.equal(sk.segsOut, 1);
        assert.equal(view.read(L.rcv_wup, 4), 1000n);
        // tcp_event_ack_sent(): 999 != tp->rcv_nxt, the delayed ACK stays
        assert.equal(view.read(L.icsk_ack_pending, 1), 3n);
        // a second call: 13 + 5 is clamped to snd_cwnd_clamp (15)
        runStructOpsProgram(
          loaded,
          "sim_cong_avoid",
          "cong_avoid",
          [sk, 1, 5],
          { engine },
        );
        assert.equal(sk.sndCwnd, 15);
        assert.deepEqual(sk.acksSent, [{ rcvNxt: 999 }, { rcvNxt: 999 }]);
        assert.equal(sk.segsOut, 2);
      },
    );

    await t.step(
      `${engine}: cwnd_event() ACKs tp->rcv_nxt: the delayed ACK is cleared`,
      () => {
        const loaded = load();
        const sk = established(loaded);
        const view = tcpSockView(loaded.kernel.space, sk);
        view.poke(L.icsk_ack_pending, 1, 3n); // SCHED | TIMER
        view.poke(L.icsk_ack_quick, 1, 2n);
        view.poke(L.icsk_ack_retry, 1, 1n);
        view.poke(L.icsk_ack_ato, 1, 40n);
        // CA_EVENT_COMPLETE_CWR (2)
        runStructOpsProgram(loaded, "sim_cwnd_event", "cwnd_event", [sk, 2], {
          engine,
        });
        assert.equal(priv(loaded, sk, PRIV.event), 2n);
        assert.deepEqual(sk.acksSent, [{ rcvNxt: 1000 }]);
        // tcp_dec_quickack_mode(): one scheduled ACK, quick 2 -> 1;
        // inet_csk_clear_xmit_timer(ICSK_TIME_DACK): pending and retry 0
        assert.equal(view.read(L.icsk_ack_quick, 1), 1n);
        assert.equal(view.read(L.icsk_ack_pending, 1), 0n);
        assert.equal(view.read(L.icsk_ack_retry, 1), 0n);
        assert.equal(view.read(L.icsk_ack_ato, 1), 40n);
        // nothing scheduled now: no ACK counts, quick stays 1
        runStructOpsProgram(loaded, "sim_cwnd_event", "cwnd_event", [sk, 2], {
          engine,
        });
        assert.equal(view.read(L.icsk_ack_quick, 1), 1n);
        // scheduled again: the count reaches quick, quickack mode ends and
        // ato deflates to TCP_ATO_MIN (HZ / 25 = 10 jiffies at HZ 250)
        view.poke(L.icsk_ack_pending, 1, 1n);
        runStructOpsProgram(loaded, "sim_cwnd_event", "cwnd_event", [sk, 2], {
          engine,
        });
        assert.equal(view.read(L.icsk_ack_quick, 1), 0n);
        assert.equal(view.read(L.icsk_ack_ato, 1), 10n);
        assert.equal(sk.acksSent.length, 3);
        assert.equal(sk.segsOut, 3);
      },
    );

    await t.step(
      `${engine}: a closed socket sends no ACK, and the helper still returns 0`,
      () => {
        const loaded = load();
        const sk = established(loaded);
        sk.state = TCP_STATES.CLOSE; // __tcp_send_ack(): "we may not send again"
        runStructOpsProgram(
          loaded,
          "sim_cong_avoid",
          "cong_avoid",
          [sk, 1, 1],
          { engine },
        );
        assert.equal(priv(loaded, sk, PRIV.ackRet), 0n);
        assert.deepEqual(sk.acksSent, []);
        assert.equal(sk.segsOut, 0);
        assert.equal(sk.sndCwnd, 11);
      },
    );

    await t.step(
      `${engine}: set_state(), pkts_acked(), cong_control(): arguments in u64 slots`,
      () => {
        const loaded = load();
        const sk = established(loaded);
        // a u8 argument's register with other bits set: the program reads its u8
        runStructOpsProgram(
          loaded,
          "sim_set_state",
          "set_state",
          [sk, 0x304n],
          { engine },
        );
        assert.equal(priv(loaded, sk, PRIV.state), 4n);
        // struct ack_sample { u32 pkts_acked; s32 rtt_us; u32 in_flight; }
        const sample = new Uint8Array(12);
        const sv = new DataView(sample.buffer);
        sv.setUint32(0, 7, true);
        sv.setInt32(4, -1, true);
        sv.setUint32(8, 9, true);
        runStructOpsProgram(loaded, "sim_pkts_acked", "pkts_acked", [
          sk,
          sample,
        ], { engine });
        assert.equal(priv(loaded, sk, PRIV.pkts), 7n);
        assert.equal(priv(loaded, sk, PRIV.rtt), 0xffffffffffffffffn); // sign-extended
        // cong_control(sk, ack, int flag = -2, rs)
        runStructOpsProgram(
          loaded,
          "sim_cong_control",
          "cong_control",
          [sk, 0x12345678, 0xfffffffen, new Uint8Array(72)],
          { engine },
        );
        assert.equal(priv(loaded, sk, PRIV.ctrlAck), 0x12345678n);
        assert.equal(priv(loaded, sk, PRIV.ctrlFlag), 0xfffffffffffffffen);
        assert.equal(sk.sndSsthresh, 10); // snd_ssthresh = snd_cwnd
        // undo_cwnd() returns snd_cwnd
        sk.sndCwnd = 77;
        const r = runStructOpsProgram(loaded, "sim_undo_cwnd", "undo_cwnd", [
          sk,
        ], { engine });
        assert.equal(r.ret, 77);
      },
    );

    await t.step(
      `${engine}: a program the verifier rejects is refused, unverified it faults`,
      () => {
        const verified = load();
        const sk = established(verified);
        assert.throws(
          () =>
            runStructOpsProgram(verified, "sim_release", "release", [sk], {
              engine,
            }),
          (e: unknown) =>
            e instanceof ProgramRejectedError &&
            e.verifierMessage === "no write support to tcp_sock at off 1936",
        );
        const loaded = load(false);
        const sock = established(loaded);
        // bpf_tcp_ca_btf_struct_access(): snd_cwnd_clamp (1936) is not writable
        assert.throws(
          () =>
            runStructOpsProgram(loaded, "sim_release", "release", [sock], {
              engine,
            }),
          (e: unknown) => e instanceof MemoryFault && e.insnIndex === 2,
        );
        assert.equal(sock.sndCwndClamp, 15);
      },
    );
  }
});

Deno.test("struct_ops runner refuses what the kernel would not call", () => {
  const loaded = load();
  const sk = established(loaded);
  const errno = (f: () => unknown) => {
    try {
      f();
    } catch (e) {
      assert.ok(e instanceof TestRunError, String(e));
      return e.errno;
    }
    throw new Error("no error");
  };
  // bpf_tcp_ca_check_member(): get_info is unsupported
  assert.equal(
    errno(() =>
      runStructOpsProgram(loaded, "sim_init", "get_info", [sk, 0, 0, 0])
    ),
    ENOTSUPP,
  );
  // sim_init is the init member of tcp_ca.c's .struct_ops map
  assert.equal(
    errno(() => runStructOpsProgram(loaded, "sim_init", "release", [sk])),
    EINVAL,
  );
  // cong_avoid takes 3 arguments
  assert.equal(
    errno(() =>
      runStructOpsProgram(loaded, "sim_cong_avoid", "cong_avoid", [sk])
    ),
    EINVAL,
  );
  // the socket argument must be a socket, a struct pointer its bytes
  assert.equal(
    errno(() => runStructOpsProgram(loaded, "sim_init", "init", [5])),
    EINVAL,
  );
  assert.equal(
    errno(() =>
      runStructOpsProgram(loaded, "sim_pkts_acked", "pkts_acked", [
        sk,
        new Uint8Array(4),
      ])
    ),
    EINVAL,
  );
});

Deno.test("tcp_congestion_ops prototypes are the 6.18 members'", () => {
  const counts = Object.fromEntries(
    Object.entries(TCP_CONGESTION_OPS_PROTOS).map((
      [m, p],
    ) => [m, p.args.length]),
  );
  // include/net/tcp.h (6.18): cong_control gained ack and flag
  assert.deepEqual(counts, {
    ssthresh: 1,
    cong_avoid: 3,
    set_state: 2,
    cwnd_event: 2,
    in_ack_event: 2,
    pkts_acked: 2,
    min_tso_segs: 1,
    cong_control: 4,
    undo_cwnd: 1,
    sndbuf_expand: 1,
    get_info: 4,
    init: 1,
    release: 1,
  });
});

Deno.test("bpf_tcp_ca_btf_struct_access() write rule", () => {
  assert.equal(tcpCaWritableEnd(1444), 1448); // snd_cwnd
  assert.equal(tcpCaWritableEnd(1445), undefined); // not from its start
  assert.equal(tcpCaWritableEnd(1296 + 100), 1400); // icsk_ca_priv is a range
  assert.equal(tcpCaWritableEnd(488), 496); // sk_pacing_rate
  assert.equal(tcpCaWritableEnd(1936), undefined); // snd_cwnd_clamp
});

Deno.test("bpf_tcp_send_ack refuses a pointer that is not the call's tcp_sock", () => {
  const loaded = load();
  const space = loaded.kernel.space;
  const view = tcpSockView(space, established(loaded));
  const helpers = tcpCaHelpers([view]);
  const env = { mem: space, now: () => 0, owner: {} };
  assert.equal(
    callHelper(helpers, TCP_CA_HELPER.tcp_send_ack, [view.address, 1000n], env),
    0n,
  );
  assert.deepEqual(view.sock.acksSent, [{ rcvNxt: 1000 }]);
  assert.throws(
    () =>
      callHelper(
        helpers,
        TCP_CA_HELPER.tcp_send_ack,
        [view.address + 8n, 1n],
        env,
      ),
    ExecError,
  );
  view.release();
});

Deno.test("struct tcp_sock view: the socket's fields at their 6.18 offsets", () => {
  const loaded = load();
  const sk = established(loaded);
  sk.daddr.set([10, 0, 0, 2]);
  sk.pacingRate = 0x1122334455667788n;
  const view = tcpSockView(loaded.kernel.space, sk);
  assert.equal(view.load(1444, 4), 10n); // snd_cwnd
  assert.equal(view.load(1664, 4), 1000n); // rcv_nxt
  assert.equal(view.load(1936, 4), 15n); // snd_cwnd_clamp
  assert.equal(view.load(18, 1), BigInt(TCP_STATES.ESTABLISHED)); // skc_state
  assert.equal(view.load(0, 4), 0x0200000an); // skc_daddr, network order
  assert.equal(view.load(488, 8), 0x1122334455667788n); // sk_pacing_rate
  assert.equal(view.load(489, 1), 0x77n); // a byte of it
  assert.equal(view.load(2300, 8), undefined); // past sizeof(struct tcp_sock)
  // stores reach the socket: snd_ssthresh, a u64 sk_pacing_rate
  assert.equal(view.store(1492, 4, 33n), true);
  assert.equal(sk.sndSsthresh, 33);
  assert.equal(view.store(488, 8, 5n), true);
  assert.equal(sk.pacingRate, 5n);
  // a refused store changes nothing
  assert.equal(view.store(1664, 4, 1n), false); // rcv_nxt
  assert.equal(view.store(1492, 8, 1n), false); // past snd_ssthresh
  assert.equal(sk.rcvNxt, 1000);
  assert.equal(sk.sndSsthresh, 33);
  // the same socket has the same view (its icsk_ca_priv survives calls)
  assert.equal(tcpSockView(loaded.kernel.space, sk), view);
});
