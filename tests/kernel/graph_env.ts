/**
 * Test bench of the graph runtime tests: a fixture object's BTF (compiled
 * from tests/fixtures/graph/*.c), an address space, `bpf_global_ma`, a
 * {@link GraphRuntime} and a way to run hand-written kernel-syntax
 * programs whose kfunc calls resolve by name.
 */
import { assemble } from "../../lib/isa/asm.ts";
import type { Btf } from "../../lib/btf/btf.ts";
import type { BtfRecord } from "../../lib/btf/field_types.ts";
import { parseStructMetas } from "../../lib/btf/struct_meta.ts";
import { loadObject } from "../../lib/elf/object.ts";
import type { ObjectFile } from "../../lib/elf/types.ts";
import { AddressSpace } from "../../lib/exec/memory.ts";
import { runProgram, type RunResult } from "../../lib/exec/run.ts";
import { kfuncBtfId } from "../../lib/kernel/kfunc_ids.ts";
import {
  type BpfMemAlloc,
  bpfMemAllocInit,
} from "../../lib/kernel/mem_alloc.ts";
import { RcuState } from "../../lib/kernel/rcu.ts";
import { createMapFromDef } from "../../lib/kernel/maps/create.ts";
import type { BpfMap } from "../../lib/kernel/maps/map.ts";
import {
  BpfCallbacks,
  btfTypes,
  graphFieldFreer,
  graphHelpers,
  graphKfuncs,
  GraphRuntime,
} from "../../lib/kernel/graph/mod.ts";

const FIXTURES = new URL("../fixtures/graph/", import.meta.url);

/** Everything a graph test needs. */
export interface GraphBench {
  readonly obj: ObjectFile;
  readonly btf: Btf;
  readonly metas: Map<number, BtfRecord>;
  readonly space: AddressSpace;
  readonly rcu: RcuState;
  readonly ma: BpfMemAlloc;
  readonly callbacks: BpfCallbacks;
  readonly rt: GraphRuntime;
  /** Type id of struct `name`. */
  typeId(name: string): number;
  /** Offset of member `member` of struct `name`. */
  offsetOf(name: string, member: string): number;
  /** Creates the object's map `name` with the runtime's FieldFreer. */
  map(name: string): BpfMap;
  /** Assembles and runs `text` (kernel syntax) to its exit. */
  run(text: string, mem?: Uint8Array): RunResult;
  /** Assembles `text` once; the result runs it (for loops and benches). */
  compile(text: string): (mem?: Uint8Array) => RunResult;
  /** Refills every CPU's caches (the scheduler's irq_work). */
  refill(): void;
}

/** A bench over fixture `<file>.o` with `nrCpus` CPUs. */
export function graphBench(file: string, nrCpus = 2): GraphBench {
  const bytes = Deno.readFileSync(new URL(`${file}.o`, FIXTURES));
  const obj = loadObject(bytes, `${file}.o`);
  const btf = obj.btf!;
  const metas = parseStructMetas(btf);
  const space = new AddressSpace();
  const rcu = new RcuState(nrCpus);
  const ma = bpfMemAllocInit({ space, rcu, name: "bpf_global_ma" }, 0);
  const callbacks = new BpfCallbacks(space);
  const rt = new GraphRuntime({
    space,
    ma,
    callbacks,
    metas,
    types: btfTypes(btf, metas),
  });
  const kfuncs = graphKfuncs(rt);
  const helpers = graphHelpers();
  const typeId = (name: string): number => {
    const id = btf.findByName(name, "STRUCT");
    if (id === undefined) throw new Error(`no struct ${name}`);
    return id;
  };
  let progs = 0;
  return {
    obj,
    btf,
    metas,
    space,
    rcu,
    ma,
    callbacks,
    rt,
    typeId,
    offsetOf(name, member) {
      const t = btf.typeById(typeId(name));
      if (t.kind !== "STRUCT") throw new Error(`${name} is not a struct`);
      const m = t.members.find((x) => x.name === member);
      if (m === undefined) throw new Error(`no ${name}.${member}`);
      return m.bitOffset / 8;
    },
    map(name) {
      const def = obj.maps.find((m) => m.name === name);
      if (def === undefined) throw new Error(`no map ${name}`);
      return createMapFromDef(space, def, btf, {
        nrCpus,
        fieldFreer: graphFieldFreer(rt),
      });
    },
    run(text, mem) {
      return this.compile(text)(mem);
    },
    compile(text) {
      const insns = assemble(text, { resolveCall: kfuncBtfId });
      const prog = callbacks.compile(insns, `test${progs++}`);
      return (mem) => runProgram(prog, { space, kfuncs, helpers, mem });
    },
    refill() {
      for (let cpu = 0; cpu < nrCpus; cpu++) ma.runIrqWork(cpu);
    },
  };
}

/** `call name#id` text of kfunc `name`. */
export function kcall(name: string): string {
  return `call ${name}#${kfuncBtfId(name)}`;
}

/** An address as an `ld_imm64` operand. */
export function imm(address: bigint): string {
  return `0x${address.toString(16)} ll`;
}
