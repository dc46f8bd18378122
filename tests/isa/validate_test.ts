import assert from "node:assert/strict";
import { decodeRaw, rawInsn } from "../../lib/isa/decode.ts";
import type { RawInsn } from "../../lib/isa/insn.ts";
import {
  dataFileProgram,
  parseDataFile,
} from "../../lib/isa/conformance_data.ts";
import {
  constantOperandError,
  encodingFieldError,
  opcodeInInsnTable,
  reservedFieldError,
  validateProgram,
} from "../../lib/isa/validate.ts";

const CONFORMANCE = new URL("../../../shared/conformance/", import.meta.url);
const ORACLE = new URL("../../../shared/oracle/oracle", import.meta.url);

const raw = (code: number, dst = 0, src = 0, off = 0, imm = 0): RawInsn =>
  rawInsn(code, dst, src, off, imm);
const R0 = raw(0xb7); // r0 = 0
const EXIT = raw(0x95);
const FAIL = raw(0xbf, 0, 9); // r0 = r9: a jump target the verifier refuses (R9 !read_ok)

// Programs and the message Linux 6.18.44 gave for each (socket filter, as root),
// recorded with shared/oracle; the last test re-asks the kernel when it can.
const KERNEL_CASES: [string, RawInsn[], string][] = [
  // oracle, 6.18: a kfunc call with a negative module offset
  [
    "kfunc negative off",
    [R0, raw(0x85, 0, 2, -4, 5), EXIT],
    "failed to find BTF for kernel function",
  ],
  [
    "atomic rmw on a byte",
    [R0, raw(0xd3, 10, 0, -8, 0), EXIT],
    "invalid atomic operand size",
  ],
  [
    "LDX in ABS mode",
    [R0, raw(0x21, 0, 1), EXIT],
    "BPF_LDX uses reserved fields",
  ],
  [
    "LDX with imm",
    [R0, raw(0x61, 0, 1, 0, 1), EXIT],
    "BPF_LDX uses reserved fields",
  ],
  [
    "lddw with off",
    [raw(0x18, 0, 0, 1, 5), raw(0), EXIT],
    "BPF_LD_IMM64 uses reserved fields",
  ],
  [
    "call with src 3",
    [R0, raw(0x85, 0, 3, 0, 5), EXIT],
    "BPF_CALL uses reserved fields",
  ],
  [
    "gotol with off",
    [R0, raw(0x06, 0, 0, 1, 0), FAIL, EXIT],
    "BPF_JA uses reserved fields",
  ],
  [
    "may_goto with imm",
    [R0, raw(0xe5, 0, 0, 0, 5), EXIT],
    "invalid may_goto imm 5",
  ],
  [
    "may_goto with src",
    [R0, raw(0xe5, 0, 1, 0, 0), EXIT],
    "invalid may_goto imm 0",
  ],
  [
    "mov32 (s32)",
    [R0, raw(0xbc, 0, 1, 32), EXIT],
    "BPF_MOV uses reserved fields",
  ],
  [
    "mul with off 1",
    [R0, raw(0x2f, 0, 0, 1), EXIT],
    "BPF_ALU uses reserved fields",
  ],
  ["le17", [R0, raw(0xd4, 0, 0, 0, 17), EXIT], "BPF_END uses reserved fields"],
  [
    "ld_abs into r1",
    [raw(0xbf, 6, 1), R0, raw(0x30, 1, 0, 0, 2), EXIT],
    "BPF_LD_[ABS|IND] uses reserved fields",
  ],
  ["ld_abs u64", [R0, raw(0x38, 0, 0, 0, 2), EXIT], "unknown opcode 38"],
  ["div by 0", [R0, raw(0x37, 0, 0, 0, 0), EXIT], "div by zero"],
  ["mod32 by 0", [R0, raw(0x94, 0, 0, 0, 0), EXIT], "div by zero"],
  ["sdiv by 0", [R0, raw(0x37, 0, 0, 1, 0), EXIT], "div by zero"],
  ["lsh 64", [R0, raw(0x67, 0, 0, 0, 64), EXIT], "invalid shift 64"],
  ["lsh32 32", [R0, raw(0x64, 0, 0, 0, 32), EXIT], "invalid shift 32"],
  ["arsh -1", [R0, raw(0xc7, 0, 0, 0, -1), EXIT], "invalid shift -1"],
  [
    "atomic imm 2",
    [R0, raw(0xdb, 10, 0, -8, 2), EXIT],
    "BPF_ATOMIC uses invalid atomic opcode 02",
  ],
  [
    "jump past the end",
    [R0, raw(0x05, 0, 0, 5), EXIT],
    "jump out of range from insn 1 to 7",
  ],
  ["no exit", [R0, raw(0xb7, 0, 0, 0, 1)], "last insn is not an exit or jmp"],
  [
    "lddw cut short",
    [R0, EXIT, raw(0x18, 0, 0, 0, 1)],
    "last insn is not an exit or jmp",
  ],
  [
    "lddw src 7",
    [raw(0x18, 0, 7, 0, 1), raw(0), EXIT],
    "unrecognized bpf_ld_imm64 insn",
  ],
  [
    "map fd with imm2",
    [raw(0x18, 1, 1, 0, 1), raw(0, 0, 0, 0, 1), R0, EXIT],
    "unrecognized bpf_ld_imm64 insn",
  ],
  [
    "lddw second half with dst",
    [raw(0x18, 0, 0, 0, 1), raw(0, 1), EXIT],
    "invalid bpf_ld_imm64 insn",
  ],
  ["stray zero slot", [R0, raw(0), EXIT], "unknown opcode 00"],
  ["callx", [R0, raw(0x8d, 2), EXIT], "unknown opcode 8d"],
  ["gotox", [R0, raw(0x0d, 1), EXIT], "unknown opcode 0d"],
  ["exit with X", [R0, raw(0x9d)], "last insn is not an exit or jmp"],
  ["neg with X", [R0, raw(0x8f, 0, 1), EXIT], "unknown opcode 8f"],
  ["JMP32 call", [R0, raw(0x86, 0, 0, 0, 5), EXIT], "unknown opcode 86"],
  ["ST atomic", [R0, raw(0xc2, 10, 0, -8), EXIT], "unknown opcode c2"],
  [
    "STX with imm",
    [R0, raw(0x7b, 10, 0, -8, 1), EXIT],
    "BPF_STX uses reserved fields",
  ],
  ["ALU op 0xf0", [R0, raw(0xf7, 0, 0, 0, 1), EXIT], "unknown opcode f7"],
  ["JMP op 0xf0", [R0, raw(0xf5, 0, 0, 0, 1), EXIT], "unknown opcode f5"],
  [
    "bswap with BE bit",
    [R0, raw(0xdf, 0, 0, 0, 16), EXIT],
    "unknown opcode df",
  ],
  [
    "addr_space_cast 0 to 2",
    [R0, raw(0xbf, 0, 1, 1, 2), EXIT],
    "addr_space_cast insn can only convert between address space 1 and 0",
  ],
  ["MEMSX u64", [R0, raw(0x99, 0, 10, -8), EXIT], "unknown opcode 99"],
  [
    "jeq X with imm",
    [R0, raw(0x1d, 0, 0, 0, 1), EXIT],
    "BPF_JMP/JMP32 uses reserved fields",
  ],
  [
    "jeq K with src",
    [R0, raw(0x15, 0, 1, 0, 1), EXIT],
    "BPF_JMP/JMP32 uses reserved fields",
  ],
  ["call last", [R0, raw(0x85, 0, 0, 0, 5)], "last insn is not an exit or jmp"],
  ["dead code", [R0, EXIT, EXIT], "unreachable insn 2"],
  [
    "jump into lddw",
    [raw(0x15, 1, 0, 1), raw(0x18, 0, 0, 0, 1), raw(0), EXIT],
    "jump into the middle of ldimm64 insn 1",
  ],
  ["exit with off", [R0, raw(0x95, 0, 0, 1)], "accepted"],
  ["helper call", [raw(0x85, 0, 0, 0, 5), EXIT], "accepted"],
];

