/**
 * The demo, in two parts:
 * 1. a small BPF program, assembled from kernel-syntax text, shown the way
 *    the verifier log shows it, then run on the interpreter over a few
 *    packets;
 * 2. the producer/consumer scenario (scenarios/producer_consumer.ts): a
 *    compiled BPF object whose programs push allocated objects on a list
 *    under a global `bpf_spin_lock` (CPUs 0, 1) and pop and drop them
 *    (CPUs 2, 3), interleaved instruction by instruction from a seed on the
 *    simulated kernel; its claims are checked and its timeline is written
 *    to `out/demo-timeline.html`.
 *
 * Run: `deno task demo` (`deno task demo --seed 7` for another interleaving)
 */
import { parseArgs } from "node:util";
import {
  assemble,
  disassemble,
  formatScenarioResult,
  renderTimeline,
  runProgram,
  runScenario,
} from "../mod.ts";
import { scenario as producerConsumer } from "./producer_consumer.ts";

/** Verifies an IPv4 header checksum: r0 = 0 when the header is intact. */
const CHECKSUM = `
    r0 = 0xffff
    if r2 < 20 goto out        ; too short for an IPv4 header
    r3 = 0                     ; running ones'-complement sum
    r4 = 0                     ; byte offset into the header
loop:
    r5 = r1
    r5 += r4
    r6 = *(u16 *)(r5 + 0)
    r6 = be16 r6               ; network to host order
    r3 += r6
    r4 += 2
    if r4 < 20 goto loop
fold:
    r5 = r3
    r5 >>= 16
    if r5 == 0 goto done
    r3 &= 0xffff
    r3 += r5
    goto fold
done:
    r3 ^= 0xffff
    r0 = r3
out:
    exit
`;

function ipv4Header(corrupt: boolean): Uint8Array {
  const h = new Uint8Array([
    0x45,
    0x00,
    0x00,
    0x54,
    0x1c,
    0x46,
    0x40,
    0x00,
    0x40,
    0x01,
    0x00,
    0x00,
    0xc0,
    0xa8,
    0x00,
    0x01,
    0xc0,
    0xa8,
    0x00,
    0xc7,
  ]);
  let sum = 0;
  for (let i = 0; i < 20; i += 2) sum += (h[i] << 8) | h[i + 1];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  const checksum = ~sum & 0xffff;
  h[10] = checksum >> 8;
  h[11] = checksum & 0xff;
  if (corrupt) h[15] ^= 0x40; // one flipped bit in the source address
  return h;
}

/** Both parts, in order; exits non-zero when a claim fails. */
async function main(): Promise<void> {
  const program = assemble(CHECKSUM, { name: "ipv4_csum.s" });
  console.log("IPv4 header checksum, as the verifier log prints it:\n");
  for (const line of disassemble(program)) console.log("  " + line);

  const packets: [string, Uint8Array][] = [
    ["intact header", ipv4Header(false)],
    ["one bit flipped", ipv4Header(true)],
    ["truncated (12 bytes)", ipv4Header(false).slice(0, 12)],
  ];
  console.log("\nRunning it on the interpreter:\n");
  console.log("  packet                 r0       verdict   insns executed");
  let failures = 0;
  for (const [label, bytes] of packets) {
    const result = runProgram(program, { mem: bytes });
    const ok = result.r0 === 0n;
    const expectedOk = label === "intact header";
    if (ok !== expectedOk) failures++;
    console.log(
      `  ${label.padEnd(22)} 0x${result.r0.toString(16).padEnd(6)} ${
        (ok ? "valid" : "invalid").padEnd(9)
      } ${result.steps}`,
    );
  }
  if (failures > 0) {
    console.error(`\n${failures} packet(s) got the wrong verdict`);
    Deno.exit(1);
  }
  console.log("\nEvery packet got the verdict its bytes call for.");

  // ---- part 2: four CPUs, one list ----

  const { values } = parseArgs({
    args: Deno.args,
    options: { seed: { type: "string" } },
  });
  const seed = Number(values.seed ?? 1);
  const result = await runScenario(producerConsumer, seed);
  console.log("\n" + formatScenarioResult(result));
  Deno.mkdirSync("out", { recursive: true });
  const timeline = "out/demo-timeline.html";
  Deno.writeTextFileSync(
    timeline,
    renderTimeline(
      result.kernel.trace.events,
      4,
      `${producerConsumer.name} (seed ${seed})`,
    ),
  );
  console.log(
    `\nTimeline (one lane per CPU; open it in a browser): ${timeline}`,
  );
  if (!result.ok) Deno.exit(1);
}

// the scenario tests import every file in scenarios/: only `deno run` runs it
if (import.meta.main) await main();
