/**
 * BPF iterators and the seq helpers (lib/kernel/hooks/iter/bpf_iter.ts,
 * bpf_iter_read.ts, bpf_iter_map.ts, seq_helpers.ts) on the programs of
 * tests/fixtures/runtime/iter/iter.c. The kernel cannot test-run
 * iterators: the verdicts are the 6.18 kernel's (iter.oracle.json), and
 * what a read returns is computed by hand from the kernel functions each
 * step names — bpf_seq_read() (kernel/bpf/bpf_iter.c), the array and hash
 * seq_ops (arraymap.c, hashtab.c), bpf_iter_attach_map() (map_iter.c),
 * bpf_seq_printf() / bpf_seq_write() (kernel/trace/bpf_trace.c) over
 * seq_bprintf() / seq_write() (fs/seq_file.c).
 */
import assert from "node:assert/strict";
import { loadObject } from "../../../../lib/elf/object.ts";
import type { Engine } from "../../../../lib/exec/jit/step_jit.ts";
import {
  attachIterator,
  IterAttachError,
  readIterator,
} from "../../../../lib/kernel/hooks/iter/bpf_iter.ts";
import { Kernel } from "../../../../lib/kernel/kernel.ts";
import type { LoadedObject } from "../../../../lib/kernel/object_loader.ts";
import { loadObjectWithRuntime } from "../../../../lib/kernel/object_runtime.ts";
import { SEQ_BUF_SIZE } from "../../../../lib/kernel/hooks/iter/seq_helpers.ts";
import { verifyProgram } from "../../../../lib/verifier/verify.ts";

const FIXTURE = new URL(
  "../../../fixtures/runtime/iter/iter.o",
  import.meta.url,
);
const ORACLE = new URL(
  "../../../fixtures/runtime/iter/iter.oracle.json",
  import.meta.url,
);
const ENGINES: readonly Engine[] = ["interp", "jit"];
const EINVAL = 22, EACCES = 13, EBADF = 9, ENOTSUPP = 524;
const E2BIG = -7, EAGAIN = -11, EOVERFLOW = -75;

const u32 = (v: number) => new Uint8Array(new Uint32Array([v]).buffer);
const u64 = (v: bigint) => new Uint8Array(new BigUint64Array([v]).buffer);

/** The fixture on a fresh kernel; arr = [10, 20, 30, 40], arr10[i] = i. */
function load(cpus = 2): LoadedObject {
  const object = loadObject(Deno.readFileSync(FIXTURE), "iter.o");
  const loaded = loadObjectWithRuntime(new Kernel({ cpus }), object, {
    verify: false, // readIterator verifies, as BPF_PROG_LOAD would
  });
  for (let i = 0; i < 4; i++) {
    assert.equal(
      mapOf(loaded, "arr").updateFromSyscall(
        u32(i),
        u64(BigInt(10 * (i + 1))),
        0,
      ),
      0,
    );
  }
  return loaded;
}

function mapOf(loaded: LoadedObject, name: string) {
  const m = loaded.maps.find((x) => x.name === name)?.map;
  assert.ok(m, `map ${name}`);
  return m;
}

Deno.test("iterator verdicts agree with the 6.18 kernel (iter.oracle.json)", () => {
  const object = loadObject(Deno.readFileSync(FIXTURE), "iter.o");
  const lines = Deno.readTextFileSync(ORACLE).trim().split("\n");
  assert.equal(lines.length, 21);
  for (const line of lines) {
    const k = JSON.parse(line);
    const prog = object.programs.find((p) => p.name === k.program)!;
    const r = verifyProgram(object, prog);
    assert.equal(r.verdict, k.verdict, k.program);
    assert.equal(r.message, k.message, k.program);
  }
});

