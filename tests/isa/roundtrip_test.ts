import assert from "node:assert/strict";
import { assemble, assembleRaw } from "../../lib/isa/asm.ts";
import { disassemble, formatInsn } from "../../lib/isa/disasm.ts";
import {
  dataFileProgram,
  parseDataFile,
} from "../../lib/isa/conformance_data.ts";
import {
  decodeRaw,
  encodeProgram,
  readRawProgram,
} from "../../lib/isa/decode.ts";

const TESTS = new URL("../../../shared/conformance/tests/", import.meta.url);

function hex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function conformancePrograms(): { name: string; bytes: Uint8Array }[] {
  return [...Deno.readDirSync(TESTS)]
    .filter((entry) => entry.name.endsWith(".data"))
    .map((entry) => entry.name)
    .sort()
    .map((name) => {
      const file = parseDataFile(
        Deno.readTextFileSync(new URL(name, TESTS)),
        name,
      );
      return { name, bytes: encodeProgram(dataFileProgram(file)) };
    });
}

Deno.test("every conformance program: bytes → disassemble → assemble (kernel syntax) → same bytes", () => {
  const programs = conformancePrograms();
  assert.equal(programs.length, 313);
  for (const { name, bytes } of programs) {
    const insns = decodeRaw(readRawProgram(bytes));
    const lines = disassemble(insns);
    const again = assembleRaw(lines.join("\n"), { name, dialect: "kernel" });
    assert.equal(hex(encodeProgram(again)), hex(bytes), name);
    assert.deepEqual(decodeRaw(again), insns, name);
  }
});

Deno.test("kernel-format lines re-print unchanged", () => {
  // each line is in print_bpf_insn()'s exact format, so text → insn → text is the identity
  const lines = [
    "r0 = 1",
    "r1 = r10",
    "r1 += -8",
    "*(u64 *)(r10 -8) = 0",
    "r0 = *(u32 *)(r0 +0)",
    "w0 = w1",
    "w1 = (s16)w2",
    "r1 s/= r2",
    "w2 s%= -7",
    "r3 = -r3",
    "r0 = le16 r0",
    "r0 = be32 r0",
    "r0 = bswap64 r0",
    "lock *(u64 *)(r10 -8) += r1",
    "r1 = atomic64_fetch_xor((u64 *)(r10 -8), r1)",
    "r2 = atomic_xchg((u32 *)(r1 +0), r2)",
    "r0 = atomic64_cmpxchg((u64 *)(r1 +0), r0, r2)",
    "r0 = load_acquire((u16 *)(r1 +2))",
    "store_release((u32 *)(r1 +0), r2)",
    "r0 = *(u8 *)skb[23]",
    "r0 = *(u32 *)skb[r7 + -2]",
    "r1 = addr_space_cast(r2, 1, 0)",
    "call bpf_map_lookup_elem#1",
    "call bpf_obj_new_impl#12345",
    "call unknown#9999",
    "if r0 == 0x0 goto pc+1",
    "if w1 s< 0x5 goto pc+0",
    "if r1 != r2 goto pc+0",
    "goto pc+0",
    "gotol pc+0",
    "may_goto pc+0",
    "exit",
  ];
  const callName = (insn: { imm: number; src: number }) =>
    insn.src === 2 && insn.imm === 12345 ? "bpf_obj_new_impl" : undefined;
  const insns = assemble(lines.join("\n"));
  const printed = disassemble(insns, { prefix: false, callName });
  assert.deepEqual(printed, lines);
});

Deno.test("lddw.data: asm and raw give identical bytes, and both print alike", () => {
  const file = parseDataFile(
    Deno.readTextFileSync(new URL("lddw.data", TESTS)),
    "lddw.data",
  );
  const fromAsm = encodeProgram(
    assembleRaw(file.asm ?? "", { name: "lddw.data" }),
  );
  assert.equal(hex(fromAsm), hex(file.raw ?? new Uint8Array()));
  const insns = decodeRaw(readRawProgram(fromAsm));
  assert.equal(formatInsn(insns[0], 0), "0: (18) r0 = 0x1122334455667788");
});

/** True when clang-19 and llvm-objdump-19 can be run. */
function llvmAvailable(): boolean {
  try {
    return ["clang-19", "llvm-objdump-19"].every((tool) =>
      new Deno.Command(tool, {
        args: ["--version"],
        stdout: "null",
        stderr: "null",
      }).outputSync().success
    );
  } catch {
    return false;
  }
}

Deno.test({
  name:
    "llvm-objdump-19 output of a clang-19 object assembles to the same bytes (needs LLVM 19)",
  ignore: !llvmAvailable(),
  fn() {
    const dir = Deno.makeTempDirSync();
    try {
      const source = `
        typedef unsigned long long u64; typedef unsigned int u32;
        __attribute__((noinline)) static int sub(int x) { return x * 3 + 1; }
        __attribute__((section("socket"), used)) int prog(u64 *v) {
          volatile u64 big = 0x1122334455667788ULL;
          if (!v) return 0;
          __sync_fetch_and_add(v, 5);
          u64 old = __sync_fetch_and_add(v, 7);
          u64 x = __sync_lock_test_and_set(v, 9);
          u64 y = __sync_val_compare_and_swap(v, 3, 4);
          signed char sc = *(signed char *)v;
          long q = (long)(int)old / (long)(sc ? sc : 1);
          return sub((int)(old + x + y + big + sc + q)) + __builtin_bswap32((u32)x);
        }`;
      Deno.writeTextFileSync(`${dir}/t.c`, source);
      const cc = new Deno.Command("clang-19", {
        args: [
          "-O2",
          "-target",
          "bpf",
          "-mcpu=v4",
          "-c",
          `${dir}/t.c`,
          "-o",
          `${dir}/t.o`,
        ],
      }).outputSync();
      assert.ok(cc.success, new TextDecoder().decode(cc.stderr));
      const dump = new Deno.Command("llvm-objdump-19", {
        args: ["-d", "-j", "socket", `${dir}/t.o`],
      })
        .outputSync();
      const text = new TextDecoder().decode(dump.stdout);
      // every objdump line carries its bytes, which assembleRaw checks against its own encoding
      const raws = assembleRaw(text, { name: "t.o" });
      assert.ok(raws.length > 20);
      assert.match(text, /atomic_fetch_add|xchg_64|cmpxchg_64|bswap32|s\/=/);
    } finally {
      Deno.removeSync(dir, { recursive: true });
    }
  },
});
