// The CLI contract: --help on every command, exit 2 for usage and input
// errors with a message naming the problem, JSON output shapes.
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { COMMANDS } from "../../lib/cli/main.ts";
import { cli } from "./harness.ts";

async function withFile(
  text: string,
  ext: string,
  fn: (path: string) => Promise<void>,
) {
  const path = await Deno.makeTempFile({ suffix: ext });
  try {
    await Deno.writeTextFile(path, text);
    await fn(path);
  } finally {
    await Deno.remove(path);
  }
}

Deno.test("every command has --help and refuses unknown options with exit 2", async (t) => {
  for (const command of COMMANDS) {
    await t.step(command.name, async () => {
      const help = await cli(command.name, "--help");
      equal(help.code, 0);
      match(help.out, new RegExp(`^usage: cli.ts ${command.name}`));
      const bad = await cli(command.name, "--no-such-option", "x");
      equal(bad.code, 2);
      match(bad.err, /no-such-option/);
    });
  }
  equal((await cli("--help")).code, 0);
  equal((await cli("frobnicate")).code, 2);
});

Deno.test("run --json prints retval as hex of the full r0", async () => {
  // 0xfffffffe * 2 in 64 bits = 0x1fffffffc: checks no truncation to 32 bits
  await withFile("r0 = 0xfffffffe ll\nr0 *= 2\nexit\n", ".s", async (path) => {
    const r = await cli("run", "--json", path);
    equal(r.code, 0);
    deepEqual(JSON.parse(r.out), { retval: "0x1fffffffc", steps: 3 });
  });
});

Deno.test("run --mem-hex passes input memory in r1/r2", async () => {
  await withFile(
    "r0 = *(u16 *)(r1 + 1)\nr0 += r2\nexit\n",
    ".s",
    async (path) => {
      const r = await cli("run", "--json", "--mem-hex", "00 34 12", path);
      // little-endian u16 at offset 1 = 0x1234, plus length 3
      equal(JSON.parse(r.out).retval, "0x1237");
    },
  );
});

Deno.test("run --repeat reports ns_per_run", async () => {
  await withFile("r0 = 1\nexit\n", ".s", async (path) => {
    const r = JSON.parse(
      (await cli("run", "--json", "--repeat", "5", path)).out,
    );
    ok(typeof r.ns_per_run === "number" && r.ns_per_run > 0);
    equal((await cli("run", "--repeat", "zero", path)).code, 2);
  });
});

Deno.test("a memory fault is reported with the instruction index, exit 1", async () => {
  await withFile("r0 = *(u64 *)(r10 + 8)\nexit\n", ".s", async (path) => {
    const r = await cli("run", path);
    equal(r.code, 1);
    match(r.err, /insn 0/);
  });
});

Deno.test("input errors name the file and line, exit 2", async () => {
  equal((await cli("run", "/no/such/file.s")).code, 2);
  await withFile("r0 = 1\nr16 = 2\nexit\n", ".s", async (path) => {
    const r = await cli("asm", path);
    equal(r.code, 2);
    ok(r.err.includes(path) && r.err.includes(":2:"), r.err);
  });
});

Deno.test("asm and disasm agree with hand-encoded bytes", async () => {
  await withFile("mov %r0, 1\nexit\n", ".s", async (path) => {
    equal((await cli("asm", path)).out, "b700000001000000\n9500000000000000");
    equal((await cli("disasm", path)).out, "0: (b7) r0 = 1\n1: (95) exit");
  });
});

Deno.test("cli.ts itself exits 2 on bad usage without a stack trace", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: [
      "run",
      "-A",
      new URL("../../cli.ts", import.meta.url).pathname,
      "run",
      "--bogus",
    ],
    stdout: "piped",
    stderr: "piped",
  }).output();
  equal(out.code, 2);
  const stderr = new TextDecoder().decode(out.stderr);
  ok(!/\bat .*\.ts:\d+/.test(stderr), stderr);
});

const fixture = (name: string) =>
  new URL(`../fixtures/${name}`, import.meta.url).pathname;

Deno.test("inspect, btf and disasm read ELF objects", async () => {
  const loops = fixture("bench/loops.o");
  const summary = JSON.parse((await cli("inspect", "--json", loops)).out);
  // the kernel's loader (shared/oracle) reports these three programs and counts
  const oracle = Deno.readTextFileSync(fixture("bench/loops.oracle.json"))
    .trim().split("\n")
    .map((l) => JSON.parse(l));
  deepEqual(
    summary.programs.map((
      p: { name: string; insns: number },
    ) => [p.name, p.insns]),
    oracle.map((o: { program: string; insns: number }) => [o.program, o.insns]),
  );
  match((await cli("btf", loops)).out, /^\[1\] FUNC_PROTO/);
  const listing = (await cli("disasm", "--program", "alu_loop", loops)).out;
  match(listing, /^alu_loop \(section tc\):\n0: \(b7\) r0 = 1\n/);
  const graph =
    (await cli("disasm", "--program", "list_push", fixture("graph.o"))).out;
  match(graph, /\(18\) r1 = 0x0\n\t\tR_BPF_64_64 values\n/);
  match(graph, /call bpf_obj_new_impl#0\n\t\tR_BPF_64_32 bpf_obj_new_impl/);
  equal((await cli("disasm", "--program", "nope", loops)).code, 2);
});

Deno.test("a broken object is refused with its file and offset, exit 2", async () => {
  const r = await cli("inspect", fixture("broken/truncated.o"));
  equal(r.code, 2);
  match(r.err, /truncated\.o: offset 0x[0-9a-f]+: truncated ELF/);
});