for (const engine of ENGINES) {
  Deno.test(`[${engine}] cat of an array iterator: header, lines, footer`, () => {
    const loaded = load();
    // bpf_seq_read(): start() gives index 0 (seq_num 0: the header), next()
    // counts seq_num 1..3; next() past the end gives NULL, stop(NULL) runs
    // the program once more with seq_num still 3 (never incremented for
    // NULL); session ids come from atomic64_inc_return(): 1, then 2.
    const r = readIterator(loaded, "dump_array", { map: "arr" }, { engine });
    assert.equal(r.text, "key value\n0: 10\n1: 20\n2: 30\n3: 40\nend 3 1\n");
    assert.deepEqual(r.reads, [r.text.length, 0]);
    assert.equal(r.errno, 0);
    assert.equal(r.runs, 5);
    assert.equal(r.sessionId, 1n);
    const again = readIterator(loaded, "dump_array", { map: "arr" }, {
      engine,
    });
    assert.equal(again.sessionId, 2n);
    assert.ok(again.text.endsWith("end 3 2\n"));
  });

  Deno.test(`[${engine}] overflowing elements are retried by the next read`, () => {
    const loaded = load();
    const arr10 = mapOf(loaded, "arr10");
    for (let i = 0; i < 10; i++) arr10.updateFromSyscall(u32(i), u32(i), 0);
    // 4000 bytes per element: 8 fit (seq_write() needs count + len < 32768);
    // the 9th overflows, bpf_seq_read() restores count and breaks; the next
    // read starts again at info->index 8.
    const r = readIterator(loaded, "big_elems", { map: "arr10" }, { engine });
    assert.deepEqual(r.reads, [32000, 8000, 0]);
    assert.equal(r.runs, 9 + 2 + 1);
    assert.equal(r.bytes.length, 40000);
    for (let i = 0; i < 10; i++) {
      assert.equal(r.bytes[i * 4000], 97 + i); // blob[0] = 'a' + key
      assert.equal(r.bytes[i * 4000 + 1], 0);
    }
    // reads of 4096: "seq->count >= size" stops a read after two elements;
    // the rest of the buffer is served from seq->from
    const small = readIterator(loaded, "big_elems", { map: "arr10" }, {
      engine,
      readSize: 4096,
    });
    assert.deepEqual(small.reads, [...Array(5).fill([4096, 3904]).flat(), 0]);
    assert.deepEqual(small.bytes, r.bytes);
    assert.equal(small.runs, 4 * 2 + 3);
  });
}

Deno.test("an element larger than the buffer fails the read with -E2BIG", () => {
  const loaded = load();
  // the first show() overflows with nothing before it: -E2BIG, no output
  const r = readIterator(loaded, "too_big", { map: "arr" });
  assert.deepEqual(r.reads, [E2BIG]);
  assert.equal(r.bytes.length, 0);
  assert.equal(r.runs, 1);
  assert.equal(SEQ_BUF_SIZE, 32768);
});

Deno.test("seq_write()/seq_bprintf() return -EOVERFLOW at exactly a full buffer", () => {
  const loaded = load();
  const r = readIterator(loaded, "overflow_rets", { map: "arr" });
  // 8 * 4000 + 767 = 32767 < 32768 fits; one more byte does not; a full
  // buffer takes no printf either; the element overflowed: -E2BIG
  assert.deepEqual(r.reads, [E2BIG]);
  const rets = mapOf(loaded, ".data.rets").lookupValueCopy(u32(0));
  assert.ok(rets instanceof Uint8Array);
  const v = new BigInt64Array(rets.slice(0, 32).buffer);
  assert.deepEqual([...v], [0n, BigInt(EOVERFLOW), BigInt(EOVERFLOW), 1n]);
});

Deno.test("a program returning 1 ends the read; a retry of the same element fails with -EAGAIN", () => {
  const loaded = load();
  // bpf_iter_run_prog(): non-zero is -EAGAIN; keys 0 and 1 are kept, key 2
  // is dropped and retried by the next read, where offs == 0: -EAGAIN
  const r = readIterator(loaded, "retry_at_2", { map: "arr" });
  assert.equal(r.text, "0\n1\n");
  assert.deepEqual(r.reads, [4, EAGAIN]);
  assert.equal(r.errno, EAGAIN);
  assert.equal(r.runs, 4);
});

