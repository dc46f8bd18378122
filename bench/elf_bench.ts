/**
 * ELF loading speed: every good fixture object parsed, checked and linked.
 *
 *   deno bench --allow-read bench/elf_bench.ts      (time per pass)
 *   deno run --allow-read bench/elf_bench.ts        (MB/s over repeated passes)
 *
 * Goal: at least 50 MB/s of object file.
 * @module
 */
import { loadObject } from "../lib/elf/object.ts";

const FIXTURES = new URL("../tests/fixtures/", import.meta.url);

/** The good objects (those libbpf can open) directly under tests/fixtures. */
function fixtureObjects(): { name: string; bytes: Uint8Array }[] {
  const out: { name: string; bytes: Uint8Array }[] = [];
  for (const e of Deno.readDirSync(FIXTURES)) {
    if (!e.isFile || !e.name.endsWith(".o")) continue;
    out.push({
      name: e.name,
      bytes: Deno.readFileSync(new URL(e.name, FIXTURES)),
    });
  }
  return out.sort((a, b) => a.name.localeCompare(b.name));
}

const objects = fixtureObjects();
const totalBytes = objects.reduce((n, o) => n + o.bytes.length, 0);

function loadAll(): number {
  let programs = 0;
  for (const o of objects) {
    programs += loadObject(o.bytes, o.name).programs.length;
  }
  return programs;
}

Deno.bench(
  `loadObject: ${objects.length} fixture objects, ${
    (totalBytes / 1024).toFixed(0)
  } KiB per pass`,
  () => {
    loadAll();
  },
);

const big = objects.reduce((
  a,
  b,
) => (a.bytes.length >= b.bytes.length ? a : b));
Deno.bench(
  `loadObject: largest fixture (${big.name}, ${
    (big.bytes.length / 1024).toFixed(1)
  } KiB)`,
  () => {
    loadObject(big.bytes, big.name);
  },
);

if (import.meta.main) {
  // warm up V8 (300 passes: the loader is a long chain of small functions
  // that are optimised late), then take the best of 5 rounds of 200 passes,
  // the round least disturbed by other load on the machine
  for (let i = 0; i < 300; i++) loadAll();
  const passes = 200;
  let seconds = Infinity;
  for (let round = 0; round < 5; round++) {
    const start = performance.now();
    for (let i = 0; i < passes; i++) loadAll();
    seconds = Math.min(seconds, (performance.now() - start) / 1000);
  }
  const mb = (totalBytes * passes) / 1e6;
  console.log(
    `${objects.length} objects, ${totalBytes} bytes per pass, ${passes} passes: ` +
      `${(mb / seconds).toFixed(1)} MB/s (${
        ((seconds / passes) * 1000).toFixed(2)
      } ms per pass)`,
  );
}
