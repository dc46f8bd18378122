/**
 * The AddressSpace API used by helpers, maps and the allocator: the
 * documented address layout, bigint read/write helpers, permissions,
 * unmapping and id recycling.
 */
import {
  deepStrictEqual as assertEquals,
  ok,
  throws,
} from "node:assert/strict";
import { ExecError, MemoryFault } from "../../lib/exec/fault.ts";
import {
  AddressSpace,
  MAX_REGION_ID,
  PERM_WRITE,
  regionAddress,
} from "../../lib/exec/memory.ts";
import { exit, lddw, ldx, run, st } from "./build.ts";

Deno.test("layout: region n starts at 0xffff8880_00000000 + n << 32", async (t) => {
  const space = new AddressSpace();
  const a = space.mapRegion("map_value", 64, { name: "counts[0]" });
  const b = space.mapRegion("alloc", 8);
  await t.step("first and second region addresses", () => {
    assertEquals(a, 0xffff888100000000n);
    assertEquals(b, 0xffff888200000000n);
    assertEquals(regionAddress(2), b);
  });
  await t.step("regionAt finds the region over its whole window", () => {
    assertEquals(space.regionAt(a + 63n)?.name, "counts[0]");
    assertEquals(space.regionAt(a - 1n)?.name, "counts[0]"); // negative offsets stay with it
    assertEquals(space.regionAt(b)?.name, "alloc#2"); // default name
    assertEquals(space.regionAt(0n), undefined);
    assertEquals(space.regionAt(0xffff888000000000n), undefined); // id 0 is never mapped
    assertEquals(space.offsetOf(a - 8n), -8);
  });
});

Deno.test("bigint helpers read and write the region's bytes", async (t) => {
  const space = new AddressSpace();
  const backing = new Uint8Array(16);
  const addr = space.mapRegion("mem", backing, { name: "buf" });
  await t.step(
    "write(4 bytes) at offset 3 is little-endian in the backing array",
    () => {
      space.write(addr + 3n, 4, 0x11223344n);
      assertEquals([...backing.subarray(3, 7)], [0x44, 0x33, 0x22, 0x11]);
      assertEquals(space.read(addr + 3n, 4), 0x11223344n);
      assertEquals(space.read(addr + 4n, 2), 0x2233n);
    },
  );
  await t.step("8-byte values round-trip as unsigned bigints", () => {
    space.write(addr + 8n, 8, -2n);
    assertEquals(space.read(addr + 8n, 8), 0xfffffffffffffffen);
  });
  await t.step("readBytes copies, slice shares", () => {
    const copy = space.readBytes(addr + 3n, 2);
    copy[0] = 0;
    assertEquals(backing[3], 0x44);
    space.slice(addr, 2, PERM_WRITE)[1] = 0xaa;
    assertEquals(backing[1], 0xaa);
  });
  await t.step("writeBytes and readCString", () => {
    space.writeBytes(addr, new TextEncoder().encode("hi!\0x"));
    assertEquals(space.readCString(addr, 16), "hi!");
    assertEquals(space.readCString(addr, 2), "hi");
  });
  await t.step(
    "a program sees what a helper wrote, and the other way round",
    () => {
      const r = run([
        lddw(1, addr),
        ldx(1, 0, 1, 2),
        st(1, 1, 15, 0x5a),
        exit(),
      ], { space });
      assertEquals(r.r0, BigInt("!".charCodeAt(0)));
      assertEquals(backing[15], 0x5a);
    },
  );
  await t.step(
    "out-of-bounds helper access faults without an instruction",
    () => {
      throws(
        () => space.read(addr + 12n, 8),
        (e) =>
          e instanceof MemoryFault && e.insnIndex === -1 && e.offset === 12 &&
          e.reason === "out-of-bounds",
      );
    },
  );
});

Deno.test("permissions", async (t) => {
  const space = new AddressSpace();
  const ro = space.mapRegion("ctx", 8, { write: false });
  const wo = space.mapRegion("ringbuf", 8, { read: false });
  await t.step("a read-only region refuses writes", () => {
    throws(
      () => space.write(ro, 1, 1n),
      (e) => e instanceof MemoryFault && e.reason === "not-writable",
    );
    assertEquals(space.read(ro, 1), 0n);
  });
  await t.step("a write-only region refuses reads", () => {
    throws(
      () => space.read(wo, 1),
      (e) => e instanceof MemoryFault && e.reason === "not-readable",
    );
    space.write(wo, 1, 1n);
  });
});

Deno.test("unmapRegion", async (t) => {
  const space = new AddressSpace();
  const addr = space.mapRegion("alloc", 8);
  await t.step("only the start of a region can be unmapped", () => {
    throws(() => space.unmapRegion(addr + 1n), ExecError);
  });
  await t.step("a freed region keeps its id and its name for reports", () => {
    space.unmapRegion(addr);
    const region = space.regionAt(addr);
    ok(region !== undefined && !region.live);
    assertEquals([region.name, region.size], ["alloc#1", 8]);
    assertEquals(space.mapRegion("alloc", 8), regionAddress(2)); // not reused yet
  });
});

Deno.test("ids are recycled only when exhausted, oldest freed first", () => {
  const space = new AddressSpace();
  for (let i = 1; i <= MAX_REGION_ID; i++) space.mapRegionId("alloc", 0);
  assertEquals(MAX_REGION_ID, 0x777f); // windows up to 0xffffffff_ffffffff
  throws(() => space.mapRegionId("alloc", 0), ExecError);
  space.unmapRegion(regionAddress(5));
  space.unmapRegion(regionAddress(3));
  assertEquals(space.mapRegionId("alloc", 0), 5);
  assertEquals(space.mapRegionId("alloc", 0), 3);
  assertEquals(regionAddress(MAX_REGION_ID), 0xffffffff00000000n);
});
