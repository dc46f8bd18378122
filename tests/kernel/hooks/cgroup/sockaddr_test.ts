// cgroup sock_addr programs rewriting the user's address on simulated
// sockets (lib/kernel/hooks/cgroup/sock_addr.ts, sock_addr_ctx.ts); bpf_bind() is in
// sockaddr_bind_test.ts. The kernel cannot test-run cgroup_sock_addr, so
// the fixtures (tests/fixtures/runtime/sockaddr/) carry only the oracle's
// verdicts (checked here against bpfsim's verifier); every run result is
// hand-derived from the 6.18 source, the function cited beside it:
// __cgroup_bpf_run_filter_sock_addr() / bpf_prog_run_array_cg()
// (kernel/bpf/cgroup.c) and sock_addr_convert_ctx_access() with
// convert_ctx_accesses()' narrow-load shifts (net/core/filter.c,
// kernel/bpf/verifier.c).
import assert from "node:assert/strict";
import { ENGINES } from "../../../../lib/exec/jit/step_jit.ts";
import {
  BIND,
  unboundSock,
} from "../../../../lib/kernel/hooks/cgroup/inet_bind.ts";
import { AF } from "../../../../lib/kernel/net/packet_sock.ts";
import { runSockAddrProgram } from "../../../../lib/kernel/hooks/cgroup/sock_addr.ts";
import {
  formatIp6,
  parseIp6,
} from "../../../../lib/kernel/hooks/cgroup/sock_addr_ctx.ts";
import { TestRunError } from "../../../../lib/kernel/test_run.ts";
import { EACCES, EINVAL, EPERM } from "../../../../lib/uapi/errno.ts";
import { verifyObject } from "../../../../lib/verifier/verify.ts";
import {
  le32,
  load,
  objectOf,
  request,
  runner,
  SOCKADDR_DIR,
  state,
  v4,
  v6,
} from "./sockaddr_env.ts";

Deno.test("sockaddr.o and rejects.o: bpfsim's verdicts are the 6.18 kernel's", () => {
  for (const [name, accepted] of [["sockaddr", 11], ["rejects", 0]] as const) {
    const recorded = Deno.readTextFileSync(
      new URL(`${name}.oracle.json`, SOCKADDR_DIR),
    )
      .trim().split("\n").map((l) => JSON.parse(l));
    const ours = verifyObject(objectOf(name));
    assert.equal(ours.length, recorded.length, name);
    for (const r of recorded) {
      const mine = ours.find((v) => v.program === r.program);
      assert.ok(mine !== undefined, r.program);
      assert.equal(mine.verdict, r.verdict, r.program);
    }
    const n = recorded.filter((r) => r.verdict === "accept").length;
    assert.equal(n, accepted, name);
  }
});

