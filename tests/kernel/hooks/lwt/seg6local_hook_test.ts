/**
 * seg6local's End.BPF hook (lib/kernel/hooks/lwt/seg6local_hook.ts) and the seg6
 * helpers (lwt_seg6_helpers.ts), which the kernel cannot test-run: every
 * expectation follows the 6.18 source — `input_action_end_bpf()`,
 * `seg6_bpf_has_valid_srh()` (net/ipv6/seg6_local.c), the
 * `bpf_lwt_seg6_*` helpers (net/core/filter.c), `seg6_validate_srh()`
 * (net/ipv6/seg6.c). The programs' verdicts are the kernel's
 * (tests/fixtures/runtime/cgroup_lwt/seg6local.oracle.json).
 */
import assert from "node:assert/strict";
import { loadObject } from "../../../../lib/elf/object.ts";
import { ExecError } from "../../../../lib/exec/fault.ts";
import { Kernel } from "../../../../lib/kernel/kernel.ts";
import type { LoadedObject } from "../../../../lib/kernel/object_loader.ts";
import { loadObjectWithRuntime } from "../../../../lib/kernel/object_runtime.ts";
import { TestRunError } from "../../../../lib/kernel/test_run.ts";
import { seg6ValidateSrh } from "../../../../lib/kernel/hooks/lwt/lwt_helpers.ts";
import { runSeg6local } from "../../../../lib/kernel/hooks/lwt/seg6local_hook.ts";
import { EBADMSG, EFAULT, EINVAL } from "../../../../lib/uapi/errno.ts";

const DIR = new URL("../../../fixtures/runtime/cgroup_lwt/", import.meta.url);

function load(file: string): LoadedObject {
  const object = loadObject(Deno.readFileSync(new URL(file, DIR)), file);
  return loadObjectWithRuntime(new Kernel({ cpus: 2 }), object);
}

Deno.test("seg6_validate_srh() checks type, length, segment indexes and TLVs", () => {
  // one segment (hdrlen 2, 24 bytes), then `tlvs`
  const srh = (
    left: number,
    first: number,
    hdrlen = 2,
    type = 4,
    tlvs: number[] = [],
  ) => {
    const h = new Uint8Array((hdrlen + 1) * 8);
    h.set([41, hdrlen, type, left, first]);
    h.set(tlvs, 24);
    return h;
  };
  assert.equal(seg6ValidateSrh(srh(0, 0), 24), true);
  assert.equal(seg6ValidateSrh(srh(0, 0), 16), false); // (hdrlen + 1) * 8 != len
  assert.equal(seg6ValidateSrh(srh(0, 0, 2, 3), 24), false); // not type 4
  assert.equal(seg6ValidateSrh(srh(1, 0), 24), false); // left > first
  assert.equal(seg6ValidateSrh(srh(1, 0), 24, true), true); // reduced: left ≤ first + 1
  assert.equal(seg6ValidateSrh(srh(2, 0), 24, true), false);
  assert.equal(seg6ValidateSrh(srh(0, 1), 24), false); // first past the segments
  assert.equal(seg6ValidateSrh(srh(0, 0, 3, 4, [5, 6]), 32), true); // 8-byte TLV
  assert.equal(seg6ValidateSrh(srh(0, 0, 3, 4, [5, 5]), 32), false); // 1 byte left over
  assert.equal(seg6ValidateSrh(srh(0, 0, 3, 4, [5, 7]), 32), false); // overruns
  assert.equal(seg6ValidateSrh(srh(0, 0, 3, 4, [1, 0, 4, 2]), 32), true); // two TLVs
  assert.equal(seg6ValidateSrh(new Uint8Array(8), 4), false); // shorter than the SRH
});

/**
 * The packet seg6local.c expects: Ethernet, IPv6 2001:db8::1 → 2001:db8::ff
 * (payload 40, next header routing), an SRH of two segments (2001:db8::a,
 * 2001:db8::b; first_segment 1, segments_left 1, next header 59).
 */
function srv6Frame(opts: { left?: number; flags?: number } = {}): Uint8Array {
  const f = new Uint8Array(14 + 80);
  f.set([0x86, 0xdd], 12);
  const ip = f.subarray(14);
  ip.set([0x60, 0, 0, 0, 0, 40, 43, 64]);
  ip.set([0x20, 0x01, 0x0d, 0xb8], 8);
  ip[23] = 1;
  ip.set([0x20, 0x01, 0x0d, 0xb8], 24);
  ip[39] = 0xff;
  ip.set([59, 4, 4, opts.left ?? 1, 1, opts.flags ?? 0, 0, 0], 40);
  ip.set([0x20, 0x01, 0x0d, 0xb8], 48);
  ip[63] = 0x0a;
  ip.set([0x20, 0x01, 0x0d, 0xb8], 64);
  ip[79] = 0x0b;
  return f;
}

