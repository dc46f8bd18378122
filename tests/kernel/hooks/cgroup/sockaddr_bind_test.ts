// bpf_bind() from cgroup connect4/connect6 programs on simulated sockets
// (lib/kernel/hooks/cgroup/sock_addr.ts, inet_bind.ts). The kernel cannot test-run
// cgroup_sock_addr: every result is hand-derived from the 6.18 source, the
// function cited beside it: bpf_bind() (net/core/filter.c), __inet_bind()
// (net/ipv4/af_inet.c), __inet6_bind() (net/ipv6/af_inet6.c),
// inet_csk_get_port() / inet_bind_conflict() / inet_rcv_saddr_equal()
// (net/ipv4/inet_connection_sock.c), on a host whose only addresses are
// lo's 127.0.0.1/8 and ::1. The verdicts of the fixture are checked in
// sockaddr_test.ts.
import assert from "node:assert/strict";
import { ExecError } from "../../../../lib/exec/fault.ts";
import { ENGINES } from "../../../../lib/exec/jit/step_jit.ts";
import {
  EADDRINUSE,
  EADDRNOTAVAIL,
  inetBindTable,
  SOCK_BINDADDR_LOCK,
  SOCK_BINDPORT_LOCK,
  unboundSock,
} from "../../../../lib/kernel/hooks/cgroup/inet_bind.ts";
import { AF } from "../../../../lib/kernel/net/packet_sock.ts";
import {
  encodeSockAddr,
  formatIp6,
} from "../../../../lib/kernel/hooks/cgroup/sock_addr_ctx.ts";
import {
  type SimTcpSock,
  TCP_STATES,
} from "../../../../lib/kernel/hooks/sock/sock_ops_sock.ts";
import {
  EACCES,
  EAFNOSUPPORT,
  EINVAL,
  ENODEV,
} from "../../../../lib/uapi/errno.ts";
import { le32, load, request, runner, state, v4, v6 } from "./sockaddr_env.ts";

