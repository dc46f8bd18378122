/**
 * The dynptr, ring-buffer-dynptr, `bpf_for_each_map_elem` and timer helpers
 * (lib/kernel/dynptr_helpers.ts, for_each_map.ts, timer_helpers.ts), with
 * expectations computed by hand from kernel/bpf/helpers.c, ringbuf.c,
 * arraymap.c and hashtab.c: helpers called directly on a hand-made
 * machine, and the fixtures of tests/fixtures/runtime/dynptr run whole
 * (their `out` maps checked value by value against the comments there).
 */
import assert from "node:assert/strict";
import { BPF_TIMER, type BtfRecord } from "../../lib/btf/field_types.ts";
import { loadObject } from "../../lib/elf/object.ts";
import type { CallContext, HelperFn } from "../../lib/exec/state.ts";
import { ExecState } from "../../lib/exec/state.ts";
import { BpfCallbacks } from "../../lib/kernel/graph/callback.ts";
import { Kernel } from "../../lib/kernel/kernel.ts";
import {
  DYNPTR_HELPER as D,
  dynptrHelpers,
} from "../../lib/kernel/dynptr_helpers.ts";
import { createMap } from "../../lib/kernel/maps/create.ts";
import { type BpfMap, u32Key } from "../../lib/kernel/maps/map.ts";
import type { RingBuf } from "../../lib/kernel/maps/ringbuf.ts";
import { unwiredFieldFreer } from "../../lib/kernel/maps/special_fields.ts";
import {
  type LoadedObject,
  MapRegistry,
} from "../../lib/kernel/object_loader.ts";
import {
  kernelProgram,
  loadObjectWithRuntime,
} from "../../lib/kernel/object_runtime.ts";
import { testRun } from "../../lib/kernel/test_run.ts";
import { TIMER_HELPER as T, timersOf } from "../../lib/kernel/timer_helpers.ts";
import { fireDueTimers, timerFieldFreer } from "../../lib/kernel/timer_fire.ts";

const EINVAL = -22, E2BIG = -7, EBUSY = -16;

/** A machine with the given maps, and the helper table over it. */
function machine(
  attrs: {
    name: string;
    type: number;
    keySize: number;
    valueSize: number;
    maxEntries: number;
    record?: BtfRecord;
  }[],
) {
  const kernel = new Kernel({ cpus: 1 });
  const registry = new MapRegistry();
  const freer = timerFieldFreer(kernel, unwiredFieldFreer("test"));
  const maps = attrs.map((a) => {
    const map = createMap(kernel.space, { ...a, flags: 0 }, {
      record: a.record ?? null,
      fieldFreer: freer,
    });
    const address = kernel.space.mapRegion("kernel", 64, { name: a.name });
    registry.add(address, map);
    return { name: a.name, map, address, typeId: a.type };
  });
  const loaded = {
    kernel,
    maps,
    registry,
    callbacks: new BpfCallbacks(kernel.space),
  } as unknown as LoadedObject;
  const helpers = dynptrHelpers({ loaded, log: { printk: [] } });
  const stack = kernel.space.mapRegion("stack", 512, { name: "stack" });
  let now = 1000;
  const call = (id: number, ...args: bigint[]): bigint => {
    const vm: CallContext = {
      arg: (i) => BigInt.asUintN(64, args[i - 1] ?? 0n),
      argLo: (i) => Number(BigInt.asIntN(32, args[i - 1] ?? 0n)),
      argHi: (i) => Number(BigInt.asIntN(32, (args[i - 1] ?? 0n) >> 32n)),
      setR0: () => {},
      setR0Parts: () => {},
      insnIndex: 0,
      steps: 0,
      nowNs: () => now,
      mem: kernel.space,
      block: () => {},
      tailCall: () => false,
      owner: undefined,
    };
    const fn = helpers.get(id) as HelperFn;
    return BigInt(fn(vm) ?? 0);
  };
  return {
    kernel,
    maps,
    stack,
    call,
    setNow: (ns: number) => (now = ns),
    bytes: (addr: bigint, n: number) => kernel.space.readBytes(addr, n),
  };
}

