/**
 * Memory faults: every refused access is a MemoryFault carrying the
 * instruction, the address, the region, the offset, the size and the
 * direction — checked field by field against hand-computed values from
 * the documented address layout (region id n starts at 0xffff8880_00000000
 * + n << 32; runProgram maps mem, then ctx, then the stack).
 */
import {
  deepStrictEqual as assertEquals,
  ok,
  throws,
} from "node:assert/strict";
import {
  alu64i,
  call,
  exit,
  lddw,
  ldx,
  mov,
  movr,
  type Part,
  program,
  run,
  st,
  stx,
} from "./build.ts";
import { compileProgram } from "../../lib/exec/compile.ts";
import { MemoryFault } from "../../lib/exec/fault.ts";
import { step } from "../../lib/exec/interp.ts";
import { AddressSpace } from "../../lib/exec/memory.ts";
import { ExecState, type HelperFn } from "../../lib/exec/state.ts";
import type { RunOptions } from "../../lib/exec/run.ts";

/** Runs a program that must fault and returns the fault. */
function faultOf(parts: Part[], opts: RunOptions = {}): MemoryFault {
  try {
    run(parts, opts);
  } catch (e) {
    if (e instanceof MemoryFault) return e;
    throw e;
  }
  throw new Error("the program did not fault");
}

/** The fault's fields that do not depend on object identity. */
function fields(f: MemoryFault) {
  return {
    insnIndex: f.insnIndex,
    addressHex: f.addressHex,
    region: f.region &&
      { kind: f.region.kind, name: f.region.name, size: f.region.size },
    offset: f.offset,
    size: f.size,
    access: f.access,
    reason: f.reason,
  };
}

Deno.test("out-of-bounds stack accesses", async (t) => {
  await t.step("below the stack: r10 - 520 is offset -8 of stack[0]", () => {
    const f = faultOf([mov(0, 0), ldx(8, 0, 10, -520), exit()]);
    assertEquals(fields(f), {
      insnIndex: 1,
      addressHex: "0xffff8880fffffff8", // stack is region 1: 0xffff888100000000 - 8
      region: { kind: "stack", name: "stack[0]", size: 512 },
      offset: -8,
      size: 8,
      access: "read",
      reason: "out-of-bounds",
    });
  });
  await t.step(
    "below the stack through a pointer that already is below it",
    () => {
      // r1 = r10 - 520: the low half wrapped below the region start
      const f = faultOf([
        movr(1, 10),
        alu64i("add", 1, -520),
        ldx(4, 0, 1, 4),
        exit(),
      ]);
      assertEquals([f.insnIndex, f.addressHex, f.region?.name, f.offset], [
        2,
        "0xffff8880fffffffc",
        "stack[0]",
        -4,
      ]);
    },
  );
  await t.step("at the top: a store at r10 + 0 is offset 512", () => {
    const f = faultOf([stx(4, 10, 1, 0), exit()]);
    assertEquals(fields(f), {
      insnIndex: 0,
      addressHex: "0xffff888100000200",
      region: { kind: "stack", name: "stack[0]", size: 512 },
      offset: 512,
      size: 4,
      access: "write",
      reason: "out-of-bounds",
    });
  });
  await t.step("straddling the top: 8 bytes at r10 - 4", () => {
    const f = faultOf([mov(0, 0), mov(0, 0), ldx(8, 0, 10, -4), exit()]);
    assertEquals([f.insnIndex, f.offset, f.size, f.reason], [
      2,
      508,
      8,
      "out-of-bounds",
    ]);
  });
  await t.step("past the end of mem", () => {
    const f = faultOf([ldx(4, 0, 1, 2), exit()], { mem: new Uint8Array(5) });
    assertEquals(fields(f), {
      insnIndex: 0,
      addressHex: "0xffff888100000002", // mem is region 1 when given
      region: { kind: "mem", name: "mem", size: 5 },
      offset: 2,
      size: 4,
      access: "read",
      reason: "out-of-bounds",
    });
  });
});