for (const engine of ENGINES) {
  Deno.test(`connect4: the destination rewritten, a denial is -EPERM (${engine})`, () => {
    const loaded = load();
    const run = runner(loaded, engine);
    const sk = unboundSock(loaded.kernel.space, AF.INET);
    request(loaded, {});
    const r = run("connect4_rewrite", { socket: sk, addr: v4("10.0.0.1", 80) });
    assert.equal(r.r0, 1n);
    assert.equal(r.retval, 0);
    assert.deepEqual(r.addr, v4("127.0.0.1", 8080));
    assert.equal(r.addrLen, 16);
    // user_family (the sockaddr's), family, type, protocol (the socket's)
    assert.deepEqual(state(loaded).info.slice(0, 4), [AF.INET, AF.INET, 1, 6]);
    // another destination is left alone
    const other = run("connect4_rewrite", {
      socket: sk,
      addr: v4("10.0.0.2", 80),
    });
    assert.deepEqual(other.addr, v4("10.0.0.2", 80));
    // port 23: verdict 0, retval 0 is no error yet -> -EPERM
    const denied = run("connect4_rewrite", {
      socket: sk,
      addr: v4("10.0.0.1", 23),
    });
    assert.equal(denied.r0, 0n);
    assert.equal(denied.retval, -EPERM);
    assert.deepEqual(denied.addr, v4("10.0.0.1", 23));
    // the ctx is unmapped after each run
    const live = loaded.kernel.space.regions.filter((g) =>
      g.live && g.name === "bpf_sock_addr"
    );
    assert.equal(live.length, 0);
  });

  Deno.test(`connect4: narrow loads of user_ip4 and user_port (${engine})`, () => {
    const loaded = load();
    const sk = unboundSock(loaded.kernel.space, AF.INET);
    request(loaded, {});
    runner(loaded, engine)("connect4_narrow", {
      socket: sk,
      addr: v4("10.1.2.3", 0x1234),
    });
    // sin_port holds 12 34; a u16 load of it is 0x3412. The u16 at 26 is
    // the 2-byte sin_port load unshifted (target size 2 = access size);
    // bytes 26/27 shift the 16-bit value by 16/24 bits: 0.
    assert.deepEqual(state(loaded).info.slice(0, 6), [
      10,
      0x0302,
      0x12,
      0x34,
      0x3412,
      0,
    ]);
  });

  Deno.test(`connect6: 8-byte loads and stores of user_ip6 (${engine})`, () => {
    const loaded = load();
    const sk = unboundSock(loaded.kernel.space, AF.INET6);
    request(loaded, {});
    const r = runner(loaded, engine)("connect6_rewrite", {
      socket: sk,
      addr: v6("2001:db8::7", 443),
    });
    assert.equal(r.retval, 0);
    assert.deepEqual(r.addr, v6("::1", 8443));
    assert.equal(r.addrLen, 28);
    assert.deepEqual(state(loaded).info.slice(0, 2), [
      le32(0x20, 0x01, 0x0d, 0xb8),
      le32(0, 0, 0, 7),
    ]);
  });

  // sendmsg hooks run for UDP sockets, which bpfsim does not model; the
  // context's t_ctx (the message's source address) does not depend on the
  // socket, so an unbound TCP socket stands in.
  Deno.test(`sendmsg4/6: destination and source rewritten (${engine})`, () => {
    const loaded = load();
    const run = runner(loaded, engine);
    const sk = unboundSock(loaded.kernel.space, AF.INET);
    request(loaded, {});
    const dns = run("sendmsg4_rewrite", {
      socket: sk,
      addr: v4("10.0.0.1", 53),
      msgSrc: "10.20.30.40",
    });
    assert.deepEqual(dns.addr, v4("127.0.0.1", 5353));
    assert.equal(dns.msgSrc, "127.0.0.1");
    // msg_src_ip4 whole, then its byte 1 (offset 41)
    assert.deepEqual(state(loaded).info.slice(0, 2), [
      le32(10, 20, 30, 40),
      20,
    ]);
    const web = run("sendmsg4_rewrite", {
      socket: sk,
      addr: v4("10.0.0.1", 80),
      msgSrc: "10.20.30.40",
    });
    assert.deepEqual([web.addr, web.msgSrc], [
      v4("10.0.0.1", 80),
      "10.20.30.40",
    ]);
    const sk6 = unboundSock(loaded.kernel.space, AF.INET6);
    const six = run("sendmsg6_src", {
      socket: sk6,
      addr: v6("2001:db8::1", 53),
      msgSrc: "2001:db8::9",
    });
    assert.equal(six.msgSrc, "::1");
    assert.deepEqual(six.addr, v6("2001:db8::1", 53));
    assert.equal(state(loaded).info[0], le32(0, 0, 0, 9));
    // a connect hook has no t_ctx
    const conn = run("connect4_rewrite", { socket: sk, addr: v4("10.0.0.2") });
    assert.equal(conn.msgSrc, undefined);
  });

  Deno.test(`bpf_set_retval / bpf_get_retval and the verdict (${engine})`, () => {
    const loaded = load();
    const run = runner(loaded, engine);
    const sk = unboundSock(loaded.kernel.space, AF.INET);
    const cases: [number, number, number][] = [
      // [retval set, verdict, hook's result] (bpf_prog_run_array_cg())
      [-EACCES, 1, -EACCES],
      [-EACCES, 0, -EACCES],
      [0, 0, -EPERM],
      [5, 0, -EPERM], // not an errno: overwritten
      [5, 1, 5],
      [-4096, 0, -EPERM], // below -MAX_ERRNO: not an errno either
    ];
    for (const [retval, verdict, want] of cases) {
      request(loaded, { retval, verdict });
      const r = run("connect4_setret", { socket: sk, addr: v4("10.0.0.1") });
      assert.equal(r.retval, want, `${retval}/${verdict}`);
      assert.equal(state(loaded).gotRetval, retval);
    }
  });

  Deno.test(`bpf_setsockopt / bpf_getsockopt on the hook's socket (${engine})`, () => {
    const loaded = load();
    const sk = unboundSock(loaded.kernel.space, AF.INET);
    request(loaded, {});
    runner(loaded, engine)("connect4_sockopt", {
      socket: sk,
      addr: v4("10.0.0.1", 80),
    });
    const s = state(loaded);
    assert.deepEqual(s.optRet, [0, 0]);
    assert.equal(s.info[0], 0x77);
    assert.equal(sk.mark, 0x77);
  });

  Deno.test(`bind4: a rewritten port, BIND_NO_CAP_NET_BIND_SERVICE (${engine})`, () => {
    const loaded = load();
    const run = runner(loaded, engine);
    const sk = unboundSock(loaded.kernel.space, AF.INET);
    const moved = run("bind4_rewrite", {
      socket: sk,
      addr: v4("0.0.0.0", 111),
    });
    assert.deepEqual([moved.r0, moved.retval, moved.flags], [1n, 0, 0]);
    assert.equal(moved.addr.port, 4040);
    // r0 3: allowed (bit 0) with flag bit 1 -> BIND_NO_CAP_NET_BIND_SERVICE
    const ssh = run("bind4_rewrite", { socket: sk, addr: v4("0.0.0.0", 22) });
    assert.deepEqual([ssh.r0, ssh.retval, ssh.flags], [3n, 0, 1]);
    assert.equal(ssh.bindFlags, BIND.NO_CAP_NET_BIND_SERVICE);
    const dns = run("bind4_rewrite", { socket: sk, addr: v4("0.0.0.0", 53) });
    assert.deepEqual([dns.r0, dns.flags, dns.addr.port], [1n, 0, 53]);
  });
}

