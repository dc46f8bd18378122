// Sockmaps, sockhashes and the redirects of sk_msg and sk_skb programs
// (lib/kernel/maps/sockmap.ts, sock_redirect_helpers.ts, sk_skb_run.ts),
// over tests/fixtures/runtime/skmsg/sockmap.c on both engines. The kernel
// cannot test-run these program types nor can the oracle put sockets in a
// map: every expectation is worked out by hand from net/core/sock_map.c
// (sock_map_alloc(), sock_hash_alloc(), sock_map_update_elem_sys(),
// sock_map_update_common(), sock_hash_update_common(), the *_lookup_sys()
// and *_delete_elem() functions, bpf_msg_redirect_map() and friends,
// sock_map_redirect_allowed()) and net/core/skmsg.c (sk_psock_map_verd()).
// The fixtures' verdicts are the 6.18 kernel's and bpfsim's must match.
import assert from "node:assert/strict";
import { ENGINES } from "../../../../lib/exec/jit/step_jit.ts";
import { loadObject } from "../../../../lib/elf/object.ts";
import { AddressSpace } from "../../../../lib/exec/memory.ts";
import {
  createMap,
  mapAllocCheck,
} from "../../../../lib/kernel/maps/create.ts";
import { jhash } from "../../../../lib/kernel/maps/jhash.ts";
import type { MapAttr } from "../../../../lib/kernel/maps/map.ts";
import { u32Key } from "../../../../lib/kernel/maps/map.ts";
import type { SockMap } from "../../../../lib/kernel/maps/sockmap.ts";
import type { LoadedObject } from "../../../../lib/kernel/object_loader.ts";
import { MsgSock } from "../../../../lib/kernel/hooks/sock/sk_msg_ctx.ts";
import { runSkMsgProgram } from "../../../../lib/kernel/hooks/sock/sk_msg_run.ts";
import { runSkSkbProgram } from "../../../../lib/kernel/hooks/sock/sk_skb_run.ts";
import { runSockOpsProgram } from "../../../../lib/kernel/hooks/sock/sock_ops.ts";
import { SimTcpSock } from "../../../../lib/kernel/hooks/sock/sock_ops_sock.ts";
import { MAP_TYPE } from "../../../../lib/uapi/bpf.ts";
import { verifyObject } from "../../../../lib/verifier/mod.ts";
import { Globals, loadSkmsgFixture } from "./skmsg_env.ts";

const EINVAL = -22, E2BIG = -7, EEXIST = -17, ENOENT = -2, EBADF = -9;
const ENOSPC = -28, EOPNOTSUPP = -95, EPERM = -1;
const NOEXIST = 1, EXIST = 2, INGRESS = 1n;
const TCP_CLOSE = 7, TCP_LISTEN = 10;

function attr(over: Partial<MapAttr>): MapAttr {
  return {
    name: "sm",
    type: MAP_TYPE.sockmap,
    keySize: 4,
    valueSize: 8,
    maxEntries: 4,
    flags: 0,
    ...over,
  };
}

Deno.test("jhash is lookup3's hashlittle (Bob Jenkins' published values)", () => {
  const s = new TextEncoder().encode("Four score and seven years ago");
  assert.equal(jhash(new Uint8Array()), 0xdeadbeef);
  assert.equal(jhash(s), 0x17770551);
  assert.equal(jhash(s, 1), 0xcd628161);
});

Deno.test("creation checks mirror sock_map_alloc() and sock_hash_alloc()", () => {
  const M = MAP_TYPE;
  const cases: [Partial<MapAttr>, number][] = [
    [{}, 0],
    [{ valueSize: 4 }, 0],
    [{ keySize: 8 }, EINVAL], // sockmap keys are u32 indices
    [{ valueSize: 2 }, EINVAL],
    [{ maxEntries: 0 }, EINVAL],
    [{ flags: 1 }, EINVAL], // BPF_F_NO_PREALLOC is not in SOCK_CREATE_FLAG_MASK
    [{ flags: 4 | 8 }, 0], // BPF_F_NUMA_NODE | BPF_F_RDONLY
    [{ type: M.sockhash, keySize: 12 }, 0],
    [{ type: M.sockhash, keySize: 0 }, EINVAL],
    [{ type: M.sockhash, keySize: 512 }, 0],
    [{ type: M.sockhash, keySize: 513 }, E2BIG], // > MAX_BPF_STACK
    // roundup_pow_of_two(2^27 + 1) = 2^28 buckets > U32_MAX / 16
    [{ type: M.sockhash, maxEntries: 2 ** 27 + 1 }, EINVAL],
  ];
  for (const [over, want] of cases) {
    assert.equal(mapAllocCheck(attr(over)), want, JSON.stringify(over));
  }
});

