import assert from "node:assert/strict";
import {
  AsmError,
  assemble,
  assembleRaw,
  detectDialect,
} from "../../lib/isa/asm.ts";
import { encodeProgram } from "../../lib/isa/decode.ts";
import { parseDataFile } from "../../lib/isa/conformance_data.ts";

/** Slots as 16-hex-digit groups in memory order, e.g. `b700000001000000`. */
function hexSlots(
  text: string,
  options: { dialect?: "conformance" | "kernel" } = {},
): string {
  const bytes = encodeProgram(assembleRaw(text, options));
  const groups: string[] = [];
  for (let at = 0; at < bytes.length; at += 8) {
    groups.push(
      [...bytes.subarray(at, at + 8)].map((b) =>
        b.toString(16).padStart(2, "0")
      ).join(""),
    );
  }
  return groups.join(" ");
}

/** Asserts that assembling `text` fails at `line` with a reason matching `reason`. */
function assertAsmError(
  text: string,
  line: number,
  reason: RegExp,
  token?: string,
): void {
  assert.throws(() => assemble(text, { name: "prog.s" }), (e: unknown) => {
    assert.ok(e instanceof AsmError, `expected AsmError, got ${e}`);
    assert.equal(e.line, line);
    assert.equal(e.fileName, "prog.s");
    assert.match(e.message, new RegExp(`^prog\\.s:${line}:\\d+: `));
    assert.match(e.reason, reason);
    if (token !== undefined) assert.equal(e.token, token);
    return true;
  });
}

// [conformance dialect, kernel syntax, encoding worked out by hand from the field layout:
//  opcode, src<<4|dst, off (LE16), imm (LE32)]
const BOTH_DIALECTS: [string, string, string][] = [
  ["mov32 %r0, 0xffffffff", "w0 = -1", "b4000000ffffffff"],
  ["mov %r1, -1", "r1 = -1", "b7010000ffffffff"],
  ["add %r1, %r2", "r1 += r2", "0f21000000000000"],
  ["sub32 %r1, 0x10", "w1 -= 16", "1401000010000000"],
  ["sdiv32 %r3, 7", "w3 s/= 7", "3403010007000000"],
  ["smod %r1, %r2", "r1 s%= r2", "9f21010000000000"],
  ["arsh %r1, 3", "r1 s>>= 3", "c701000003000000"],
  ["neg %r4", "r4 = -r4", "8704000000000000"],
  ["neg32 %r4", "w4 = -w4", "8404000000000000"],
  ["movsx1664 %r1, %r2", "r1 = (s16)r2", "bf21100000000000"],
  ["movsx832 %r1, %r2", "w1 = (s8)w2", "bc21080000000000"],
  ["le32 %r5", "r5 = le32 r5", "d405000020000000"],
  ["be16 %r2", "r2 = be16 r2", "dc02000010000000"],
  ["bswap64 %r5", "r5 = bswap64 r5", "d705000040000000"],
  ["swap16 %r5", "r5 = bswap16 r5", "d705000010000000"],
  [
    "lddw %r1, 0x1122334455667788",
    "r1 = 0x1122334455667788 ll",
    "1801000088776655 0000000044332211",
  ],
  ["lddw %r1, -1", "r1 = -1 ll", "18010000ffffffff 00000000ffffffff"],
  [
    "lddw %r0, 0x80000000",
    "r0 = 0x80000000 ll",
    "1800000000000080 0000000000000000",
  ],
  ["ldxh %r2, [%r1+2]", "r2 = *(u16 *)(r1 +2)", "6912020000000000"],
  ["ldxsh %r0, [%r1+2]", "r0 = *(s16 *)(r1 +2)", "8910020000000000"],
  ["ldxdw %r0, [%r10-0x10]", "r0 = *(u64 *)(r10 - 0x10)", "79a0f0ff00000000"],
  ["stdw [%r10-8], 0", "*(u64 *)(r10 -8) = 0", "7a0af8ff00000000"],
  ["stb [%r1], -1", "*(u8 *)(r1 +0) = -1", "72010000ffffffff"],
  ["stxw [%r10-4], %r1", "*(u32 *)(r10 -4) = r1", "631afcff00000000"],
  ["lock add [%r10-8], %r1", "lock *(u64 *)(r10 -8) += r1", "db1af8ff00000000"],
  ["lock xor32 [%r1+0], %r2", "lock *(u32 *)(r1 +0) ^= w2", "c3210000a0000000"],
  [
    "lock fetch add [%r10-8], %r1",
    "r1 = atomic64_fetch_add((u64 *)(r10 -8), r1)",
    "db1af8ff01000000",
  ],
  [
    "lock fetch or32 [%r1+4], %r3",
    "r3 = atomic_fetch_or((u32 *)(r1 +4), r3)",
    "c331040041000000",
  ],
  [
    "lock xchg [%r1+0], %r2",
    "r2 = atomic64_xchg((u64 *)(r1 +0), r2)",
    "db210000e1000000",
  ],
  [
    "lock cmpxchg32 [%r1+0], %r2",
    "r0 = atomic_cmpxchg((u32 *)(r1 +0), r0, r2)",
    "c3210000f1000000",
  ],
  ["jsgt32 %r1, -5, +3", "if w1 s> -5 goto pc+3", "66010300fbffffff"],
  ["jne %r1, %r2, -2", "if r1 != r2 goto pc-2", "5d21feff00000000"],
  ["jset %r1, 4, +1", "if r1 & 0x4 goto +1", "4501010004000000"],
  [
    "jeq %r1, 0xffffffff, +1",
    "if r1 == 0xffffffff goto pc+1",
    "15010100ffffffff",
  ],
  ["ja +2", "goto pc+2", "0500020000000000"],
  ["ja32 +100000", "gotol pc+100000", "06000000a0860100"],
  ["call 1", "call bpf_map_lookup_elem#1", "8500000001000000"],
  ["call local +5", "call pc+5", "8510000005000000"],
  ["call %r2", "callx r2", "8d02000000000000"],
  ["exit", "exit", "9500000000000000"],
];