Deno.test("validateProgram gives the kernel's messages", async (t) => {
  await t.step("each case", () => {
    for (const [name, program, message] of KERNEL_CASES) {
      assert.equal(
        validateProgram(program)?.message ?? "accepted",
        message,
        name,
      );
    }
  });

  await t.step("indices and whole-program checks", () => {
    assert.deepEqual(validateProgram([]), {
      index: -1,
      message: "program has no instructions (E2BIG)",
    });
    assert.deepEqual(validateProgram([R0, raw(0x67, 0, 0, 0, 64), EXIT]), {
      index: 1,
      message: "invalid shift 64",
    });
    // add_subprog(): a local call must land inside the program
    assert.deepEqual(validateProgram([raw(0x85, 0, 1, 0, 5), EXIT]), {
      index: 0,
      message: "call to invalid destination",
    });
    // check_cfg() reaches slots from slot 0 only
    assert.deepEqual(validateProgram([EXIT, EXIT]), {
      index: 1,
      message: "unreachable insn 1",
    });
    // a subprogram may not fall through into the next one
    assert.deepEqual(validateProgram([raw(0x85, 0, 1, 0, 1), R0, R0, EXIT]), {
      index: 1,
      message: "last insn is not an exit or jmp",
    });
    // nor may a jump leave its subprogram
    assert.deepEqual(
      validateProgram([raw(0x85, 0, 1, 0, 1), raw(0x05, 0, 0, 1), R0, EXIT]),
      {
        index: 1,
        message: "jump out of range from insn 1 to 3",
      },
    );
    // BPF_MAX_SUBPROGS is 256, the main program included
    // n calls, an exit, then n one-slot callees: call i (slot i) targets slot n + 1 + i
    const callees = (n: number) => [
      ...Array.from({ length: n }, () => raw(0x85, 0, 1, 0, n)),
      ...Array.from({ length: n + 1 }, () => EXIT),
    ];
    assert.equal(validateProgram(callees(255)), null);
    assert.deepEqual(validateProgram(callees(256)), {
      index: 255,
      message: "too many subprograms",
    });
  });

  await t.step("accepts decoded programs and lddw's second half", () => {
    const insns = decodeRaw([
      raw(0x18, 1, 0, 0, 1),
      raw(0, 0, 0, 0, 2),
      R0,
      EXIT,
    ]);
    assert.equal(validateProgram(insns), null);
  });
});

