/**
 * Verifier rules one at a time: hand-written programs (kernel assembly
 * syntax) with the verdict and decisive message Linux 6.18 gives them —
 * each message was checked against the real kernel through
 * ../shared/oracle (see tests/fixtures/verifier/INVENTORY.md for the same
 * rules compiled from C).
 */
import assert from "node:assert/strict";
import { verifyText } from "./program.ts";

const HASH = {
  m: { type: "hash" as const, keySize: 4, valueSize: 8, maxEntries: 4 },
};
const ARRAY = {
  a: { type: "array" as const, keySize: 4, valueSize: 8, maxEntries: 4 },
};

function rejects(text: string, message: string, maps = {}): void {
  const r = verifyText(text, "sched_cls", maps);
  assert.equal(r.verdict, "reject", r.log);
  assert.equal(r.message, message, r.log);
}

function accepts(text: string, maps = {}): void {
  const r = verifyText(text, "sched_cls", maps);
  assert.equal(r.verdict, "accept", r.log);
}

Deno.test("registers: reads of unset registers and writes to r10", async (t) => {
  await t.step("R0 !read_ok at exit", () => rejects("exit", "R0 !read_ok"));
  await t.step(
    "R2 !read_ok as an ALU source",
    () => rejects("r0 = r2\nexit", "R2 !read_ok"),
  );
  await t.step(
    "frame pointer is read only",
    () => rejects("r10 = 0\nr0 = 0\nexit", "frame pointer is read only"),
  );
  await t.step("returning a constant is fine", () => accepts("r0 = 0\nexit"));
});

Deno.test("ALU: constant checks and pointer arithmetic", async (t) => {
  await t.step(
    "div by zero",
    () => rejects("r0 = 1\nr0 /= 0\nexit", "div by zero"),
  );
  await t.step(
    "invalid shift",
    () => rejects("r0 = 1\nr0 <<= 64\nexit", "invalid shift 64"),
  );
  await t.step("bitwise op on a pointer", () =>
    rejects(
      "r0 = r10\nr0 &= 7\nexit",
      "R0 bitwise operator &= on pointer prohibited",
    ));
  await t.step(
    "32-bit pointer arithmetic",
    () =>
      rejects(
        "r1 = r10\nw1 += 8\nr0 = 0\nexit",
        "R1 32-bit pointer arithmetic prohibited",
      ),
  );
  await t.step("multiplying a pointer", () =>
    rejects(
      "r1 = r10\nr1 *= 2\nr0 = 0\nexit",
      "R1 pointer arithmetic with *= operator prohibited",
    ));
  await t.step("map pointer arithmetic", () =>
    rejects(
      "r1 = 0x7fff0000 ll\nr1 += 8\nr0 = 0\nexit",
      "R1 pointer arithmetic on map_ptr prohibited",
      HASH,
    ));
  await t.step("scalar minus pointer", () =>
    rejects(
      "r1 = 1\nr1 -= r10\nr0 = 0\nexit",
      "R1 tried to subtract pointer from scalar",
    ));
});

Deno.test("stack: bounds, spills and fills", async (t) => {
  await t.step("write below the 512-byte stack", () =>
    rejects(
      "*(u64 *)(r10 -520) = 0\nr0 = 0\nexit",
      "invalid write to stack R10 off=-520 size=8",
    ));
  await t.step("write at or above fp", () =>
    rejects(
      "*(u32 *)(r10 +0) = 0\nr0 = 0\nexit",
      "invalid write to stack R10 off=0 size=4",
    ));
  await t.step("a spilled pointer fills back as the pointer", () =>
    accepts(
      "*(u64 *)(r10 -8) = r1\nr2 = *(u64 *)(r10 -8)\nr0 = *(u32 *)(r2 +0)\nexit",
    ));
  await t.step("a partial fill of a spilled pointer", () =>
    rejects(
      "*(u64 *)(r10 -8) = r1\nr2 = *(u32 *)(r10 -8)\nr0 = 0\nexit",
      "invalid size of register fill",
    ));
  await t.step(
    "uninitialised stack reads are allowed for root",
    () => accepts("r0 = *(u64 *)(r10 -8)\nexit"),
  );
});

const LOOKUP = `*(u32 *)(r10 -4) = 0
r2 = r10
r2 += -4
r1 = 0x7fff0000 ll
call bpf_map_lookup_elem#1
`;

