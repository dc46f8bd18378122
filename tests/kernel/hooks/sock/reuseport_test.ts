// sk_reuseport programs and bpf_sk_select_reuseport() (lib/kernel/
// sk_reuseport.ts, sk_reuseport_ctx.ts, sk_reuseport_group.ts) over
// tests/fixtures/runtime/reuseport/select.c, on both engines. The kernel
// cannot test-run this type: the fixture's verdicts are the 6.18 kernel's
// (select.oracle.json, checked here against bpfsim's verifier); every run
// is worked out by hand from net/core/filter.c (sk_select_reuseport(),
// bpf_run_sk_reuseport(), sk_reuseport_convert_ctx_access() with
// convert_ctx_accesses()'s narrow loads, ____bpf_skb_load_bytes(),
// ____bpf_skb_load_bytes_relative()) and net/core/sock_reuseport.c
// (reuseport_select_sock(), reuseport_select_sock_by_hash(),
// reuseport_migrate_sock(), reuseport_stop_listen_sock()).
import assert from "node:assert/strict";
import { ENGINES } from "../../../../lib/exec/jit/step_jit.ts";
import type { Engine } from "../../../../lib/exec/jit/step_jit.ts";
import { u32Key } from "../../../../lib/kernel/maps/map.ts";
import { MsgSock } from "../../../../lib/kernel/hooks/sock/sk_msg_ctx.ts";
import {
  runSkReuseportProgram,
  type SkReuseportInput,
  type SkReuseportRunResult,
} from "../../../../lib/kernel/hooks/sock/sk_reuseport.ts";
import {
  IPPROTO,
  ReuseportSock,
} from "../../../../lib/kernel/hooks/sock/sk_reuseport_group.ts";
import { TestRunError } from "../../../../lib/kernel/test_run.ts";
import { verifyObject } from "../../../../lib/verifier/mod.ts";
import {
  loadReuseportFixture,
  makeGroup,
  type ReuseportEnv,
  udpFrame,
} from "./reuseport_env.ts";

const ENOENT = -2, EINVAL = -22, EFAULT = -14;
const EBADFD = -77, EPROTOTYPE = -91, EAFNOSUPPORT = -97;
const AF_INET6 = 10, TCP_ESTABLISHED = 1, TCP_NEW_SYN_RECV = 12;
/** Hashes and where reciprocal_scale(hash, 4) = (hash * 4) >> 32 puts them. */
const H0 = 0x12345678; // % 4 = 0, scaled 0
const H3 = 0xdeadbeef; // % 4 = 3, scaled 3

/** A group of 4 UDP sockets; rs_array[i] holds socks[3 - i]. */
function fourSockets(env: ReuseportEnv, bindInany = false) {
  const g = makeGroup(env, 1, 4, {}, bindInany);
  g.socks.forEach((_, i) =>
    assert.equal(env.array.updateSock(u32Key(i), g.socks[3 - i], 0), 0)
  );
  return g;
}

function run(
  env: ReuseportEnv,
  name: string,
  input: SkReuseportInput,
  engine: Engine,
  key = 0,
  flags = 0n,
): SkReuseportRunResult {
  env.globals.set("arg_key", key);
  env.globals.set("arg_flags", flags);
  env.globals.set("sel_ret", 0);
  return runSkReuseportProgram(env.loaded, name, input, { engine });
}

Deno.test("bpfsim's verdicts on select.o are the 6.18 kernel's", () => {
  const url = new URL(
    "../../../fixtures/runtime/reuseport/select.oracle.json",
    import.meta.url,
  );
  const want = Deno.readTextFileSync(url).trim().split("\n").map((l) =>
    JSON.parse(l)
  );
  const { loaded } = loadReuseportFixture();
  const got = new Map(
    verifyObject(loaded.object).map((r) => [r.program, r]),
  );
  for (const w of want) {
    const g = got.get(w.program)!;
    assert.equal(g.verdict, w.verdict, w.program);
    assert.equal(g.errno, w.errno, w.program);
    if (w.verdict === "reject") assert.match(g.message, new RegExp(w.message));
  }
});