Deno.test("user space: sockets in, cookies out (sock_map_update_elem_sys(), *_lookup_sys())", async (t) => {
  const space = new AddressSpace();
  const a = new MsgSock(space, { localPort: 1 });
  const b = new MsgSock(space, { localPort: 2 });
  await t.step("sockmap", () => {
    const m = createMap(space, attr({})) as SockMap;
    assert.equal(m.updateSock(u32Key(0), a, 0), 0);
    assert.equal(m.updateSock(u32Key(0), b, NOEXIST), EEXIST);
    assert.equal(m.updateSock(u32Key(1), b, EXIST), ENOENT);
    assert.equal(m.updateSock(u32Key(1), b, 3), EINVAL); // flags > BPF_EXIST
    assert.equal(m.updateSock(u32Key(4), b, 0), E2BIG); // idx >= max_entries
    const closed = new MsgSock(space, { state: TCP_CLOSE });
    assert.equal(m.updateSock(u32Key(1), closed, 0), EOPNOTSUPP);
    const listener = new MsgSock(space, { state: TCP_LISTEN });
    assert.equal(m.updateSock(u32Key(2), listener, 0), 0); // TCPF_LISTEN allowed
    // the generic path's value is an fd: none names a socket here
    assert.equal(m.updateFromSyscall(u32Key(3), new Uint8Array(8), 0), EBADF);
    const big = new Uint8Array(8);
    new DataView(big.buffer).setBigUint64(0, 1n << 31n, true);
    assert.equal(m.updateFromSyscall(u32Key(3), big, 0), EINVAL); // > S32_MAX
    // lookups give the socket's cookie, handed out once and kept
    const c0 = m.lookupValueCopy(u32Key(0)) as Uint8Array;
    const cookieA = new DataView(c0.buffer).getBigUint64(0, true);
    assert.notEqual(cookieA, 0n);
    assert.equal(cookieA, a.cookie);
    assert.deepEqual(m.lookupValueCopy(u32Key(0)), c0);
    const c2 = m.lookupValueCopy(u32Key(2)) as Uint8Array;
    assert.notEqual(new DataView(c2.buffer).getBigUint64(0, true), cookieA);
    assert.equal(m.lookupValueCopy(u32Key(1)), ENOENT);
    // array order, whatever the slots hold (sock_map_get_next_key())
    assert.deepEqual(m.getNextKey(null), u32Key(0));
    assert.deepEqual(m.getNextKey(u32Key(2)), u32Key(3));
    assert.equal(m.getNextKey(u32Key(3)), ENOENT);
    assert.deepEqual(m.getNextKey(u32Key(9)), u32Key(0));
    // __sock_map_delete(): an empty slot or one past the end is -EINVAL
    assert.equal(m.deleteFromSyscall(u32Key(1)), EINVAL);
    assert.equal(m.deleteFromSyscall(u32Key(4)), EINVAL);
    assert.equal(m.deleteFromSyscall(u32Key(0)), 0);
    assert.equal(m.lookupValueCopy(u32Key(0)), ENOENT);
  });
  await t.step("4-byte values: no cookie for user space (-ENOSPC)", () => {
    const m = createMap(space, attr({ valueSize: 4 })) as SockMap;
    assert.equal(m.updateSock(u32Key(0), a, 0), 0);
    assert.equal(m.lookupValueCopy(u32Key(0)), ENOSPC);
    assert.equal(m.lookupValueCopy(u32Key(1)), ENOSPC); // before -ENOENT
  });
  await t.step("read-only map: user space cannot put a socket in", () => {
    const m = createMap(space, attr({ flags: 8 })) as SockMap;
    assert.equal(m.updateSock(u32Key(0), a, 0), EPERM);
  });
  await t.step("sockhash: capacity, replacement, jhash bucket order", () => {
    const m = createMap(
      space,
      attr({ type: MAP_TYPE.sockhash }),
    ) as SockMap;
    const keys = [10, 20, 30, 40];
    for (const k of keys) assert.equal(m.updateSock(u32Key(k), a, 0), 0);
    // sock_hash_alloc_elem(): a fifth key does not fit, a replacement does
    assert.equal(m.updateSock(u32Key(50), b, 0), E2BIG);
    assert.equal(m.updateSock(u32Key(20), b, EXIST), 0);
    assert.equal(m.sockAt(u32Key(20)), b);
    assert.equal(m.updateSock(u32Key(50), b, EXIST), ENOENT);
    assert.equal(m.deleteFromSyscall(u32Key(50)), ENOENT);
    // 4 buckets (roundup_pow_of_two(4)), bucket = jhash(key, 4, 0) & 3,
    // each newest first: 20 was re-added, so it heads its bucket
    const order: number[] = [];
    for (let b = 0; b < 4; b++) {
      const inBucket = keys.filter((k) => (jhash(u32Key(k)) & 3) === b);
      // insertion order 10, 30, 40 then 20 again; newest first
      const rank = (k: number) => k === 20 ? 4 : keys.indexOf(k);
      inBucket.sort((x, y) => rank(y) - rank(x));
      order.push(...inBucket);
    }
    const walked: number[] = [];
    let key = m.getNextKey(null);
    while (typeof key !== "number") {
      walked.push(new DataView(key.buffer).getUint32(0, true));
      key = m.getNextKey(key);
    }
    assert.deepEqual(walked, order);
    assert.equal(m.deleteFromSyscall(u32Key(30)), 0);
    assert.equal(m.updateSock(u32Key(50), b, NOEXIST), 0); // room again
  });
});

