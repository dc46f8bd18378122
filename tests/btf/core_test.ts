/**
 * CO-RE relocations of tests/fixtures/btf/core.c. On the object's own BTF
 * every result must reproduce what clang encoded, and every local spec
 * must print as libbpf printed it (core.relo.txt, recorded from libbpf's
 * log); against core_target.c's BTF the results are hand-computed from
 * that file's layout.
 */
import assert from "node:assert/strict";
import {
  BPF_CORE_FIELD_BYTE_OFFSET,
  BPF_CORE_TYPE_ID_LOCAL,
  type Btf,
  BTF_KIND,
  BtfError,
  calcCoreRelo,
  EINVAL,
  EOPNOTSUPP,
  essentialNameLen,
  extRecordsFor,
  formatCoreSpec,
  parseBtf,
  parseCoreSpec,
  patchCoreInsn,
  POISON_HELPER_ID,
} from "../../lib/btf/mod.ts";
import { readRawProgram } from "../../lib/isa/decode.ts";
import { BPF_DW, BPF_LDX, BPF_MEM, BPF_W } from "../../lib/isa/opcodes.ts";
import type { RawInsn } from "../../lib/isa/insn.ts";
import { BtfBuilder } from "./builder.ts";
import { loadFixture } from "./fixtures.ts";

const core = loadFixture("core");
const target = loadFixture("core_target").btf;
const relos = extRecordsFor(core.ext!.coreRelo, "tc");
const program = () => readRawProgram(core.elf.sections.get("tc")!);

