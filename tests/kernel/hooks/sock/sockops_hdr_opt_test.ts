// sock_ops header-option callbacks on a simulated TCP segment
// (lib/kernel/hooks/sock/sock_ops.ts, tcp_hdr_opt.ts): bpf_reserve_hdr_opt() in
// HDR_OPT_LEN_CB, bpf_store_hdr_opt() in WRITE_HDR_OPT_CB,
// bpf_load_hdr_opt() in PARSE_HDR_OPT_CB (and from the SYN), and
// bpf_getsockopt(TCP_BPF_SYN). Results are hand-derived from the 6.18
// net/core/filter.c (bpf_search_tcp_opt(), bpf_sock_ops_load_hdr_opt(),
// bpf_sock_ops_store_hdr_opt(), bpf_sock_ops_reserve_hdr_opt(),
// bpf_sock_ops_get_syn()).
import assert from "node:assert/strict";
import { ENGINES } from "../../../../lib/exec/jit/step_jit.ts";
import { SOCK_OPS } from "../../../../lib/kernel/hooks/sock/sock_ops_ctx.ts";
import type { SockOpsRun } from "../../../../lib/kernel/hooks/sock/sock_ops.ts";
import { ENOMSG } from "../../../../lib/kernel/hooks/sock/tcp_hdr_opt.ts";
import {
  EEXIST,
  EFAULT,
  EINVAL,
  ENOENT,
  ENOSPC,
  EPERM,
} from "../../../../lib/uapi/errno.ts";
import { established, loadSockOps, runOn } from "./sockops_env.ts";