/** The fixture with sockets 0 (established), 1 (established), 2 (listening) in sock_map and 7 → 1 in sock_hash. */
function loadWithSockets(): {
  loaded: LoadedObject;
  g: Globals;
  socks: MsgSock[];
} {
  const loaded = loadSkmsgFixture("sockmap.o");
  const space = loaded.kernel.space;
  const socks = [
    new MsgSock(space, { localPort: 1000 }),
    new MsgSock(space, { localPort: 1001 }),
    new MsgSock(space, { localPort: 1002, state: TCP_LISTEN }),
  ];
  const map = (name: string) =>
    loaded.maps.find((m) => m.name === name)!.map as SockMap;
  socks.forEach((s, i) =>
    assert.equal(map("sock_map").updateSock(u32Key(i), s, 0), 0)
  );
  assert.equal(map("sock_hash").updateSock(u32Key(7), socks[1], 0), 0);
  assert.equal(map("sock_hash").updateSock(u32Key(8), socks[2], 0), 0);
  return { loaded, g: new Globals(loaded), socks };
}

/** A redirect case: key, flags, and the expected retval and target. */
type RedirectCase = [string, number, bigint, number, number | null, boolean?];

const MAP_CASES: RedirectCase[] = [
  ["a filled slot: SK_PASS, the target recorded", 1, 0n, 1, 1, false],
  ["BPF_F_INGRESS: recorded as an ingress redirect", 0, INGRESS, 1, 0, true],
  ["an empty slot: SK_DROP", 3, 0n, 0, null],
  ["a key past max_entries: SK_DROP", 99, 0n, 0, null],
  ["a listening socket (sock_map_redirect_allowed()): SK_DROP", 2, 0n, 0, null],
  ["flags beyond BPF_F_INGRESS: SK_DROP", 1, 2n, 0, null],
];
const HASH_CASES: RedirectCase[] = [
  ["a present key: SK_PASS", 7, 0n, 1, 1, false],
  ["ingress", 7, INGRESS, 1, 1, true],
  ["an absent key: SK_DROP", 6, 0n, 0, null],
  ["a listening socket: SK_DROP", 8, INGRESS, 0, null],
];

for (const engine of ENGINES) {
  Deno.test(`sk_msg and sk_skb redirects (${engine})`, async (t) => {
    const { loaded, g, socks } = loadWithSockets();
    const msgRun = (prog: string) =>
      runSkMsgProgram(loaded, prog, { fragments: [new Uint8Array(16)] }, {
        engine,
      });
    const skbRun = (prog: string) =>
      runSkSkbProgram(loaded, prog, { payload: new Uint8Array(16) }, {
        engine,
      });
    type Run = (
      prog: string,
    ) => Pick<ReturnType<typeof msgRun>, "retval" | "redirect" | "verdict">;
    const suites: [string, RedirectCase[], Run][] = [
      ["msg_redir_map", MAP_CASES, msgRun],
      ["msg_redir_hash", HASH_CASES, msgRun],
      ["skb_redir_map", MAP_CASES, skbRun],
      ["skb_redir_hash", HASH_CASES, skbRun],
    ];
    for (const [prog, cases, run] of suites) {
      for (const [name, key, flags, retval, target, ingress] of cases) {
        await t.step(`${prog}: ${name}`, () => {
          g.set("arg_key", key);
          g.set("arg_flags", flags);
          const r = run(prog);
          assert.equal(r.retval, retval);
          if (target === null) {
            assert.equal(r.redirect, undefined);
            assert.equal(r.verdict, "drop");
          } else {
            assert.equal(r.redirect?.sock, socks[target]);
            assert.equal(r.redirect?.ingress, ingress);
            assert.equal(r.verdict, "redirect");
          }
        });
      }
    }
    await t.step(
      "a redirect recorded, then SK_DROP: sk_psock_map_verd() drops",
      () => {
        g.set("arg_key", 0);
        const r = msgRun("msg_redir_then_drop");
        assert.equal(r.retval, 0);
        assert.equal(r.redirect?.sock, socks[0]);
        assert.equal(r.verdict, "drop");
      },
    );
    await t.step(
      "the sending socket may be in the map it redirects through",
      () => {
        g.set("arg_key", 0);
        g.set("arg_flags", 0n);
        const address = socks[0].address;
        const r = runSkMsgProgram(loaded, "msg_redir_map", {
          fragments: [new Uint8Array(4)],
          sock: socks[0],
        }, { engine });
        assert.equal(r.redirect?.sock, socks[0]);
        // a socket the test made outlives the run: its region stays mapped
        assert.equal(loaded.kernel.space.regionAt(address)?.live, true);
      },
    );
    await t.step(
      "sk_skb fields: the receiving socket's, the payload written",
      () => {
        const r = runSkSkbProgram(loaded, "skb_fields", {
          payload: new TextEncoder().encode("hello"),
          localPort: 80,
          remotePort: 4242, // 0x1092
        }, { engine });
        assert.equal(r.retval, 1);
        assert.equal(r.verdict, "pass");
        assert.equal(new TextDecoder().decode(r.data), "!ello");
        assert.equal(g.get("f_len"), 5n);
        assert.equal(g.get("f_family"), 2n);
        assert.equal(g.get("f_local_port"), 80n);
        assert.equal(g.get("f_remote_port"), 0x92100000n); // ntohl() gives 4242
        assert.equal(g.get("f_protocol"), 0x0008n); // htons(ETH_P_IP)
        assert.equal(g.get("f_first"), BigInt("h".charCodeAt(0)));
      },
    );
  });
}