// kernel/LLVM-only forms
const KERNEL_ONLY: [string, string][] = [
  ["r0 = *(u8 *)skb[23]", "3000000017000000"],
  ["r0 = *(u16 *)skb[r7 + 2]", "4870000002000000"],
  ["r0 = *(u32 *)skb[r7 + -2]", "40700000feffffff"],
  ["may_goto pc+3", "e500030000000000"],
  ["r0 = load_acquire((u64 *)(r1 +0))", "db10000000010000"],
  ["w0 = load_acquire((u8 *)(r1 + 0))", "d310000000010000"],
  ["store_release((u64 *)(r1 +0), r2)", "db21000010010000"],
  ["r1 = addr_space_cast(r2, 0, 1)", "bf21010001000000"],
  ["call bpf_obj_new_impl#12345", "8520000039300000"],
  ["call kernel-function#7", "8520000007000000"],
  ["call unknown#9999", "850000000f270000"],
  ["call bpf_map_lookup_elem", "8500000001000000"],
  ["call 0x1", "8500000001000000"],
  ["call -0x1", "85100000ffffffff"],
  ["r1 += -8", "07010000f8ffffff"],
  ["r2 += -0x4", "07020000fcffffff"],
  ["w0 = w1", "bc10000000000000"],
  ["w1 = 0xffffffff", "b4010000ffffffff"],
  ["r1 = 0xffffffff", "18010000ffffffff 0000000000000000"],
  ["r1 = 0x1 ll", "1801000001000000 0000000000000000"],
  ["if w1 s< 5 goto pc-2", "c601feff05000000"],
  ["if r1 > r2 goto +3 <LBB0_3>", "2d21030000000000"],
  ["if r0 == 0x0 goto +0x26 <prog+0x188>", "1500260000000000"],
  ["gotol +100000", "06000000a0860100"],
  ["goto +2", "0500020000000000"],
  ["*(u64 *)(r10 -8) = 0", "7a0af8ff00000000"],
  ["*(u32 *)(r1 + 0x0) = w2", "6321000000000000"],
  ["lock *(u32 *)(r1 +0) |= w2", "c321000040000000"],
  ["r6 = xchg_64(r0 + 0x0, r6)", "db600000e1000000"],
  ["w0 = cmpxchg32_32(r3 + 0, w0, w1)", "c3130000f1000000"],
  ["r2 = atomic_fetch_add((u64 *)(r0 + 0x0), r2)", "db20000001000000"],
  ["r1 = map_fd(5) ll", "1811000005000000 0000000000000000"],
  ["r1 = map_value(5, 16)", "1821000005000000 0000000010000000"],
  ["r0 = -r0", "8700000000000000"],
];