for (const engine of ENGINES) {
  Deno.test(`sock_ops header options on ${engine}`, async (t) => {
    const loaded = loadSockOps();
    const mssOpt = [2, 4, 0x05, 0xb4];
    const ourOpt = [254, 6, 0xeb, 0x9f, 0x12, 0x34];
    const hdr = (...opts: number[][]) => {
      const bytes = Uint8Array.from([...new Array(20).fill(0), ...opts.flat()]);
      bytes[12] = (bytes.length / 4) << 4; // doff
      return bytes;
    };
    const run = (prog: string, r: Omit<SockOpsRun, "socket">) =>
      runOn(loaded, engine, prog, { socket: established(loaded), ...r });

    await t.step("HDR_OPT_LEN_CB reserves room", () => {
      const ok = run("hdr_opt", {
        op: SOCK_OPS.HDR_OPT_LEN_CB,
        args: [0, 6],
        remainingOptLen: 12,
      });
      assert.deepEqual([ok.reply, ok.remainingOptLen], [0, 6]);
      const big = run("hdr_opt", {
        op: SOCK_OPS.HDR_OPT_LEN_CB,
        args: [0, 13],
        remainingOptLen: 12,
      });
      assert.deepEqual([big.reply, big.remainingOptLen], [-ENOSPC, 12]);
      const tiny = run("hdr_opt", {
        op: SOCK_OPS.HDR_OPT_LEN_CB,
        args: [0, 1],
        remainingOptLen: 12,
      });
      assert.equal(tiny.reply, -EINVAL);
      // load_hdr_opt cannot look at a segment not yet written
      const load = run("hdr_mss", {
        op: SOCK_OPS.HDR_OPT_LEN_CB,
        skb: { bytes: hdr(mssOpt), dataEnd: 0 },
        remainingOptLen: 12,
      });
      assert.equal(load.reply, -EPERM);
    });

    await t.step("WRITE_HDR_OPT_CB stores once, in the reserved room", () => {
      const w = run("hdr_opt", {
        op: SOCK_OPS.WRITE_HDR_OPT_CB,
        skb: { bytes: hdr(mssOpt) },
        remainingOptLen: 8,
      });
      assert.equal(w.reply, 0);
      assert.equal(w.remainingOptLen, 2);
      assert.deepEqual([...w.skbOut!.subarray(20)], [...mssOpt, ...ourOpt]);
      const dup = run("hdr_opt", {
        op: SOCK_OPS.WRITE_HDR_OPT_CB,
        skb: { bytes: hdr(mssOpt, ourOpt) },
        remainingOptLen: 8,
      });
      assert.equal(dup.reply, -EEXIST);
      const full = run("hdr_opt", {
        op: SOCK_OPS.WRITE_HDR_OPT_CB,
        skb: { bytes: hdr(mssOpt) },
        remainingOptLen: 4,
      });
      assert.equal(full.reply, -ENOSPC);
      // an EOL ends the options: nothing more may be written
      const ended = run("hdr_opt", {
        op: SOCK_OPS.WRITE_HDR_OPT_CB,
        skb: { bytes: hdr([0, 0, 0, 0]) },
        remainingOptLen: 8,
      });
      assert.equal(ended.reply, -ENOSPC);
      const wrong = run("hdr_opt", {
        op: SOCK_OPS.ACTIVE_ESTABLISHED_CB,
        skb: { bytes: hdr(mssOpt) },
        remainingOptLen: 8,
      });
      assert.equal(wrong.reply, -EPERM);
    });

    await t.step("PARSE_HDR_OPT_CB finds by kind and magic", () => {
      const sk = established(loaded);
      const parse = (bytes: Uint8Array, n: number, flags = 0, extra = {}) =>
        runOn(loaded, engine, "hdr_opt", {
          op: SOCK_OPS.PARSE_HDR_OPT_CB,
          socket: sk,
          skb: { bytes },
          args: [0, n, flags],
          ...extra,
        }).reply;
      assert.equal(parse(hdr(mssOpt, ourOpt), 8), 6);
      assert.equal(sk.txhash, 0x9feb06fe); // 254, 6, 0xeb, 0x9f
      assert.equal(parse(hdr(mssOpt, ourOpt), 4), -ENOSPC); // 4 bytes copied
      assert.equal(sk.txhash, 0x9feb06fe);
      const other = [254, 6, 0xeb, 0x9e, 0, 0]; // another magic
      assert.equal(parse(hdr(mssOpt, other), 8), -ENOMSG);
      assert.equal(parse(hdr([2, 1, 0, 0]), 8), -EFAULT); // malformed length
      // BPF_LOAD_HDR_OPT_TCP_SYN: the SYN's options, from syn_skb
      assert.equal(parse(hdr(mssOpt), 8, 1), -ENOENT);
      const synSkb = {
        mac: new Uint8Array(14),
        network: new Uint8Array(20),
        tcp: hdr(ourOpt, [1, 1]),
      };
      assert.equal(parse(hdr(mssOpt), 8, 1, { synSkb }), 6);
      assert.equal(parse(hdr(mssOpt), 8, 2), -EINVAL); // unknown flag
      const mss = runOn(loaded, engine, "hdr_mss", {
        op: SOCK_OPS.PARSE_HDR_OPT_CB,
        socket: sk,
        skb: { bytes: hdr([1, 1], mssOpt) },
      });
      assert.equal(mss.reply, 4);
      assert.equal(sk.txhash, 0xb4050402);
      const noSkb = runOn(loaded, engine, "hdr_mss", {
        op: SOCK_OPS.RTT_CB,
        socket: sk,
      });
      assert.equal(noSkb.reply, -EPERM);
    });

    await t.step("TCP_BPF_SYN: the saved SYN's TCP header", () => {
      const sk = established(loaded);
      const r0 = runOn(loaded, engine, "saved_syn", {
        op: SOCK_OPS.PASSIVE_ESTABLISHED_CB,
        socket: sk,
      });
      assert.equal(r0.reply, -ENOENT);
      const tcp = hdr([1, 1, 1, 1]); // 24 bytes
      tcp[20] = 0xaa;
      sk.savedSyn = {
        mac: new Uint8Array(0),
        network: new Uint8Array(20),
        tcp,
      };
      const r1 = runOn(loaded, engine, "saved_syn", {
        op: SOCK_OPS.PASSIVE_ESTABLISHED_CB,
        socket: sk,
      });
      assert.equal(r1.reply, 24);
      assert.equal(sk.txhash, 0x010101aa);
      sk.savedSyn = { ...sk.savedSyn, tcp: hdr(mssOpt, mssOpt) }; // 28 bytes
      const r2 = runOn(loaded, engine, "saved_syn", {
        op: SOCK_OPS.PASSIVE_ESTABLISHED_CB,
        socket: sk,
      });
      assert.equal(r2.reply, -ENOSPC);
      assert.equal(sk.txhash, 0xb4050402); // the first 24 bytes were copied
    });
  });
}