const le = (n: bigint, size: number): number[] =>
  Array.from({ length: size }, (_, i) => Number((n >> BigInt(8 * i)) & 0xffn));

Deno.test("local dynptrs: the kernel's 16 bytes, bounds, flags, read-only bit, offset", () => {
  const m = machine([{
    name: "buf",
    type: 2,
    keySize: 4,
    valueSize: 16,
    maxEntries: 1,
  }]);
  const buf = m.maps[0].map.lookup(u32Key(0), 0)!;
  m.kernel.space.writeBytes(
    buf,
    Uint8Array.from({ length: 16 }, (_, i) => i + 1),
  );
  const d = m.stack + 256n, dst = m.stack + 300n, src = m.stack + 320n;
  assert.equal(m.call(D.dynptr_from_mem, buf, 16n, 0n, d), 0n);
  // data, then size 16 | LOCAL (1) << 28, then offset 0
  assert.deepEqual([...m.bytes(d, 16)], [
    ...le(buf, 8),
    0x10,
    0,
    0,
    0x10,
    0,
    0,
    0,
    0,
  ]);
  m.kernel.space.writeBytes(src, Uint8Array.of(0xa1, 0xa2, 0xa3));
  assert.equal(m.call(D.dynptr_write, d, 13n, src, 3n, 0n), 0n); // 13 + 3 = 16 fits
  assert.equal(m.call(D.dynptr_write, d, 14n, src, 3n, 0n), BigInt(E2BIG));
  assert.equal(m.call(D.dynptr_write, d, 0n, src, 3n, 1n), BigInt(EINVAL));
  assert.equal(m.call(D.dynptr_read, dst, 4n, d, 12n, 0n), 0n);
  assert.deepEqual([...m.bytes(dst, 4)], [13, 0xa1, 0xa2, 0xa3]);
  assert.equal(m.call(D.dynptr_read, dst, 17n, d, 0n, 0n), BigInt(E2BIG));
  // offset > size - len with a huge u32 offset must not wrap into range
  assert.equal(
    m.call(D.dynptr_read, dst, 1n, d, 0xffffffffn, 0n),
    BigInt(E2BIG),
  );
  assert.equal(m.call(D.dynptr_read, dst, 4n, d, 0n, 2n), BigInt(EINVAL));
  assert.equal(m.call(D.dynptr_data, d, 12n, 4n), buf + 12n);
  assert.equal(m.call(D.dynptr_data, d, 13n, 4n), 0n);
  // a dynptr the kernel trimmed (bpf_dynptr_adjust): offset 4, size 8
  m.kernel.space.write(d + 8n, 4, BigInt((8 | 1 << 28) >>> 0));
  m.kernel.space.write(d + 12n, 4, 4n);
  assert.equal(m.call(D.dynptr_read, dst, 2n, d, 0n, 0n), 0n);
  assert.deepEqual([...m.bytes(dst, 2)], [5, 6]);
  assert.equal(m.call(D.dynptr_data, d, 7n, 1n), buf + 11n);
  assert.equal(m.call(D.dynptr_data, d, 8n, 1n), 0n);
  // read-only bit: no writes, no data slice, reads fine
  m.kernel.space.write(d + 8n, 4, BigInt((8 | 1 << 28 | 2 ** 31) >>> 0));
  assert.equal(m.call(D.dynptr_write, d, 0n, src, 1n, 0n), BigInt(EINVAL));
  assert.equal(m.call(D.dynptr_data, d, 0n, 1n), 0n);
  assert.equal(m.call(D.dynptr_read, dst, 1n, d, 0n, 0n), 0n);
  // a refused from_mem nulls the dynptr; a null dynptr reads -EINVAL
  assert.equal(m.call(D.dynptr_from_mem, buf, 16n, 1n, d), BigInt(EINVAL));
  assert.deepEqual([...m.bytes(d, 16)], new Array(16).fill(0));
  assert.equal(m.call(D.dynptr_read, dst, 1n, d, 0n, 0n), BigInt(EINVAL));
  assert.equal(m.call(D.dynptr_from_mem, buf, 1n << 24n, 0n, d), BigInt(E2BIG));
  assert.equal(m.call(D.dynptr_from_mem, buf, 0n, 0n, d), 0n); // size 0 is fine
  assert.equal(m.call(D.dynptr_data, d, 0n, 0n), buf);
});