Deno.test("End.BPF runs lwt_seg6local programs: SRH edits, their checks and the verdicts (input_action_end_bpf())", async (t) => {
  const loaded = load("seg6local.o");
  const run = (name: string, frame = srv6Frame()) =>
    runSeg6local(loaded, name, frame);
  const errno = (n: number) => 2 ** 32 - n;
  await t.step(
    "advance_nextseg(): segments_left 0, daddr = segments[0]",
    () => {
      const r = run("daddr_last");
      assert.equal(r.run?.retval, 0x0a); // 2001:db8::a
      assert.equal(r.verdict, "drop"); // 10 is neither BPF_OK nor BPF_REDIRECT
      assert.equal(r.packet[43], 0);
    },
  );
  await t.step(
    "store_bytes: flags and tag, nothing before them or in the segments",
    () => {
      const r = run("set_tag");
      assert.equal(r.run?.retval, 0);
      assert.equal(r.verdict, "lookup");
      assert.deepEqual([...r.packet.subarray(45, 48)], [0, 0xbe, 0xef]);
      assert.equal(run("store_left").run?.retval, errno(EFAULT));
      assert.equal(run("store_into_segments").run?.retval, errno(EFAULT));
      // srh + ((first_segment + 1) << 4) as the TLVs' start: 8 bytes early
      const half = run("store_last_segment_half");
      assert.equal(half.run?.retval, 0);
      assert.equal(half.verdict, "lookup");
      assert.deepEqual([...half.packet.subarray(72, 80)], [
        1,
        2,
        3,
        4,
        5,
        6,
        7,
        8,
      ]);
    },
  );
  await t.step(
    "adjust_srh grows the TLV area; the hook re-validates the SRH",
    () => {
      const r = run("add_tlv");
      assert.equal(r.run?.retval, 0);
      assert.equal(r.verdict, "lookup");
      const expected = srv6Frame().slice(14);
      const out = new Uint8Array(88);
      out.set(expected);
      out[5] = 48; // payload_len
      out[41] = 5; // hdrlen: seg6_bpf_has_valid_srh() writes the new length
      out[43] = 0; // segments_left
      out.set(expected.subarray(48, 64), 24); // daddr = segments[0]
      out.set([4, 6], 80); // the PadN TLV
      assert.deepEqual([...r.packet], [...out]);
      const odd = run("add_odd");
      assert.equal(odd.run?.retval, 0);
      assert.equal(odd.verdict, "bad_srh"); // 36 bytes: not a multiple of 8
      assert.equal(run("add_odd_then_end_x").run?.retval, errno(EBADMSG));
      assert.equal(run("adjust_in_segments").run?.retval, errno(EFAULT));
      assert.equal(run("shrink_past_end").run?.retval, errno(EFAULT));
    },
  );
  await t.step("seg6_action: the checks before the route lookup", () => {
    assert.equal(run("end_x_short").run?.retval, errno(EINVAL));
    assert.equal(run("end_dt6").run?.retval, errno(EBADMSG)); // no inner IPv6
    assert.equal(run("end_b6_bad").run?.retval, errno(EINVAL));
    assert.throws(
      () => run("end_x"),
      (e) => e instanceof ExecError && /seg6_lookup_nexthop/.test(e.reason),
    );
  });
  await t.step(
    "return values: BPF_REDIRECT skips the lookup, BPF_DROP drops",
    () => {
      assert.equal(run("ret_redirect").verdict, "redirect");
      assert.equal(run("ret_drop").verdict, "drop");
    },
  );
  await t.step("no usable SRH: dropped before the program runs", () => {
    // segments_left 0: ipv6_find_hdr(…, IP6_FH_F_SKIP_RH) skips the header
    const none = run("ret_redirect", srv6Frame({ left: 0 }));
    assert.equal(none.verdict, "no_srh");
    assert.equal(none.run, undefined);
    // an HMAC TLV no key of the (empty) HMAC table validates
    const hmac = srv6Frame({ flags: 1 << 3 });
    const ip = new Uint8Array(14 + 120);
    ip.set(hmac.subarray(0, 14 + 80));
    ip[14 + 5] = 80; // payload_len
    ip[14 + 41] = 9; // hdrlen: 2 segments + a 40-byte HMAC TLV
    ip.set([5, 38], 14 + 80);
    assert.equal(run("ret_redirect", ip).verdict, "no_srh");
    assert.throws(
      () => run("ret_redirect", new Uint8Array(94)),
      (e) => e instanceof TestRunError && e.errno === EINVAL,
    );
  });
});