/** libbpf's log of relocating core.o (core.relo.txt), `prog 'prog': relo #N: ` cut off. */
function reloLog(): string[] {
  return Deno.readTextFileSync(
    new URL("../fixtures/btf/core.relo.txt", import.meta.url),
  )
    .trim().split("\n").slice(1).map((l) => l.replace(/^.*?relo #\d+: /, ""));
}

Deno.test("core.o on its own BTF: clang's values come back", async (t) => {
  const logged = reloLog().filter((l) => l.startsWith("<"));
  for (const [i, r] of relos.entries()) {
    await t.step(`relo #${i} ${logged[i]}`, () => {
      const res = calcCoreRelo(core.btf, r);
      assert.equal(formatCoreSpec(res.localSpec), logged[i]);
      assert.equal(res.poison, false);
      assert.equal(res.newVal, res.origVal);
      const prog = program();
      const before = prog.slice();
      patchCoreInsn(prog, r.insnOff / 8, res);
      if (res.validate) {
        // The compiler's instruction already holds the value: patching
        // validates that and leaves it unchanged.
        assert.deepEqual(prog, before);
      } else {
        // libbpf does not validate bitfield offsets/sizes/left shifts
        // (clang may pick another load width) nor type ids.
        const bitfield = res.localSpec.spec.at(-1)?.name?.startsWith("bf");
        assert.ok(bitfield || r.kind === BPF_CORE_TYPE_ID_LOCAL, "unvalidated");
      }
    });
  }
});

Deno.test("core.o on its own BTF: hand-computed values", () => {
  const vals = relos.map((r) => calcCoreRelo(core.btf, r).newVal);
  assert.deepEqual(vals, [
    28n, // in.arr[2]: 16 + 4 + 2 * 4
    8n, // sizeof ll
    1n, // u2 exists
    1n, // enum state has a negative value: signed
    0n, // bf1 is unsigned
    52n, // bf2 lshift: 64 - (35 + 9 - 32)
    55n, // bf2 rshift: 64 - 9
    4n, // bf2 byte offset: its 4-byte unit at byte 4
    4n, // bf2 byte size
    56n, // next
    40n, // u1 inside the anonymous union
    19n, // local type id of struct sample
    1n,
    64n, // sizeof(sample_t)
    1n,
    1n,
    0xfffffffffffffffen, // ST_NEG = -2, sign-extended as libbpf does
    0x1234567890n,
    76n, // tail[3]: 64 + 3 * 4
  ]);
});

Deno.test("core.o against core_target.o: other layouts", () => {
  const res = relos.map((r) => calcCoreRelo(core.btf, r, target));
  const shown = res.map((r) => (r.poison ? "poison" : r.newVal));
  assert.deepEqual(shown, [
    52n, // in @32, arr @12 in the bigger inner, + 8
    8n,
    0n, // u2 is gone
    0n, // this enum state is unsigned
    0n,
    34n, // bf2: 30 bits at bit 192, 8-byte unit at 24: 64 - 30
    34n,
    24n,
    8n,
    8n, // next moved to 8
    80n, // u1 in the anonymous union at 80
    19n, // TYPE_ID_LOCAL never looks at the target
    1n,
    0n, // no typedef sample_t in the target: size 0
    0n, // inner's arr has 8 elements, not 4: no match
    1n, // ST_RUN exists
    "poison", // ST_NEG does not: the instruction is poisoned
    5n, // W_BIG, found in a plain ENUM
    100n, // tail[3]: 88 + 12, the flexible array stays flexible
  ]);
  assert.ok(!res[0].failMemszAdjust);
});

Deno.test("patching: ALU imm, lddw, poison", () => {
  const prog = program();
  const results = relos.map((r) => calcCoreRelo(core.btf, r, target));
  relos.forEach((r, i) => patchCoreInsn(prog, r.insnOff / 8, results[i]));
  const at = (i: number) => prog[relos[i].insnOff / 8];
  assert.equal(at(0).imm, 52);
  assert.equal(at(16).imm, POISON_HELPER_ID);
  // W_BIG is a 64-bit constant: an lddw whose halves both change.
  const wide = relos[17].insnOff / 8;
  assert.deepEqual([prog[wide].imm, prog[wide + 1].imm], [5, 0]);
});

/** struct s { <local> x; } vs struct s { <target> x; } for size adjustment. */
function pair(
  localInt: [number, boolean],
  targInt: [number, boolean],
): [Btf, Btf] {
  const make = ([size, signed]: [number, boolean]) => {
    const b = new BtfBuilder().int(
      signed ? "long" : "unsigned long",
      size,
      signed,
    );
    b.words(
      b.str("s"),
      BtfBuilder.info(BTF_KIND.STRUCT, 1),
      size,
      b.str("x"),
      1,
      0,
    );
    return parseBtf(b.build());
  };
  return [make(localInt), make(targInt)];
}

Deno.test("load size adjustment (fail_memsz_adjust)", async (t) => {
  const ldx = (size: number): RawInsn => ({
    code: BPF_LDX | BPF_MEM | size,
    dst: 1,
    src: 2,
    off: 0,
    imm: 0,
  });
  const relo = {
    typeId: 2,
    accessStr: "0:0",
    kind: BPF_CORE_FIELD_BYTE_OFFSET,
  };
  await t.step("unsigned 4 -> 8 bytes: the load is widened", () => {
    const [l, g] = pair([4, false], [8, false]);
    const res = calcCoreRelo(l, relo, g);
    assert.deepEqual([res.origSize, res.newSize, res.failMemszAdjust], [
      4,
      8,
      false,
    ]);
    const prog = [ldx(BPF_W)];
    patchCoreInsn(prog, 0, res);
    assert.equal(prog[0].code, BPF_LDX | BPF_MEM | BPF_DW);
  });
  await t.step("signed 4 -> 8 bytes: poisoned", () => {
    const [l, g] = pair([4, true], [8, true]);
    const res = calcCoreRelo(l, relo, g);
    assert.equal(res.failMemszAdjust, true);
    const prog = [ldx(BPF_W)];
    patchCoreInsn(prog, 0, res);
    assert.equal(prog[0].imm, POISON_HELPER_ID);
  });
  await t.step("an instruction that does not hold the expected value", () => {
    const [l, g] = pair([4, false], [8, false]);
    const prog = [{ ...ldx(BPF_W), off: 12 }];
    assert.throws(
      () => patchCoreInsn(prog, 0, calcCoreRelo(l, relo, g)),
      /got 12, exp 0/,
    );
  });
});

Deno.test("CO-RE failures", async (t) => {
  await t.step("access strings", () => {
    const fails = (s: string) =>
      assert.throws(
        () => parseCoreSpec(core.btf, 19, s, BPF_CORE_FIELD_BYTE_OFFSET),
        (e: unknown) => e instanceof BtfError && e.errno === EINVAL,
      );
    for (const s of ["", ":0", "0:a", "0:99", "0:4:1:9"]) fails(s);
    assert.throws(
      () => parseCoreSpec(core.btf, 19, "1", BPF_CORE_TYPE_ID_LOCAL),
      /needs access string '0'/,
    );
  });
  await t.step("anonymous local types cannot be relocated", () => {
    const anon = core.btf.types.find((t) =>
      t.kind === "UNION" && t.name === ""
    )!;
    assert.throws(
      () =>
        calcCoreRelo(
          core.btf,
          { typeId: anon.id, accessStr: "0:0", kind: 0 },
          target,
        ),
      (e: unknown) => e instanceof BtfError && e.errno === EOPNOTSUPP,
    );
  });
  await t.step("two flavours disagreeing on an offset", () => {
    const b = new BtfBuilder().int("int", 4);
    for (const [name, off] of [["s", 0], ["s___a", 32]] as const) {
      b.words(
        b.str(name),
        BtfBuilder.info(BTF_KIND.STRUCT, 1),
        8,
        b.str("x"),
        1,
        off,
      );
    }
    const [l] = pair([4, true], [4, true]);
    assert.throws(
      () =>
        calcCoreRelo(
          l,
          { typeId: 2, accessStr: "0:0", kind: 0 },
          parseBtf(b.build()),
        ),
      /field offset ambiguity: 32 != 0/,
    );
  });
  await t.step("essential names", () => {
    assert.equal(essentialNameLen("sample___v2"), 6);
    assert.equal(essentialNameLen("sample"), 6);
    assert.equal(essentialNameLen("a____b"), 6); // no X___Y split: "____" has '_' after
    assert.equal(essentialNameLen("__x___y"), 3);
  });
});

/** Output of a command, or undefined when it cannot run. */
async function run(
  cmd: string,
  ...args: string[]
): Promise<Uint8Array | undefined> {
  try {
    const out = await new Deno.Command(cmd, { args, stderr: "null" }).output();
    return out.code === 0 ? out.stdout : undefined;
  } catch {
    return undefined;
  }
}

Deno.test("core.o against this kernel's vmlinux: libbpf's decisions", async (t) => {
  const log = Deno.readTextFileSync(
    new URL("../fixtures/btf/core.relo.txt", import.meta.url),
  );
  const recordedOn = log.split("\n")[0].replace("kernel: ", "");
  const release = new TextDecoder().decode(
    await run("uname", "-r") ?? new Uint8Array(),
  ).trim();
  // sysfs needs --allow-all in Deno; `cat` only needs --allow-run.
  const bytes = release === recordedOn
    ? await run("cat", "/sys/kernel/btf/vmlinux")
    : undefined;
  if (bytes === undefined) {
    await t.step({
      name: `recorded on ${recordedOn}, running ${release}`,
      ignore: true,
      fn() {},
    });
    return;
  }
  const vmlinux = parseBtf(bytes);
  const decisions = new Map<number, string>();
  for (const line of log.split("\n")) {
    const m = line.match(
      /relo #(\d+): (substituting|patched insn #\d+ \(\w+(?:\/\w+)?\) imm(?:64)? \d+ -> (\d+))/,
    );
    if (m && !decisions.has(Number(m[1]))) {
      decisions.set(Number(m[1]), m[3] ?? "poison");
    }
  }
  assert.equal(decisions.size, relos.length);
  relos.forEach((r, i) => {
    const res = calcCoreRelo(core.btf, r, vmlinux);
    assert.equal(
      res.poison ? "poison" : String(res.newVal),
      decisions.get(i),
      `relo #${i}`,
    );
  });
});