Deno.test("bpf_sock_map_update / bpf_sock_hash_update from a sock_ops callback", async (t) => {
  // runSockOpsProgram binds them to the callback's socket and op
  // (sock_map_op_okay() decides by the op)
  const loaded = loadSkmsgFixture("sockmap.o");
  const g = new Globals(loaded);
  const sock = new SimTcpSock(loaded.kernel.space, { num: 9 });
  const run = (key: number, flags: bigint, op: number) => {
    g.set("arg_key", key);
    g.set("arg_flags", flags);
    const r = runSockOpsProgram(loaded, "ops_update", { op, socket: sock });
    assert.equal(r.r0, 1n);
    const ret = g.get("ret");
    return [
      Number(BigInt.asIntN(32, ret & 0xffffffffn)),
      Number(BigInt.asIntN(32, ret >> 32n)),
    ];
  };
  const map = (name: string) =>
    loaded.maps.find((m) => m.name === name)!.map as SockMap;
  await t.step("ACTIVE_ESTABLISHED_CB: both maps take the socket", () => {
    assert.deepEqual(run(1, 0n, 4), [0, 0]);
    assert.equal(map("sock_map").sockAt(u32Key(1)), sock);
    assert.equal(map("sock_hash").sockAt(u32Key(1)), sock);
  });
  await t.step("BPF_NOEXIST on the filled key: -EEXIST", () => {
    assert.deepEqual(run(1, 1n, 5), [EEXIST, EEXIST]);
  });
  await t.step("TCP_CONNECT_CB is not an op sock_map_op_okay() accepts", () => {
    assert.deepEqual(run(2, 0n, 3), [EOPNOTSUPP, EOPNOTSUPP]);
  });
  await t.step(
    "TCP_LISTEN_CB, key 9: past the sockmap (-E2BIG), fine in the hash",
    () => {
      assert.deepEqual(run(9, 0n, 11), [E2BIG, 0]);
    },
  );
  await t.step("flags 2^32 (u64): -EINVAL", () => {
    assert.deepEqual(run(3, 1n << 32n, 4), [EINVAL, EINVAL]);
  });
});

Deno.test("bpfsim's verdicts on the skmsg fixtures are the 6.18 kernel's", () => {
  const dir = new URL("../../../fixtures/runtime/skmsg/", import.meta.url);
  for (const name of ["msg", "sockmap"]) {
    const object = loadObject(
      Deno.readFileSync(new URL(`${name}.o`, dir)),
      `${name}.o`,
    );
    const recorded = Deno.readTextFileSync(
      new URL(`${name}.oracle.json`, dir),
    ).trim().split("\n").map((l) => JSON.parse(l));
    const ours = verifyObject(object);
    assert.equal(ours.length, recorded.length);
    for (const k of recorded) {
      const v = ours.find((o) => o.program === k.program);
      assert.ok(v, k.program);
      assert.equal(v.verdict, k.verdict, k.program);
      assert.equal(v.message, k.message, k.program);
      assert.equal(v.processed, k.processed, k.program);
    }
  }
});
