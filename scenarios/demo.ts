/**
 * The demo, in two parts:
 * 1. a small BPF program, assembled from kernel-syntax text, shown the way
 *    the verifier log shows it, then run on the interpreter over a few
 *    packets;
 * 2. four simulated CPUs incrementing one shared counter, with and without
 *    `bpf_spin_lock`, interleaved instruction by instruction from a seed; the
 *    locked run loses nothing, the unlocked one loses updates. The locked
 *    run's timeline is written to `out/demo-timeline.html`.
 * (It grows into the list producer/consumer scenario as the kernel lands.)
 *
 * Run: `deno task demo` (`deno task demo --seed 7` for another interleaving)
 */
import { parseArgs } from "node:util";
import { assemble, disassemble, runProgram } from "../mod.ts";
import { Kernel } from "../lib/kernel/kernel.ts";
import { renderTimeline } from "../lib/scenario/timeline.ts";

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

// ---- part 2: four CPUs, one counter ----

const { values } = parseArgs({
  args: Deno.args,
  options: { seed: { type: "string" } },
});
const seed = Number(values.seed ?? 1);
const INCREMENTS = 50;

const LOCKED = assemble(`
    r6 = r1                    ; r1 = &value: { struct bpf_spin_lock lock; u64 count; }
    r1 = r6
    call bpf_spin_lock
    r2 = *(u64 *)(r6 + 8)      ; load, add, store: not atomic on its own
    r2 += 1
    *(u64 *)(r6 + 8) = r2
    r1 = r6
    call bpf_spin_unlock
    r0 = 0
    exit
`);
const UNLOCKED = assemble(`
    r2 = *(u64 *)(r1 + 8)
    r2 += 1
    *(u64 *)(r1 + 8) = r2
    r0 = 0
    exit
`);

function fourCpus(name: string, program: typeof LOCKED) {
  const kernel = new Kernel({ cpus: 4, seed, maxQuantum: 3 });
  const value = kernel.space.mapRegion("map_value", 16, { name: "counter" });
  const loaded = kernel.load(name, program);
  for (let cpu = 0; cpu < 4; cpu++) {
    for (let i = 0; i < INCREMENTS; i++) {
      kernel.submit(cpu, loaded, { r1: value });
    }
  }
  const summary = kernel.run();
  return { kernel, count: kernel.space.read(value + 8n, 8), summary };
}

console.log(`\nFour CPUs, ${INCREMENTS} increments each, seed ${seed}:\n`);
const locked = fourCpus("locked_inc", LOCKED);
const unlocked = fourCpus("unlocked_inc", UNLOCKED);
const contended =
  locked.kernel.trace.events.filter((e) => e.ev === "lock_contend").length;
const spins = locked.kernel.cpus.reduce((n, c) => n + c.spins, 0);
console.log(
  `  with bpf_spin_lock:    count = ${locked.count} of ${4 * INCREMENTS}` +
    `  (${contended} contended acquisitions, ${spins} steps spent spinning)`,
);
console.log(
  `  without a lock:       count = ${unlocked.count} of ${
    4 * INCREMENTS
  }  (lost updates)`,
);
console.log(
  `  trace hash of the locked run: ${locked.kernel.trace.hash()} (same seed, same hash)`,
);

Deno.mkdirSync("out", { recursive: true });
Deno.writeTextFileSync(
  "out/demo-timeline.html",
  renderTimeline(
    locked.kernel.trace.events,
    4,
    `4 CPUs, one bpf_spin_lock (seed ${seed})`,
  ),
);
console.log("  timeline of the locked run: out/demo-timeline.html");
if (locked.count !== BigInt(4 * INCREMENTS)) {
  console.error(
    "the locked counter lost an update: the spin lock model is broken",
  );
  Deno.exit(1);
}