Deno.test("assembler encodings", async (t) => {
  await t.step("the README example, in both dialects", () => {
    const expected =
      "6912020000000000 dc02000010000000 bf20000000000000 1500010034120000 b700000000000000 9500000000000000";
    const conformance =
      "ldxh %r2, [%r1+2]\nbe16 %r2\nmov %r0, %r2\njeq %r0, 0x1234, +1\nmov %r0, 0\nexit";
    const kernel =
      "r2 = *(u16 *)(r1 +2)\nr2 = be16 r2\nr0 = r2\nif r0 == 0x1234 goto pc+1\nr0 = 0\nexit";
    assert.equal(hexSlots(conformance), expected);
    assert.equal(hexSlots(kernel), expected);
  });

  await t.step("hand-computed encodings, both dialects", () => {
    for (const [conformance, kernel, hex] of BOTH_DIALECTS) {
      assert.equal(
        hexSlots(conformance, { dialect: "conformance" }),
        hex,
        conformance,
      );
      assert.equal(hexSlots(kernel, { dialect: "kernel" }), hex, kernel);
    }
  });

  await t.step("hand-computed encodings, kernel and LLVM forms", () => {
    for (const [kernel, hex] of KERNEL_ONLY) {
      assert.equal(hexSlots(kernel, { dialect: "kernel" }), hex, kernel);
    }
  });

  await t.step(
    "conformance numbers: hex is a bit pattern, decimal is signed",
    () => {
      assert.equal(hexSlots("mov %r1, 0x80000000"), "b701000000000080");
      assert.equal(hexSlots("mov %r1, -2147483648"), "b701000000000080");
      assert.equal(
        hexSlots("lddw %r1, 18446744073709551615"),
        "18010000ffffffff 00000000ffffffff",
      );
      assert.equal(hexSlots("ldxb %r0, [%r1+0x2]"), "7110020000000000");
    },
  );
});