for (const engine of ENGINES) {
  Deno.test(`bpf_bind on an IPv4 socket (${engine})`, async (t) => {
    const loaded = load();
    const run = runner(loaded, engine);
    const table = inetBindTable(loaded.kernel);
    const space = loaded.kernel.space;
    /** bpf_bind(sa, len) from connect4_bind on `sk`: [ret, info[0], info[1]]. */
    const bind = (sk: SimTcpSock, sa: Uint8Array, len = sa.length) => {
      request(loaded, { addr: sa, len });
      const r = run("connect4_bind", { socket: sk, addr: v4("10.0.0.1", 80) });
      assert.equal(r.retval, 0); // the program always allows
      const s = state(loaded);
      return [s.bindRet, s.info[0], s.info[1]];
    };
    await t.step(
      "127.0.0.1 port 0: the address, no port (BIND_FORCE_ADDRESS_NO_PORT)",
      () => {
        const sk = unboundSock(space, AF.INET);
        const lo = le32(127, 0, 0, 1);
        assert.deepEqual(bind(sk, encodeSockAddr(v4("127.0.0.1"))), [0, lo, 0]);
        assert.equal(sk.num, 0);
        assert.deepEqual([...sk.saddr], [127, 0, 0, 1]);
        assert.equal(sk.userlocks, SOCK_BINDADDR_LOCK);
        assert.equal(table.owners.has(sk), false);
      },
    );
    await t.step("127.0.0.1:4321: the port taken (inet_csk_get_port)", () => {
      const sk = unboundSock(space, AF.INET);
      const sa = encodeSockAddr(v4("127.0.0.1", 4321));
      assert.deepEqual(bind(sk, sa), [0, le32(127, 0, 0, 1), 4321]);
      assert.equal(sk.userlocks, SOCK_BINDADDR_LOCK | SOCK_BINDPORT_LOCK);
      assert.equal(table.owners.has(sk), true);
      // bound already (inet_num set): -EINVAL, nothing changes
      const again = encodeSockAddr(v4("127.0.0.2", 4322));
      assert.equal(bind(sk, again)[0], -EINVAL);
      assert.equal(sk.num, 4321);
    });
    await t.step(
      "a non-local address: -EADDRNOTAVAIL, unless IP_FREEBIND",
      () => {
        const sk = unboundSock(space, AF.INET);
        const sa = encodeSockAddr(v4("192.0.2.1"));
        assert.deepEqual(bind(sk, sa), [-EADDRNOTAVAIL, 0, 0]);
        sk.freebind = true;
        assert.deepEqual(bind(sk, sa), [0, le32(192, 0, 2, 1), 0]);
      },
    );
    await t.step("lo's broadcast: bound, with no transmit source", () => {
      const sk = unboundSock(space, AF.INET);
      const sa = encodeSockAddr(v4("127.255.255.255"));
      assert.equal(bind(sk, sa)[0], 0);
      assert.deepEqual([...sk.rcvSaddr], [127, 255, 255, 255]);
      assert.deepEqual([...sk.saddr], [0, 0, 0, 0]);
    });
    await t.step(
      "a port another socket holds: -EADDRINUSE, the address undone",
      () => {
        const holder = unboundSock(space, AF.INET, {
          state: TCP_STATES.LISTEN,
        });
        holder.num = 5000;
        table.hash(holder);
        const sk = unboundSock(space, AF.INET);
        const sa = encodeSockAddr(v4("127.0.0.1", 5000));
        assert.deepEqual(bind(sk, sa), [-EADDRINUSE, 0, 0]);
        assert.deepEqual([...sk.saddr], [0, 0, 0, 0]);
        // SO_REUSEADDR on both does not share with a listener …
        holder.reuse = sk.reuse = 1;
        assert.equal(bind(sk, sa)[0], -EADDRINUSE);
        // … but does with a connected socket
        holder.state = TCP_STATES.ESTABLISHED;
        assert.deepEqual(bind(sk, sa), [0, le32(127, 0, 0, 1), 5000]);
        // another port of the same address is free
        const sk2 = unboundSock(space, AF.INET);
        assert.equal(bind(sk2, encodeSockAddr(v4("127.0.0.1", 5001)))[0], 0);
      },
    );
    await t.step(
      "SO_REUSEPORT on both (same uid) shares a listener's port",
      () => {
        const holder = unboundSock(space, AF.INET, {
          state: TCP_STATES.LISTEN,
          reuseport: 1,
        });
        holder.num = 5100;
        table.hash(holder);
        const sk = unboundSock(space, AF.INET);
        const sa = encodeSockAddr(v4("127.0.0.1", 5100));
        assert.equal(bind(sk, sa)[0], -EADDRINUSE);
        sk.reuseport = 1;
        assert.equal(bind(sk, sa)[0], 0);
      },
    );
    await t.step(
      "short addr_len, another family: -EINVAL, -EAFNOSUPPORT",
      () => {
        const sk = unboundSock(space, AF.INET);
        const sa = encodeSockAddr(v4("127.0.0.1"));
        assert.equal(bind(sk, sa, 15)[0], -EINVAL); // < sizeof(sockaddr_in)
        assert.equal(bind(sk, sa, 1)[0], -EINVAL); // < offsetofend(sa_family)
        const unix = encodeSockAddr({ family: AF.UNIX });
        assert.equal(bind(sk, unix)[0], -EAFNOSUPPORT);
        assert.equal(sk.rcvSaddr.every((b) => b === 0), true);
      },
    );
    await t.step("a privileged port needs CAP_NET_BIND_SERVICE", () => {
      const sk = unboundSock(space, AF.INET);
      request(loaded, { addr: encodeSockAddr(v4("127.0.0.1", 80)) });
      run("connect4_bind", {
        socket: sk,
        addr: v4("10.0.0.1", 80),
        task: { capNetBindService: false },
      });
      assert.equal(state(loaded).bindRet, -EACCES);
      run("connect4_bind", { socket: sk, addr: v4("10.0.0.1", 80) });
      assert.equal(state(loaded).bindRet, 0);
      assert.equal(sk.num, 80);
    });
    await t.step("a connected socket cannot be bound: -EINVAL", () => {
      const sk = unboundSock(space, AF.INET, {
        state: TCP_STATES.ESTABLISHED,
      });
      assert.equal(bind(sk, encodeSockAddr(v4("127.0.0.1")))[0], -EINVAL);
    });
    await t.step("an IPv6 address on an IPv4 socket is not modelled", () => {
      const sk = unboundSock(space, AF.INET);
      request(loaded, { addr: encodeSockAddr(v6("::1")) });
      assert.throws(
        () => run("connect4_bind", { socket: sk, addr: v4("10.0.0.1", 80) }),
        ExecError,
      );
    });
  });

  Deno.test(`bpf_bind on an IPv6 socket (${engine})`, async (t) => {
    const loaded = load();
    const run = runner(loaded, engine);
    const table = inetBindTable(loaded.kernel);
    const space = loaded.kernel.space;
    const bind = (sk: SimTcpSock, sa: Uint8Array, len = sa.length) => {
      request(loaded, { addr: sa, len });
      run("connect6_bind", { socket: sk, addr: v6("2001:db8::1", 443) });
      const s = state(loaded);
      return { ret: s.bindRet, ip6: s.info.slice(0, 4), port: s.info[4] };
    };
    await t.step("::1: bound, v6-only, 127.0.0.6 as its IPv4 side", () => {
      const sk = unboundSock(space, AF.INET6);
      const got = bind(sk, encodeSockAddr(v6("::1")));
      assert.deepEqual(got, {
        ret: 0,
        ip6: [0, 0, 0, le32(0, 0, 0, 1)],
        port: 0,
      });
      assert.equal(formatIp6(sk.v6RcvSaddr), "::1");
      assert.deepEqual([...sk.rcvSaddr], [127, 0, 0, 6]);
      assert.equal(sk.ipv6only, true);
      // the destination's last word, read through user_ip6[3]
      assert.equal(state(loaded).info[5], le32(0, 0, 0, 1));
    });
    await t.step("24 bytes (SIN6_LEN_RFC2133) do; 23 do not", () => {
      const sk = unboundSock(space, AF.INET6);
      const sa = encodeSockAddr(v6("::1", 7000));
      assert.equal(bind(sk, sa, 23).ret, -EINVAL);
      assert.deepEqual(bind(sk, sa, 24), {
        ret: 0,
        ip6: [0, 0, 0, le32(0, 0, 0, 1)],
        port: 7000,
      });
    });
    await t.step("a non-local address: -EADDRNOTAVAIL", () => {
      const sk = unboundSock(space, AF.INET6);
      assert.equal(
        bind(sk, encodeSockAddr(v6("2001:db8::5"))).ret,
        -EADDRNOTAVAIL,
      );
      assert.equal(sk.ipv6only, false);
    });
    await t.step(
      "link-local: an interface first, then lo has no such address",
      () => {
        const sk = unboundSock(space, AF.INET6);
        assert.equal(bind(sk, encodeSockAddr(v6("fe80::1"))).ret, -EINVAL);
        assert.equal(
          bind(sk, encodeSockAddr(v6("fe80::1", 0, 7))).ret,
          -ENODEV,
        );
        assert.equal(
          bind(sk, encodeSockAddr(v6("fe80::1", 0, 1))).ret,
          -EADDRNOTAVAIL,
        );
        assert.equal(sk.boundDevIf, 1); // the scope id stays
      },
    );
    await t.step("multicast on a stream socket: -EINVAL", () => {
      const sk = unboundSock(space, AF.INET6);
      assert.equal(bind(sk, encodeSockAddr(v6("ff02::1"))).ret, -EINVAL);
    });
    await t.step("v4-mapped: the IPv4 rules, not v6-only", () => {
      const sk = unboundSock(space, AF.INET6);
      assert.equal(bind(sk, encodeSockAddr(v6("::ffff:127.0.0.1"))).ret, 0);
      assert.deepEqual([...sk.rcvSaddr], [127, 0, 0, 1]);
      assert.equal(sk.ipv6only, false);
      const far = unboundSock(space, AF.INET6);
      const sa = encodeSockAddr(v6("::ffff:192.0.2.1"));
      assert.equal(bind(far, sa).ret, -EADDRNOTAVAIL);
      far.ipv6only = true;
      assert.equal(bind(far, sa).ret, -EINVAL);
    });
    await t.step(
      "an IPv4 wildcard holder conflicts with [::] but not [::1]",
      () => {
        const holder = unboundSock(space, AF.INET, {
          state: TCP_STATES.LISTEN,
        });
        holder.num = 6000;
        table.hash(holder);
        const any = unboundSock(space, AF.INET6);
        assert.equal(
          bind(any, encodeSockAddr(v6("::", 6000))).ret,
          -EADDRINUSE,
        );
        assert.equal(any.num, 0);
        any.ipv6only = true; // IPV6_V6ONLY: no IPv4 side
        assert.equal(bind(any, encodeSockAddr(v6("::", 6000))).ret, 0);
        const one = unboundSock(space, AF.INET6);
        assert.equal(
          bind(one, encodeSockAddr(v6("::1", 6000))).ret,
          -EADDRINUSE,
        );
        const other = unboundSock(space, AF.INET6);
        table.unhash(any);
        assert.equal(bind(other, encodeSockAddr(v6("::1", 6000))).ret, 0);
      },
    );
  });

  Deno.test(`bind failures become the hook's error via bpf_set_retval (${engine})`, () => {
    const loaded = load();
    const run = runner(loaded, engine);
    const space = loaded.kernel.space;
    request(loaded, {});
    const ok = run("connect4_bind_lo", {
      socket: unboundSock(space, AF.INET),
      addr: v4("10.0.0.1", 80),
    });
    assert.deepEqual([ok.r0, ok.retval, state(loaded).bindRet], [1n, 0, 0]);
    assert.deepEqual(ok.bound, { ip: "127.0.0.1", port: 0 });
    const busy = unboundSock(space, AF.INET, { state: TCP_STATES.SYN_SENT });
    const failed = run("connect4_bind_lo", {
      socket: busy,
      addr: v4("10.0.0.1", 80),
    });
    // verdict 0 keeps an error retval (IS_ERR_VALUE): the bind's -EINVAL
    assert.deepEqual([failed.r0, failed.retval], [0n, -EINVAL]);
  });
}
