import assert from "node:assert/strict";
import {
  DataFileError,
  dataFileProgram,
  parseDataFile,
} from "../../lib/isa/conformance_data.ts";
import { encodeProgram } from "../../lib/isa/decode.ts";

const CONFORMANCE = new URL("../../../shared/conformance/", import.meta.url);

interface IndexRecord {
  file: string;
  suite: string;
  purpose: string;
  has_raw: boolean;
  mem_bytes: number;
  expects: string | null;
  result: string | null;
  error: string | null;
}

function readIndex(): IndexRecord[] {
  return JSON.parse(Deno.readTextFileSync(new URL("index.json", CONFORMANCE)));
}

function hex(bytes: Uint8Array): string {
  return [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

Deno.test("parseDataFile", async (t) => {
  await t.step("reads the README's example", () => {
    const text = [
      "# anything after '#' is a comment",
      "-- asm",
      "ldxh %r2, [%r1+2]     # loads bytes 2..3",
      "be16 %r2",
      "mov %r0, %r2",
      "jeq %r0, 0x1234, +1   # true",
      "mov %r0, 0",
      "exit",
      "-- mem",
      "00 00 12 34",
      "-- result",
      "0x1234",
    ].join("\n");
    const file = parseDataFile(text, "example.data");
    assert.deepEqual([...file.mem], [0x00, 0x00, 0x12, 0x34]);
    assert.equal(file.result, 0x1234n);
    assert.equal(file.error, null);
    assert.equal(file.raw, null);
    // asm keeps the file's line numbers: line 3 is the first instruction
    assert.equal(
      file.asm?.split("\n")[2],
      "ldxh %r2, [%r1+2]     # loads bytes 2..3",
    );
    assert.equal(file.asm?.split("\n")[1], "");
    assert.equal(
      hex(encodeProgram(dataFileProgram(file))),
      [
        "6912020000000000",
        "dc02000010000000",
        "bf20000000000000",
        "1500010034120000",
        "b700000000000000",
        "9500000000000000",
      ].join(""),
    );
  });

  await t.step(
    "detects headers in upstream's order and ignores c / no register offset",
    () => {
      // 'asm' is tried before 'result'; '-- c' and '-- no register offset' hide their lines
      const ok = parseDataFile(
        "-- result asm\nexit\n-- c\nint x;\n-- no register offset\ncall instruction\n-- result\n7\n",
        "ok.data",
      );
      assert.equal(ok.asm?.trim(), "exit");
      assert.equal(ok.result, 7n);
      // a header with no known word makes upstream skip the file: we refuse it
      const unknown = "# header\n-- asm\nexit\n-- Unknown directive\n";
      assert.throws(() => parseDataFile(unknown, "odd.data"), (e: unknown) => {
        assert.ok(e instanceof DataFileError);
        assert.equal(e.line, 4);
        assert.match(
          e.message,
          /^odd\.data:4: unknown section header '-- Unknown directive'/,
        );
        return true;
      });
    },
  );

  await t.step(
    "takes the last non-blank result line; decimal, hex in either case, CRLF",
    () => {
      const file = parseDataFile(
        "-- asm\r\nexit\r\n-- result\r\n0x1\r\n\r\n0xFFFFFFFFFFFFFFF6\r\n\r\n",
      );
      assert.equal(file.result, 0xfffffffffffffff6n);
      assert.equal(parseDataFile("-- result\n0\n").result, 0n);
      assert.equal(parseDataFile("-- result\n0x00ffffff\n").result, 0xffffffn);
    },
  );

  await t.step("empty error section means any rejection", () => {
    const file = parseDataFile("-- raw\n95 00 00 00 00 00 00 00\n-- error\n");
    assert.equal(file.error, "");
    assert.equal(
      parseDataFile("-- asm\nexit\n-- error\nInvalid").error,
      "Invalid",
    );
  });

  await t.step("reads raw words and raw bytes", () => {
    const words = parseDataFile(
      "-- raw\n0x5566778800000018\n0x1122334400000000 149\n",
    );
    assert.equal(
      hex(words.raw ?? new Uint8Array()),
      "180000008877665500000000443322119500000000000000",
    );
    const bytes = parseDataFile(
      "-- raw\n07 00 01 00 01 00 00 00\n95 00 00 00 00 00 00 00\n",
    );
    assert.equal(
      hex(bytes.raw ?? new Uint8Array()),
      "07000100010000009500000000000000",
    );
  });

  await t.step("mem spans lines", () => {
    const file = parseDataFile("-- mem\naa bb\ncc\n-- asm\nexit\n");
    assert.deepEqual([...file.mem], [0xaa, 0xbb, 0xcc]);
  });

  await t.step("errors name the file and the line", () => {
    const cases: [string, number, RegExp][] = [
      ["-- mem\n00 zz\n", 2, /invalid mem byte 'zz'/],
      ["-- asm\nexit\n-- result\nfoo\n", 4, /invalid result 'foo'/],
      ["-- raw\n07 00 01\n", 2, /not a whole number of instructions/],
      ["-- raw\n0x1 0xg\n", 2, /invalid raw instruction word '0xg'/],
      ["-- result\n0x10000000000000000\n", 2, /invalid result/],
    ];
    for (const [text, line, reason] of cases) {
      assert.throws(() => parseDataFile(text, "bad.data"), (e: unknown) => {
        assert.ok(e instanceof DataFileError);
        assert.equal(e.fileName, "bad.data");
        assert.equal(e.line, line);
        assert.match(e.message, reason);
        return true;
      });
    }
  });
});

Deno.test("every conformance file parses as index.json describes it", () => {
  let parsed = 0;
  for (const record of readIndex()) {
    const text = Deno.readTextFileSync(new URL(record.file, CONFORMANCE));
    if (record.file.endsWith("invalid_unknown_directive.data")) {
      assert.throws(() => parseDataFile(text, record.file), DataFileError);
      continue;
    }
    const file = parseDataFile(text, record.file);
    parsed++;
    assert.equal(file.raw !== null, record.has_raw, record.file);
    assert.equal(file.mem.length, record.mem_bytes, record.file);
    const result = file.result === null
      ? null
      : `0x${file.result.toString(16)}`;
    assert.equal(result, record.result, record.file);
    assert.equal(file.error, record.error, record.file);
    if (record.suite === "tests") {
      assert.ok(file.asm !== null || file.raw !== null, record.file);
    }
  }
  assert.equal(parsed, 372);
});

Deno.test("lddw.data: the asm and raw sections are the same program", () => {
  const text = Deno.readTextFileSync(new URL("tests/lddw.data", CONFORMANCE));
  const file = parseDataFile(text, "lddw.data");
  const fromAsm = encodeProgram(dataFileProgram({ ...file, raw: null }));
  assert.equal(hex(fromAsm), hex(file.raw ?? new Uint8Array()));
  assert.equal(
    hex(fromAsm),
    "180000008877665500000000443322119500000000000000",
  );
});