Deno.test("labels and targets", async (t) => {
  await t.step(
    "conformance: labels count slots, lddw is two, exit is the first exit",
    () => {
      const text = [
        "jne %r1, 0, exit", // slot 0 → first exit at slot 4: off 3
        "lddw %r0, 1", // slots 1-2
        "ja done", // slot 3 → slot 6: off 2
        "exit", // slot 4
        "mov %r0, 2", // slot 5
        "done:",
        "exit", // slot 6
      ].join("\n");
      const slots = hexSlots(text).split(" ");
      assert.equal(slots[0], "5501030000000000");
      assert.equal(slots[3], "0500020000000000");
    },
  );

  await t.step(
    "conformance: ja32 and call local put the distance in imm",
    () => {
      const text = "ja32 L2\nL1:\nexit\nL2:\ncall local L1\nja32 L1";
      assert.equal(
        hexSlots(text),
        "0600000001000000 9500000000000000 85100000feffffff 06000000fdffffff",
      );
    },
  );

  await t.step("kernel: labels, LLVM symbols, local calls by name", () => {
    const text = [
      "0000000000000000 <prog>:",
      "\tif r1 > r2 goto LBB0_2",
      "\tcall sub",
      "LBB0_2:",
      "\texit",
      "sub:",
      "\tgoto prog",
    ].join("\n");
    assert.equal(
      hexSlots(text),
      "2d21010000000000 8510000001000000 9500000000000000 0500fcff00000000",
    );
  });

  await t.step("kernel log prefixes: index and opcode column", () => {
    const text =
      "0: (b7) r0 = 1\n1: (18) r1 = 0x1122\n3: (85) call bpf_map_lookup_elem#1\n4: (95) exit";
    assert.equal(
      hexSlots(text),
      "b700000001000000 1801000022110000 0000000000000000 8500000001000000 9500000000000000",
    );
  });

  await t.step(
    "objdump lines: bytes are checked, <unknown> takes the bytes",
    () => {
      const text = [
        "t.o:\tfile format elf64-bpf",
        "Disassembly of section .text:",
        "0000000000000000 <sub>:",
        "       0:\tbc 10 00 00 00 00 00 00\tw0 = w1",
        "       1:\tc3 13 00 00 40 00 00 00\t<unknown>",
        "       2:\t18 01 00 00 88 77 66 55 00 00 00 00 44 33 22 11\tr1 = 0x1122334455667788 ll",
        "       4:\t95 00 00 00 00 00 00 00\texit",
      ].join("\n");
      assert.equal(
        hexSlots(text),
        "bc10000000000000 c313000040000000 1801000088776655 0000000044332211 9500000000000000",
      );
    },
  );

  await t.step("assemble() returns typed slots: lddw fills two", () => {
    const insns = assemble("lddw %r1, 0x1122334455667788\nexit");
    assert.deepEqual(insns.map((i) => i.kind), [
      "ld_imm64",
      "ld_imm64_hi",
      "exit",
    ]);
    const lddw = insns[0];
    assert.ok(lddw.kind === "ld_imm64");
    assert.equal(lddw.imm64, 0x1122334455667788n);
  });

  await t.step("resolveCall names kfuncs", () => {
    const ids = new Map([["bpf_obj_new_impl", 321]]);
    const raws = assembleRaw("call bpf_obj_new_impl\nexit", {
      resolveCall: (n) => ids.get(n),
    });
    assert.deepEqual(raws[0], { code: 0x85, dst: 0, src: 2, off: 0, imm: 321 });
  });
});

Deno.test("dialect detection", () => {
  assert.equal(detectDialect("# comment\nmov %r0, 1\nexit"), "conformance");
  assert.equal(detectDialect("ja +1\nexit\nexit"), "conformance");
  assert.equal(detectDialect("lock add [%r1], %r2"), "conformance");
  assert.equal(detectDialect("call local f\nexit\nf:\nexit"), "conformance");
  assert.equal(detectDialect("r0 = 1\nexit"), "kernel");
  assert.equal(detectDialect("9:\tlock *(u64 *)(r0 + 0x0) += r1"), "kernel");
  assert.equal(detectDialect("0: (b7) r0 = 1 ; R0_w=1"), "kernel");
});