Deno.test("ring buffer dynptrs: reserve, write, submit / discard, and failures null the dynptr", () => {
  const m = machine([{
    name: "rb",
    type: 27,
    keySize: 0,
    valueSize: 0,
    maxEntries: 4096,
  }]);
  const rb = m.maps[0].map as RingBuf;
  const rbAddr = m.maps[0].address;
  const d = m.stack + 256n, src = m.stack + 320n;
  assert.equal(m.call(D.ringbuf_reserve_dynptr, rbAddr, 12n, 0n, d), 0n);
  const sample = m.kernel.space.read(d, 8);
  assert.ok(rb.isReserved(sample));
  // size 12 | RINGBUF (2) << 28, offset 0
  assert.deepEqual([...m.bytes(d + 8n, 8)], [12, 0, 0, 0x20, 0, 0, 0, 0]);
  m.kernel.space.writeBytes(src, Uint8Array.of(7, 8, 9));
  assert.equal(m.call(D.dynptr_write, d, 9n, src, 3n, 0n), 0n);
  assert.equal(m.call(D.ringbuf_submit_dynptr, d, 0n), 0n);
  assert.deepEqual([...m.bytes(d, 16)], new Array(16).fill(0));
  assert.equal(m.call(D.ringbuf_submit_dynptr, d, 0n), 0n); // null: no-op
  assert.deepEqual(rb.consume().map((s) => [...s.subarray(9)]), [[7, 8, 9]]);
  // flags, a size over DYNPTR_MAX_SIZE, a ring too small: null and an errno
  m.kernel.space.writeBytes(d, new Uint8Array(16).fill(0xff));
  assert.equal(
    m.call(D.ringbuf_reserve_dynptr, rbAddr, 8n, 1n, d),
    BigInt(EINVAL),
  );
  assert.deepEqual([...m.bytes(d, 16)], new Array(16).fill(0));
  assert.equal(
    m.call(D.ringbuf_reserve_dynptr, rbAddr, 1n << 24n, 0n, d),
    BigInt(E2BIG),
  );
  assert.equal(
    m.call(D.ringbuf_reserve_dynptr, rbAddr, 4096n, 0n, d),
    BigInt(EINVAL),
  );
  assert.equal(m.call(D.ringbuf_discard_dynptr, d, 0n), 0n);
  // discard: the record is consumed as nothing, and its region is gone
  assert.equal(m.call(D.ringbuf_reserve_dynptr, rbAddr, 8n, 0n, d), 0n);
  const s2 = m.kernel.space.read(d, 8);
  assert.equal(m.call(D.ringbuf_discard_dynptr, d, 0n), 0n);
  assert.equal(rb.isReserved(s2), false);
  assert.throws(() => m.kernel.space.read(s2, 1));
  assert.deepEqual(rb.consume(), []);
  assert.equal(rb.query(0), 0n);
});

const TIMER_RECORD: BtfRecord = {
  cnt: 1,
  fieldMask: BPF_TIMER,
  spinLockOff: -22,
  resSpinLockOff: -22,
  timerOff: 0,
  wqOff: -22,
  refcountOff: -22,
  taskWorkOff: -22,
  fields: [{ type: BPF_TIMER, offset: 0, size: 16 }],
};