Deno.test("a store to a read-only ctx faults; a load from it works", async (t) => {
  const ctx = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);
  await t.step("ldx from ctx", () => {
    assertEquals(run([ldx(4, 0, 1, 4), exit()], { ctx }).r0, 0x08070605n);
  });
  await t.step("st to ctx", () => {
    const f = faultOf([mov(0, 0), st(4, 1, 4, 1), exit()], { ctx });
    assertEquals(fields(f), {
      insnIndex: 1,
      addressHex: "0xffff888100000004",
      region: { kind: "ctx", name: "ctx", size: 8 },
      offset: 4,
      size: 4,
      access: "write",
      reason: "not-writable",
    });
  });
  await t.step("ctxWritable maps it writable", () => {
    const r = run([st(4, 1, 0, 9), ldx(4, 0, 1, 0), exit()], {
      ctx,
      ctxWritable: true,
    });
    assertEquals(r.r0, 9n);
  });
});

Deno.test("unmapped addresses", async (t) => {
  await t.step("NULL", () => {
    const f = faultOf([mov(1, 0), ldx(1, 0, 1, 0), exit()]);
    assertEquals(fields(f), {
      insnIndex: 1,
      addressHex: "0x0000000000000000",
      region: undefined,
      offset: 0,
      size: 1,
      access: "read",
      reason: "unmapped",
    });
  });
  await t.step("a region id never mapped", () => {
    const f = faultOf([
      ...lddw(1, 0xffff8890_00000010n),
      st(8, 1, 0, 0),
      exit(),
    ]);
    assertEquals([f.insnIndex, f.addressHex, f.region, f.access, f.reason], [
      2,
      "0xffff889000000010",
      undefined,
      "write",
      "unmapped",
    ]);
  });
});

Deno.test("use after unmapRegion", async (t) => {
  const space = new AddressSpace();
  const addr = space.mapRegion("alloc", 16, { name: "obj" });
  await t.step("before unmapping the object is usable", () => {
    const r = run([lddw(1, addr), st(8, 1, 8, 5), ldx(8, 0, 1, 8), exit()], {
      space,
    });
    assertEquals(r.r0, 5n);
  });
  await t.step("after unmapping, the same access is use-after-free", () => {
    space.unmapRegion(addr);
    const f = faultOf([lddw(1, addr), ldx(8, 0, 1, 8), exit()], { space });
    assertEquals(fields(f), {
      insnIndex: 2,
      addressHex: "0xffff888100000008",
      region: { kind: "alloc", name: "obj", size: 16 },
      offset: 8,
      size: 8,
      access: "read",
      reason: "use-after-free",
    });
  });
  await t.step("unmapping again is a double free", () => {
    throws(
      () => space.unmapRegion(addr),
      (e) =>
        e instanceof MemoryFault && e.reason === "double-free" &&
        e.region?.name === "obj",
    );
  });
});

Deno.test("a faulted state records where and stays faulted", () => {
  const space = new AddressSpace();
  const prog = compileProgram(
    program(mov(0, 1), mov(1, 0), ldx(8, 0, 1, 0), exit()),
  );
  const state = new ExecState(prog, space);
  assertEquals(step(state, 100), "faulted");
  assertEquals([state.pc, state.steps, state.status], [2, 2, "faulted"]);
  ok(state.error instanceof MemoryFault);
  assertEquals(state.error.insnIndex, 2);
  assertEquals(step(state, 100), "faulted");
  assertEquals(state.steps, 2);
});

Deno.test("a helper's bad access is pinned to the call instruction", () => {
  const helpers = new Map<number, HelperFn>([[
    77,
    (vm) => vm.mem.read(vm.arg(1), 8),
  ]]);
  const f = faultOf([mov(1, 0), mov(0, 0), call(77), exit()], { helpers });
  assertEquals([f.insnIndex, f.reason, f.size, f.addressHex], [
    2,
    "unmapped",
    8,
    "0x0000000000000000",
  ]);
  ok(
    f.message.startsWith(
      "insn 2: unmapped: read of size 8 at 0x0000000000000000",
    ),
  );
});