for (const engine of ENGINES) {
  Deno.test(`select by the hash-indexed key (${engine})`, () => {
    const env = loadReuseportFixture();
    const { group, socks } = fourSockets(env);
    const packet = udpFrame(4);
    // key = hash % 4; rs_array[0] = socks[3], where the hash alone picks socks[0]
    let r = run(env, "select_by_hash", { group, packet, hash: H0 }, engine);
    assert.equal(env.globals.signed("sel_ret"), 0);
    assert.equal(r.retval, 1);
    assert.equal(r.verdict, "selected");
    assert.equal(r.selected, socks[3]);
    r = run(env, "select_by_hash", { group, packet, hash: H3 }, engine);
    assert.equal(r.selected, socks[0]); // rs_array[3]; the hash alone: socks[3]
    assert.equal(r.programSelected, socks[0]);
  });

  Deno.test(`an empty slot is -ENOENT: the hash chooses, or the program drops (${engine})`, () => {
    const env = loadReuseportFixture();
    const { group, socks } = fourSockets(env);
    const input = { group, packet: udpFrame(4), hash: H3 };
    assert.equal(env.array.deleteFromSyscall(u32Key(2)), 0);
    let r = run(env, "select_arg", input, engine, 2);
    assert.equal(env.globals.signed("sel_ret"), ENOENT);
    assert.equal(r.verdict, "hash"); // SK_PASS, selected_sk NULL
    assert.equal(r.programSelected, undefined);
    assert.equal(r.selected, socks[3]); // reciprocal_scale(0xdeadbeef, 4) = 3
    run(env, "select_arg", input, engine, 9); // past max_entries: NULL too
    assert.equal(env.globals.signed("sel_ret"), ENOENT);
    r = run(env, "select_or_drop", input, engine, 2);
    assert.equal(r.retval, 0);
    assert.equal(r.verdict, "refused");
    assert.equal(r.selected, undefined);
    // a socket leaving its group leaves its slot (bpf_sk_reuseport_detach())
    group.detach(socks[2]); // rs_array[1]
    run(env, "select_arg", input, engine, 1);
    assert.equal(env.globals.signed("sel_ret"), ENOENT);
  });

  Deno.test(`a socket of another group: -EBADFD, -EPROTOTYPE, -EAFNOSUPPORT (${engine})`, () => {
    const env = loadReuseportFixture();
    const { group, socks } = makeGroup(env, 1, 2);
    const other = [
      makeGroup(env, 2, 1, { localIp4: new Uint8Array([10, 0, 0, 1]) }),
      makeGroup(env, 3, 1, { protocol: IPPROTO.TCP }),
      makeGroup(env, 4, 1, { family: AF_INET6 }),
      makeGroup(env, 5, 1, { protocol: IPPROTO.TCP, family: AF_INET6 }),
    ];
    other.forEach((g, i) =>
      assert.equal(env.array.updateSock(u32Key(i), g.socks[0], 0), 0)
    );
    const input = { group, packet: udpFrame(4), hash: H0 };
    // protocol compared first, then family, then the catch-all
    const want = [EBADFD, EPROTOTYPE, EAFNOSUPPORT, EPROTOTYPE];
    want.forEach((errno, key) => {
      const r = run(env, "select_arg", input, engine, key);
      assert.equal(env.globals.signed("sel_ret"), errno, `key ${key}`);
      assert.equal(r.verdict, "hash");
      assert.equal(r.selected, socks[0]); // reciprocal_scale(H0, 2) = 0
    });
    // the same reuseport_id is the same group, whatever the group object
    const twin = makeGroup(env, 1, 1);
    assert.equal(env.array.deleteFromSyscall(u32Key(0)), 0);
    assert.equal(env.array.updateSock(u32Key(0), twin.socks[0], 0), 0);
    const r = run(env, "select_arg", input, engine, 0);
    assert.equal(env.globals.signed("sel_ret"), 0);
    assert.equal(r.selected, twin.socks[0]);
  });

  Deno.test(`flags are not looked at by sk_select_reuseport() (${engine})`, () => {
    const env = loadReuseportFixture();
    const { group, socks } = fourSockets(env);
    const input = { group, packet: udpFrame(4), hash: H0 };
    for (const flags of [1n, 0xffffffffffffffffn]) {
      const r = run(env, "select_arg", input, engine, 1, flags);
      assert.equal(env.globals.signed("sel_ret"), 0);
      assert.equal(r.selected, socks[2]);
    }
  });

  Deno.test(`drops, and the hash fallback skipping connected sockets (${engine})`, () => {
    const env = loadReuseportFixture();
    const { group, socks } = fourSockets(env);
    const input = { group, packet: udpFrame(4), hash: H0 };
    let r = run(env, "return_two", input, engine);
    assert.equal(r.retval, 2); // not SK_PASS: ERR_PTR(-ECONNREFUSED)
    assert.equal(r.verdict, "refused");
    assert.equal(r.selected, undefined);
    r = run(env, "select_then_drop", input, engine, 0);
    assert.equal(env.globals.signed("sel_ret"), 0);
    assert.equal(r.programSelected, socks[3]);
    assert.equal(r.verdict, "refused");
    assert.equal(r.selected, undefined);
    assert.equal(env.array.deleteFromSyscall(u32Key(2)), 0);
    socks[0].state = TCP_ESTABLISHED; // a connected UDP socket
    r = run(env, "select_arg", input, engine, 2);
    assert.equal(r.verdict, "hash");
    assert.equal(r.selected, socks[1]); // index 0 is connected: the next
    for (const s of socks) s.state = TCP_ESTABLISHED;
    r = run(env, "select_arg", input, engine, 2);
    assert.equal(r.verdict, "hash");
    assert.equal(r.selected, undefined); // went round: NULL
  });

  Deno.test(`selecting from a sockmap and a sockhash (${engine})`, () => {
    const env = loadReuseportFixture();
    const { group, socks } = makeGroup(env, 1, 4);
    const space = env.loaded.kernel.space;
    assert.equal(env.sockmap.updateSock(u32Key(0), socks[2], 0), 0);
    assert.equal(env.sockmap.updateSock(u32Key(1), new MsgSock(space), 0), 0);
    assert.equal(env.sockhash.updateSock(u32Key(7), socks[1], 0), 0);
    const input = { group, packet: udpFrame(4), hash: H0 };
    let r = run(env, "select_sockmap", input, engine, 0);
    assert.equal(env.globals.signed("sel_ret"), 0);
    assert.equal(r.selected, socks[2]);
    // an established TCP socket in no group: -EINVAL from a sockmap
    r = run(env, "select_sockmap", input, engine, 1);
    assert.equal(env.globals.signed("sel_ret"), EINVAL);
    assert.equal(r.selected, socks[0]);
    run(env, "select_sockmap", input, engine, 3);
    assert.equal(env.globals.signed("sel_ret"), ENOENT);
    r = run(env, "select_sockhash", input, engine, 7);
    assert.equal(env.globals.signed("sel_ret"), 0);
    assert.equal(r.selected, socks[1]);
    group.detach(socks[1]); // stays in the sockhash, out of the group
    run(env, "select_sockhash", input, engine, 7);
    assert.equal(env.globals.signed("sel_ret"), EINVAL);
  });

  Deno.test(`the context: fields, narrow loads, packet helpers, cookie (${engine})`, () => {
    const env = loadReuseportFixture();
    const { group, socks } = fourSockets(env, true);
    const g = env.globals;
    const r = run(env, "read_ctx", {
      group,
      packet: udpFrame(300),
      hash: H3,
    }, engine);
    assert.equal(r.verdict, "hash");
    assert.equal(r.selected, socks[3]);
    assert.equal(g.get("f_len"), 308n); // UDP header + payload: data is at L4
    assert.equal(g.get("f_eth_protocol"), 0x0008n); // __be16 ETH_P_IP, LE u16 load
    assert.equal(g.get("f_ip_protocol"), 17n); // sk->sk_protocol
    assert.equal(g.get("f_bind_inany"), 1n);
    assert.equal(g.get("f_hash"), BigInt(H3));
    assert.equal(g.get("f_len_byte1"), 1n); // 308 = 0x134
    // u16 at eth_protocol + 2: the load widens to the u16 field, no shift
    assert.equal(g.get("f_eth_protocol_hi"), 0x0008n);
    assert.equal(g.get("f_bind_inany_u8"), 1n);
    assert.equal(g.get("f_first_word"), 0x8813d204n); // 04d2 1388 little-endian
    assert.equal(g.get("f_family"), 2n);
    assert.equal(g.get("f_port"), 5000n);
    assert.equal(g.get("f_migrating"), 0n);
    assert.equal(g.get("f_load_ret"), 0n);
    assert.equal(g.get("f_loaded"), 5000n); // bytes 2-3 from data: dport
    assert.equal(g.get("f_net_ret"), 0n);
    assert.equal(g.get("f_net_first"), 0x45n);
    assert.equal(g.get("f_mac_ret"), 0n);
    assert.equal(g.get("f_mac_proto"), 0x0800n);
    assert.notEqual(socks[0].cookie, 0n);
    assert.equal(g.get("f_cookie"), socks[0].cookie);
    assert.equal(socks[0].genCookie(0), socks[0].cookie);
  });

  Deno.test(`the context over IPv6, and a load past the end (${engine})`, () => {
    const env = loadReuseportFixture();
    const { group } = makeGroup(env, 1, 2, { family: AF_INET6 });
    const g = env.globals;
    run(
      env,
      "read_ctx",
      { group, packet: udpFrame(4, true), hash: H0 },
      engine,
    );
    assert.equal(g.get("f_len"), 12n);
    assert.equal(g.get("f_eth_protocol"), 0xdd86n);
    assert.equal(g.get("f_bind_inany"), 0n);
    assert.equal(g.get("f_len_byte1"), 0n);
    assert.equal(g.get("f_first_word"), 0x8813d204n);
    assert.equal(g.get("f_family"), BigInt(AF_INET6));
    assert.equal(g.get("f_net_first"), 0x60n);
    assert.equal(g.get("f_mac_proto"), 0x86ddn);
    run(env, "load_past_end", { group, packet: udpFrame(4), hash: H0 }, engine);
    assert.equal(g.get("f_load_ret"), BigInt(EFAULT >>> 0)); // u32 global
    assert.equal(g.get("f_loaded"), 0n); // the buffer is cleared
  });

  Deno.test(`migration from a closed listener (${engine})`, () => {
    const env = loadReuseportFixture();
    const { group, socks } = makeGroup(env, 3, 3, { protocol: IPPROTO.TCP });
    socks.forEach((s, i) =>
      assert.equal(env.array.updateSock(u32Key(i), s, 0), 0)
    );
    group.stopListen(socks[0]); // to the closed section, out of rs_array
    assert.deepEqual(group.sockets, [socks[2], socks[1]]);
    const req = new ReuseportSock(env.loaded.kernel.space, {
      protocol: IPPROTO.TCP,
      state: TCP_NEW_SYN_RECV,
    });
    const input = { group, sk: socks[0], migrating: req, hash: H3 };
    let r = run(env, "migrate", input, engine, 2);
    assert.equal(env.globals.signed("sel_ret"), 0);
    assert.equal(env.globals.get("f_migrating"), 1n);
    assert.equal(
      env.globals.get("f_migrating_state"),
      BigInt(TCP_NEW_SYN_RECV),
    );
    assert.equal(r.selected, socks[2]);
    r = run(env, "migrate", input, engine, 0);
    assert.equal(env.globals.signed("sel_ret"), ENOENT);
    assert.equal(r.selected, socks[1]); // reciprocal_scale(H3, 2) = 1
    // a packet (no migration) runs the same program with migrating_sk NULL
    run(env, "migrate", { group, packet: udpFrame(4), hash: H3 }, engine, 1);
    assert.equal(env.globals.get("f_migrating"), 0n);
    // reuseport_migrate_sock() runs select_or_migrate programs only
    assert.throws(
      () => run(env, "select_arg", input, engine),
      (e) => e instanceof TestRunError && e.errno === 22,
    );
  });
}

Deno.test("a group with no listening socket runs no program", () => {
  const env = loadReuseportFixture();
  const { group, socks } = makeGroup(env, 1, 1);
  group.detach(socks[0]);
  // reuseport_select_sock(): num_socks 0, nothing to select from
  assert.throws(
    () => runSkReuseportProgram(env.loaded, "select_arg", { group, hash: 0 }),
    TestRunError,
  );
});