Deno.test("timers: init / set_callback / start / cancel return codes; update and delete free the timer", () => {
  const m = machine([
    {
      name: "arr",
      type: 2,
      keySize: 4,
      valueSize: 24,
      maxEntries: 2,
      record: TIMER_RECORD,
    },
    {
      name: "hash",
      type: 1,
      keySize: 4,
      valueSize: 24,
      maxEntries: 2,
      record: TIMER_RECORD,
    },
  ]);
  const [arr, hash] = m.maps;
  const t0 = arr.map.lookup(u32Key(0), 0)!;
  const cb = 0x1234n; // never called here: nothing fires
  assert.equal(m.call(T.timer_start, t0, 10n, 0n), BigInt(EINVAL));
  assert.equal(m.call(T.timer_cancel, t0), BigInt(EINVAL));
  assert.equal(m.call(T.timer_set_callback, t0, cb), BigInt(EINVAL));
  assert.equal(m.call(T.timer_init, t0, arr.address, 2n), BigInt(EINVAL)); // PROCESS_CPUTIME
  assert.equal(m.call(T.timer_init, t0, arr.address, 17n), BigInt(EINVAL));
  assert.equal(m.call(T.timer_init, t0, arr.address, 7n), 0n); // BOOTTIME
  const hrtimer = m.kernel.space.read(t0, 8);
  assert.notEqual(hrtimer, 0n);
  assert.equal(m.call(T.timer_init, t0, arr.address, 1n), BigInt(EBUSY));
  assert.equal(m.call(T.timer_start, t0, 10n, 0n), BigInt(EINVAL)); // no callback yet
  assert.equal(m.call(T.timer_set_callback, t0, cb), 0n);
  assert.equal(m.call(T.timer_start, t0, 10n, 4n), BigInt(EINVAL));
  m.setNow(5000);
  assert.equal(m.call(T.timer_start, t0, 10n, 0n), 0n);
  const timers = timersOf(m.kernel);
  assert.equal(timers.timers.get(hrtimer)!.expires, 5010n);
  assert.equal(m.call(T.timer_start, t0, 777n, 1n), 0n); // BPF_F_TIMER_ABS
  assert.equal(timers.nextExpiry(), 777n);
  assert.equal(m.call(T.timer_cancel, t0), 1n);
  assert.equal(m.call(T.timer_cancel, t0), 0n);
  assert.equal(m.call(T.timer_start, t0, 10n, 0n), BigInt(EINVAL)); // cancel dropped the callback
  // overwriting the array element frees the timer: the field reads zero again
  assert.equal(m.call(T.timer_set_callback, t0, cb), 0n);
  assert.equal(m.call(T.timer_start, t0, 10n, 0n), 0n);
  assert.equal(arr.map.update(u32Key(0), new Uint8Array(24), 0, 0), 0);
  assert.equal(m.kernel.space.read(t0, 8), 0n);
  assert.equal(timers.timers.size, 0);
  assert.equal(timers.nextExpiry(), null);
  assert.throws(() => m.kernel.space.read(hrtimer, 1)); // bpf_hrtimer freed
  assert.equal(m.call(T.timer_start, t0, 10n, 0n), BigInt(EINVAL));
  assert.equal(m.call(T.timer_init, t0, arr.address, 1n), 0n);
  // a hash element's timer dies with the element
  assert.equal(hash.map.update(u32Key(3), new Uint8Array(24), 0, 0), 0);
  const h = hash.map.lookup(u32Key(3), 0)!;
  assert.equal(m.call(T.timer_init, h, hash.address, 1n), 0n);
  assert.equal(timers.timers.size, 2);
  assert.equal(hash.map.delete(u32Key(3), 0), 0);
  assert.equal(timers.timers.size, 1);
});

const FIXTURES =
  new URL("../fixtures/runtime/dynptr/", import.meta.url).pathname;

/** Runs `program` of fixture `file` on a fresh 2-CPU kernel; returns `out` as signed numbers. */
function runFixture(file: string, program: string) {
  const obj = loadObject(Deno.readFileSync(FIXTURES + file), file);
  const loaded = loadObjectWithRuntime(new Kernel({ cpus: 2 }), obj);
  const result = testRun(loaded, program);
  const map = (name: string): BpfMap =>
    loaded.maps.find((m) => m.name === name)!.map!;
  const out = map("out").dump().map((e) =>
    Number(new DataView(e.value.buffer).getBigInt64(0, true))
  );
  return { loaded, result, out, map };
}

