/**
 * bpf_snprintf_btf and bpf_seq_printf_btf (lib/kernel/hooks/iter/btf_print_helpers.ts,
 * seq_helpers.ts) called by the programs of
 * tests/fixtures/runtime/btf_show/, on every engine.
 *
 * The XDP programs of snprintf.c and quirks.c have the 6.18 kernel's own
 * output recorded (*.oracle-run.json: retval and packet), which
 * tests/kernel/test_run_test.ts compares with bpfsim; here the full
 * strings, of which the packet holds a 64-byte window, are checked,
 * computed by hand from kernel/bpf/btf.c. The iterator and the tracing
 * programs cannot run in the kernel: their output is computed by hand
 * from btf_type_seq_show_flags() / btf_type_snprintf_show() and
 * bpf_btf_printf_prepare() (kernel/trace/bpf_trace.c).
 */
import assert from "node:assert/strict";
import { ENGINES } from "../../../../lib/exec/jit/step_jit.ts";
import { readIterator } from "../../../../lib/kernel/hooks/iter/bpf_iter.ts";
import {
  BTF_F_COMPACT as C,
  BTF_F_NONAME as N,
  BTF_F_ZERO as Z,
} from "../../../../lib/kernel/hooks/iter/btf_show.ts";
import type { LoadedObject } from "../../../../lib/kernel/object_loader.ts";
import { runInContext, testRun } from "../../../../lib/kernel/test_run.ts";
import {
  E0,
  E0_COMPACT,
  EINVAL,
  elem,
  ENOENT,
  ERANGE,
  load,
} from "./btf_show_fixtures.ts";

const snprintfObj = load("snprintf.o");

// Full strings of the recorded XDP programs; the kernel's packet holds
// bytes [at, at + 64) of the 256-byte buffer they were printed into.
const QUIRKS: [string, number, string][] = [
  [
    "int128_named",
    0,
    "(union __u128_halves){.full = (u128)0x10000000000000002,(struct){.low = (u64)2,.high = (u64)1,},}",
  ],
  ["int128_pretty", 0, "{\n 0x2a,\n {\n  42,\n },\n}\n"],
  ["int128_zero", 0, "{0x0,{0,0,},}"],
  ["enum64_name", 0, "(enum perf_callchain_context)PERF_CONTEXT_KERNEL"],
  ["enum64_value", 0, "(enum perf_callchain_context)18446744073709551615"],
  ["char_array", 0, "{['a','b',1,'c',],[1661035105,],}"],
  [
    "ptr_array",
    40,
    "{0x0000000000000001,0x0000000000000001,0x0000000000000001,0x0000000000000001,0x0000000000000001,],}",
  ],
  [
    "struct_array",
    20,
    "(struct latch_tree_node){.node = (struct rb_node[])[1,},0x0000000000000002,},],}",
  ],
  [
    "const_members",
    0,
    "(struct kvm_mmu_role_regs){.cr0 = ()1,.cr4 = ()2,.efer = ()3,}",
  ],
  ...[0, 64, 128, 176].map((at): [string, number, string] => [
    `fastopen_at${at}`,
    at,
    // each element's silent pass ends its key array, clearing
    // array_member: the real pass names the element and its members
    "(struct tcp_fastopen_context){.key = (siphash_key_t[])[" +
    "(siphash_key_t){.key = (u64[])[1,],},(siphash_key_t){.key = (u64[])[2,],},]," +
    ".num = (int)3,.rcu = (struct callback_head){" +
    ".next = (struct callback_head *)0x0000000000000010,},}",
  ]),
  ["nested_zero", 0, "{{{{{0,},},},},{{{{0,},},},},{},}"],
];

