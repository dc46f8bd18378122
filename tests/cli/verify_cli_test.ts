// `cli.ts verify` on graph fixtures: the explain field of a rejection, the
// rewritten program of --xlated (the kernel's obj_new fixup: r1 = size).
import { equal, match, ok } from "node:assert/strict";
import { main } from "../../lib/cli/main.ts";
import type { Output } from "../../lib/cli/command.ts";

const ALLOC = new URL("../fixtures/graph/alloc.o", import.meta.url).pathname;

async function cli(
  ...args: string[]
): Promise<{ code: number; lines: string[] }> {
  const out: string[] = [];
  const io: Output = { out: (l) => out.push(l), err: (l) => out.push(l) };
  const code = await main(args, io);
  return { code, lines: out };
}

Deno.test("verify --json --xlated: explain on rejections, xlated on accepts", async () => {
  const { code, lines } = await cli("verify", "--json", "--xlated", ALLOC);
  equal(code, 0);
  const rows = lines.map((l) => JSON.parse(l));
  const leak = rows.find((r) => r.program === "new_leak");
  equal(leak.verdict, "reject");
  match(
    leak.explain,
    /struct item from bpf_obj_new_impl acquired at insn \d+ is not released/,
  );
  const ok1 = rows.find((r) => r.program === "new_check_drop");
  equal(ok1.verdict, "accept");
  ok(Array.isArray(ok1.xlated));
  // struct item is 40 bytes (long key, long data, bpf_list_node 24):
  // the rewritten obj_new passes the size in r1
  const at = ok1.xlated.findIndex((l: string) =>
    /call bpf_obj_new_impl#/.test(l)
  );
  ok(at > 2);
  match(ok1.xlated.slice(0, at).join("\n"), /\(b7\) r1 = 40\n.*\(18\) r2 = 0x/);
  equal(
    rows.every((r) => r.verdict === "accept" ? !("explain" in r) : true),
    true,
  );
});

Deno.test("verify (text): the explanation follows the verdict", async () => {
  const { lines } = await cli("verify", ALLOC);
  const i = lines.findIndex((l) => / new_leak \[tc\]: reject/.test(l));
  ok(i >= 0);
  match(
    lines[i + 1],
    /^ {2}explain: struct item from bpf_obj_new_impl acquired at insn/,
  );
});

Deno.test("run --no-verify: an unlocked push runs alone on its CPU (nothing can race it)", async () => {
  const LIST_MAP = new URL("../fixtures/graph/list_map.o", import.meta.url)
    .pathname;
  const verified = await cli(
    "run",
    "--json",
    LIST_MAP,
    "--program",
    "push_unlocked",
  );
  equal(verified.code, 1);
  match(verified.lines[0], /must be held for bpf_list_head/);
  const { code, lines } = await cli(
    "run",
    "--json",
    "--no-verify",
    LIST_MAP,
    "--program",
    "push_unlocked",
  );
  equal(code, 0);
  // push_unlocked returns 0 after pushing (list_map.c)
  equal(JSON.parse(lines[0]).retval, "0x0");
});