Deno.test("bpf_for_each_map_elem on array, per-CPU and LRU maps (for_each.o)", async (t) => {
  await t.step("array: flags, early stop, full walk", () => {
    const { result, out } = runFixture("for_each.o", "array_stop");
    assert.deepEqual(out, [3, EINVAL, 0, 60, 3, 5, 150, 0]);
    assert.equal(result.retval, 8);
  });
  await t.step("per-CPU array: this CPU's copy", () => {
    const { result, out } = runFixture("for_each.o", "percpu_array_all");
    assert.deepEqual(out.slice(0, 2), [3, 7]);
    assert.equal(result.retval, 3);
  });
  await t.step("hash: the callback deletes odd keys", () => {
    const { result, out } = runFixture("for_each.o", "hash_delete_in_cb");
    assert.deepEqual(out.slice(0, 5), [4, 100 + 200 + 300 + 400, 2, 600, 6]);
    assert.equal(result.retval, 4);
  });
  await t.step("per-CPU hash, LRU hash, empty map", () => {
    assert.deepEqual(runFixture("for_each.o", "percpu_hash").out.slice(0, 3), [
      2,
      11,
      7,
    ]);
    assert.deepEqual(runFixture("for_each.o", "lru_hash").out.slice(0, 2), [
      3,
      33,
    ]);
    assert.deepEqual(runFixture("for_each.o", "empty_hash").out[0], 0);
  });
});

Deno.test("timers in a whole program (timer.o), and firing them", async (t) => {
  await t.step("state machine", () => {
    const { out } = runFixture("timer.o", "timer_states");
    assert.deepEqual(out.slice(0, 17), [
      EINVAL,
      EINVAL,
      EINVAL,
      EINVAL,
      EINVAL,
      0,
      EBUSY,
      EINVAL,
      0,
      EINVAL,
      0,
      0,
      0,
      0,
      1,
      EINVAL,
      0,
    ]);
  });
  await t.step("hash element, absolute expiry", () => {
    assert.deepEqual(runFixture("timer.o", "timer_hash_abs").out.slice(0, 5), [
      0,
      0,
      0,
      1,
      0,
    ]);
  });
  await t.step(
    "nothing fires during the run; fireDueTimers runs the callback",
    () => {
      const { loaded, map, result } = runFixture("timer.o", "timer_arm");
      assert.equal(result.retval, 0);
      const kernel = loaded.kernel;
      const timers = timersOf(kernel);
      const expiry = timers.nextExpiry()!;
      assert.ok(expiry >= 100_000_000_000n && expiry < 100_000_100_000n);
      const lp = kernelProgram(loaded, "timer_arm");
      const callers: number[] = [];
      const caller = (cpu: number) => {
        callers.push(cpu);
        return new ExecState(lp.program, kernel.space, {
          helpers: lp.runtime!.helpers,
          kfuncs: lp.runtime!.kfuncs,
          owner: { cpu: kernel.cpus[cpu], level: 0 },
          clock: () => Number(expiry),
        });
      };
      const value = () => {
        const v = map("timers").lookupValueCopy(u32Key(1)) as Uint8Array;
        const dv = new DataView(v.buffer);
        return [dv.getBigUint64(16, true), dv.getBigInt64(24, true)];
      };
      assert.equal(fireDueTimers(kernel, Number(expiry) - 1, caller), 0);
      assert.deepEqual(value(), [0n, 0n]);
      // CPU 0 with interrupts off: the timer stays due, deferred once
      const irqsOff = () => false;
      assert.equal(fireDueTimers(kernel, Number(expiry), caller, irqsOff), 0);
      assert.equal(fireDueTimers(kernel, Number(expiry), caller, irqsOff), 0);
      assert.equal(timers.deferrals, 1);
      assert.equal(timers.nextExpiry(), expiry);
      assert.deepEqual(callers, []);
      assert.equal(fireDueTimers(kernel, Number(expiry), caller), 1);
      // 1000 + key 1; cancelling its own timer from its callback: -EDEADLK
      assert.deepEqual(value(), [1001n, -35n]);
      assert.deepEqual(callers, [0]); // armed by the test run on CPU 0
      // the callback re-armed it 50 s on
      assert.equal(timers.nextExpiry(), expiry + 50_000_000_000n);
      assert.equal(
        fireDueTimers(kernel, Number(expiry) + 50_000_000_000, caller),
        1,
      );
      assert.deepEqual(value(), [2002n, -35n]);
    },
  );
});