for (const engine of ENGINES) {
  Deno.test(`[${engine}] quirks.c: full outputs and their recorded windows`, () => {
    const o = load("quirks.o");
    for (const [name, at, full] of QUIRKS) {
      const r = testRun(o, name, { engine });
      assert.equal(r.retval, full.length, name);
      // the zeroed 256-byte buffer holds the output and its NUL
      const buf = new Uint8Array(256);
      for (let i = 0; i < full.length; i++) buf[i] = full.charCodeAt(i);
      assert.deepEqual(
        r.dataOut!.subarray(0, 64),
        buf.subarray(at, at + 64),
        name,
      );
    }
  });

  Deno.test(`[${engine}] snprintf.c: truncation in the packet and the errors of bpf_btf_printf_prepare()`, () => {
    const r = testRun(snprintfObj, "ptr_raw_truncated", { engine });
    const full =
      "(struct list_head){.next = (struct list_head *)0x0000000000000001,}";
    assert.equal(r.retval, full.length);
    assert.equal(
      String.fromCharCode(...r.dataOut!.subarray(0, 64)),
      full.slice(0, 63) + "\0",
    );
    const ret = (name: string) =>
      testRun(snprintfObj, name, { engine }).retval | 0;
    assert.equal(ret("bad_flags"), EINVAL);
    assert.equal(ret("bad_size"), EINVAL);
    assert.equal(ret("bad_type_id"), EINVAL * 100 + ENOENT);
    assert.equal(ret("null_ptr"), ERANGE);
  });

  Deno.test(`[${engine}] bpf_seq_printf_btf: cat of the iterator`, () => {
    const o = load("print_iter.o");
    const elems = o.maps.find((m) => m.name === "elems")!.map!;
    const key = (i: number) => new Uint8Array([i, 0, 0, 0]);
    assert.equal(elems.updateFromSyscall(key(0), elem(E0), 0), 0);
    assert.equal(elems.updateFromSyscall(key(1), elem({ id: N }), 0), 0);
    assert.equal(elems.updateFromSyscall(key(2), elem({ id: C | Z }), 0), 0);
    const out = readIterator(o, "dump_elems", { map: "elems" }, { engine });
    assert.equal(out.errno, 0);
    const zero =
      "(struct elem){.id = (int)9,.name = (char[])[],.flag = (unsigned char)0x0," +
      ".level = (unsigned char)0x0,.colour = (enum colour)RED," +
      ".inner = (struct){.s = (short)0,.w = (long long)0,},.vals = (unsigned int[])[0,0,0,],}";
    assert.equal(out.text, `${E0_COMPACT}\n{\n 2,\n RED,\n}\n\n${zero}\n`);
    const bad = readIterator(o, "dump_bad_size", { map: "elems" }, { engine });
    assert.equal(bad.text, "");
    assert.equal(lastRet(o), EINVAL);
  });

  Deno.test(`[${engine}] bpf_snprintf_btf from raw_tp and tp_btf programs`, () => {
    const o = load("print_iter.o");
    const elems = o.maps.find((m) => m.name === "elems")!.map!;
    assert.equal(elems.updateFromSyscall(new Uint8Array(4), elem(E0), 0), 0);
    runTracing(o, "raw_tp_print", engine);
    assert.equal(lastRet(o), E0_COMPACT.length);
    const str = o.maps.find((m) => m.name === "strbuf")!.map!.lookupValueCopy(
      new Uint8Array(4),
    );
    assert.ok(str instanceof Uint8Array);
    assert.equal(
      String.fromCharCode(...str.subarray(0, E0_COMPACT.length + 1)),
      E0_COMPACT + "\0",
    );
    runTracing(o, "tp_btf_print", engine);
    assert.equal(lastRet(o), "(int)42\n".length);
  });
}

/** `last_ret` of print_iter.c (.bss). */
function lastRet(o: LoadedObject): number {
  const bss = o.maps.find((m) => m.name.endsWith(".bss"))!.map!;
  const v = bss.lookupValueCopy(new Uint8Array(4));
  assert.ok(v instanceof Uint8Array);
  const off = o.object.btf!.types.find((t) =>
    t.kind === "DATASEC" && t.name === ".bss"
  );
  const slot = off!.kind === "DATASEC"
    ? off!.vars.find((s) => o.object.btf!.typeById(s.type).name === "last_ret")!
    : undefined;
  return new DataView(v.buffer, v.byteOffset).getInt32(slot!.offset, true);
}

/** Runs a tracing program with a 6-argument u64 ctx (all zero). */
function runTracing(
  o: LoadedObject,
  name: string,
  engine: (typeof ENGINES)[number],
) {
  const space = o.kernel.space;
  const ctx = space.mapRegion("ctx", 48, { name: "tracing ctx", write: false });
  runInContext(o, name, {
    r1: ctx,
    packetRegion: 0,
    helpers: new Map(),
    onPacketRemap: () => {},
    dataOut: () => undefined,
    release: () => space.unmapRegion(ctx),
  }, { engine });
}