Deno.test("bpf_seq_printf refuses bad formats and arguments with -EINVAL", () => {
  const loaded = load();
  // bpf_bprintf_prepare(): %y is no conversion; no NUL within fmt_size;
  // bpf_seq_printf(): data_len 4 is not a multiple of 8; "%d" with 7 prints
  const r = readIterator(loaded, "bad_formats", { map: "arr" });
  assert.equal(r.text, "7\n-22 -22 -22 0\n");
});

Deno.test("hash maps: each element's key and value, in the walk's order", () => {
  const loaded = load();
  const hash = mapOf(loaded, "hash");
  const entries: [number, number][] = [[5, 500], [1, 100], [9, 900]];
  for (const [k, v] of entries) hash.updateFromSyscall(u32(k), u32(v), 0);
  const r = readIterator(loaded, "write_hash", { map: "hash" });
  const words = [...new Uint32Array(r.bytes.slice().buffer)];
  const pairs = Array.from(
    { length: words.length / 2 },
    (_, i) => [words[2 * i], words[2 * i + 1]] as [number, number],
  );
  // the kernel's bucket order is jhash's; every element once, whatever order
  assert.deepEqual(
    pairs.sort((a, b) => a[0] - b[0]),
    entries.slice().sort((a, b) => a[0] - b[0]),
  );
  assert.equal(r.runs, 4);
});

Deno.test("an empty map: only the final call, with seq_num 0", () => {
  const loaded = load();
  // bpf_hash_map_seq_start() finds nothing: bpf_seq_read() goes straight
  // to stop(NULL), which runs the program once (done_stop); the next read
  // of the same session finds done_stop set and returns 0 at once
  const r = readIterator(loaded, "write_hash", { map: "hash" });
  assert.deepEqual(r.reads, [0]);
  assert.equal(r.runs, 1);
  const reader = attachIterator(loaded, "dump_array", { map: "arr" }).open();
  try {
    const first = reader.read(1 << 17);
    assert.ok(first instanceof Uint8Array);
    assert.equal(reader.runs, 5);
    assert.deepEqual(reader.read(1 << 17), new Uint8Array(0));
    assert.equal(reader.runs, 5); // no second final call
  } finally {
    reader.close();
  }
});

Deno.test("values are the map's memory: the program may write them", () => {
  const loaded = load();
  const r = readIterator(loaded, "double_values", { map: "arr" });
  assert.equal(r.bytes.length, 0);
  for (let i = 0; i < 4; i++) {
    assert.deepEqual(
      mapOf(loaded, "arr").lookupValueCopy(u32(i)),
      u64(BigInt(20 * (i + 1))),
    );
  }
});

Deno.test("per-CPU values arrive CPU after CPU in percpu_value_buf", () => {
  const loaded = load(2);
  const pcpu = mapOf(loaded, "pcpu");
  // BPF_MAP_UPDATE_ELEM of a per-CPU map: one 8-byte slot per CPU
  pcpu.updateFromSyscall(u32(0), new Uint8Array([...u64(3n), ...u64(4n)]), 0);
  pcpu.updateFromSyscall(u32(1), new Uint8Array([...u64(5n), ...u64(6n)]), 0);
  const r = readIterator(loaded, "sum_percpu", { map: "pcpu" });
  assert.equal(r.text, "0=7\n1=11\n");
  // value_too_far reads 16 value bytes: fine with 2 CPUs (2 * 8)
  assert.ok(attachIterator(loaded, "value_too_far", { map: "pcpu" }));
});

Deno.test("bpf_iter_attach_map() checks: map type, map fd, buffer sizes", () => {
  const loaded = load(1);
  const refused = (name: string, map: string | undefined, errno: number) =>
    assert.throws(
      () => attachIterator(loaded, name, { map }),
      (e) => e instanceof IterAttachError && e.errno === errno,
      `${name} on ${map}`,
    );
  refused("dump_array", "queue", EINVAL); // no element iterator
  refused("dump_array", undefined, EBADF); // map_fd 0
  refused("value_too_far", "arr", EACCES); // reads 16 of an 8-byte value
  refused("sum_percpu", "pcpu", EACCES); // 16 > round_up(8, 8) * 1 CPU
  refused("count_maps", "arr", ENOTSUPP); // the bpf_map target: not run here
  refused("count_tasks", "arr", ENOTSUPP);
});
