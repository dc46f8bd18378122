/**
 * Parsing speed of lib/btf: the fixtures' small `.BTF` sections and, where
 * the machine exposes it, the running kernel's /sys/kernel/btf/vmlinux
 * (~126k types, 5.5 MB on 6.18).
 */
import { dumpBtf, parseBtf, parseStructMetas } from "../lib/btf/mod.ts";
import { readElf } from "../tests/btf/elf_sections.ts";

const fixtures = new URL("../tests/fixtures/btf/", import.meta.url).pathname;
const kinds = readElf(Deno.readFileSync(`${fixtures}kinds.o`)).sections.get(
  ".BTF",
)!;
const fields = readElf(Deno.readFileSync(`${fixtures}fields_ok.o`)).sections
  .get(".BTF")!;

let vmlinux: Uint8Array | undefined;
try {
  vmlinux = Deno.readFileSync("/sys/kernel/btf/vmlinux");
} catch {
  vmlinux = undefined;
}

Deno.bench("parseBtf kinds.o (.BTF, 62 types)", () => {
  parseBtf(kinds);
});

Deno.bench("parseBtf + parseStructMetas fields_ok.o", () => {
  parseStructMetas(parseBtf(fields));
});

Deno.bench({
  name: "parseBtf vmlinux",
  ignore: vmlinux === undefined,

  fn: () => {
    parseBtf(vmlinux!);
  },
});

Deno.bench({
  name: "dumpBtf vmlinux",
  ignore: vmlinux === undefined,

  fn: () => {
    dumpBtf(parseBtf(vmlinux!));
  },
});