Deno.test("maps: lookup results, NULL checks, value bounds", async (t) => {
  await t.step("dereference without a NULL check", () =>
    rejects(
      LOOKUP + "r0 = *(u64 *)(r0 +0)\nexit",
      "R0 invalid mem access 'map_value_or_null'",
      HASH,
    ));
  await t.step("after a NULL check", () =>
    accepts(
      LOOKUP +
        "if r0 == 0 goto out\nr0 = *(u64 *)(r0 +0)\nexit\nout:\nr0 = 0\nexit",
      HASH,
    ));
  await t.step("past the end of the value", () =>
    rejects(
      LOOKUP +
        "if r0 == 0 goto out\nr0 = *(u64 *)(r0 +8)\nexit\nout:\nr0 = 0\nexit",
      "R0 min value is outside of the allowed memory range",
      HASH,
    ));
  await t.step(
    "a constant in-bounds key into an array needs no check",
    () => accepts(LOOKUP + "r0 = *(u64 *)(r0 +0)\nexit", ARRAY),
  );
  await t.step("a variable index must be bounded", () =>
    rejects(
      LOOKUP +
        "if r0 == 0 goto out\nr1 = *(u32 *)(r0 +0)\nr0 += r1\nr0 = *(u8 *)(r0 +0)\nexit\nout:\nr0 = 0\nexit",
      "R0 unbounded memory access, make sure to bounds check any such access",
      HASH,
    ));
  await t.step("a bounded variable index is fine", () =>
    accepts(
      LOOKUP +
        "if r0 == 0 goto out\nr1 = *(u32 *)(r0 +0)\nr1 &= 7\nr0 += r1\nr0 = *(u8 *)(r0 +0)\nexit\nout:\nr0 = 0\nexit",
      HASH,
    ));
  await t.step("the map argument must be a map", () =>
    rejects(
      "r1 = 0\nr2 = r10\nr2 += -8\ncall bpf_map_lookup_elem#1\nr0 = 0\nexit",
      "R1 type=scalar expected=map_ptr",
    ));
  await t.step(
    "caller-saved registers are cleared by a call",
    () => rejects(LOOKUP + "r0 = r3\nexit", "R3 !read_ok", HASH),
  );
});

Deno.test("context and packet access", async (t) => {
  await t.step("a bad context offset", () =>
    rejects(
      "r0 = *(u32 *)(r1 +1000)\nexit",
      "invalid bpf_context access off=1000 size=4",
    ));
  await t.step("packet access needs a range check", () =>
    rejects(
      "r2 = *(u32 *)(r1 +76)\nr0 = *(u8 *)(r2 +0)\nexit",
      "R2 offset is outside of the packet",
    ));
  await t.step("packet access after data + 1 <= data_end", () =>
    accepts(
      "r2 = *(u32 *)(r1 +76)\nr3 = *(u32 *)(r1 +80)\nr4 = r2\nr4 += 1\nif r4 > r3 goto out\nr0 = *(u8 *)(r2 +0)\nexit\nout:\nr0 = 0\nexit",
    ));
});

Deno.test("branches, loops and the complexity limit", async (t) => {
  await t.step(
    "a dead branch is not explored",
    () =>
      accepts("r0 = 0\nif r0 == 0 goto ok\nr0 = *(u64 *)(r0 +0)\nok:\nexit"),
  );
  await t.step(
    "a bounded loop",
    () => accepts("r0 = 0\nloop:\nr0 += 1\nif r0 < 10 goto loop\nexit"),
  );
  await t.step("an infinite loop is found", () => {
    const r = verifyText("r0 = 0\nloop:\nif r0 == 0 goto loop\nexit");
    assert.equal(r.verdict, "reject");
    assert.match(r.log, /infinite loop detected at insn 1/);
    assert.equal(r.errno, -22);
  });
  await t.step("a loop too long for the limit", () => {
    const r = verifyText(
      "r0 = 0\nloop:\nr0 += 1\nif r0 < 10000000 goto loop\nexit",
      "sched_cls",
      {},
      0,
    );
    assert.equal(r.errno, -7);
    assert.equal(
      r.message,
      "BPF program is too large. Processed 1000001 insn",
    );
  });
});

Deno.test("exit: return ranges per program type", async (t) => {
  await t.step("cgroup_skb must return 0 or 1", () => {
    const r = verifyText("r0 = 2\nexit", "cgroup_skb");
    assert.equal(
      r.message,
      "At program exit the register R0 has smin=2 smax=2 should have been in [0, 1]",
    );
  });
  await t.step("a pointer return from cgroup_skb", () => {
    const r = verifyText("r0 = r10\nexit", "cgroup_skb");
    assert.equal(
      r.message,
      "At program exit the register R0 is not a known value (fp)",
    );
  });
});

Deno.test("log: level 1 format", () => {
  const r = verifyText(
    LOOKUP + "r0 = *(u64 *)(r0 +0)\nexit",
    "sched_cls",
    HASH,
  );
  const lines = r.log.split("\n");
  assert.equal(lines[0], "0: R1=ctx() R10=fp0");
  assert.equal(
    lines[1],
    "0: (62) *(u32 *)(r10 -4) = 0          ; R10=fp0 fp-8=0000????",
  );
  assert.equal(
    lines[2],
    "1: (bf) r2 = r10                      ; R2=fp0 R10=fp0",
  );
  assert.ok(lines.includes("R0 invalid mem access 'map_value_or_null'"));
  assert.match(r.log, /processed 6 insns \(limit 1000000\)/);
  assert.match(r.log, /stack depth 8\n/);
});