Deno.test("reservedFieldError splits into encoding and constant-operand checks", () => {
  const shift = raw(0x67, 0, 0, 0, 64);
  assert.equal(encodingFieldError(shift), null);
  assert.equal(constantOperandError(shift), "invalid shift 64");
  assert.equal(reservedFieldError(shift), "invalid shift 64");
  // the reserved-field refusal comes first, as in check_alu_op()
  const both = raw(0x37, 0, 1, 0, 0);
  assert.equal(reservedFieldError(both), "BPF_ALU uses reserved fields");
  assert.equal(reservedFieldError(raw(0x6f, 0, 1, 0, 0)), null);
  assert.equal(
    reservedFieldError(raw(0x1f, 1, 2, 1)),
    "BPF_ALU uses reserved fields",
  );
  assert.equal(reservedFieldError(raw(0x3f, 1, 2, 1)), null);
  assert.equal(reservedFieldError(raw(0xbf, 1, 2, 1, 0x10000)), null);
  assert.equal(
    reservedFieldError(raw(0x95, 0, 0, 0, 1)),
    "BPF_EXIT uses reserved fields",
  );
  assert.equal(reservedFieldError(raw(0x85, 0, 2, 3, 77)), null); // kfunc: off selects the BTF
  assert.equal(reservedFieldError(raw(0x06, 0, 0, 0, 5)), null);
  assert.equal(
    reservedFieldError(raw(0x05, 0, 0, 0, 5)),
    "BPF_JA uses reserved fields",
  );
  assert.equal(reservedFieldError(raw(0xd3, 0, 1, 0, 0x100)), null); // load-acquire takes any size
});

Deno.test("the opcode table has the kernel's 128 opcodes", () => {
  // counted by hand from BPF_INSN_MAP and the cBPF extras in kernel/bpf/core.c:
  // ALU 27, ALU64 26, JMP 26, JMP32 23, loads and stores 26
  const known = Array.from({ length: 256 }, (_, code) => code).filter(
    opcodeInInsnTable,
  );
  assert.equal(known.length, 128);
  for (
    const code of [
      0x8d,
      0x0d,
      0x0e,
      0x86,
      0x96,
      0x8f,
      0xdf,
      0x99,
      0x38,
      0x58,
      0xc2,
      0xe6,
      0xed,
    ]
  ) {
    assert.equal(opcodeInInsnTable(code), false, code.toString(16));
  }
  for (const code of [0x18, 0x30, 0xd3, 0xcb, 0xe5, 0x06, 0xd7, 0x91, 0x81]) {
    assert.equal(opcodeInInsnTable(code), true, code.toString(16));
  }
});

interface IndexRecord {
  file: string;
  purpose: string;
  linux: { verdict: string; log: string | null } | null;
}

function records(): IndexRecord[] {
  return JSON.parse(Deno.readTextFileSync(new URL("index.json", CONFORMANCE)));
}

function program(file: string): RawInsn[] {
  const text = Deno.readTextFileSync(new URL(file, CONFORMANCE));
  return dataFileProgram(parseDataFile(text, file));
}

