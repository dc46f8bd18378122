/**
 * Test bench of the sanitizer and trace tests: a kernel with
 * tests/fixtures/scenarios/broken_rule.o loaded (verification off, so
 * hand-written programs may break the rules), hand-written programs that
 * get the object's runtime (graph kfuncs over its BTF), and a plain slot
 * of memory programs pass object pointers through.
 */
import { assemble } from "../../lib/isa/asm.ts";
import { compileProgram } from "../../lib/exec/compile.ts";
import { loadObject } from "../../lib/elf/object.ts";
import type { ObjectFile } from "../../lib/elf/types.ts";
import { Kernel, type LoadedProgram } from "../../lib/kernel/kernel.ts";
import { kfuncBtfId } from "../../lib/kernel/kfunc_ids.ts";
import type { LoadedObject } from "../../lib/kernel/object_loader.ts";
import {
  kernelProgram,
  loadObjectWithRuntime,
} from "../../lib/kernel/object_runtime.ts";

/** The fixture with a locked list and a program that forgets the lock. */
export const BROKEN_RULE = new URL(
  "../fixtures/scenarios/broken_rule.o",
  import.meta.url,
);

/** The parsed fixture. */
export function brokenRuleObject(): ObjectFile {
  return loadObject(Deno.readFileSync(BROKEN_RULE), "broken_rule.o");
}

/** A kernel, the loaded fixture and a way to add hand-written programs. */
export interface SanitizerBench {
  readonly kernel: Kernel;
  readonly loaded: LoadedObject;
  /** 16 bytes of plain memory (not a map: holds raw pointers). */
  readonly slot: bigint;
  /** BTF id of `struct item` (for bpf_obj_new_impl). */
  readonly itemType: number;
  /** A fixture program, compiled with its runtime. */
  fixture(name: string): LoadedProgram;
  /** Assembles `text` (kfunc calls by name) with the fixture's runtime. */
  program(name: string, text: string): LoadedProgram;
  /** Queues `prog` on `cpu` with r1 = the slot and runs to idle. */
  runOn(cpu: number, prog: LoadedProgram): void;
}

/** A bench with `cpus` CPUs. */
export function sanitizerBench(
  cpus = 2,
  options: { schedule?: number[]; seed?: number } = {},
): SanitizerBench {
  const object = brokenRuleObject();
  const kernel = new Kernel({ cpus, seed: options.seed ?? 1, ...options });
  const loaded = loadObjectWithRuntime(kernel, object, { verify: false });
  const runtime = kernelProgram(loaded, "push").runtime;
  const itemType = object.btf!.findByName("item", "STRUCT")!;
  const slot = kernel.space.mapRegion("mem", 16, { name: "slot" });
  return {
    kernel,
    loaded,
    slot,
    itemType,
    fixture: (name) => kernelProgram(loaded, name),
    program: (name, text) => ({
      name,
      program: compileProgram(assemble(text, { resolveCall: kfuncBtfId })),
      runtime,
    }),
    runOn(cpu, prog) {
      kernel.submit(cpu, prog, { r1: slot });
      kernel.run();
    },
  };
}

/** `call name#id` text of kfunc `name`. */
export function kcall(name: string): string {
  return `call ${name}#${kfuncBtfId(name)}`;
}