Deno.test("the hook runs only for inet and unix sockets, and only where the program attaches", () => {
  const loaded = load();
  // AF_PACKET (17): __cgroup_bpf_run_filter_sock_addr() returns 0 at once
  const packet = unboundSock(loaded.kernel.space, 17);
  const r = runSockAddrProgram(loaded, "connect4_rewrite", {
    socket: packet,
    addr: v4("10.0.0.1", 23),
  });
  assert.deepEqual([r.ran, r.retval, r.addr.port], [false, 0, 23]);
  assert.throws(
    () =>
      runSockAddrProgram(loaded, "connect4_rewrite", {
        socket: unboundSock(loaded.kernel.space, AF.INET),
        addr: v4("10.0.0.1"),
        attachType: "cgroup_inet6_connect",
      }),
    (e) => e instanceof TestRunError && e.errno === EINVAL,
  );
});

Deno.test("IPv6 text round-trips through parseIp6 / formatIp6 (RFC 5952)", () => {
  for (
    const text of [
      "::",
      "::1",
      "2001:db8::7",
      "fe80::1:0:0:2",
      "2001:db8:0:1:1:1:1:1",
      "::ffff:127.0.0.1",
      "1::",
    ]
  ) {
    assert.equal(formatIp6(parseIp6(text)), text);
  }
  // the longer zero run is compressed; a single zero word is not
  assert.equal(formatIp6(parseIp6("1:0:0:2:0:0:0:3")), "1:0:0:2::3");
  assert.throws(() => parseIp6("1::2::3"), RangeError);
  assert.throws(() => parseIp6("1:2:3"), RangeError);
});
