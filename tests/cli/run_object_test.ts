// `cli.ts run FILE.o --program NAME`: the same retval, packet and maps as
// `../shared/oracle/oracle run` recorded for the fixtures, and the oracle's
// exit codes (2: no such program; 1: the kernel refuses the run).
import { deepEqual, equal, match, ok } from "node:assert/strict";
import { cli } from "./harness.ts";

const fixture = (name: string) =>
  new URL(`../fixtures/${name}`, import.meta.url).pathname;

/** The oracle's recorded line for `program` in `record`. */
function oracleLine(record: string, program: string): Record<string, unknown> {
  const lines = Deno.readTextFileSync(fixture(record)).split("\n")
    .filter((l) => l.trim()).map((l) => JSON.parse(l));
  const line = lines.find((l) => l.program === program);
  ok(line, `${program} in ${record}`);
  return line;
}

Deno.test("run --json on an object matches the oracle's run", async (t) => {
  for (
    const [object, program] of [
      ["multi_prog.o", "tc_hidden"],
      ["multi_prog.o", "xdp_first"],
      ["sec_net.o", "sock_prog"],
      ["global_data.o", "read_all"],
      ["verifier/packet.o", "ok_pkt_tc_eth_proto"],
      ["graph/rbtree.o", "rb_global_add_first"], // graph kfuncs
      ["verifier/loops.o", "ok_iter_num_loop"], // bpf_iter_num_*
      ["verifier/loops.o", "ok_bpf_loop_callback"], // bpf_loop
    ]
  ) {
    await t.step(`${object} ${program}`, async () => {
      const want = oracleLine(
        object.replace(/\.o$/, ".oracle-run.json"),
        program,
      );
      const r = await cli(
        "run",
        "--json",
        fixture(object),
        "--program",
        program,
      );
      equal(r.code, 0, r.err);
      const got = JSON.parse(r.out);
      // the CLI prints r0 as hex (its contract); the oracle prints u32 retval
      equal(Number(BigInt(got.retval) & 0xffffffffn), want.retval);
      equal(got.data_out_hex, want.data_out_hex);
      ok(got.steps > 0);
    });
  }
});

Deno.test("run --dump-maps prints the maps the oracle dumps", async () => {
  const want = oracleLine("global_data.oracle-maps.json", "write_data");
  const r = await cli(
    "run",
    "--json",
    "--dump-maps",
    fixture("global_data.o"),
    "--program",
    "write_data",
  );
  equal(r.code, 0, r.err);
  const got = JSON.parse(r.out);
  equal(Number(BigInt(got.retval)), want.retval);
  deepEqual(got.maps, want.maps);
  equal(got.data_out_hex, undefined); // syscall programs have no packet
});

Deno.test("run --data-hex feeds the packet; --repeat reports ns_per_run", async () => {
  // ok_pkt_tc_eth_proto returns the EtherType. Recorded on the 6.18 kernel:
  // `oracle run --data-hex <this> verifier/packet.o ok_pkt_tc_eth_proto`
  // printed retval 2048 and the packet unchanged.
  const ipv4 = "00".repeat(12) + "0800" + "00".repeat(50);
  const KERNEL_RETVAL = 2048;
  const r = await cli(
    "run",
    "--json",
    "--repeat",
    "3",
    "--data-hex",
    ipv4,
    fixture("verifier/packet.o"),
    "--program",
    "ok_pkt_tc_eth_proto",
  );
  equal(r.code, 0, r.err);
  const got = JSON.parse(r.out);
  ok(typeof got.ns_per_run === "number");
  equal(got.data_out_hex, ipv4);
  equal(Number(BigInt(got.retval)), KERNEL_RETVAL);
});

Deno.test("run on an object: the oracle's errors and exit codes", async (t) => {
  await t.step("unknown program: exit 2 naming the programs", async () => {
    const r = await cli(
      "run",
      "--json",
      fixture("multi_prog.o"),
      "--program",
      "nope",
    );
    equal(r.code, 2);
    match(r.err, /no program 'nope' \(programs: .*tc_first/);
  });
  await t.step("a kprobe cannot be test-run: exit 1, errno 524", async () => {
    const r = await cli(
      "run",
      "--json",
      fixture("verifier/helpers_types.o"),
      "--program",
      "ok_kprobe_pid_tgid_ktime",
    );
    equal(r.code, 1);
    deepEqual(JSON.parse(r.out).errno, 524);
    match(r.err, /type kprobe cannot be test-run/);
  });
  await t.step(
    "a packet shorter than an Ethernet header: exit 1, EINVAL",
    async () => {
      const r = await cli(
        "run",
        "--json",
        "--data-hex",
        "0000",
        fixture("multi_prog.o"),
        "--program",
        "tc_first",
      );
      equal(r.code, 1);
      equal(JSON.parse(r.out).errno, 22);
    },
  );
  await t.step("an object needs --program", async () => {
    const r = await cli("run", fixture("multi_prog.o"));
    equal(r.code, 2);
    match(r.err, /needs --program/);
  });
});