Deno.test("conformance tests/: refused exactly where Linux refuses, with its message", () => {
  let refused = 0;
  for (const record of records().filter((r) => r.purpose === "conformance")) {
    const issue = validateProgram(program(record.file));
    const linux = record.linux;
    assert.ok(linux !== null, record.file);
    if (linux.verdict === "accept") {
      assert.equal(issue, null, record.file);
    } else {
      refused++;
      assert.equal(issue?.message, linux.log, record.file);
    }
  }
  assert.equal(refused, 13);
});

Deno.test("negative/unused-*: all refused; messages differ only where register state decides first", () => {
  // a conditional jump reads dst (check_reg_arg: R0 !read_ok) before its field
  // check; register state belongs to the verifier proper
  const decidedEarlier = new Map([
    ["negative/unused-jeq_imm-src.data", "BPF_JMP/JMP32 uses reserved fields"],
    ["negative/unused-jeq_reg-imm.data", "BPF_JMP/JMP32 uses reserved fields"],
    ["negative/unused-jgt_imm-src.data", "BPF_JMP/JMP32 uses reserved fields"],
    ["negative/unused-jgt_reg-imm.data", "BPF_JMP/JMP32 uses reserved fields"],
  ]);
  const mustReject = records().filter((r) => r.purpose === "must-reject");
  assert.equal(mustReject.length, 45);
  let same = 0;
  for (const record of mustReject) {
    const slots = program(record.file);
    decodeRaw(slots); // the decoder accepts every one; the refusal is validate's
    const issue = validateProgram(slots);
    assert.ok(issue !== null, record.file);
    const earlier = decidedEarlier.get(record.file);
    if (earlier === undefined) {
      assert.equal(issue.message, record.linux?.log, record.file);
      same++;
    } else {
      assert.equal(issue.message, earlier, record.file);
      assert.notEqual(record.linux?.log, earlier, record.file);
    }
  }
  assert.equal(same, 41);
});

/** True when this machine can ask its kernel (root, clang-19, the oracle). */
function kernelAvailable(): boolean {
  try {
    Deno.statSync(ORACLE);
    const uid = new Deno.Command("id", { args: ["-u"] }).outputSync();
    const clang = new Deno.Command("clang-19", {
      args: ["--version"],
      stdout: "null",
    }).outputSync();
    return clang.success && new TextDecoder().decode(uid.stdout).trim() === "0";
  } catch {
    return false;
  }
}

/** Loads each program as a socket filter and returns the kernel's decisive log line, by name. */
function askKernel(programs: [string, RawInsn[]][]): Map<string, string> {
  const dir = Deno.makeTempDirSync();
  try {
    let asm = "";
    programs.forEach(([, slots], i) => {
      asm +=
        `\t.section socket,"ax",@progbits\n\t.globl p${i}\n\t.type p${i},@function\np${i}:\n`;
      for (const slot of slots) {
        const bytes = new DataView(new ArrayBuffer(8));
        bytes.setUint8(0, slot.code);
        bytes.setUint8(1, (slot.src << 4) | slot.dst);
        bytes.setInt16(2, slot.off, true);
        bytes.setInt32(4, slot.imm, true);
        asm += `\t.quad 0x${bytes.getBigUint64(0, true).toString(16)}\n`;
      }
      asm += `\t.size p${i}, .-p${i}\n`;
    });
    asm += `\t.section license,"aw",@progbits\n_license:\n\t.asciz "GPL"\n`;
    Deno.writeTextFileSync(`${dir}/probe.s`, asm);
    const cc = new Deno.Command("clang-19", {
      args: ["-target", "bpf", "-c", `${dir}/probe.s`, "-o", `${dir}/probe.o`],
    })
      .outputSync();
    assert.ok(cc.success, new TextDecoder().decode(cc.stderr));
    const run = new Deno.Command(ORACLE.pathname, {
      args: ["verify", `${dir}/probe.o`],
    }).outputSync();
    const messages = new Map<string, string>();
    for (
      const line of new TextDecoder().decode(run.stdout).trim().split("\n")
    ) {
      const result = JSON.parse(line) as { program: string; message: string };
      const index = Number(result.program.slice(1));
      messages.set(programs[index][0], result.message);
    }
    return messages;
  } finally {
    Deno.removeSync(dir, { recursive: true });
  }
}

Deno.test({
  name:
    "the running kernel agrees with the recorded messages (needs root, clang-19, shared/oracle)",
  ignore: !kernelAvailable(),
  fn() {
    const answers = askKernel(
      KERNEL_CASES.map(([name, slots]) => [name, slots]),
    );
    for (const [name, , message] of KERNEL_CASES) {
      assert.equal(answers.get(name) || "accepted", message, name);
    }
  },
});