Deno.test("assembler errors name the line, column and token", async (t) => {
  await t.step("conformance dialect", () => {
    assertAsmError(
      "mov %r0, 1\nor %r0, %r50\nexit",
      2,
      /^invalid register '%r50'$/,
      "%r50",
    );
    assertAsmError(
      "ja NOT_A_LABEL\nexit",
      1,
      /^unknown label 'NOT_A_LABEL'$/,
      "NOT_A_LABEL",
    );
    assertAsmError(
      "exit\nldxq %r0, %r1",
      2,
      /^invalid mnemonic 'ldxq'$/,
      "ldxq",
    );
    assertAsmError(
      "mov32 %r0, 2147483648",
      1,
      /immediate out of 32-bit range: 2147483648/,
    );
    assertAsmError(
      "mov32 %r0, 0x100000000",
      1,
      /immediate out of 32-bit range: 0x100000000/,
    );
    assertAsmError("mov %r0, -0x1", 1, /invalid immediate '-0x1'/);
    assertAsmError("ldxb %r0, [%r1+0x10000]", 1, /offset out of 16-bit range/);
    assertAsmError("ldxb %r0, %r1", 1, /invalid memory operand '%r1'/);
    assertAsmError("lddw %r0", 1, /invalid number of operands for 'lddw'/);
    assertAsmError(
      "lock or [%r10-8]",
      1,
      /^invalid number of operands for lock$/,
    );
    assertAsmError("lock", 1, /^invalid number of operands for lock$/);
    assertAsmError("x:\nx:\nexit", 2, /label 'x' is defined twice/);
    assertAsmError("ja +40000\nexit", 1, /jump offset out of 16-bit range/);
  });

  await t.step("kernel syntax", () => {
    assertAsmError("r0 = 1\nr16 = 1", 2, /^invalid register 'r16'$/, "r16");
    assertAsmError("goto NOPE\nexit", 1, /^unknown label 'NOPE'$/, "NOPE");
    assertAsmError(
      "r0 = 1\nfrob r0",
      2,
      /^unknown instruction 'frob'$/,
      "frob",
    );
    assertAsmError("r0 += 0x80000000", 1, /immediate out of 32-bit range/);
    assertAsmError("w0 = 0x100000000", 1, /immediate out of 32-bit range/);
    assertAsmError("r0 = *(u16 *)(r1 +40000)", 1, /offset out of 16-bit range/);
    assertAsmError("w0 += r1", 1, /mixes 32- and 64-bit views/, "r1");
    assertAsmError("r0 = be16 r1", 1, /in place/);
    assertAsmError("lock *(u8 *)(r1 +0) += r2", 1, /needs u32 or u64/);
    assertAsmError(
      "r1 = atomic64_fetch_add((u64 *)(r1 +0), r2)",
      1,
      /returns the old value/,
    );
    assertAsmError("call bpf_map_lookup_elem#2", 1, /is helper 1, not 2/);
    assertAsmError(
      "if r1 ~ r2 goto +1",
      1,
      /^expected a comparison operator, found '~'$/,
      "~",
    );
    assertAsmError(
      "exit\n0: (b7) r0 = r1",
      2,
      /opcode column \(b7\) does not match .* bf/,
    );
    assertAsmError(
      "0:\tb7 00 00 00 02 00 00 00\tr0 = 0x1",
      1,
      /encodes as b7 00 00 00 01/,
    );
    assertAsmError(
      "0:\t8f 00 00 00 00 00 00 00\t<unknown>",
      1,
      /^unknown opcode 8f$/,
    );
    assertAsmError(
      "r0 = 1 garbage",
      1,
      /unexpected 'garbage' after instruction/,
      "garbage",
    );
  });

  await t.step(
    "the runner self-tests of negative/ that upstream's assembler refuses",
    () => {
      const dir = new URL(
        "../../../shared/conformance/negative/",
        import.meta.url,
      );
      const expected: [string, number, RegExp][] = [
        [
          "invalid_imm32_dec_range.data",
          5,
          /immediate out of 32-bit range: 2147483648/,
        ],
        [
          "invalid_imm32_hex_range.data",
          5,
          /immediate out of 32-bit range: 0x100000000/,
        ],
        ["invalid_label.data", 4, /unknown label 'NOT_A_LABEL'/],
        ["invalid_lock.data", 4, /invalid number of operands for lock/],
        ["invalid_lock2.data", 4, /invalid number of operands for lock/],
        ["invalid_mnemonic.data", 5, /invalid mnemonic 'ldxq'/],
        ["invalid_offset.data", 4, /invalid memory operand '%r1'/],
        ["invalid_offset_range.data", 5, /offset out of 16-bit range/],
        [
          "invalid_operand_count.data",
          4,
          /invalid number of operands for 'lddw'/,
        ],
        ["invalid_register.data", 4, /invalid register '%r50'/],
      ];
      for (const [file, line, reason] of expected) {
        const data = parseDataFile(
          Deno.readTextFileSync(new URL(file, dir)),
          file,
        );
        assert.throws(
          () => assemble(data.asm ?? "", { name: file }),
          (e: unknown) => {
            assert.ok(e instanceof AsmError, file);
            assert.equal(e.line, line, file);
            assert.match(
              e.message,
              new RegExp(`^${file.replace(".", "\\.")}:${line}:`),
            );
            assert.match(e.reason, reason, file);
            return true;
          },
        );
      }
    },
  );
});
